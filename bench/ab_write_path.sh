#!/usr/bin/env bash
# bench/ab_write_path.sh: the write path of two builds of pg_hyperline side by
# side, for a change whose cost is too small for bench/run.sh's noise (a shared
# machine: one run's OLTP medians move by tens of percent).
#
# Two throwaway clusters run at once, one per build (PostgreSQL installations
# with pg_hyperline installed: say two private copies, /work/tools/private-pg),
# same settings (fsync = off, as bench.py's "backend" step: commits write WAL but
# wait for no disk; hyperline.enabled = off: no delivery). Rounds alternate
# between them, so both see the same load:
#   - oltp: bench.oltp_loop (bench/sql/schema.sql) commits N one-INSERT
#     transactions into the model's table, the INSERT planned once; µs per
#     transaction (the backend's own cost: trigger, outbox write, commit);
#   - bulk: INSERT ... SELECT of M rows into the model's table; µs per row.
# Prints each sample and the medians; exits 0. Run as root.
#
#   bench/ab_write_path.sh /opt/pg-base/usr/lib/postgresql/15/bin /opt/pg-new/usr/lib/postgresql/15/bin
# Knobs: ROUNDS (default 10), TXNS (default 20000), ROWS (default 100000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/cluster.sh
source "$ROOT/bench/lib/cluster.sh"
A_BIN=$1
B_BIN=$2
ROUNDS=${ROUNDS:-10}
TXNS=${TXNS:-20000}
ROWS=${ROWS:-100000}
WORK=$(mktemp -d /tmp/hyperline-ab.XXXXXX)
chown postgres: "$WORK"
cleanup() {
  for v in a b; do
    bin=$A_BIN; [[ $v == b ]] && bin=$B_BIN
    stop_bench_cluster "$bin" "$WORK/$v"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

port_a=$((6100 + RANDOM % 400))
port_b=$((port_a + 1))
for v in a b; do
  bin=$A_BIN; port=$port_a
  [[ $v == b ]] && { bin=$B_BIN; port=$port_b; }
  start_bench_cluster "$bin" "$WORK/$v" "$port" "$WORK" "$WORK/$v.log"
  runuser -u postgres -- "$bin/psql" -X -q -h "$WORK" -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION pg_hyperline' -f "$ROOT/bench/sql/schema.sql" -c "
      SELECT hyperline.create_destination('hyperline', 'k', base_url => 'http://127.0.0.1:9');
      SELECT hyperline.create_model('oltp', 'bench.oltp_model', 'id', \$\$ {
        \"customer_id\": \"{{ row.customer_id }}\", \"event_type\": \"{{ row.event_type }}\",
        \"timestamp\": \"{{ row.created_at }}\", \"record\": {\"id\": \"{{ row.id }}\",
        \"durationInMs\": {{ row.duration_ms }}, \"isVerified\": {{ row.is_verified }} } } \$\$);" >/dev/null
done

# µs per unit of one timed statement on cluster $1 (a or b).
run() {
  local v=$1 sql=$2 units=$3 bin=$A_BIN port=$port_a
  [[ $v == b ]] && { bin=$B_BIN; port=$port_b; }
  local psql=("$bin/psql" -X -q -At -h "$WORK" -p "$port" -U postgres -d postgres)
  runuser -u postgres -- "${psql[@]}" -c 'TRUNCATE bench.oltp_model, hyperline.outbox' -c 'CHECKPOINT'
  local t0 t1
  t0=$(date +%s%N)
  runuser -u postgres -- "${psql[@]}" -c "$sql" >/dev/null
  t1=$(date +%s%N)
  echo "scale=3; ($t1 - $t0) / 1000 / $units" | bc
}

declare -A samples
for ((r = 1; r <= ROUNDS; r++)); do
  order="a b"; ((r % 2 == 0)) && order="b a"
  for v in $order; do
    o=$(run "$v" "CALL bench.oltp_loop('bench.oltp_model', $TXNS, true)" "$TXNS")
    bk=$(run "$v" "INSERT INTO bench.oltp_model (customer_id, event_type, created_at, duration_ms, is_verified)
                   SELECT 'cus_' || (g % 1000), 'api_call', now(), g % 5000, g % 3 = 0
                     FROM generate_series(1, $ROWS) g" "$ROWS")
    samples[$v.oltp]+="$o "
    samples[$v.bulk]+="$bk "
    echo "round $r $v: oltp $o us/txn, bulk $bk us/row"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for m in oltp bulk; do
  ma=$(echo "${samples[a.$m]}" | median)
  mb=$(echo "${samples[b.$m]}" | median)
  echo "$m: a ${ma} us, b ${mb} us, b/a $(echo "scale=3; $mb / $ma" | bc)"
  echo "  a: ${samples[a.$m]}"
  echo "  b: ${samples[b.$m]}"
done
