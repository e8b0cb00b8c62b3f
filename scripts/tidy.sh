#!/usr/bin/env bash
# clang-tidy over pg_hyperline's own C++ (src/, tools/hyperline-mock) with the
# checked-in .clang-tidy; fails on any finding. src/core, src/http and the mock
# are checked with CMake's compile commands, src/pg with the PGXS flags.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${TIDY_BUILD:-$ROOT/build-tidy}
PG_CONFIG=${PG_CONFIG:-pg_config}
JOBS=$(nproc)
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
out=$(mktemp)
tidy() { clang-tidy -quiet "$@" 2>/dev/null | grep -E '^/.*(warning|error):' || true; }
export -f tidy
{
  ls src/core/*.cpp src/core/liquid/*.cpp src/core/delivery/*.cpp src/http/*.cpp tools/hyperline-mock/*.cpp \
    | xargs -P "$JOBS" -I{} bash -c "tidy -p '$BUILD' {}"
  ls src/pg/*.cpp | xargs -P "$JOBS" -I{} bash -c \
    "tidy {} -- -std=c++17 -Isrc -I$($PG_CONFIG --includedir-server) -DHYPERLINE_VERSION=\\\"dev\\\" -Wno-register"
} | sort -u > "$out"
n=$(wc -l < "$out")
if [ "$n" -gt 0 ]; then
  cat "$out"
  echo "clang-tidy: $n findings"
  rm -f "$out"
  exit 1
fi
rm -f "$out"
echo "clang-tidy: no findings"
