#!/usr/bin/env bash
# bench/run.sh: the pg_hyperline performance benchmarks, end to end (`make bench`).
#
# Builds and installs the extension and hyperline-mock, starts a throwaway
# Postgres 15 cluster and the mock on loopback, runs the seven measurements
# (bench/bench.py), prints the results table and writes bench/out/results.json,
# the results section of docs/benchmarks.md and docs/benchmarks.png.
#
# Run as root from anywhere. Knobs (environment):
#   QUICK=1            everything scaled down ~50x: a smoke run of a minute or two
#   ONLY=bulk,oltp,... run only these measurements (bulk oltp drain latency memory
#                      upkeep query profile); docs are regenerated only on full runs of all
#   SKIP_BUILD=1       use what is installed and the mock already built
#   BUILD_DIR=DIR      CMake build dir for hyperline-mock (default /tmp/build-bench)
#   PORT=N             the cluster's port (default: a free one in 5500-5999)
#   KEEP=1             leave the cluster and the mock running at the end
#   BENCH_PROFILE=0    skip the perf profiles (taken untimed, after the measurements)
#   BENCH_OUT_DIR=DIR  where results.json goes (default bench/out)
#   BENCH_UPKEEP_TUNED=1  upkeep experiment: unthrottled autovacuum on the outbox, naptime 10s
#   BENCH_EXTRA_CONF='a = 1; b = 2'  more postgresql.conf lines (';'-separated), e.g.
#                      'track_commit_timestamp = on' (hyperline.stats's exact commit times)
#   PGBIN=DIR          the PostgreSQL whose binaries and installed pg_hyperline run
#                      (default /usr/lib/postgresql/15/bin; with SKIP_BUILD=1, say a
#                      private copy, to compare two builds)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-/tmp/build-bench}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
OUT="${BENCH_OUT_DIR:-$ROOT/bench/out}"
API_KEY="bench_key_$$"

if [[ $(id -u) -ne 0 ]]; then
  echo "bench/run.sh: run as root (it installs the extension and runs Postgres as postgres)" >&2
  exit 1
fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- tools -------------------------------------------------------------------
if ! command -v gnuplot >/dev/null; then
  log "installing gnuplot-nox (for the chart)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null 2>&1; } ||
    log "gnuplot-nox could not be installed: no chart this time"
fi

# --- build -------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building and installing the extension (make && make install)"
  # Our knobs stay out of make's way (PGXS itself reads PROFILE, for one).
  (cd "$ROOT" && env -u QUICK -u ONLY -u KEEP -u PORT -u PROFILE make -s -j"$(nproc)" >/dev/null &&
    env -u QUICK -u ONLY -u KEEP -u PORT -u PROFILE make -s install >/dev/null)
  log "building hyperline-mock in $BUILD_DIR"
  env -u PROFILE cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  env -u PROFILE cmake --build "$BUILD_DIR" --target hyperline-mock -j"$(nproc)" >/dev/null
fi
MOCK_BIN="$BUILD_DIR/hyperline-mock"
[[ -x "$MOCK_BIN" ]] || { echo "bench/run.sh: $MOCK_BIN missing (build failed?)" >&2; exit 1; }

# perf finds symbols by build id even if someone reinstalls the library mid-run.
if command -v perf >/dev/null; then
  perf buildid-cache --add "$("$PGBIN/pg_config" --pkglibdir)/pg_hyperline.so" 2>/dev/null || true
fi

# --- throwaway cluster and mock ----------------------------------------------
WORK="$(mktemp -d /tmp/hyperline-bench.XXXXXX)"
chown postgres: "$WORK"
chmod 755 "$WORK"
MOCK_PID=""
cleanup() {
  local rc=$?
  if [[ "${KEEP:-0}" == 1 ]]; then
    log "KEEP=1: cluster in $WORK/data (port $PORT, socket $WORK), mock pid $MOCK_PID"
    return $rc
  fi
  [[ -n "$MOCK_PID" ]] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null || true
  if [[ -f "$WORK/data/postmaster.pid" ]]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [[ $rc -ne 0 && -f "$WORK/server.log" ]]; then
    mkdir -p "$OUT" && cp "$WORK/server.log" "$OUT/server.log" &&
      log "failed; server log kept in bench/out/server.log"
  fi
  rm -rf "$WORK"
  return $rc
}
trap cleanup EXIT

if [[ -z "${PORT:-}" ]]; then
  for _ in $(seq 50); do
    PORT=$((5500 + RANDOM % 500))
    if ! ss -ltn 2>/dev/null | grep -q ":$PORT " && [[ ! -e "/tmp/.s.PGSQL.$PORT" ]]; then break; fi
  done
fi

log "initdb in $WORK/data, port $PORT"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/data" -U postgres --auth=trust -E UTF8 \
  --locale=C.UTF-8 >/dev/null
cat >>"$WORK/data/postgresql.conf" <<EOF
# --- bench/run.sh ---
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
shared_preload_libraries = 'pg_hyperline'
hyperline.database = 'bench'
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
synchronous_commit = on
track_wal_io_timing = on
max_connections = 50
log_min_messages = warning
logging_collector = off
EOF
if [[ -n "${BENCH_EXTRA_CONF:-}" ]]; then
  tr ';' '\n' <<<"$BENCH_EXTRA_CONF" >>"$WORK/data/postgresql.conf"
fi
# A hard link keeps the library the cluster loads readable for perf even if
# someone reinstalls pg_hyperline.so while the benchmark runs.
mkdir -p "$WORK/keep"
ln "$("$PGBIN/pg_config" --pkglibdir)/pg_hyperline.so" "$WORK/keep/pg_hyperline.so" 2>/dev/null ||
  cp "$("$PGBIN/pg_config" --pkglibdir)/pg_hyperline.so" "$WORK/keep/pg_hyperline.so"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
runuser -u postgres -- "$PGBIN/createdb" -h "$WORK" -p "$PORT" bench

"$MOCK_BIN" --port 0 --port-file "$WORK/mock.port" --api-key "$API_KEY" --quiet \
  </dev/null >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
for _ in $(seq 100); do [[ -s "$WORK/mock.port" ]] && break; sleep 0.05; done
[[ -s "$WORK/mock.port" ]] || { echo "bench/run.sh: hyperline-mock did not start" >&2; exit 1; }
MOCK_PORT="$(cat "$WORK/mock.port")"
log "hyperline-mock on 127.0.0.1:$MOCK_PORT (pid $MOCK_PID)"

# --- measurements --------------------------------------------------------------
mkdir -p "$OUT"
export BENCH_PGHOST="$WORK" BENCH_PGPORT="$PORT" BENCH_DB=bench BENCH_PGBIN="$PGBIN" \
  BENCH_MOCK_URL="http://127.0.0.1:$MOCK_PORT" BENCH_MOCK_PID="$MOCK_PID" \
  BENCH_API_KEY="$API_KEY" BENCH_ROOT="$ROOT" BENCH_OUT="$OUT" BENCH_SERVER_LOG="$WORK/server.log" \
  BENCH_KEEP_SO="$WORK/keep/pg_hyperline.so" BENCH_SYMFS="$WORK/symfs"
python3 "$ROOT/bench/bench.py"
python3 "$ROOT/bench/report.py" "$OUT/results.json"
if grep -q 'terminated by signal' "$WORK/server.log"; then
  log "WARNING: the server log shows a crash:"
  grep -B2 -A2 'terminated by signal' "$WORK/server.log" >&2
fi
