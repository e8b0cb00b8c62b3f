#!/usr/bin/env bash
# bench/filter_cost.sh: what a table model's filter costs the write path
# (issue 12): a bulk INSERT ... SELECT of ROWS rows (default 200,000) of which
# 10 % match the filter `billable AND quantity > 0`, into
#   none:     a table without a model,
#   filtered: the same table with a model filtered to the billable rows,
#   all:      the same table with a model without a filter (every row an event).
# Rounds alternate between the three (one throwaway cluster, fsync = off,
# hyperline.enabled = off: no delivery); prints each sample, the medians and
# the ratios to `none`. Run as root.
#
#   bench/filter_cost.sh [/usr/lib/postgresql/15/bin]
# Knobs: ROUNDS (default 7), ROWS (default 200000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/cluster.sh
source "$ROOT/bench/lib/cluster.sh"
BIN=${1:-/usr/lib/postgresql/15/bin}
ROUNDS=${ROUNDS:-7}
ROWS=${ROWS:-200000}
WORK=$(mktemp -d /tmp/hyperline-filter.XXXXXX)
chown postgres: "$WORK"
cleanup() {
  stop_bench_cluster "$BIN" "$WORK/data"
  rm -rf "$WORK"
}
trap cleanup EXIT

port=$((6500 + RANDOM % 400))
start_bench_cluster "$BIN" "$WORK/data" "$port" "$WORK" "$WORK/log"
psql=("$BIN/psql" -X -q -At -h "$WORK" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)
template='{"customer_id": "{{ row.customer_id }}", "event_type": "usage",
  "timestamp": "{{ row.created_at }}", "record": {"id": "{{ row.id }}", "quantity": {{ row.quantity }}}}'
runuser -u postgres -- "${psql[@]}" <<SQL >/dev/null
CREATE EXTENSION pg_hyperline;
SELECT hyperline.create_destination('hyperline', 'k', base_url => 'http://127.0.0.1:9');
CREATE TABLE t_none (id bigserial PRIMARY KEY, customer_id text NOT NULL, billable boolean NOT NULL,
  quantity int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE t_filtered (LIKE t_none INCLUDING ALL);
CREATE TABLE t_all (LIKE t_none INCLUDING ALL);
SELECT hyperline.create_model('filtered', 't_filtered', 'id', \$t\$$template\$t\$,
  filter => 'billable AND quantity > 0');
SELECT hyperline.create_model('all_rows', 't_all', 'id', \$t\$$template\$t\$);
SQL

# µs per row of one bulk insert into table $1.
run() {
  local table=$1
  runuser -u postgres -- "${psql[@]}" -c "TRUNCATE $table, hyperline.outbox" -c 'CHECKPOINT'
  local t0 t1
  t0=$(date +%s%N)
  runuser -u postgres -- "${psql[@]}" -c "INSERT INTO $table (customer_id, billable, quantity)
    SELECT 'cus_' || (g % 1000), g % 10 = 0, 1 + g % 50 FROM generate_series(1, $ROWS) g"
  t1=$(date +%s%N)
  echo "scale=3; ($t1 - $t0) / 1000 / $ROWS" | bc
}

declare -A samples
kinds=(none filtered all)
for ((r = 1; r <= ROUNDS; r++)); do
  line="round $r:"
  for ((i = 0; i < 3; i++)); do
    k=${kinds[$(((i + r) % 3))]}
    us=$(run "t_$k")
    samples[$k]+="$us "
    line+=" $k $us"
    # Counted now: the next run's TRUNCATE empties the outbox.
    if [[ $k == filtered ]]; then
      events=$(runuser -u postgres -- "${psql[@]}" -c "SELECT count(*) FROM hyperline.outbox WHERE model = 'filtered'")
    fi
  done
  echo "$line us/row"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base=$(echo "${samples[none]}" | median)
for k in "${kinds[@]}"; do
  m=$(echo "${samples[$k]}" | median)
  echo "$k: median $m us/row, / none $(echo "scale=3; $m / $base" | bc)   (${samples[$k]})"
done
echo "(the last filtered insert queued $events events of $ROWS rows)"
