#!/usr/bin/env bash
# bench/liquidjs/run.sh: our Liquid engine vs LiquidJS 10 on the payload template.
#
# Installs liquidjs@10 into bench/liquidjs/node_modules (gitignored), builds
# micro_bench, renders the same template and row with both engines (each parses
# once and renders in a loop), and prints ns/render for both and the ratio.
# Knobs: BUILD_DIR (default /tmp/build-liquid-bench), ITERATIONS (LiquidJS loop).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-/tmp/build-liquid-bench}"

if [[ ! -d "$HERE/node_modules/liquidjs" ]]; then
  (cd "$HERE" && npm install --no-save --no-audit --no-fund --silent liquidjs@10 >/dev/null)
fi

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target micro_bench -j2 >/dev/null

ours_json="$("$BUILD_DIR/micro_bench" --benchmark_filter='^BM_LiquidRenderPayload$' \
  --benchmark_min_time=1 --benchmark_format=json 2>/dev/null)"
theirs_json="$(cd "$HERE" && node bench.js)"

python3 - "$ours_json" "$theirs_json" <<'PY'
import json, sys
ours = json.loads(sys.argv[1])["benchmarks"][0]
ns_ours = ours["cpu_time"] if ours.get("time_unit") == "ns" else ours["cpu_time"] * {"us": 1e3, "ms": 1e6}[ours["time_unit"]]
theirs = json.loads(sys.argv[2])
ns_js = theirs["ns_per_render"]
print(f"pg_hyperline liquid: {ns_ours:10.1f} ns/render")
print(f"liquidjs 10:         {ns_js:10.1f} ns/render")
print(f"ratio:               {ns_js / ns_ours:10.1f}x faster")
PY
