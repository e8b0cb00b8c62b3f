#!/usr/bin/env bash
# The main job, end to end, on this machine (run as root):
# a throwaway Postgres cluster + the bundled hyperline-mock + a model using
# Hyperline's own Hightouch example payload; rows are inserted, the delivery
# worker sends them, and you see the outbox and what the mock received.
# KEEP=1 leaves the cluster and mock running and prints how to connect.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build}
export PATH=/usr/lib/postgresql/15/bin:$PATH

bash "$ROOT/scripts/setup.sh"
echo "== building pg_hyperline and hyperline-mock"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target hyperline-mock >/dev/null
make -j"$(nproc)" >/dev/null
make install >/dev/null

WORK=$(mktemp -d /tmp/pg_hyperline_demo.XXXXXX)
chown postgres "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port)
MOCK_PID=""
cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    runuser -u postgres -- pg_ctl -D "$WORK/data" -m fast stop >/dev/null 2>&1 || true
    [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

echo "== starting hyperline-mock and a throwaway Postgres on 127.0.0.1:$PGPORT"
API_KEY=sk_demo_4f1c0d2b9e7a9f2a
"$BUILD/hyperline-mock" --port 0 --port-file "$WORK/mock.port" --api-key "$API_KEY" --quiet \
  >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$WORK/mock.port" ] && break; sleep 0.05; done
MOCK_PORT=$(cat "$WORK/mock.port")
MOCK=http://127.0.0.1:$MOCK_PORT

runuser -u postgres -- initdb -D "$WORK/data" -A trust >/dev/null
cat >>"$WORK/data/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
shared_preload_libraries = 'pg_hyperline'
hyperline.database = 'demo'
CONF
runuser -u postgres -- pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
PSQL=(runuser -u postgres -- psql -h "$WORK" -p "$PGPORT" -X -v ON_ERROR_STOP=1 -q)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE demo"

PAYLOAD=$(cat "$ROOT/examples/hightouch_payload.json")
echo "== the payload template (Hyperline's Hightouch example, pasted as is):"
echo "$PAYLOAD"
"${PSQL[@]}" -d demo <<SQL
CREATE EXTENSION pg_hyperline;
SELECT hyperline.create_destination('hyperline', api_key => '$API_KEY', base_url => '$MOCK');
CREATE TABLE api_calls (
  id text PRIMARY KEY,
  customer_id text NOT NULL,
  event_type text NOT NULL DEFAULT 'api_call',
  created_at timestamptz NOT NULL DEFAULT now(),
  duration_ms int,
  is_verified boolean DEFAULT true
);
SELECT hyperline.create_model('api_calls', 'api_calls', 'id', \$tmpl\$$PAYLOAD\$tmpl\$);
\echo == inserting 5 rows one by one, then 995 in one statement
INSERT INTO api_calls (id, customer_id, duration_ms) VALUES ('D32NAA8', 'cus_CrqwefTRWBWRT', 32);
INSERT INTO api_calls (id, customer_id, duration_ms, is_verified) VALUES ('D32NAA9', 'cus_CrqwefTRWBWRT', 18, false);
INSERT INTO api_calls (id, customer_id, duration_ms) VALUES ('X1', 'cus_acme', 120);
INSERT INTO api_calls (id, customer_id, duration_ms) VALUES ('X2', 'cus_acme', 7);
UPDATE api_calls SET duration_ms = 33 WHERE id = 'D32NAA8';
INSERT INTO api_calls (id, customer_id, duration_ms)
  SELECT 'bulk-' || g, 'cus_' || (g % 10), g FROM generate_series(1, 995) g;
SQL

echo "== waiting for the worker to deliver"
for _ in $(seq 200); do
  left=$("${PSQL[@]}" -d demo -tA -c "SELECT count(*) FROM hyperline.outbox WHERE status IN ('pending','sending')")
  [ "$left" = 0 ] && break
  sleep 0.1
done
"${PSQL[@]}" -d demo <<'SQL'
\echo == hyperline.outbox (first rows)
SELECT id, model, event_key, operation, status, attempts, http_status, delivered_at - created_at AS latency
  FROM hyperline.outbox ORDER BY id LIMIT 6;
\echo == events by status (an event replaced by a newer change of its key before it was sent is superseded)
SELECT status, count(*) FROM hyperline.outbox GROUP BY status ORDER BY status;
\echo == hyperline.model_status
SELECT model, pending, sending, delivered, failed, last_error FROM hyperline.model_status;
\echo == hyperline.stats (counters in shared memory; latency from commit to the 2xx answer)
SELECT kind, name, events_enqueued AS enqueued, events_delivered AS delivered,
       events_superseded AS superseded, requests, responses_2xx AS "2xx",
       round(latency_p50_ms) AS p50_ms, round(latency_p99_ms) AS p99_ms
  FROM hyperline.stats ORDER BY kind, name;
\echo == hyperline.health()
SELECT * FROM hyperline.health();
\echo == hyperline.requests (one row per HTTP request)
SELECT sent_at, duration_ms, events, http_status FROM hyperline.requests ORDER BY sent_at;
\echo == one payload as sent
SELECT jsonb_pretty(payload) FROM hyperline.outbox WHERE event_key = 'D32NAA8' ORDER BY id DESC LIMIT 1;
SQL
echo "== what hyperline-mock received ($MOCK/_mock/stats):"
curl -s "$MOCK/_mock/stats"; echo
echo "== GET /v1/events?record_id__in=D32NAA8,X1 at the mock:"
curl -s -H "Authorization: Bearer $API_KEY" "$MOCK/v1/events?record_id__in=D32NAA8,X1"; echo
if [ "${KEEP:-0}" = 1 ]; then
  echo "== left running: psql -h $WORK -p $PGPORT -U postgres demo ; mock at $MOCK"
fi
