-- Row changes become outbox rows in the same transaction.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_key_1234');
CREATE TABLE meter (id int PRIMARY KEY, customer text NOT NULL, qty numeric);
SELECT hyperline.create_model('meter', 'meter', 'id', $$ {"customer_id": "{{ row.customer }}",
  "event_type": "meter", "timestamp": 0,
  "record": {"id": "m{{ row.id }}", "qty": {{ row.qty }}, "was": {{ old.qty }}}} $$,
  triggers => '{insert,update,delete}');

INSERT INTO meter VALUES (1, 'c1', 10), (2, 'c2', 20);
UPDATE meter SET qty = 11 WHERE id = 1;
-- an UPDATE that changes nothing is not a change
UPDATE meter SET qty = qty WHERE id = 2;
DELETE FROM meter WHERE id = 2;
SELECT event_key, operation, status, payload FROM hyperline.outbox ORDER BY id;

-- rollback leaves no outbox row; a rolled back savepoint neither
BEGIN;
INSERT INTO meter VALUES (3, 'c3', 1);
ROLLBACK;
BEGIN;
INSERT INTO meter VALUES (4, 'c4', 1);
SAVEPOINT s;
INSERT INTO meter VALUES (5, 'c5', 1);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT event_key FROM hyperline.outbox WHERE event_key IN ('3', '4', '5') ORDER BY event_key;

-- only the chosen triggers fire
CREATE TABLE inserts_only (id int PRIMARY KEY, c text);
SELECT hyperline.create_model('inserts_only', 'inserts_only', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$, triggers => '{insert}');
INSERT INTO inserts_only VALUES (1, 'a');
UPDATE inserts_only SET c = 'b';
DELETE FROM inserts_only;
SELECT event_key, operation FROM hyperline.outbox WHERE model = 'inserts_only';

-- several models on one table each get their event
SELECT hyperline.create_model('meter_copy', 'meter', 'id', $$ {"customer_id": "{{ row.customer }}",
  "event_type": "copy", "timestamp": 0, "record": {"id": "copy{{ row.id }}"}} $$);
INSERT INTO meter VALUES (6, 'c6', 6);
SELECT model, event_key FROM hyperline.outbox WHERE event_key = '6' ORDER BY model;

-- a rendering error never fails the user's write: the event is recorded failed
CREATE TABLE fragile (id int PRIMARY KEY, c text, n numeric, d int);
SELECT hyperline.create_model('fragile', 'fragile', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}", "n": {{ row.n }},
  "q": {{ 10 | divided_by: row.d }}}} $$);
INSERT INTO fragile VALUES (1, 'ok', 1, 2), (2, 'nan', 'NaN', 1), (3, 'zero', 1, 0);
SELECT * FROM fragile ORDER BY id;
SELECT event_key, status, payload, last_error FROM hyperline.outbox WHERE model = 'fragile' ORDER BY id;
-- a dropped column makes every later event fail visibly, not the writes
ALTER TABLE fragile DROP COLUMN d;
INSERT INTO fragile VALUES (4, 'after drop', 1);
SELECT event_key, status, last_error FROM hyperline.outbox WHERE model = 'fragile' AND event_key = '4';

-- partitioned tables: the model on the parent sees rows of every partition
CREATE TABLE part (id int, region text, amount int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE part_eu PARTITION OF part FOR VALUES IN ('eu');
CREATE TABLE part_us (amount int, region text, id int, PRIMARY KEY (id, region));
ALTER TABLE part ATTACH PARTITION part_us FOR VALUES IN ('us');
-- (its key is the table's primary key: id and region)
SELECT hyperline.create_model('part', 'part', 'id, region', $$ {"customer_id": "{{ row.region }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}", "amount": {{ row.amount }}}} $$);
INSERT INTO part VALUES (1, 'eu', 100), (2, 'us', 200);
SELECT event_key, payload FROM hyperline.outbox WHERE model = 'part' ORDER BY id;

-- statements aimed at a partition directly: events visible in the transaction
BEGIN;
INSERT INTO part_eu VALUES (3, 'eu', 300);
SELECT event_key FROM hyperline.outbox WHERE model = 'part' AND event_key = '["3","eu"]';
COMMIT;
-- buffered events of an aborted subtransaction go with it; the rest stay
CREATE FUNCTION insert_twice() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO meter VALUES (20, 'c20', 1);
  BEGIN
    INSERT INTO meter VALUES (21, 'c21', 1);
    RAISE EXCEPTION 'undo 21';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
END $$;
SELECT insert_twice();
SELECT model, event_key FROM hyperline.outbox WHERE event_key IN ('20', '21') ORDER BY model, event_key;
-- events buffered by a statement that then fails (a later AFTER trigger
-- raises after ours ran for two rows) are dropped, and the backend's buffer is
-- empty for its next transaction
CREATE FUNCTION refuse_41() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = 41 THEN RAISE EXCEPTION 'refusing 41'; END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER zz_refuse_41 AFTER INSERT ON meter FOR EACH ROW EXECUTE FUNCTION refuse_41();
INSERT INTO meter VALUES (40, 'c40', 1), (41, 'c41', 1);
INSERT INTO meter VALUES (42, 'c42', 1);
SELECT model, event_key FROM hyperline.outbox WHERE event_key IN ('40', '41', '42') ORDER BY model, event_key;
DROP TRIGGER zz_refuse_41 ON meter;
-- a bulk statement larger than one flush batch
INSERT INTO meter SELECT g, 'bulk', g FROM generate_series(1000, 3499) g;
SELECT model, count(*), count(DISTINCT event_key) FROM hyperline.outbox
  WHERE CASE WHEN event_key ~ '^[0-9]+$' THEN event_key::int END BETWEEN 1000 AND 3499
  GROUP BY model ORDER BY model;

-- COPY goes through the trigger too
COPY meter FROM STDIN;
7	c7	7
\.
SELECT model, event_key FROM hyperline.outbox WHERE event_key = '7' ORDER BY model;
-- and its events are in the outbox as soon as the COPY ends, within the transaction
BEGIN;
COPY meter FROM STDIN;
8	c8	8
\.
SELECT model, event_key FROM hyperline.outbox WHERE event_key = '8' ORDER BY model;
COMMIT;

-- indexes a user adds to the outbox are maintained from the next statement on
-- (the outbox's index list is cached per backend and rebuilt on any change);
-- GIN and BRIN keep per-statement state of their own between inserts
CREATE EXTENSION IF NOT EXISTS amcheck;
INSERT INTO meter VALUES (30, 'c30', 1);
CREATE INDEX outbox_test_gin ON hyperline.outbox USING gin (payload jsonb_path_ops);
CREATE INDEX outbox_test_expr ON hyperline.outbox (lower(event_key)) WHERE operation = 'insert';
CREATE INDEX outbox_test_brin ON hyperline.outbox USING brin (created_at);
INSERT INTO meter VALUES (31, 'c31', 1);
INSERT INTO meter VALUES (32, 'c32', 1), (33, 'c33', 1);
BEGIN;
INSERT INTO meter VALUES (34, 'c34', 1);
INSERT INTO meter VALUES (35, 'c35', 1);
COMMIT;
SET enable_seqscan = off;
SELECT event_key FROM hyperline.outbox
  WHERE model = 'meter' AND payload @> '{"customer_id": "c33"}';
SELECT count(*) AS found_through_expression_index FROM hyperline.outbox
  WHERE lower(event_key) IN ('30', '31', '32', '33', '34', '35') AND operation = 'insert';
RESET enable_seqscan;
-- every outbox row is in every btree index
SELECT bt_index_check(indexrelid, true) FROM pg_index WHERE indrelid = 'hyperline.outbox'::regclass
  AND indexrelid::regclass::text IN ('hyperline.outbox_pkey', 'hyperline.outbox_pending_idx',
                                     'hyperline.outbox_test_expr');
DROP INDEX hyperline.outbox_test_gin, hyperline.outbox_test_expr, hyperline.outbox_test_brin;
INSERT INTO meter VALUES (36, 'c36', 1);
SELECT count(*) AS events_after_drop FROM hyperline.outbox WHERE event_key = '36';

-- a changed payload takes effect at once (the compiled template is invalidated)
SELECT hyperline.alter_model('inserts_only', payload => $$ {"customer_id": "{{ row.c | upcase }}",
  "event_type": "v2", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
INSERT INTO inserts_only VALUES (2, 'b');
SELECT event_key, payload->>'event_type' AS event_type, payload->>'customer_id' AS customer
  FROM hyperline.outbox WHERE model = 'inserts_only' ORDER BY id;
-- and a column added to the source table can be used right away
ALTER TABLE inserts_only ADD COLUMN plan text DEFAULT 'pro';
SELECT hyperline.alter_model('inserts_only', payload => $$ {"customer_id": "{{ row.c }}",
  "event_type": "v3", "timestamp": 0, "record": {"id": "{{ row.id }}", "plan": "{{ row.plan }}"}} $$);
INSERT INTO inserts_only VALUES (3, 'c');
SELECT event_key, payload->'record'->>'plan' AS plan FROM hyperline.outbox
  WHERE model = 'inserts_only' AND event_key = '3';

-- a trigger whose model row was deleted by hand: the write goes on, the event fails visibly
CREATE TABLE orphan (id int PRIMARY KEY);
SELECT hyperline.create_model('orphan', 'orphan', 'id', $$ {"customer_id": "c",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
DELETE FROM hyperline._models WHERE name = 'orphan';
INSERT INTO orphan VALUES (1);
SELECT count(*) AS rows_written FROM orphan;
SELECT model, status, last_error FROM hyperline.outbox WHERE model = 'orphan';

-- status view
SELECT model, pending, sending, delivered, failed, last_error FROM hyperline.model_status ORDER BY model;
-- failed rows can be retried; rows that could not render stay failed
SELECT hyperline.retry('fragile');
SELECT hyperline.retry('no_such_model');
-- retry never sends an older version of a key over a newer one: k1's failed event
-- has a newer delivered one, k2 has two failed events, k3 one
INSERT INTO hyperline.outbox (model, event_key, operation, payload, status, destination) VALUES
  ('rt', 'k1', 'insert', '{"v": 1}', 'failed', 'nowhere'),
  ('rt', 'k1', 'update', '{"v": 2}', 'delivered', 'nowhere'),
  ('rt', 'k2', 'insert', '{"v": 1}', 'failed', 'nowhere'),
  ('rt', 'k2', 'update', '{"v": 2}', 'failed', 'nowhere'),
  ('rt', 'k3', 'insert', '{"v": 1}', 'failed', 'nowhere');
SELECT hyperline.retry('rt');
SELECT event_key, payload->>'v' AS v, status FROM hyperline.outbox WHERE model = 'rt' ORDER BY id;
DELETE FROM hyperline.outbox WHERE model = 'rt';
