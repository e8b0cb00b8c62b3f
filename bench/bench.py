#!/usr/bin/env python3
"""bench.py: the seven pg_hyperline measurements, against the cluster and the mock
that bench/run.sh started (it passes them in BENCH_* variables).

1. bulk    write path, INSERT ... SELECT of 200,000 rows: no model / model /
           PL/pgSQL trigger / floor (plain insert + one set-wise outbox insert)
2. oltp    pgbench, one event row per transaction, 8 clients: TPS with and without a model
3. drain   pending events delivered to hyperline-mock, per destination batch_size
4. latency a paced loader at 200 events/s: COMMIT -> receipt at the mock
5. memory  the worker's RSS during the drain; the inserting backend's across a big insert
6. upkeep  outbox on-disk size over 10 fill/drain cycles with delivered-row purging
7. query   query models: a run over 100,000 and 1,000,000 rows (1 % changed, none
           changed) against CREATE TEMP TABLE AS of the same query, the running
           backend's memory, and the due-to-start delay of 200 scheduled models
+ profile  perf profiles (untimed) of the trigger and the worker, when perf works

Variants compared by a ratio are measured in the same run, alternating, and the
median of a few repetitions is kept (the machine is shared and noisy).
Writes BENCH_OUT/results.json; bench/report.py turns it into the table and docs.
"""

import glob
import http.client
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import pgwire  # noqa: E402

ENV = os.environ
ROOT = ENV.get("BENCH_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = ENV.get("BENCH_OUT", os.path.join(ROOT, "bench", "out"))
PGHOST = ENV["BENCH_PGHOST"]
PGPORT = int(ENV["BENCH_PGPORT"])
DB = ENV.get("BENCH_DB", "bench")
PGBIN = ENV.get("BENCH_PGBIN", "/usr/lib/postgresql/15/bin")
MOCK_URL = ENV["BENCH_MOCK_URL"]
MOCK_PID = int(ENV.get("BENCH_MOCK_PID", "0") or 0)
API_KEY = ENV["BENCH_API_KEY"]
QUICK = ENV.get("QUICK", "0") == "1"
ONLY = [s for s in ENV.get("ONLY", "").split(",") if s]


def knob(name, full, quick):
    """A size of the run: BENCH_<NAME> if set, else the full or QUICK default."""
    raw = ENV.get("BENCH_" + name.upper())
    if raw is not None:
        return type(full)(raw)
    return quick if QUICK else full


BULK_N = knob("bulk_n", 200_000, 4_000)
BULK_REPS = knob("bulk_reps", 5, 3)
OLTP_CLIENTS = knob("oltp_clients", 8, 8)
OLTP_SECONDS = knob("oltp_seconds", 30, 5)
OLTP_REPS = knob("oltp_reps", 5, 2)
OLTP_TPCB_SCALE = knob("oltp_tpcb_scale", 10, 1)
OLTP_LOOP_TXNS = knob("oltp_loop_txns", 50000, 5000)
MEM_N = knob("mem_n", 1_000_000, 20_000)            # the big insert, also the main drain's backlog
# batch_size:events drained; the 1000 run is filled through the model (the memory measurement).
DRAIN_SIZES = knob("drain_sizes", "1:200000,10:100000,100:300000,1000:1000000,5000:300000",
                   "1:2000,10:5000,100:20000,1000:20000,5000:20000")
LAT_RATE = knob("lat_rate", 200, 200)
LAT_SECONDS = knob("lat_seconds", 20, 5)
UPKEEP_CYCLES = knob("upkeep_cycles", 10, 5)
UPKEEP_N = knob("upkeep_n", 1_000_000, 5_000)
QM_SIZES = knob("qm_sizes", "100000,1000000", "2000,20000")  # query model result sizes
QM_REPS = knob("qm_reps", 3, 2)
QM_MODELS = knob("qm_models", 200, 200)  # scheduled at one instant, for the start delay
PROFILE = ENV.get("BENCH_PROFILE", "1") != "0"
TEMPLATE_FALLBACK = """{
  "customer_id": "{{ row.customer_id }}",
  "event_type": "{{ row.event_type }}",
  "timestamp": "{{ row.created_at }}",
  "record": {
    "id": "{{ row.id }}",
    "durationInMs": {{ row.duration_ms }},
    "isVerified": {{ row.is_verified }}
  }
}"""


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def connect():
    return pgwire.Connection(DB, host=PGHOST, port=PGPORT)


def q(s):
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def read_sql(name, **params):
    """bench/sql/<name> with :params substituted (comment lines dropped)."""
    with open(os.path.join(ROOT, "bench", "sql", name)) as f:
        text = "\n".join(line for line in f.read().splitlines() if not line.startswith("--"))
    for k, v in params.items():
        text = text.replace(":" + k, str(v))
    return text.strip().rstrip(";")


def rows_sql(n):
    return read_sql("rows.sql", n=n)


class Mock:
    """hyperline-mock's control endpoints, over one keep-alive connection."""

    def __init__(self, url):
        hostport = url.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.conn = None

    def _request(self, method, path):
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request(method, path, body=b"" if method == "POST" else None)
                res = self.conn.getresponse()
                body = res.read()
                if res.status != 200:
                    raise RuntimeError("mock %s %s: %d %s" % (method, path, res.status, body[:200]))
                return json.loads(body)
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise

    def stats(self):
        return self._request("GET", "/_mock/stats")

    def reset(self):
        return self._request("POST", "/_mock/reset")

    def log(self, record_id):
        return self._request("GET", "/_mock/log?record_id=" + record_id)


MOCK = Mock(MOCK_URL)


# --- process memory ------------------------------------------------------------
MEM_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def proc_mem(pid):
    """The memory lines of /proc/<pid>/status, in kB (None once the process is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in MEM_FIELDS:
            out[key] = int(rest.split()[0])
    return out


class Sampler(threading.Thread):
    """Samples a process's memory (and optionally a callback) every `period` seconds."""

    def __init__(self, pid, period=0.1, extra=None):
        super().__init__(daemon=True)
        self.pid, self.period, self.extra = pid, period, extra
        self.samples = []
        self.stop_event = threading.Event()
        self.t0 = time.time()

    def run(self):
        while not self.stop_event.is_set():
            m = proc_mem(self.pid)
            if m is not None:
                m["t"] = round(time.time() - self.t0, 3)
                if self.extra:
                    try:
                        m.update(self.extra())
                    except Exception:  # a missed sample is not worth failing the run
                        pass
                self.samples.append(m)
            self.stop_event.wait(self.period)

    def stop(self):
        self.stop_event.set()
        self.join()
        return self.samples


def smaps_top(pid, limit=6):
    """The mappings holding most of a process's RSS: [(MB, name)] (shared memory excluded)."""
    rss, name = {}, None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    parts = line.split()
                    name = parts[5] if len(parts) > 5 else "[anon]"
                elif line.startswith("Rss:"):
                    rss[name] = rss.get(name, 0) + int(line.split()[1])
    except OSError:
        return []
    rss.pop("/dev/zero", None)  # the shared buffer pool
    return [[round(v / 1024.0, 1), k] for k, v in sorted(rss.items(), key=lambda kv: -kv[1])[:limit]]


def summarize_mem(samples, before=None, after=None):
    """Peaks and the shape over time of a list of /proc samples (MB)."""
    if not samples:
        return {"samples": 0}
    mb = lambda kb: round(kb / 1024.0, 1)  # noqa: E731
    out = {"samples": len(samples)}
    for k in MEM_FIELDS:
        vals = [s[k] for s in samples if k in s]
        if vals:
            out["peak_" + k] = mb(max(vals))
    private = [s.get("RssAnon", 0) + s.get("RssFile", 0) for s in samples]
    out["peak_private"] = mb(max(private))  # VmRSS minus shared-buffer pages
    anon = [s.get("RssAnon", 0) for s in samples]
    n = len(anon)
    out["anon_at"] = {"10%": mb(anon[n // 10]), "50%": mb(anon[n // 2]), "100%": mb(anon[-1])}
    if before:
        out["anon_before"] = mb(before.get("RssAnon", 0))
    if after:
        out["anon_after"] = mb(after.get("RssAnon", 0))
    out["timeline"] = [[s["t"], mb(s.get("RssAnon", 0)), mb(s.get("VmRSS", 0))] + (
        [s["received"]] if "received" in s else []) for s in samples[:: max(1, n // 60)]]
    return out


# --- cluster helpers -----------------------------------------------------------
def set_worker(c, enabled):
    c.command("ALTER SYSTEM SET hyperline.enabled = %s" % ("on" if enabled else "off"))
    c.query("SELECT pg_reload_conf()")


def set_guc(c, name, value):
    if value is None:
        c.command("ALTER SYSTEM RESET %s" % name)
    else:
        c.command("ALTER SYSTEM SET %s = %s" % (name, q(str(value))))
    c.query("SELECT pg_reload_conf()")


def worker_pid(c, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid = c.value("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' "
                      "ORDER BY backend_start DESC LIMIT 1")
        if pid:
            return int(pid)
        time.sleep(0.2)
    raise RuntimeError("no hyperline worker in pg_stat_activity after %ds" % timeout)


def quiesce(c, tables):
    """VACUUM ANALYZE the tables then CHECKPOINT: every timed run starts alike."""
    for t in tables:
        c.command("VACUUM ANALYZE %s" % t)
    c.command("CHECKPOINT")


def outbox_ddl(name):
    """hyperline.outbox's DDL (table, indexes, storage options) from the extension
    script, renamed to `name`: the hand-written variants write to the same shape."""
    control = open(os.path.join(ROOT, "pg_hyperline.control")).read()
    version = re.search(r"default_version\s*=\s*'([^']+)'", control).group(1)
    sql = open(os.path.join(ROOT, "sql", "pg_hyperline--%s.sql" % version)).read()
    short = name.split(".")[-1]
    table = re.search(r"CREATE TABLE hyperline\.outbox \((.*?)\n\);", sql, re.S).group(1)
    stmts = ["CREATE TABLE %s (%s\n)" % (name, table)]
    for m in re.finditer(r"CREATE (UNIQUE )?INDEX (\w+) ON hyperline\.outbox\b([^;]*);", sql):
        stmts.append("CREATE %sINDEX %s_%s ON %s%s" % (m.group(1) or "", short, m.group(2), name,
                                                    m.group(3)))
    for m in re.finditer(r"ALTER TABLE hyperline\.outbox\b([^;]*);", sql):
        stmts.append("ALTER TABLE %s%s" % (name, m.group(1)))
    return stmts


def payload_template():
    path = os.path.join(ROOT, "examples", "hightouch_payload.json")
    if os.path.exists(path):
        with open(path) as f:
            return f.read(), "examples/hightouch_payload.json"
    return TEMPLATE_FALLBACK, "built-in copy of the Hightouch example"


def ensure_outbox_table(c, name):
    """Creates the outbox-shaped table `name` (see outbox_ddl) unless it exists."""
    if c.value("SELECT to_regclass(%s) IS NULL" % q(name)) == "t":
        for stmt in outbox_ddl(name):
            c.command(stmt)


def ensure_usage_c_trigger(c):
    """The PL/pgSQL trigger of variant (c), unless it exists."""
    if c.value("SELECT count(*) FROM pg_trigger WHERE tgname = 'usage_c_event'") == "0":
        c.command("CREATE TRIGGER usage_c_event AFTER INSERT OR UPDATE ON bench.usage_c "
                  "FOR EACH ROW EXECUTE FUNCTION bench.usage_c_event()")


def create_model_if_missing(c, name, table):
    if c.value("SELECT count(*) FROM hyperline.models WHERE name = %s" % q(name)) == "0":
        create_model(c, name, table)


def create_model(c, name, table):
    c.query("SELECT hyperline.create_model(%s, %s, 'id', %s)" % (q(name), q(table), q(TEMPLATE)))


def fill_direct(c, n, model="drain"):
    """n pending events straight into hyperline.outbox (what the trigger would write)."""
    c.command("INSERT INTO hyperline.outbox (model, event_key, operation, payload, destination) "
              "SELECT %s, 'evt_' || g, 'insert', jsonb_build_object('customer_id', 'cus_' || (g %% 1000), "
              "'event_type', 'api_call', 'timestamp', 1734652800000 + g * 1000, "
              "'record', jsonb_build_object('id', 'evt_' || g, 'durationInMs', g %% 5000, "
              "'isVerified', g %% 3 = 0)), 'hyperline' FROM generate_series(1, %d) g" % (q(model), n))


def undelivered(c):
    return c.value("SELECT EXISTS (SELECT 1 FROM hyperline.outbox WHERE status IN ('pending', 'sending'))") == "t"


def wait_drained(c, n, t0, timeout_idle=60):
    """Waits until the mock holds n unique events and no outbox row is pending or
    sending; gives up after timeout_idle seconds without progress."""
    last, last_change = -1, time.time()
    while True:
        got = MOCK.stats()["events_unique"]
        if got >= n:
            break
        if got != last:
            last, last_change = got, time.time()
        elif time.time() - last_change > timeout_idle:
            return False, got
        time.sleep(0.1)
    while undelivered(c):
        if time.time() - t0 > 3600:
            return False, n
        time.sleep(0.02)
    return True, n


# --- 1. bulk write path ----------------------------------------------------------
def bench_bulk(c):
    n = BULK_N
    log("bulk: setup (%d rows per variant, %d repetitions)" % (n, BULK_REPS))
    for suffix in ("c", "d"):
        ensure_outbox_table(c, "bench.outbox_" + suffix)
    ensure_usage_c_trigger(c)
    create_model(c, "usage_b", "bench.usage_b")
    rows = rows_sql(n)
    sql = {
        "a": "INSERT INTO bench.usage_a " + rows,
        "b": "INSERT INTO bench.usage_b " + rows,
        "c": "INSERT INTO bench.usage_c " + rows,
        "d": "BEGIN; INSERT INTO bench.usage_d " + rows + "; "
             "INSERT INTO bench.outbox_d (model, event_key, operation, payload, destination) "
             "SELECT model, event_key, operation, payload, destination FROM bench.pre_payloads; COMMIT",
    }
    tables = {"a": ["bench.usage_a"], "b": ["bench.usage_b", "hyperline.outbox"],
              "c": ["bench.usage_c", "bench.outbox_c"], "d": ["bench.usage_d", "bench.outbox_d"]}

    # Warm-up (untimed): fills every cache, and proves (b) and (c) write the same payloads.
    for v in "abc":
        c.command("TRUNCATE " + ", ".join(tables[v]))
        c.command(sql[v])
    c.command("INSERT INTO bench.pre_payloads SELECT 'usage_d', event_key, operation, payload, "
              "destination FROM bench.outbox_c ORDER BY id")
    same = c.value("SELECT count(*) FROM hyperline.outbox o JOIN bench.outbox_c p USING (event_key) "
                   "WHERE o.payload = p.payload")
    sample = c.value("SELECT payload FROM hyperline.outbox ORDER BY id LIMIT 1")
    sample_c = c.value("SELECT payload FROM bench.outbox_c ORDER BY id LIMIT 1")
    c.command(sql["d"])

    samples = {v: [] for v in "abcd"}
    for rep in range(BULK_REPS):
        order = "abcd"[rep % 4:] + "abcd"[:rep % 4]
        for v in order:
            c.command("TRUNCATE " + ", ".join(tables[v]))
            quiesce(c, tables[v])
            t = time.perf_counter()
            c.command(sql[v])
            dt = time.perf_counter() - t
            samples[v].append(round(dt, 4))
            log("bulk: rep %d %s %.3f s" % (rep + 1, v, dt))
    for v in "abcd":
        c.command("TRUNCATE " + ", ".join(tables[v]))
    med = {v: statistics.median(samples[v]) for v in "abcd"}
    return {
        "rows": n,
        "reps": BULK_REPS,
        "template_source": TEMPLATE_SOURCE,
        "payloads_identical": int(same) == n,
        "payload_sample": {"model": sample, "plpgsql": sample_c},
        "variants": {v: {"samples_s": samples[v], "median_s": round(med[v], 4),
                         "us_per_row": round(med[v] / n * 1e6, 3),
                         "rows_per_s": round(n / med[v])} for v in "abcd"},
        "ratios": {"b_over_d": round(med["b"] / med["d"], 3),
                   "c_over_b": round(med["c"] / med["b"], 3),
                   "b_over_a": round(med["b"] / med["a"], 3),
                   "d_over_a": round(med["d"] / med["a"], 3)},
    }


# --- 2. OLTP -------------------------------------------------------------------------
def pgbench(script, seconds, clients):
    """TPS and average latency of a pgbench run: `script` is a file in bench/sql,
    or "builtin:NAME" for one of pgbench's own scripts (e.g. builtin:tpcb-like)."""
    source = (["-b", script.split(":", 1)[1]] if script.startswith("builtin:")
              else ["-f", os.path.join(ROOT, "bench", "sql", script)])
    cmd = [os.path.join(PGBIN, "pgbench"), "-n", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 2)),
           "-T", str(seconds)] + source + ["-h", PGHOST, "-p", str(PGPORT), "-U", "postgres", DB]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("pgbench failed: %s" % res.stderr[-2000:])
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", res.stdout)
    lat = re.search(r"latency average = ([0-9.]+) ms", res.stdout)
    return float(m.group(1)), float(lat.group(1)) if lat else None


def wal_reset(c):
    c.query("SELECT pg_stat_reset_shared('wal')")


def wal_stats(c, tps, seconds):
    """What the run wrote to WAL and how long its flushes took (pg_stat_wal;
    track_wal_io_timing is on in the bench cluster): with synchronous_commit on,
    a one-row transaction waits for its WAL flush, so these explain the TPS."""
    r = c.query("SELECT wal_bytes, wal_records, wal_sync, wal_sync_time FROM pg_stat_wal")[0]
    wal_bytes, records, syncs, sync_ms = float(r[0]), float(r[1]), float(r[2]), float(r[3])
    txns = tps * seconds
    return {"bytes_per_txn": round(wal_bytes / txns), "records_per_txn": round(records / txns, 2),
            "fsyncs_per_s": round(syncs / seconds), "txns_per_fsync": round(txns / syncs, 2) if syncs else None,
            "fsync_us": round(1000 * sync_ms / syncs) if syncs else None}


def wal_medians(runs):
    return {k: statistics.median(x[k] for x in runs) for k in runs[0]} if runs else {}


def bench_oltp_backend(c):
    """The inserting backend's own time per one-INSERT transaction, with and
    without a model: a procedure commits OLTP_LOOP_TXNS transactions one by one
    (no client round trip), the INSERT planned once, or parsed and planned each
    time as pgbench's simple protocol does. Every commit writes its WAL
    (synchronous_commit on) but nothing waits for the disk: fsync is off for
    this step only. Why not synchronous_commit off: each asynchronous commit
    may signal the WAL writer, and on this VM that signal costs more than the
    whole transaction, more often the more WAL a transaction writes."""
    log("oltp: backend time per transaction, %d transactions per run" % OLTP_LOOP_TXNS)
    create_model_if_missing(c, "oltp", "bench.oltp_model")
    tables = ["bench.oltp_plain", "bench.oltp_model", "hyperline.outbox"]
    out = {"txns": OLTP_LOOP_TXNS}
    c.command("ALTER SYSTEM SET fsync = off")
    c.query("SELECT pg_reload_conf()")
    try:
        for _ in range(50):
            if c.value("SHOW fsync") == "off":
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("fsync = off was not picked up")
        for mode, cached in (("cached_plan", True), ("parsed_each_time", False)):
            samples = {"plain": [], "model": []}
            for rep in range(OLTP_REPS):
                for v in (["plain", "model"] if rep % 2 == 0 else ["model", "plain"]):
                    c.command("TRUNCATE " + ", ".join(tables))
                    quiesce(c, tables)
                    t0 = time.monotonic()
                    c.command("CALL bench.oltp_loop('bench.oltp_%s', %d, %s)" % (v, OLTP_LOOP_TXNS, cached))
                    elapsed = time.monotonic() - t0
                    samples[v].append(round(1e6 * elapsed / OLTP_LOOP_TXNS, 2))
            med = {v: statistics.median(samples[v]) for v in samples}
            out[mode] = {"plain_us": med["plain"], "model_us": med["model"],
                         "model_extra_us": round(med["model"] - med["plain"], 2), "samples_us": samples}
            log("oltp: backend, %s: %.2f us without a model, %.2f us with" % (mode, med["plain"], med["model"]))
    finally:
        c.command("ALTER SYSTEM RESET fsync")
        c.query("SELECT pg_reload_conf()")
        time.sleep(0.5)
        c.command("CHECKPOINT")
    c.command("TRUNCATE " + ", ".join(tables))
    return out


def bench_oltp(c):
    log("oltp: %d clients, %d s per run, %d repetitions" % (OLTP_CLIENTS, OLTP_SECONDS, OLTP_REPS))
    create_model_if_missing(c, "oltp", "bench.oltp_model")
    ensure_outbox_table(c, "bench.outbox_d")
    tables = ["bench.oltp_plain", "bench.oltp_model", "bench.oltp_floor", "bench.outbox_d", "hyperline.outbox"]
    variants = ["plain", "model", "floor"]
    samples = {v: [] for v in variants}
    lat = {v: [] for v in variants}
    wal = {v: [] for v in variants}
    events = 0
    for rep in range(OLTP_REPS):
        order = variants[rep % 3:] + variants[:rep % 3]
        for v in order:
            c.command("TRUNCATE " + ", ".join(tables))
            quiesce(c, tables)
            wal_reset(c)
            tps, l = pgbench("oltp_%s.sql" % v, OLTP_SECONDS, OLTP_CLIENTS)
            wal[v].append(wal_stats(c, tps, OLTP_SECONDS))
            samples[v].append(round(tps, 1))
            lat[v].append(l)
            if v == "model":
                events = int(c.value("SELECT count(*) FROM hyperline.outbox WHERE model = 'oltp'"))
            log("oltp: rep %d %s %.0f tps" % (rep + 1, v, tps))
    c.command("TRUNCATE " + ", ".join(tables))
    med = {v: statistics.median(samples[v]) for v in variants}
    out = {"clients": OLTP_CLIENTS, "seconds": OLTP_SECONDS, "reps": OLTP_REPS,
           "ratio": round(med["model"] / med["plain"], 3),
           "floor_ratio": round(med["floor"] / med["plain"], 3),
           "model_over_floor": round(med["model"] / med["floor"], 3)}
    for v in variants:
        out[v] = {"samples_tps": samples[v], "median_tps": round(med[v], 1), "latency_ms": lat[v],
                  "wal": wal_medians(wal[v])}
    out["model"]["events_last_run"] = events
    out["tpcb"] = bench_oltp_tpcb(c)
    out["backend"] = bench_oltp_backend(c)
    return out


# pgbench's standard transaction (tpcb-like: three UPDATEs, a SELECT and one INSERT
# into pgbench_history) with a model on pgbench_history: one event per transaction.
TPCB_TEMPLATE = """{
  "customer_id": "acct_{{ row.aid }}",
  "event_type": "transfer",
  "timestamp": "{{ row.mtime }}",
  "record": {"id": "{{ row.id }}", "amount": {{ row.delta }}, "teller": {{ row.tid }}, "branch": {{ row.bid }}}
}"""


def bench_oltp_tpcb(c):
    log("oltp: pgbench tpcb-like, scale %d, model on pgbench_history" % OLTP_TPCB_SCALE)
    cmd = [os.path.join(PGBIN, "pgbench"), "-i", "-q", "-s", str(OLTP_TPCB_SCALE),
           "-h", PGHOST, "-p", str(PGPORT), "-U", "postgres", DB]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("pgbench -i failed: %s" % res.stderr[-2000:])
    # A key for the events; both variants have it, so only the model differs.
    c.command("ALTER TABLE public.pgbench_history ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    c.command("VACUUM ANALYZE")
    samples = {"plain": [], "model": []}
    wal = {"plain": [], "model": []}
    for rep in range(OLTP_REPS):
        for v in (["plain", "model"] if rep % 2 == 0 else ["model", "plain"]):
            has_model = c.value("SELECT count(*) FROM hyperline.models WHERE name = 'tpcb'") == "1"
            if v == "model" and not has_model:
                c.query("SELECT hyperline.create_model('tpcb', 'public.pgbench_history', 'id', %s, "
                        "triggers => '{insert}')" % q(TPCB_TEMPLATE))
            elif v == "plain" and has_model:
                c.query("SELECT hyperline.drop_model('tpcb')")
            c.command("TRUNCATE public.pgbench_history, hyperline.outbox")
            quiesce(c, ["public.pgbench_history", "hyperline.outbox"])
            wal_reset(c)
            tps, _ = pgbench("builtin:tpcb-like", OLTP_SECONDS, OLTP_CLIENTS)
            wal[v].append(wal_stats(c, tps, OLTP_SECONDS))
            samples[v].append(round(tps, 1))
            if v == "model":
                events = int(c.value("SELECT count(*) FROM hyperline.outbox WHERE model = 'tpcb'"))
                rows = int(c.value("SELECT count(*) FROM public.pgbench_history"))
                if events != rows:
                    raise RuntimeError("tpcb: %d history rows but %d events" % (rows, events))
            log("oltp: tpcb-like rep %d %s %.0f tps" % (rep + 1, v, tps))
    if c.value("SELECT count(*) FROM hyperline.models WHERE name = 'tpcb'") == "1":
        c.query("SELECT hyperline.drop_model('tpcb')")
    c.command("DROP TABLE public.pgbench_accounts, public.pgbench_branches, public.pgbench_tellers, "
              "public.pgbench_history")
    c.command("TRUNCATE hyperline.outbox")
    med = {v: statistics.median(samples[v]) for v in samples}
    return {"scale": OLTP_TPCB_SCALE, "ratio": round(med["model"] / med["plain"], 3),
            "plain": {"samples_tps": samples["plain"], "median_tps": round(med["plain"], 1),
                      "wal": wal_medians(wal["plain"])},
            "model": {"samples_tps": samples["model"], "median_tps": round(med["model"], 1),
                      "wal": wal_medians(wal["model"])}}


# --- 3 + 5. drain and memory -------------------------------------------------------
def fill_through_model(c, n):
    """Inserts n rows into the model's table, sampling this backend's memory."""
    before = proc_mem(c.pid)
    s = Sampler(c.pid, period=0.05)
    s.start()
    t = time.perf_counter()
    c.command("INSERT INTO bench.usage_drain " + rows_sql(n))
    dt = time.perf_counter() - t
    samples = s.stop()
    after = proc_mem(c.pid)
    return dt, summarize_mem(samples, before, after)


def insert_with_memory(c, table, n):
    before = proc_mem(c.pid)
    s = Sampler(c.pid, period=0.05)
    s.start()
    t = time.perf_counter()
    c.command("INSERT INTO %s %s" % (table, rows_sql(n)))
    dt = time.perf_counter() - t
    samples = s.stop()
    after = proc_mem(c.pid)
    out = summarize_mem(samples, before, after)
    out["seconds"] = round(dt, 3)
    return out


def drain_once(c, batch, n, through_model=False, profile_to=None, callgraph=False):
    """Fills n pending events with the worker off, then times their delivery."""
    set_worker(c, False)
    time.sleep(0.3)
    c.command("TRUNCATE hyperline.outbox, bench.usage_drain")
    result = {"batch_size": batch, "events": n}
    if through_model:
        dt, mem = fill_through_model(c, n)
        result["fill_seconds"] = round(dt, 3)
        result["backend_memory"] = mem
    else:
        fill_direct(c, n)
    c.query("SELECT hyperline.alter_destination('hyperline', batch_size => %d)" % batch)
    quiesce(c, ["hyperline.outbox"])
    result["backlog_bytes"] = int(c.value("SELECT pg_total_relation_size('hyperline.outbox')"))
    MOCK.reset()
    wpid = worker_pid(c)
    side = Mock(MOCK_URL)  # the sampler's own connections (neither client is thread-safe)
    side_db = connect()

    def extra():
        act = side_db.query("SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), query "
                            "FROM pg_stat_activity WHERE pid = %d" % wpid)
        return {"received": side.stats()["events_received"],
                "activity": "%s (%s)" % (act[0][1], act[0][0]) if act else "?"}
    sampler = Sampler(wpid, period=0.05, extra=extra)
    perf = None
    if profile_to:
        perf = perf_record([wpid] if callgraph else [wpid, MOCK_PID], profile_to, callgraph)
    sampler.start()
    t0 = time.time()
    set_worker(c, True)
    ok, got = wait_drained(c, n, t0)
    t1 = time.time()
    samples = sampler.stop()
    side_db.close()
    result["worker_smaps_top"] = smaps_top(wpid)
    result["backend_rss_file_mb"] = round((proc_mem(c.pid) or {}).get("RssFile", 0) / 1024.0, 1)
    acts = {}
    for smp in samples:
        if "activity" in smp:
            acts[smp["activity"]] = acts.get(smp["activity"], 0) + 1
    total = sum(acts.values()) or 1
    result["worker_activity"] = dict(sorted(((k, round(100.0 * v / total, 1)) for k, v in acts.items()),
                                            key=lambda kv: -kv[1]))
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    stats = MOCK.stats()
    statuses = dict((r[0], int(r[1])) for r in c.query(
        "SELECT status, count(*) FROM hyperline.outbox GROUP BY status"))
    first = MOCK.log("evt_1")
    result.update({
        "completed": ok,
        "seconds": round(t1 - t0, 3),
        "events_per_s": round((n if ok else got) / (t1 - t0)),
        "first_receipt_s": round(first[0]["received_at_ms"] / 1000.0 - t0, 3) if first else None,
        "mock": {k: stats.get(k) for k in ("requests", "events_received", "events_unique", "duplicates",
                                           "events_failed")},
        "statuses": statuses,
        "worker_memory": summarize_mem(samples),
    })
    log("drain: batch_size %d: %d events in %.2f s = %d events/s (unique at mock %d)%s" % (
        batch, n, t1 - t0, result["events_per_s"], stats["events_unique"], "" if ok else " INCOMPLETE"))
    return result


def bench_drain(c):
    sizes = [tuple(int(x) for x in part.split(":")) for part in DRAIN_SIZES.split(",")]
    log("drain: batch sizes %s" % sizes)
    create_model(c, "drain", "bench.usage_drain")
    out = {"runs": []}
    # The memory measurement: a big insert without and with a model, then its drain.
    c.command("TRUNCATE bench.usage_a")
    out["backend_plain"] = insert_with_memory(c, "bench.usage_a", MEM_N)
    c.command("TRUNCATE bench.usage_a")
    log("memory: %d-row insert without a model: backend RssAnon %.1f -> peak %.1f MB" % (
        MEM_N, out["backend_plain"].get("anon_before", 0), out["backend_plain"].get("peak_RssAnon", 0)))
    main = next((s for s in sizes if s[0] == 1000), sizes[-1])
    r = drain_once(c, main[0], MEM_N, through_model=True)
    m = r["backend_memory"]
    log("memory: %d-row insert with a model: backend RssAnon %.1f -> peak %.1f MB; worker peak "
        "RssAnon %.1f MB, VmHWM %.1f MB" % (MEM_N, m.get("anon_before", 0), m.get("peak_RssAnon", 0),
                                          r["worker_memory"].get("peak_RssAnon", 0),
                                          r["worker_memory"].get("peak_VmHWM", 0)))
    out["main"] = r
    out["runs"].append({k: v for k, v in r.items() if k not in ("backend_memory", "worker_memory")})
    for batch, n in sizes:
        if (batch, n) == main and n == MEM_N:
            continue
        r = drain_once(c, batch, n)
        out["runs"].append({k: v for k, v in r.items() if k != "worker_memory"})
        out["runs"][-1]["worker_peak_private_mb"] = r["worker_memory"].get("peak_private")
    out["runs"].sort(key=lambda r: r["batch_size"])
    c.command("TRUNCATE hyperline.outbox, bench.usage_drain")
    return out


# --- 4. latency ------------------------------------------------------------------------
def bench_latency(c):
    n = LAT_RATE * LAT_SECONDS
    log("latency: %d events at %d/s, one row per transaction" % (n, LAT_RATE))
    create_model(c, "lat", "bench.usage_lat")
    c.query("SELECT hyperline.alter_destination('hyperline', batch_size => 500)")
    set_worker(c, True)
    c.command("TRUNCATE hyperline.outbox, bench.usage_lat")
    quiesce(c, ["hyperline.outbox", "bench.usage_lat"])
    MOCK.reset()
    worker_pid(c)
    time.sleep(1.0)
    # Two loader sessions take turns (even/odd events) so that one slow fsync does
    # not hold back the next event: the offered rate stays a steady LAT_RATE.
    period = 1.0 / LAT_RATE
    commit_ms, stmt_ms = {}, []
    start = time.time() + 0.2
    behind = [0]

    def load(parity):
        loader = connect()
        for i in range(parity, n, 2):
            due = start + i * period
            now = time.time()
            if due > now:
                time.sleep(due - now)
            elif now - due > 2 * period:
                behind[0] += 1
            t = time.time()
            loader.command("INSERT INTO bench.usage_lat VALUES ('lat_%d', 'cus_%d', 'api_call', now(), %d, true)"
                           % (i, i % 100, i))
            done = time.time()
            commit_ms["lat_%d" % i] = done * 1000.0
            stmt_ms.append((done - t) * 1000.0)
        loader.close()
    threads = [threading.Thread(target=load, args=(p,)) for p in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.time() - start
    behind = behind[0]
    ok, _ = wait_drained(c, n, time.time(), timeout_idle=30)
    created = dict((r[0], float(r[1])) for r in c.query(
        "SELECT event_key, extract(epoch FROM created_at) * 1000 FROM hyperline.outbox WHERE model = 'lat'"))
    lat, lat_created, missing = [], [], 0
    for key, cm in commit_ms.items():
        entries = MOCK.log(key)
        if not entries:
            missing += 1
            continue
        received = min(e["received_at_ms"] for e in entries)
        lat.append(received - cm)
        if key in created:
            lat_created.append(received - created[key])
    c.command("TRUNCATE hyperline.outbox, bench.usage_lat")

    def pct(vals, p):
        vals = sorted(vals)
        return round(vals[min(len(vals) - 1, int(round(p / 100.0 * (len(vals) - 1))))], 2) if vals else None

    res = {
        "rate": LAT_RATE, "events": n, "achieved_rate": round(n / elapsed, 1), "late_sends": behind,
        "missing": missing, "completed": ok,
        "commit_to_receipt_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99),
                                 "max": pct(lat, 100), "min": pct(lat, 0)},
        "txn_start_to_receipt_ms": {"p50": pct(lat_created, 50), "p99": pct(lat_created, 99)},
        "insert_commit_ms": {"p50": pct(stmt_ms, 50), "p99": pct(stmt_ms, 99)},
    }
    log("latency: commit -> receipt p50 %s ms, p99 %s ms, max %s ms (%d missing)" % (
        res["commit_to_receipt_ms"]["p50"], res["commit_to_receipt_ms"]["p99"],
        res["commit_to_receipt_ms"]["max"], missing))
    return res


# --- 6. outbox upkeep ----------------------------------------------------------------
def bench_upkeep(c):
    log("upkeep: %d cycles of %d events, delivered_retention = 1s" % (UPKEEP_CYCLES, UPKEEP_N))
    set_guc(c, "hyperline.delivered_retention", "1s")
    tuned = ENV.get("BENCH_UPKEEP_TUNED") == "1"
    if tuned:  # experiment: let autovacuum keep up (unthrottled on the outbox, woken every 10 s)
        c.command("ALTER TABLE hyperline.outbox SET (autovacuum_vacuum_cost_delay = 0)")
        set_guc(c, "autovacuum_naptime", "10s")
    c.query("SELECT hyperline.alter_destination('hyperline', batch_size => 1000)")
    set_worker(c, False)
    time.sleep(0.3)
    c.command("TRUNCATE hyperline.outbox")
    quiesce(c, ["hyperline.outbox"])
    size_sql = "SELECT pg_total_relation_size('hyperline.outbox')"
    watcher = connect()
    sizes = []
    lock = threading.Lock()
    stop = threading.Event()

    def watch():
        t0 = time.time()
        while not stop.is_set():
            with lock:
                v = int(watcher.value(size_sql))
            sizes.append((round(time.time() - t0, 1), v))
            stop.wait(0.5)
    th = threading.Thread(target=watch, daemon=True)
    th.start()
    cycles = []
    baseline = None
    for i in range(UPKEEP_CYCLES):
        set_worker(c, False)
        time.sleep(0.3)
        t = time.time()
        fill_direct(c, UPKEEP_N, model="upkeep")
        after_fill = int(c.value(size_sql))
        if baseline is None:
            baseline = after_fill
        MOCK.reset()
        t0 = time.time()
        set_worker(c, True)
        ok, _ = wait_drained(c, UPKEEP_N, t0)
        drained = time.time()
        # Purging is part of the upkeep being measured: wait for it (bounded).
        while c.value("SELECT EXISTS (SELECT 1 FROM hyperline.outbox WHERE status = 'delivered')") == "t":
            if time.time() - drained > 60:
                break
            time.sleep(0.5)
        purged = time.time()
        row = {"cycle": i + 1, "fill_s": round(t0 - t, 2), "drain_s": round(drained - t0, 2),
               "purge_wait_s": round(purged - drained, 2), "completed": ok,
               "bytes_after_fill": after_fill, "bytes_after_purge": int(c.value(size_sql)),
               "dead_tuples": int(c.value("SELECT n_dead_tup FROM pg_stat_user_tables "
                                          "WHERE relid = 'hyperline.outbox'::regclass") or 0)}
        cycles.append(row)
        log("upkeep: cycle %d: %.1f MB after fill, %.1f MB after purge, drain %.1f s, purge %.1f s" % (
            i + 1, after_fill / 2**20, row["bytes_after_purge"] / 2**20, row["drain_s"], row["purge_wait_s"]))
    stop.set()
    th.join()
    watcher.close()
    set_guc(c, "hyperline.delivered_retention", None)
    peak = max(v for _, v in sizes) if sizes else max(r["bytes_after_fill"] for r in cycles)
    autovac = c.query("SELECT autovacuum_count, vacuum_count, n_dead_tup FROM pg_stat_user_tables "
                      "WHERE relid = 'hyperline.outbox'::regclass")[0]
    return {
        "cycles": UPKEEP_CYCLES, "events_per_cycle": UPKEEP_N, "tuned_autovacuum": tuned,
        "backlog_bytes": baseline, "peak_bytes": peak, "final_bytes": cycles[-1]["bytes_after_purge"],
        "peak_over_backlog": round(peak / baseline, 3) if baseline else None,
        "autovacuum_count": int(autovac[0]), "per_cycle": cycles,
        "size_timeline": sizes[:: max(1, len(sizes) // 120)],
    }


# --- 7. query models -------------------------------------------------------------
# Daily usage per customer (a pre-aggregated table of n rows): the model's query
# reads it whole, so the run is compared with the cheapest way to read the same
# result, CREATE TEMP TABLE x AS <the query>, measured in the same run.
QM_QUERY = "SELECT customer_id, day, units, plan FROM bench.qm_usage"
QM_TEMPLATE = """{
  "customer_id": "{{ row.customer_id }}",
  "event_type": "api_usage",
  "timestamp": "{{ row.day }}T00:00:00Z",
  "record": {"id": "{{ row.customer_id }}-{{ row.day }}", "units": {{ row.units }}, "plan": "{{ row.plan }}"}
}"""


def qm_timed(c, sql, pid):
    """Runs sql on c while sampling the backend's memory: (seconds, memory summary, rows)."""
    before = proc_mem(pid)
    sampler = Sampler(pid, period=0.02)
    sampler.start()
    t = time.time()
    rows = c.query(sql)
    elapsed = time.time() - t
    mem = summarize_mem(sampler.stop(), before=before)
    mem.pop("timeline", None)
    return elapsed, mem, rows


def qm_size(c, cr, n, pid):
    log("query: %d rows" % n)
    c.command("DROP TABLE IF EXISTS bench.qm_usage")
    c.command("CREATE TABLE bench.qm_usage (id bigint NOT NULL, customer_id text NOT NULL, day date NOT NULL, "
              "units bigint NOT NULL, plan text NOT NULL, PRIMARY KEY (customer_id, day))")
    c.command("INSERT INTO bench.qm_usage SELECT i, 'cus_' || (i %% 10000), date '2024-01-01' + (i / 10000), "
              "i %% 997, (ARRAY['free', 'team', 'pro'])[1 + i %% 3] FROM generate_series(0, %d) i" % (n - 1))
    if c.value("SELECT count(*) FROM hyperline.models WHERE name = 'qm_usage'") == "1":
        c.query("SELECT hyperline.drop_model('qm_usage')")
    c.query("SELECT hyperline.create_query_model('qm_usage', %s, 'customer_id, day', %s, schedule => NULL, "
            "triggers => '{insert,update,delete}', send_initial => false)" % (q(QM_QUERY), q(QM_TEMPLATE)))
    quiesce(c, ["bench.qm_usage"])
    run_sql = "SELECT added, updated, removed, unchanged FROM hyperline.run_model('qm_usage')"
    first_s, first_mem, rows = qm_timed(cr, run_sql, pid)
    if int(rows[0][0]) != n:
        raise RuntimeError("first run recorded %s keys, not %d" % (rows[0][0], n))
    quiesce(c, ["bench.qm_usage", "hyperline._query_state"])
    ctas, unchanged, ctas_changed, changed = [], [], [], []
    mem_unchanged, mem_changed = [], []
    for rep in range(QM_REPS):
        # CREATE TEMP TABLE AS and the unchanged run, on the same table, alternating.
        t = time.time()
        c.command("CREATE TEMP TABLE qm_ctas AS " + QM_QUERY)
        ctas.append(time.time() - t)
        c.command("DROP TABLE qm_ctas")
        s, mem, rows = qm_timed(cr, run_sql, pid)
        if [int(x) for x in rows[0]] != [0, 0, 0, n]:
            raise RuntimeError("unchanged run found %s" % (rows[0],))
        unchanged.append(s)
        mem_unchanged.append(mem)
        # 1 % of the rows change; the table is vacuumed (untimed) so both read the same pages.
        c.command("UPDATE bench.qm_usage SET units = units + 1 WHERE id %% 100 = %d" % rep)
        quiesce(c, ["bench.qm_usage"])
        t = time.time()
        c.command("CREATE TEMP TABLE qm_ctas AS " + QM_QUERY)
        ctas_changed.append(time.time() - t)
        c.command("DROP TABLE qm_ctas")
        s, mem, rows = qm_timed(cr, run_sql, pid)
        want = len(range(rep, n, 100))
        if [int(x) for x in rows[0]] != [0, want, 0, n - want]:
            raise RuntimeError("1 %% run found %s, expected %d updated" % (rows[0], want))
        changed.append(s)
        mem_changed.append(mem)
        c.command("TRUNCATE hyperline.outbox")
        quiesce(c, ["hyperline._query_state"])
    med = statistics.median
    peak = lambda mems: max(m.get("peak_RssAnon", 0) for m in mems)  # noqa: E731
    return {
        "rows": n,
        "first_run_s": round(first_s, 3),
        "first_run_peak_RssAnon": first_mem.get("peak_RssAnon"),
        "ctas_s": [round(x, 3) for x in ctas], "unchanged_s": [round(x, 3) for x in unchanged],
        "ctas_changed_s": [round(x, 3) for x in ctas_changed], "changed_s": [round(x, 3) for x in changed],
        "ctas_median_s": round(med(ctas + ctas_changed), 3),
        "unchanged_median_s": round(med(unchanged), 3), "changed_median_s": round(med(changed), 3),
        "unchanged_ratio": round(med(unchanged) / med(ctas), 2),
        "changed_ratio": round(med(changed) / med(ctas_changed), 2),
        "anon_before": mem_changed[0].get("anon_before"),
        "peak_RssAnon_unchanged": peak(mem_unchanged), "peak_RssAnon_changed": peak(mem_changed),
        "state_bytes": int(c.value("SELECT pg_total_relation_size('hyperline._query_state')")),
    }


def qm_schedule_delay(c, k):
    """k query models all due at one instant: when did each run start?"""
    log("query: %d scheduled models due at once" % k)
    c.command("CREATE TABLE IF NOT EXISTS bench.qm_tiny (id int PRIMARY KEY, v int)")
    c.command("INSERT INTO bench.qm_tiny SELECT i, i FROM generate_series(1, 10) i ON CONFLICT DO NOTHING")
    for i in range(k):
        c.query("SELECT hyperline.create_query_model('qs_%d', 'SELECT id, v FROM bench.qm_tiny', 'id', %s, "
                "schedule => '1 hour', send_initial => false)" % (
                    i, q('{"customer_id": "c", "event_type": "e", "timestamp": 0, '
                         '"record": {"id": "{{ row.id }}", "v": {{ row.v }}}}')))
    c.command("UPDATE hyperline._models SET next_run_at = date_trunc('second', now()) + interval '3 seconds' "
              "WHERE name LIKE 'qs\\_%'")
    deadline = time.time() + 180
    done_sql = ("SELECT count(*) FROM hyperline.sync_runs WHERE model LIKE 'qs\\_%' "
                "AND status <> 'running'")
    while int(c.value(done_sql)) < k and time.time() < deadline:
        time.sleep(0.2)
    rows = c.query("SELECT extract(epoch FROM r.started_at - r.scheduled_for), "
                   "extract(epoch FROM r.finished_at - r.started_at), r.status "
                   "FROM hyperline._sync_runs r WHERE r.model LIKE 'qs\\_%' ORDER BY r.started_at")
    delays = sorted(float(x[0]) for x in rows)
    durations = sorted(float(x[1]) for x in rows if x[1] is not None)
    failed = sum(1 for x in rows if x[2] != "succeeded")
    for i in range(k):
        c.query("SELECT hyperline.drop_model('qs_%d')" % i)
    pct = lambda v, p: v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else None  # noqa: E731
    return {"models": k, "runs": len(rows), "failed": failed,
            "max_sync_workers": int(c.value("SHOW hyperline.max_sync_workers")),
            "delay_s": {"p50": pct(delays, 50), "p95": pct(delays, 95), "max": delays[-1] if delays else None},
            "run_s": {"p50": pct(durations, 50), "max": durations[-1] if durations else None}}


def bench_query(c):
    set_worker(c, False)  # events of the runs stay in the outbox, untouched
    out = {"reps": QM_REPS, "query": QM_QUERY, "sizes": []}
    for n in [int(x) for x in str(QM_SIZES).split(",")]:
        # The runs in a backend of their own, whose memory only they touch
        # (CREATE TEMP TABLE AS fills the other one's temp_buffers).
        cr = connect()
        pid = int(cr.value("SELECT pg_backend_pid()"))
        out["sizes"].append(qm_size(c, cr, n, pid))
        cr.close()
    c.query("SELECT hyperline.drop_model('qm_usage')")
    c.command("DROP TABLE bench.qm_usage")
    out["schedule"] = qm_schedule_delay(c, QM_MODELS)
    return out


# --- profiles (untimed) -------------------------------------------------------------
def perf_top(data, limit=25):
    """perf report --sort dso,symbol of a recording: [(percent, dso, symbol)]."""
    res = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                          "--percent-limit", "0.7"] + SYMFS.get(data, []), capture_output=True, text=True)
    rows = []
    for line in res.stdout.splitlines():
        m = re.match(r"\s+([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if m:
            rows.append([float(m.group(1)), m.group(2), re.sub(r"(\s+-)*\s*$", "", m.group(3))])
    with open(data + ".txt", "w") as f:
        f.write(res.stdout)
    return rows[:limit]


WRITE_KEYS = ["hyperline_trigger", "hyperline::pg::RenderEvent", "hyperline::JsonSyntaxError",
              "hyperline::PayloadTemplate::Render", "hyperline::pg::BufferOutboxRow", "jsonb_in",
              "hyperline::pg::FlushOutbox", "heap_multi_insert", "ExecInsertIndexTuples", "MakeTupleTableSlot",
              "ExecDropSingleTupleTableSlot", "nextval_internal", "heap_insert", "btinsert", "XLogInsert",
              "exc_page_fault"]
DRAIN_KEYS = ["hyperline::pg::Delivery::TxnClaim", "hyperline::pg::Delivery::TxnRecord",
              "hyperline::pg::Delivery::TxnPurge", "hyperline::pg::Delivery::Pump", "SPI_execute_plan",
              "ExecInsertIndexTuples", "_bt_bottomupdel_pass", "heap_update", "heap_delete", "XLogInsert",
              "index_getnext_slot", "curl_multi_perform", "jsonb_out", "JsonbToCString", "pg_plan_query",
              "llvm_compile_expr"]


OLTP_KEYS = ["exec_simple_query", "pg_plan_query", "standard_ExecutorRun", "ExecutorFinish", "hyperline_trigger",
             "hyperline::pg::GetModel", "hyperline::pg::RenderEvent", "hyperline::JsonSyntaxError", "jsonb_in",
             "hyperline::pg::FlushOutbox", "ExecOpenIndices", "ExecInsertIndexTuples", "table_open",
             "CreateExecutorState", "FreeExecutorState", "nextval_internal", "CommitTransactionCommand",
             "XLogFlush", "SetLatch", "AtEOXact_Inval", "CallXactCallbacks"]


def symfs_args(pid):
    """perf report arguments that resolve a library deleted since it was loaded (someone
    reinstalled pg_hyperline.so mid-run): a symbol tree of the process's mappings where
    the deleted library is the hard link run.sh kept."""
    keep, root = ENV.get("BENCH_KEEP_SO"), ENV.get("BENCH_SYMFS")
    try:
        maps = open("/proc/%d/maps" % pid).read().splitlines()
    except OSError:
        return []
    paths = set(line.split(None, 5)[5] for line in maps if len(line.split(None, 5)) == 6)
    if not keep or not root or not any(p.endswith(" (deleted)") and "pg_hyperline" in p for p in paths):
        return []
    for path in paths:
        if not path.startswith("/"):
            continue
        src = keep if (path.endswith(" (deleted)") and "pg_hyperline" in path) else path
        for name in set([path, path.replace(" (deleted)", "")]):
            dst = root + name
            if os.path.exists(src) and not os.path.lexists(dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.symlink(src, dst)
    return ["--symfs", root, "--kallsyms", "/proc/kallsyms"]


SYMFS = {}  # recording -> perf report arguments


def perf_children(data, keys, callgraph):
    """Inclusive share (%) of each function in `keys` from a call-graph recording."""
    if not callgraph:
        return {}
    res = subprocess.run(["perf", "report", "-i", data, "--stdio", "--children", "--sort", "symbol", "-g", "none",
                          "--percent-limit", "0.3"] + SYMFS.get(data, []), capture_output=True, text=True)
    found = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s+([0-9.]+)%\s+([0-9.]+)%\s+\[[.k]\]\s+(.*?)\s*(-\s+-\s*)?$", line)
        if not m:
            continue
        sym = m.group(3)
        for k in keys:
            if (sym == k or sym.startswith(k + "(") or sym.startswith(k + " ") or sym.startswith(k + "[")) \
                    and k not in found:
                found[k] = float(m.group(1))
    return {k: found[k] for k in keys if k in found}


def perf_record(pids, data, callgraph):
    cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-o", data, "-p", ",".join(str(p) for p in pids)]
    cmd += ["-F", "499", "--call-graph", "dwarf,16384"] if callgraph else ["-F", "1999"]
    SYMFS[data] = symfs_args(pids[0])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def bench_profile(c):
    if subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "true"],
                      capture_output=True).returncode != 0:
        return {"skipped": "perf record does not work here"}
    out = {}
    n = BULK_N
    log("profile: the trigger path (%d rows into the model's table) and the worker's drain" % n)
    set_worker(c, False)
    time.sleep(0.3)
    # Write path: the inserting backend, model variant.
    for suffix in ("c", "d"):
        ensure_outbox_table(c, "bench.outbox_" + suffix)
    ensure_usage_c_trigger(c)
    create_model_if_missing(c, "usage_b", "bench.usage_b")
    create_model_if_missing(c, "drain", "bench.usage_drain")

    def record_insert(table, outbox, rows, name, callgraph):
        """Records this backend's INSERT of `rows` rows into `table` (emptied
        first, with `outbox`); returns the recording's path."""
        c.command("TRUNCATE %s, %s" % (table, outbox))
        quiesce(c, [table, outbox])
        data = os.path.join(OUT, name)
        perf = perf_record([c.pid], data, callgraph)
        c.command("INSERT INTO %s %s" % (table, rows_sql(rows)))
        perf.send_signal(signal.SIGINT)
        perf.wait()
        return data

    out["write_b"] = perf_top(record_insert("bench.usage_b", "hyperline.outbox", n, "perf-write.data", False))
    # The same for the PL/pgSQL variant, for comparison.
    out["write_c"] = perf_top(record_insert("bench.usage_c", "bench.outbox_c", n, "perf-write-plpgsql.data",
                                            False))
    # Call graphs (DWARF unwinding: our C++ is built without frame pointers) of a smaller insert.
    data = record_insert("bench.usage_b", "hyperline.outbox", max(n // 4, 2000), "perf-write-callgraph.data", True)
    out["write_b_inclusive"] = perf_children(data, WRITE_KEYS, True)
    c.command("TRUNCATE bench.usage_b, bench.usage_c, bench.outbox_c, hyperline.outbox")
    # OLTP: the pgbench backends, one row per transaction, with a model.
    create_model_if_missing(c, "oltp", "bench.oltp_model")
    c.command("TRUNCATE bench.oltp_model, hyperline.outbox")
    quiesce(c, ["bench.oltp_model", "hyperline.outbox"])
    result = {}
    th = threading.Thread(target=lambda: result.update(tps=pgbench("oltp_model.sql", 8, OLTP_CLIENTS)[0]))
    th.start()
    time.sleep(2)
    pids = [int(r[0]) for r in c.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'")]
    if pids:
        data = os.path.join(OUT, "perf-oltp-callgraph.data")
        perf = perf_record(pids, data, True)
        time.sleep(3)
        perf.send_signal(signal.SIGINT)
        perf.wait()
        out["oltp_model_inclusive"] = perf_children(data, OLTP_KEYS, True)
    th.join()
    c.command("TRUNCATE bench.oltp_model, hyperline.outbox")
    # Drain: worker + mock.
    data = os.path.join(OUT, "perf-drain.data")
    r = drain_once(c, 1000, max(n, 20000), profile_to=data)
    out["drain_1000"] = perf_top(data)
    out["drain_1000_rate"] = r["events_per_s"]
    data = os.path.join(OUT, "perf-drain-b1.data")
    r = drain_once(c, 1, max(n // 10, 2000), profile_to=data)
    out["drain_1"] = perf_top(data)
    out["drain_1_rate"] = r["events_per_s"]
    data = os.path.join(OUT, "perf-drain-callgraph.data")
    r = drain_once(c, 1000, max(n, 20000), profile_to=data, callgraph=True)
    out["drain_1000_inclusive"] = perf_children(data, DRAIN_KEYS, True)
    c.command("TRUNCATE hyperline.outbox, bench.usage_drain")
    return out


# --- main ------------------------------------------------------------------------------
def git_rev():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "sql"],
                               capture_output=True, text=True).stdout.strip() != ""
        return rev + ("+uncommitted src/sql changes" if dirty else "")
    except OSError:
        return "?"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


TEMPLATE, TEMPLATE_SOURCE = payload_template()


def main():
    os.makedirs(OUT, exist_ok=True)
    c = connect()
    c.command("CREATE EXTENSION pg_hyperline")
    c.command(read_sql("schema.sql") + ";")
    c.query("SELECT hyperline.create_destination('hyperline', %s, base_url => %s, batch_size => 1000)"
            % (q(API_KEY), q(MOCK_URL)))
    set_worker(c, False)
    results = {"meta": {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cores": os.cpu_count(), "cpu": cpu_model(), "quick": QUICK, "git": git_rev(),
        "postgres": c.value("SHOW server_version"),
        "load_before": os.getloadavg()[0],
        "settings": dict(c.query("SELECT name, setting FROM pg_settings WHERE name IN "
                                 "('shared_buffers', 'synchronous_commit', 'fsync', 'max_wal_size', "
                                 "'hyperline.claim_batch', 'hyperline.max_concurrent_requests', "
                                 "'hyperline.poll_interval_ms')")),
    }}
    steps = [("bulk", bench_bulk), ("oltp", bench_oltp), ("drain", bench_drain),
             ("latency", bench_latency), ("upkeep", bench_upkeep), ("query", bench_query)]
    if PROFILE:
        steps.append(("profile", bench_profile))
    t_all = time.time()
    for name, fn in steps:
        if ONLY and name not in ONLY and not (name == "drain" and "memory" in ONLY):
            continue
        t = time.time()
        try:
            results[name] = fn(c)
        except Exception as e:  # keep the other measurements; the report shows the failure
            log("%s FAILED: %s" % (name, e))
            results[name] = {"error": str(e)}
            try:
                c.close()
            except Exception:
                pass
            c = connect()
        results[name + "_seconds"] = round(time.time() - t, 1)
        with open(os.path.join(OUT, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    results["meta"]["total_seconds"] = round(time.time() - t_all, 1)
    results["meta"]["load_after"] = os.getloadavg()[0]
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    c.close()


if __name__ == "__main__":
    main()
