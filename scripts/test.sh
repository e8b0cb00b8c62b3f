#!/usr/bin/env bash
# Runs every test of pg_hyperline on this machine, as root:
#   1. C++ unit tests of src/core and src/http (GoogleTest via ctest), incl. the
#      golden Liquid suite and the HTTP client against hyperline-mock;
#   2. pg_regress tests of the SQL interface against a throwaway cluster
#      (pg_virtualenv, library preloaded);
#   3. TAP tests of the delivery worker (PostgreSQL::Test::Cluster + mock), run
#      as user postgres from a copy of the tree;
#   4. PostgreSQL's own regression suite with the library loaded, the Debian
#      package built and tested, clang-tidy over our C++ (zero findings).
# Prints regression diffs and server logs when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)
BUILD=${BUILD:-$ROOT/build}
export PATH=/usr/lib/postgresql/15/bin:$PATH

section() { printf '\n=== %s ===\n' "$*"; }

bash "$ROOT/scripts/setup.sh"

section "unit tests (ctest)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$JOBS"
(cd "$BUILD" && ctest --output-on-failure -j"$JOBS")
# ctest hides passing tests' output: print the golden Liquid pass rate.
"$BUILD/unit_tests" --gtest_filter='GoldenLiquid.*' | grep -E '^golden liquid:'

section "extension build and install"
make -j"$JOBS" >/dev/null
make install >/dev/null

section "pg_regress"
rm -rf results regression.diffs regression.out
status=0
pg_virtualenv -o shared_preload_libraries=pg_hyperline -o hyperline.enabled=off \
  bash -c 'make installcheck TAP_TESTS= ; rc=$?
           if [ $rc -ne 0 ]; then
             echo "--- regression.diffs ---"; cat regression.diffs 2>/dev/null
             for f in /var/log/postgresql/postgresql-*.log "$PGDATA"/log/*; do
               [ -f "$f" ] && { echo "--- server log $f (tail) ---"; tail -n 100 "$f"; }
             done
           fi
           exit $rc' || status=$?
[ $status -eq 0 ] || exit $status

section "TAP tests"
if ls test/t/*.pl >/dev/null 2>&1; then
  TAPDIR=$(mktemp -d /tmp/pg_hyperline_tap.XXXXXX)
  cp -a "$ROOT"/. "$TAPDIR"/
  rm -rf "$TAPDIR/build"
  chown -R postgres "$TAPDIR"
  status=0
  runuser -u postgres -- env HYPERLINE_MOCK_BIN="$BUILD/hyperline-mock" \
    make -C "$TAPDIR" installcheck REGRESS= || status=$?
  if [ $status -ne 0 ]; then
    for f in "$TAPDIR"/tmp_check/log/*; do
      [ -f "$f" ] && { echo "--- $f (tail) ---"; tail -n 150 "$f"; }
    done
    exit $status
  fi
  rm -rf "$TAPDIR"
fi
section "PostgreSQL core regression suite with pg_hyperline loaded"; bash "$ROOT/scripts/pg-core-regress.sh"
section "Debian packages"; bash "$ROOT/scripts/package-test.sh"
section "clang-tidy"; PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config bash "$ROOT/scripts/tidy.sh"
echo
echo "all tests passed"
