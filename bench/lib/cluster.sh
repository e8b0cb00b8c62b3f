# bench/lib/cluster.sh: the throwaway cluster of the side-by-side benchmarks
# (bench/ab_write_path.sh, bench/filter_cost.sh); sourced, run as root.
#
# Settings shared by both: the library preloaded, delivery off (no worker
# sends), fsync off (commits write WAL but wait for no disk), a socket in the
# work directory only.

# start_bench_cluster BIN DATADIR PORT SOCKETDIR LOG: initdb DATADIR with the
# PostgreSQL in BIN, the settings above, and start it.
start_bench_cluster() {
  local bin=$1 data=$2 port=$3 sockets=$4 log=$5
  runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$sockets'
shared_preload_libraries = 'pg_hyperline'
hyperline.enabled = off
shared_buffers = 256MB
max_wal_size = 8GB
fsync = off
CONF
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$log" -w start >/dev/null
}

# stop_bench_cluster BIN DATADIR: stops it if it runs (immediate: nothing to keep).
stop_bench_cluster() {
  local bin=$1 data=$2
  if [[ -f "$data/postmaster.pid" ]]; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
  fi
}
