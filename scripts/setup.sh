#!/usr/bin/env bash
# Installs the Debian packages pg_hyperline needs to build, test and demo
# (only the missing ones; needs root). Used by demo.sh, test.sh and .ci/run.
set -euo pipefail
PACKAGES=(
  build-essential cmake g++ clang-14 llvm-14 pkg-config rsync
  postgresql-15 postgresql-server-dev-15 postgresql-common postgresql-contrib
  libcurl4-openssl-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libipc-run-perl
  bzip2  # pg-core-regress.sh unpacks the server's source tarball
  clang-tidy  # scripts/tidy.sh (the .clang-tidy checks, zero findings)
  prometheus-postgres-exporter  # test/t/043_prometheus.pl scrapes docs/monitoring.md's queries
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ "${1:-}" = "--update" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi
