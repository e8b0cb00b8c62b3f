-- bench/sql/schema.sql: the benchmark's tables (schema bench), created once per run.
-- The outbox-shaped tables (bench.outbox_c, bench.outbox_d) are created by
-- bench.py from hyperline.outbox's own DDL in sql/pg_hyperline--*.sql.
CREATE SCHEMA bench;

-- The six-column usage table of every write-path variant:
--   usage_a: no model; usage_b: a pg_hyperline model; usage_c: a PL/pgSQL
--   trigger; usage_d: the floor (plain insert + one set-wise outbox insert).
CREATE TABLE bench.usage_a (
  id text PRIMARY KEY,
  customer_id text,
  event_type text,
  created_at timestamptz,
  duration_ms int,
  is_verified bool
);
CREATE TABLE bench.usage_b (LIKE bench.usage_a INCLUDING ALL);
CREATE TABLE bench.usage_c (LIKE bench.usage_a INCLUDING ALL);
CREATE TABLE bench.usage_d (LIKE bench.usage_a INCLUDING ALL);
-- Source of the drain and memory measurements, and of the latency loader.
CREATE TABLE bench.usage_drain (LIKE bench.usage_a INCLUDING ALL);
CREATE TABLE bench.usage_lat (LIKE bench.usage_a INCLUDING ALL);

-- OLTP (pgbench): one event row per transaction, ids from a sequence.
CREATE SEQUENCE bench.oltp_seq;
CREATE TABLE bench.oltp_plain (LIKE bench.usage_a INCLUDING ALL);
ALTER TABLE bench.oltp_plain ALTER COLUMN id SET DEFAULT 'o' || nextval('bench.oltp_seq');
CREATE TABLE bench.oltp_model (LIKE bench.oltp_plain INCLUDING ALL);
-- The OLTP floor: the same row plus a constant payload into an outbox-shaped
-- table, in one statement (bench/sql/oltp_floor.sql).
CREATE TABLE bench.oltp_floor (LIKE bench.oltp_plain INCLUDING ALL);
-- The backend's own cost of one-INSERT transactions, without a client in the
-- loop: n transactions of one INSERT each, committed one by one, the INSERT
-- either planned once (a cached plan) or parsed and planned every time (as
-- pgbench's default simple protocol does).
CREATE PROCEDURE bench.oltp_loop(target text, n int, cached boolean) LANGUAGE plpgsql AS $fn$
BEGIN
  FOR i IN 1..n LOOP
    IF NOT cached THEN
      EXECUTE format('INSERT INTO %s (customer_id, event_type, created_at, duration_ms, is_verified) '
                     'VALUES ($1, $2, now(), $3, $4)', target)
        USING 'cus_' || (i % 1000), 'api_call', i % 5000, i % 3 = 0;
    ELSIF target = 'bench.oltp_model' THEN
      INSERT INTO bench.oltp_model (customer_id, event_type, created_at, duration_ms, is_verified)
        VALUES ('cus_' || (i % 1000), 'api_call', now(), i % 5000, i % 3 = 0);
    ELSE
      INSERT INTO bench.oltp_plain (customer_id, event_type, created_at, duration_ms, is_verified)
        VALUES ('cus_' || (i % 1000), 'api_call', now(), i % 5000, i % 3 = 0);
    END IF;
    COMMIT;
  END LOOP;
END
$fn$;

-- (c): what a user would write by hand: the same payload as the Hightouch
-- example template, built with jsonb_build_object, into an outbox-shaped table.
-- Timestamps as the extension renders them: ISO 8601 UTC, fraction only when non-zero.
CREATE FUNCTION bench.usage_c_event() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO bench.outbox_c (model, event_key, operation, payload, destination)
  VALUES ('usage_c', NEW.id, lower(TG_OP), jsonb_build_object(
      'customer_id', NEW.customer_id,
      'event_type', NEW.event_type,
      'timestamp', CASE WHEN date_part('microseconds', NEW.created_at)::bigint % 1000000 = 0
                     THEN to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                     ELSE to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END,
      'record', jsonb_build_object(
        'id', NEW.id,
        'durationInMs', NEW.duration_ms,
        'isVerified', NEW.is_verified)),
    'hyperline');
  RETURN NULL;
END
$fn$;

-- (d): payloads computed ahead of time, copied set-wise by the floor variant.
CREATE TABLE bench.pre_payloads (
  model text, event_key text, operation text, payload jsonb, destination text
);
