#!/usr/bin/env bash
# Runs PostgreSQL's own core regression suite (src/test/regress of the Debian
# source package of the server's major version) against a cluster with
# pg_hyperline preloaded, hyperline.database unset, the extension created in
# the suite's database (pg_regress --load-extension) and so a delivery worker
# connected there, and the launcher looking at every database the suite
# creates. Fails when a test fails that also passes on a plain cluster of the
# same server (run only when something failed), and prints the diffs.
#
# Why: a library that every backend loads can break the server in ways our own
# tests never try (DROP DATABASE waiting for ever on a worker, for one).
#
# As root (apt-get for the source, postgres for the cluster). pg_hyperline must
# already be installed into the server of PG_CONFIG (default: the system's).
#   PG_CONFIG=...              the server to test
#   PG_SRC_CACHE=dir           where the regress sources are kept between runs
#   CORE_REGRESS_TIMEOUT=secs  per suite run (default 480)
set -euo pipefail
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
PKGLIB=$("$PG_CONFIG" --pkglibdir)
MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
CACHE=${PG_SRC_CACHE:-/var/cache/pg_hyperline/postgresql-$MAJOR-src}
TIMEOUT=${CORE_REGRESS_TIMEOUT:-480}
PG_REGRESS=$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress
start=$(date +%s)
say() { printf '[core-regress %3ds] %s\n' $(( $(date +%s) - start )) "$*"; }

# 1. The suite's sources, from the Debian source package (only src/test/regress).
fetch_sources() {
  local pkg=postgresql-$MAJOR work versions v tarball
  if [ -z "$(apt-cache showsrc "$pkg" 2>/dev/null)" ]; then
    # apt-get source needs deb-src entries: the deb ones, as deb-src.
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        > /etc/apt/sources.list.d/pg-hyperline-deb-src.sources
    else
      grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | sed 's/^deb /deb-src /' > /etc/apt/sources.list.d/pg-hyperline-deb-src.list
    fi
    apt-get update -qq
  fi
  work=$(mktemp -d /tmp/pg-src.XXXXXX)
  # The installed version first; else the newest the archive still has (the
  # plain-cluster comparison absorbs differences between minor versions).
  versions="$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
$(apt-cache showsrc "$pkg" | sed -n 's/^Version: //p' | sort -rV)"
  for v in $versions; do
    (cd "$work" && apt-get source -qq --download-only "$pkg=$v" >/dev/null 2>&1) && break
    rm -f "$work"/*
  done
  tarball=$(ls "$work"/*.orig.tar.* 2>/dev/null | head -1)
  [ -n "$tarball" ] || { echo "could not download the source of $pkg"; exit 1; }
  say "source: $(basename "$tarball")"
  mkdir -p "$CACHE"
  tar -xf "$tarball" -C "$work" --wildcards '*/src/test/regress/*'
  rm -rf "$CACHE/regress"
  mv "$work"/postgresql-*/src/test/regress "$CACHE/regress"
  basename "$tarball" > "$CACHE/regress/SOURCE"
  rm -rf "$work"
}
[ -f "$CACHE/regress/parallel_schedule" ] || fetch_sources
say "suite from $(cat "$CACHE/regress/SOURCE" 2>/dev/null || echo 'an earlier download'), server $("$BIN/postgres" --version)"
SRC=$CACHE/regress

# 2. regress.so (the suite's C functions) with PGXS; autoinc and refint ship
#    with the server.
T=$(mktemp -d /tmp/core-regress.XXXXXX)
chmod 755 "$T"
mkdir "$T/dl"
cp "$SRC/regress.c" "$T/dl/"
printf 'MODULES = regress\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n' > "$T/dl/Makefile"
make -s -C "$T/dl" PG_CONFIG="$PG_CONFIG" >/dev/null 2>"$T/dl/build.log" \
  || { cat "$T/dl/build.log"; exit 1; }
ln -s "$PKGLIB/autoinc.so" "$PKGLIB/refint.so" "$T/dl/"
chown -R postgres "$T"

as_pg() { runuser -u postgres -- "$@"; }

# Runs the suite on a new cluster; $1 = name, $2 = with pg_hyperline (yes/no).
# Leaves $T/$1/out/regression.out and .diffs; returns pg_regress's status.
run_suite() {
  local name=$1 ours=$2 dir=$T/$1 rc=0 extra=()
  as_pg mkdir -p "$dir/out"
  as_pg "$BIN/initdb" -D "$dir/data" -A trust --locale=C -E UTF8 >/dev/null
  cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
fsync = off
CONF
  if [ "$ours" = yes ]; then
    cat >> "$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_hyperline'
hyperline.poll_interval_ms = 200
CONF
    extra=(--load-extension=pg_hyperline)
  fi
  as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
  as_pg timeout "$TIMEOUT" "$PG_REGRESS" --inputdir="$SRC" --outputdir="$dir/out" \
    --bindir="$BIN" --dlpath="$T/dl" --host="$dir" --port=5432 \
    --schedule="$SRC/parallel_schedule" --max-concurrent-tests=20 "${extra[@]}" \
    > "$dir/pg_regress.log" 2>&1 || rc=$?
  if [ "$ours" = yes ] && [ $rc -ne 124 ]; then
    # Our processes must still be there: the launcher and the worker of the
    # suite's database.
    local n
    n=$(as_pg "$BIN/psql" -h "$dir" -d postgres -XAtc "SELECT count(*) FROM pg_stat_activity
          WHERE backend_type = 'pg_hyperline launcher'
             OR (backend_type = 'pg_hyperline delivery worker' AND datname = 'regression')")
    [ "$n" = 2 ] || { say "the launcher or the delivery worker of database regression is gone"; broken=1; }
    if grep -q "terminated by signal" "$dir/log"; then
      say "a process crashed:"; grep "terminated by signal" "$dir/log"; broken=1
    fi
  fi
  as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null || true
  [ $rc -eq 124 ] && say "$name: timed out after ${TIMEOUT}s; tests still running:" \
    && tail -n 5 "$dir/pg_regress.log"
  return $rc
}

# Test names with their result (ok/FAILED), one per line.
results() { sed -nE 's/^(test| )\s*([a-z0-9_]+)\s+\.\.\. (ok|FAILED|failed \(ignored\)).*/\2 \3/p' "$1"; }

say "suite with pg_hyperline preloaded (workers running)"
status=0
broken=0
run_suite hyperline yes || status=$?
say "$(grep -E '^( All| [0-9]+ of)' "$T/hyperline/pg_regress.log" | head -1 || true)"
if [ $status -eq 0 ] && [ $broken -eq 0 ]; then
  say "passed"
  rm -rf "$T"
  exit 0
fi
say "suite on a plain cluster, to compare"
run_suite plain no || true
results "$T/hyperline/pg_regress.log" | awk '$2 != "ok" {print $1}' | sort > "$T/ours_failed"
results "$T/plain/pg_regress.log" | awk '$2 == "ok" {print $1}' | sort > "$T/plain_ok"
comm -12 "$T/ours_failed" "$T/plain_ok" > "$T/regressions.all"
# Three tests list catalog entries of every object in the database (every
# SECURITY DEFINER function, every type without an array type, every event
# trigger), so the extension's own objects show up in them. They count as
# passed when the only difference is rows added for our objects (type_sanity,
# opr_sanity: objects created after initdb, oid >= 16384; event_trigger: our
# two event triggers, hyperline_ddl_end and hyperline_sql_drop) and the
# reformatting of the table around them.
only_our_rows() {
  perl -e '
    my ($file, $test) = @ARGV; my (%minus, %plus, $in);
    open(my $f, "<", $file) or exit 1;
    while (<$f>) {
      if (/^diff /) { $in = m{/\Q$test\E\.out\s*$}; next; }
      next unless $in && /^([-+])(?![-+]{2} )(.*)$/;
      my ($sign, $line) = ($1, $2); $line =~ s/\s+/ /g; $line =~ s/^ | $//g;
      ($sign eq "-" ? $minus{$line} : $plus{$line}) = 1;
    }
    for (keys %minus) { exit 1 unless $plus{$_} || /^\(\d+ rows?\)$/ || /^oid \|/ || /^[-+]+$/; }
    for (keys %plus) {
      next if $minus{$_} || /^\(\d+ rows?\)$/ || /^oid \|/ || /^[-+]+$/;
      next if $test eq "event_trigger" && /^hyperline_(ddl_end|sql_drop) \|/;
      exit 1 unless /^(\d+) \|/ && $1 >= 16384;
    }
    exit 0;' "$T/hyperline/out/regression.diffs" "$1"
}
: > "$T/regressions"
while read -r t; do
  if case $t in type_sanity|opr_sanity|event_trigger) true ;; *) false ;; esac \
     && only_our_rows "$t"; then
    say "$t: differs only by rows for the extension's own objects"
  else
    echo "$t" >> "$T/regressions"
  fi
done < "$T/regressions.all"
if [ $status -eq 124 ] || [ $broken -ne 0 ] || [ -s "$T/regressions" ] || ! [ -s "$T/plain_ok" ]; then
  echo "--- tests that fail with pg_hyperline and pass without it ---"
  cat "$T/regressions"
  echo "--- regression.diffs (with pg_hyperline) ---"
  head -n 400 "$T/hyperline/out/regression.diffs" 2>/dev/null || true
  echo "--- server log (tail) ---"
  tail -n 60 "$T/hyperline/log"
  echo "kept in $T"
  exit 1
fi
say "passed: the other failures ($(comm -23 "$T/ours_failed" "$T/regressions.all" | tr '\n' ' ')) fail on a plain cluster of this server too"
rm -rf "$T"
