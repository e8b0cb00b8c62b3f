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

Usage (against a cluster with the extension, e.g. bench/run.sh with KEEP=1):
  BENCH_PGHOST=/tmp/hyperline-bench.X BENCH_PGPORT=5xxx python3 bench/lib/drain_experiment.py [rows] [batch]
Prints events/s of the database work alone for each design.
"""

import os
import sys
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
    else:
        c.command("CREATE TABLE %s (LIKE hyperline.outbox INCLUDING ALL)" % name)
        c.command("ALTER TABLE %s SET (fillfactor = 90)" % name)


def run(c, name, design, rows, batch):
    setup(c, name, design)
    c.command(FILL % (name, rows))
    c.command("VACUUM ANALYZE %s" % name)
    c.command("CHECKPOINT")
    cursor = 0
    t0 = time.perf_counter()
    done = 0
    while True:
        c.command("BEGIN")
        if design == "current":
            got = c.query("UPDATE %s o SET status = 'sending' WHERE o.id = ANY (ARRAY(SELECT p.id FROM %s p "
                          "WHERE p.status = 'pending' AND p.next_attempt_at <= now() ORDER BY p.id LIMIT %d "
                          "FOR UPDATE SKIP LOCKED)) RETURNING o.id, o.payload::text" % (name, name, batch))
        elif design == "no_send":
            got = c.query("SELECT p.id, p.payload::text FROM %s p WHERE p.status = 'pending' "
                          "AND p.next_attempt_at <= now() ORDER BY p.id LIMIT %d" % (name, batch))
        else:
            got = c.query("SELECT p.id, p.payload::text FROM %s p WHERE p.id > %d AND p.status = 'pending' "
                          "AND p.next_attempt_at <= now() ORDER BY p.id LIMIT %d" % (name, cursor, batch))
        c.command("COMMIT")
        if not got:
            break
        ids = [r[0] for r in got]
        cursor = max(int(i) for i in ids)
        c.command(RECORD % (name, ",".join(ids)))
        done += len(ids)
    dt = time.perf_counter() - t0
    size = int(c.value("SELECT pg_total_relation_size('%s')" % name))
    c.command("DROP TABLE %s" % name)
    return done, dt, size


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    c = pgwire.Connection(os.environ.get("BENCH_DB", "bench"), host=os.environ["BENCH_PGHOST"],
                          port=os.environ["BENCH_PGPORT"])
    c.command("SET synchronous_commit = off")  # as the worker does
    for rep in range(2):
        for design in ("current", "no_send", "hot"):
            done, dt, size = run(c, "public.exp_outbox", design, rows, batch)
            print("%-8s rep %d: %d events in %.2f s = %6.0f events/s (DB work only); outbox after: %.0f MB"
                  % (design, rep + 1, done, dt, done / dt, size / 2**20), flush=True)


if __name__ == "__main__":
    main()
