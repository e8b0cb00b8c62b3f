#!/usr/bin/env python3
"""drain_experiment.py: the database side of a drain, without HTTP, under three
outbox designs — evidence for the fix proposed in docs/benchmarks.md.

The worker spends ~90 % of a drain in two statements per batch: the claim
(UPDATE ... SET status = 'sending' ... RETURNING) and the record (UPDATE ... SET
status = 'delivered'). This replays them on copies of hyperline.outbox:

  current   the extension's indexes; claim marks rows 'sending', record marks them
            'delivered' (two non-HOT updates per event: status is in the partial
            indexes' predicates, so every status change inserts index entries)
  no_send   the same indexes; the claim only reads (no 'sending' write), the
            record is the one update per event
  hot       no index mentions status (pkey + (model, event_key)), fillfactor 50,
            claim by primary-key cursor; the record update can be HOT
  hot_send  'sending' stays persisted, but no index mentions status: the queue
            index is (id) WHERE next_attempt_at IS NOT NULL and a final row has
            next_attempt_at NULL, so the claim's update is HOT and the record's
            update adds no partial-index entry

Each design is run for CYCLES cycles (env, default 1) of fill, drain (with
LAG batches in flight, env, default 2: the worker claims ahead of its records),
purge (DELETE) and VACUUM; the outbox's size is printed after each fill and
drain.

Usage (against a cluster with the extension, e.g. bench/run.sh with KEEP=1):
  BENCH_PGHOST=/tmp/hyperline-bench.X BENCH_PGPORT=5xxx python3 bench/lib/drain_experiment.py [rows] [batch]
Prints events/s of the database work alone for each design.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgwire  # noqa: E402

FILL = ("INSERT INTO %s (model, event_key, operation, payload, destination) "
        "SELECT 'exp', 'evt_' || g, 'insert', jsonb_build_object('customer_id', 'cus_' || (g %% 1000), "
        "'event_type', 'api_call', 'timestamp', 1734652800000 + g * 1000, 'record', "
        "jsonb_build_object('id', 'evt_' || g, 'durationInMs', g %% 5000, 'isVerified', g %% 3 = 0)), "
        "'hyperline' FROM generate_series(1, %d) g")

RECORD = ("UPDATE %s o SET status = 'delivered', attempts = o.attempts + 1, http_status = 201, "
          "delivered_at = now() WHERE o.id = ANY ('{%s}'::bigint[])")


def setup(c, name, design):
    c.command("DROP TABLE IF EXISTS %s" % name)
    if design == "hot":
        c.command("CREATE TABLE %s (LIKE hyperline.outbox INCLUDING DEFAULTS INCLUDING CONSTRAINTS)" % name)
        c.command("ALTER TABLE %s ADD PRIMARY KEY (id)" % name)
        c.command("CREATE INDEX ON %s (model, event_key)" % name)
        c.command("ALTER TABLE %s SET (fillfactor = 50)" % name)
    elif design == "hot_send":
        c.command("CREATE TABLE %s (LIKE hyperline.outbox INCLUDING DEFAULTS INCLUDING CONSTRAINTS)" % name)
        c.command("ALTER TABLE %s ADD PRIMARY KEY (id)" % name)
        c.command("ALTER TABLE %s ALTER next_attempt_at DROP NOT NULL" % name)
        c.command("CREATE INDEX ON %s (id) WHERE next_attempt_at IS NOT NULL" % name)
        c.command("CREATE INDEX ON %s (model, event_key) WHERE next_attempt_at > created_at" % name)
        c.command("ALTER TABLE %s SET (fillfactor = %s)" % (name, os.environ.get("FILLFACTOR", "90")))
    else:
        c.command("CREATE TABLE %s (LIKE hyperline.outbox INCLUDING ALL)" % name)
        c.command("ALTER TABLE %s SET (fillfactor = 90)" % name)


RECORD_HOT_SEND = ("UPDATE %s o SET status = 'delivered', attempts = o.attempts + 1, http_status = 201, "
                   "delivered_at = now(), next_attempt_at = NULL WHERE o.id = ANY ('{%s}'::bigint[])")


VACUUM_EVERY = float(os.environ.get("VACUUM_EVERY", "0"))


def vacuum_loop(name, stop):
    """A second session vacuuming the outbox every VACUUM_EVERY seconds during the drain."""
    v = pgwire.Connection(os.environ.get("BENCH_DB", "bench"), host=os.environ["BENCH_PGHOST"],
                          port=os.environ["BENCH_PGPORT"])
    while not stop.wait(VACUUM_EVERY):
        v.command("VACUUM %s" % name)
    v.close()


def claim(c, name, design, batch, cursor):
    if design == "current":
        return c.query("UPDATE %s o SET status = 'sending' WHERE o.id = ANY (ARRAY(SELECT p.id FROM %s p "
                       "WHERE p.status = 'pending' AND p.next_attempt_at <= now() ORDER BY p.id LIMIT %d "
                       "FOR UPDATE SKIP LOCKED)) RETURNING o.id, o.payload::text" % (name, name, batch))
    if design == "hot_send":
        return c.query("UPDATE %s o SET status = 'sending' WHERE o.id = ANY (ARRAY(SELECT p.id FROM %s p "
                       "WHERE p.next_attempt_at IS NOT NULL AND p.status = 'pending' "
                       "AND p.next_attempt_at <= now() ORDER BY p.id LIMIT %d "
                       "FOR UPDATE SKIP LOCKED)) RETURNING o.id, o.payload::text" % (name, name, batch))
    if design == "no_send":
        return c.query("SELECT p.id, p.payload::text FROM %s p WHERE p.status = 'pending' "
                       "AND p.next_attempt_at <= now() ORDER BY p.id LIMIT %d" % (name, batch))
    return c.query("SELECT p.id, p.payload::text FROM %s p WHERE p.id > %d AND p.status = 'pending' "
                   "AND p.next_attempt_at <= now() ORDER BY p.id LIMIT %d" % (name, cursor, batch))


def run(c, name, design, rows, batch, cycles, lag):
    """Returns (events, seconds of drain, [(size after fill, size after drain)])."""
    if design in ("no_send", "hot"):
        lag = 0  # these claims do not exclude rows in flight
    setup(c, name, design)
    record = RECORD_HOT_SEND if design == "hot_send" else RECORD
    sizes = []
    done = 0
    dt = 0.0
    for _ in range(cycles):
        c.command(FILL % (name, rows))
        c.command("VACUUM ANALYZE %s" % name)
        c.command("CHECKPOINT")
        after_fill = int(c.value("SELECT pg_total_relation_size('%s')" % name))
        cursor = 0
        flight = []
        stop = threading.Event()
        vac = None
        if VACUUM_EVERY > 0:
            vac = threading.Thread(target=vacuum_loop, args=(name, stop))
            vac.start()
        t0 = time.perf_counter()
        while True:
            c.command("BEGIN")
            got = claim(c, name, design, batch, cursor)
            c.command("COMMIT")
            if got:
                ids = [r[0] for r in got]
                cursor = max(int(i) for i in ids)
                flight.append(ids)
                done += len(ids)
            if len(flight) > lag or (not got and flight):
                c.command(record % (name, ",".join(flight.pop(0))))
            elif not got:
                break
        dt += time.perf_counter() - t0
        stop.set()
        if vac is not None:
            vac.join()
        after_drain = int(c.value("SELECT pg_total_relation_size('%s')" % name))
        sizes.append((after_fill, after_drain))
        c.command("DELETE FROM %s" % name)
        c.command("VACUUM %s" % name)
    c.command("DROP TABLE %s" % name)
    return done, dt, sizes


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    c = pgwire.Connection(os.environ.get("BENCH_DB", "bench"), host=os.environ["BENCH_PGHOST"],
                          port=os.environ["BENCH_PGPORT"])
    c.command("SET synchronous_commit = off")  # as the worker does
    cycles = int(os.environ.get("CYCLES", "1"))
    lag = int(os.environ.get("LAG", "2"))
    designs = os.environ.get("DESIGNS", "current,no_send,hot,hot_send").split(",")
    for rep in range(int(os.environ.get("REPS", "2"))):
        for design in designs:
            done, dt, sizes = run(c, "public.exp_outbox", design, rows, batch, cycles, lag)
            print("%-8s rep %d: %d events in %.2f s = %6.0f events/s (DB work only); MB after fill/drain: %s"
                  % (design, rep + 1, done, dt, done / dt,
                     " ".join("%.0f/%.0f" % (f / 2**20, d / 2**20) for f, d in sizes)), flush=True)


if __name__ == "__main__":
    main()
