-- Model semantics: filters (rows entering, staying in and leaving a model),
-- composite keys, delete modes, key changes, and a model following its table's
-- life (DROP, RENAME, ALTER).
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_key_1234');
CREATE VIEW events AS
  SELECT id, model, event_key, operation, method, status, payload->'record' AS record, last_error
  FROM hyperline.outbox;

-- ---------------------------------------------------------------------------
-- Filters
-- ---------------------------------------------------------------------------
CREATE TABLE usage (id int PRIMARY KEY, customer text NOT NULL, billable boolean, quantity int);
SELECT hyperline.create_model('billable', 'usage', 'id', $$ {"customer_id": "{{ row.customer }}",
  "event_type": "usage", "timestamp": 0,
  "record": {"id": "u{{ row.id }}", "quantity": {{ row.quantity }},
             "deleted": {% if operation == 'delete' %}true{% else %}false{% endif %}}} $$,
  triggers => '{insert,update,delete}', filter => 'billable AND quantity > 0');
-- the filter as Postgres normalizes it
SELECT name, filter, delete_mode FROM hyperline.models;
-- one trigger per kind of change, each with its WHEN clause
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'usage'::regclass ORDER BY tgname;

INSERT INTO usage VALUES
  (1, 'c1', true, 5),    -- in: added
  (2, 'c2', false, 5),   -- out: nothing
  (3, 'c3', true, 0),    -- out: nothing
  (4, 'c4', NULL, 5);    -- NULL is not true: nothing
SELECT event_key, operation, record FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;
UPDATE usage SET quantity = 6 WHERE id = 1;      -- stays in: updated
UPDATE usage SET billable = true WHERE id = 2;   -- enters: added
UPDATE usage SET quantity = 0 WHERE id = 1;      -- leaves: removed (the old row)
UPDATE usage SET quantity = 7 WHERE id = 3;      -- enters: added
UPDATE usage SET customer = 'c4b' WHERE id = 4;  -- stays out: nothing
DELETE FROM usage WHERE id = 3;                  -- in, deleted: removed
DELETE FROM usage WHERE id = 4;                  -- out, deleted: nothing
SELECT event_key, operation, method, record FROM events ORDER BY event_key, operation;
DELETE FROM hyperline.outbox;

-- each kind produces an event only if its trigger is on
SELECT hyperline.alter_model('billable', triggers => '{insert}');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'usage'::regclass ORDER BY tgname;
INSERT INTO usage VALUES (10, 'c10', true, 1);   -- added: sent
UPDATE usage SET quantity = 2 WHERE id = 10;     -- updated: not sent
UPDATE usage SET quantity = 0 WHERE id = 10;     -- removed: not sent
UPDATE usage SET quantity = 3 WHERE id = 10;     -- added again: sent
SELECT event_key, operation, record->'quantity' AS quantity FROM events ORDER BY event_key, record->>'quantity';
DELETE FROM hyperline.outbox;
SELECT hyperline.alter_model('billable', triggers => '{delete}');
UPDATE usage SET quantity = 4 WHERE id = 10;     -- updated: not sent
UPDATE usage SET billable = false WHERE id = 10; -- removed: sent
INSERT INTO usage VALUES (11, 'c11', true, 1);   -- added: not sent
DELETE FROM usage WHERE id = 11;                 -- removed: sent
SELECT event_key, operation, record FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;
SELECT hyperline.alter_model('billable', triggers => '{update}');
UPDATE usage SET billable = true WHERE id = 10;  -- added: not sent
UPDATE usage SET quantity = 9 WHERE id = 10;     -- updated: sent
SELECT event_key, operation, record FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;

-- preview and backfill see only the rows in the filter
SELECT * FROM hyperline.preview('billable');
SELECT hyperline.backfill('billable');
SELECT event_key FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;

-- filter => '' removes the filter; a new filter replaces it
SELECT hyperline.alter_model('billable', filter => '', triggers => '{insert,update,delete}');
SELECT filter FROM hyperline.models WHERE name = 'billable';
SELECT tgname FROM pg_trigger WHERE tgrelid = 'usage'::regclass ORDER BY tgname;
UPDATE usage SET quantity = quantity WHERE id = 2;   -- no change: nothing
UPDATE usage SET customer = 'c2b' WHERE id = 2;
SELECT event_key, operation FROM events;
DELETE FROM hyperline.outbox;
SELECT hyperline.alter_model('billable', filter => 'quantity >= 9');
SELECT filter FROM hyperline.models WHERE name = 'billable';

-- every bad filter: a clear error naming it, and nothing changed
SELECT hyperline.alter_model('billable', filter => 'nope > 1');
SELECT hyperline.alter_model('billable', filter => 'quantity + 1');
SELECT hyperline.alter_model('billable', filter => 'random() > 0.5');
SELECT hyperline.alter_model('billable', filter => 'quantity > (SELECT 1)');
SELECT hyperline.alter_model('billable', filter => 'count(*) > 1');
SELECT hyperline.alter_model('billable', filter => 'true; DROP TABLE usage');
SELECT hyperline.alter_model('billable', filter => 'true) OR (false');
SELECT hyperline.alter_model('billable', filter => 'quantity >');
SELECT hyperline.create_model('m2', 'usage', 'id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "x"}} $$, filter => 'billable = ''yes''');
SELECT filter FROM hyperline.models WHERE name = 'billable';
SELECT count(*) AS models FROM hyperline.models;

-- a filter that calls a function the model's owner may not execute fails at
-- create time, as that owner
CREATE ROLE hl_owner;
GRANT CREATE, USAGE ON SCHEMA public TO hl_owner;
SELECT hyperline.grant_destination('hyperline', 'hl_owner');
CREATE FUNCTION secret_rule(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0';
REVOKE EXECUTE ON FUNCTION secret_rule(int) FROM PUBLIC;
SET ROLE hl_owner;
CREATE TABLE owned (id int PRIMARY KEY, n int);
INSERT INTO owned VALUES (1, 1);
SELECT hyperline.create_model('owned', 'owned', 'id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$, filter => 'public.secret_rule(n)');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Keys: unique, one column or several
-- ---------------------------------------------------------------------------
CREATE TABLE daily (customer_id text NOT NULL, day date NOT NULL, units int,
                    PRIMARY KEY (customer_id, day));
SELECT hyperline.create_model('daily', 'daily', 'customer_id, day', $$ {"customer_id": "{{ row.customer_id }}",
  "event_type": "daily", "timestamp": "{{ row.day }}T00:00:00Z",
  "record": {"id": "{{ row.customer_id }}-{{ row.day }}", "units": {{ row.units }}}} $$,
  triggers => '{insert,update,delete}');
INSERT INTO daily VALUES ('cus_1', '2024-12-20', 5), ('cus_1', '2024-12-21', 6), ('cus "2"', '2024-12-20', 1);
UPDATE daily SET units = 7 WHERE customer_id = 'cus_1' AND day = '2024-12-20';
SELECT event_key, operation, record FROM events WHERE model = 'daily' ORDER BY event_key, operation;
SELECT key FROM hyperline.preview('daily');
-- an update that changes the key: the old key removed, the new added, in that order
DELETE FROM hyperline.outbox;
UPDATE daily SET day = '2024-12-22' WHERE customer_id = 'cus_1' AND day = '2024-12-21';
SELECT event_key, operation, method, record FROM events ORDER BY id;
-- key columns: named exactly, each once, and unique together
SELECT hyperline.create_model('m3', 'daily', 'customer_id', '{}');
SELECT hyperline.create_model('m3', 'daily', 'customer_id, Day', '{}');
SELECT hyperline.create_model('m3', 'daily', 'customer_id, day, day', '{}');
SELECT hyperline.create_model('m3', 'daily', 'customer_id,', '{}');
CREATE TABLE loose (ref text, units int);
SELECT hyperline.create_model('loose', 'loose', 'ref', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.ref }}"}} $$);
CREATE UNIQUE INDEX ON loose (ref);
SELECT hyperline.create_model('loose', 'loose', 'ref', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.ref }}"}} $$);
ALTER TABLE loose ALTER COLUMN ref SET NOT NULL;
SELECT hyperline.create_model('loose', 'loose', 'ref', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.ref }}"}} $$);
-- a unique index on a subset of the key columns is enough
CREATE TABLE wide (id int PRIMARY KEY, region text NOT NULL);
SELECT hyperline.create_model('wide', 'wide', 'id, region', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);

-- ---------------------------------------------------------------------------
-- delete_mode
-- ---------------------------------------------------------------------------
DELETE FROM hyperline.outbox;
-- 'event' (the default): the removed row's event, posted with operation = 'delete'
DELETE FROM daily WHERE customer_id = 'cus "2"';
SELECT hyperline.alter_model('daily', delete_mode => 'api');
-- 'api': DELETE /v1/events with the rendered record.id
DELETE FROM daily WHERE day = '2024-12-22';
SELECT event_key, operation, method, record FROM events ORDER BY id;
SELECT hyperline.alter_model('daily', delete_mode => 'soft');
SELECT name, delete_mode FROM hyperline.models WHERE name = 'daily';

-- ---------------------------------------------------------------------------
-- The table's life
-- ---------------------------------------------------------------------------
DELETE FROM hyperline.outbox;
CREATE SCHEMA billing;
CREATE TABLE billing.seats (id int PRIMARY KEY, customer text, plan text);
SELECT hyperline.create_model('seats', 'billing.seats', 'id', $$ {"customer_id": "{{ row.customer }}",
  "event_type": "seat", "timestamp": 0, "record": {"id": "{{ row.id }}", "plan": "{{ row.plan }}"}} $$,
  filter => 'plan <> ''free''');
INSERT INTO billing.seats VALUES (1, 'c1', 'pro');
-- renaming the table or its schema keeps the model working
ALTER TABLE billing.seats RENAME TO places;
ALTER SCHEMA billing RENAME TO invoicing;
INSERT INTO invoicing.places VALUES (2, 'c2', 'pro');
SELECT name, source FROM hyperline.models WHERE name = 'seats';
-- renaming a column the filter uses: the filter follows
ALTER TABLE invoicing.places RENAME COLUMN plan TO tier;
SELECT filter FROM hyperline.models WHERE name = 'seats';
-- ... one the template uses: a WARNING names the model; writes go on, and its
-- events are recorded failed
ALTER TABLE invoicing.places RENAME COLUMN customer TO client;
INSERT INTO invoicing.places VALUES (3, 'c3', 'pro');
SELECT event_key, status, last_error FROM events WHERE model = 'seats' ORDER BY event_key;
SELECT hyperline.alter_model('seats', payload => $$ {"customer_id": "{{ row.client }}",
  "event_type": "seat", "timestamp": 0, "record": {"id": "{{ row.id }}", "plan": "{{ row.tier }}"}} $$);
ALTER TABLE invoicing.places ALTER COLUMN client TYPE varchar(20);
INSERT INTO invoicing.places VALUES (4, 'c4', 'pro');
SELECT event_key, status, record FROM events WHERE model = 'seats' AND event_key = '4';
-- dropping a column the template uses: a WARNING, writes go on
ALTER TABLE invoicing.places ADD COLUMN note text;
SELECT hyperline.alter_model('seats', payload => $$ {"customer_id": "{{ row.client }}",
  "event_type": "seat", "timestamp": 0, "record": {"id": "{{ row.id }}", "note": "{{ row.note }}"}} $$);
ALTER TABLE invoicing.places DROP COLUMN note;
INSERT INTO invoicing.places VALUES (5, 'c5', 'pro');
SELECT event_key, status, last_error FROM events WHERE model = 'seats' AND event_key = '5';
-- dropping a column the filter uses needs CASCADE, which takes the model's
-- triggers: a WARNING says so
ALTER TABLE invoicing.places DROP COLUMN tier;
ALTER TABLE invoicing.places DROP COLUMN tier CASCADE;
-- DROP TABLE removes the model (a NOTICE names it); its events stay and are delivered
SELECT count(*) AS pending_before_drop FROM events WHERE model = 'seats' AND status = 'pending';
SET client_min_messages = notice;
DROP TABLE invoicing.places;
RESET client_min_messages;
SELECT name FROM hyperline.models WHERE name = 'seats';
SELECT count(*) AS pending_after_drop FROM events WHERE model = 'seats' AND status = 'pending';
-- ... also with CASCADE, and with its schema
CREATE TABLE invoicing.a (id int PRIMARY KEY);
CREATE TABLE invoicing.b (id int PRIMARY KEY, a int REFERENCES invoicing.a);
SELECT hyperline.create_model('a', 'invoicing.a', 'id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
SELECT hyperline.create_model('b', 'invoicing.b', 'id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
SET client_min_messages = notice;
DROP TABLE invoicing.a CASCADE;
DROP SCHEMA invoicing CASCADE;
RESET client_min_messages;
SELECT count(*) AS models_left FROM hyperline.models WHERE name IN ('a', 'b');
-- a model whose table went away by another path can still be dropped
CREATE TABLE gone (id int PRIMARY KEY);
SELECT hyperline.create_model('gone', 'gone', 'id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
ALTER EVENT TRIGGER hyperline_sql_drop DISABLE;
DROP TABLE gone;
ALTER EVENT TRIGGER hyperline_sql_drop ENABLE;
SELECT name, source IS NOT NULL AS has_source FROM hyperline.models WHERE name = 'gone';
SELECT hyperline.drop_model('gone');
SELECT hyperline.create_model('gone', 'usage', 'id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
SELECT hyperline.drop_model('gone');

-- TRUNCATE removes rows without row triggers: no event (see README)
DELETE FROM hyperline.outbox;
TRUNCATE usage;
SELECT count(*) AS events_after_truncate FROM events;

-- Inheritance children fire none of their parent's triggers; preview and
-- backfill read the parent's own rows only (partitions are read, and fire).
CREATE TABLE parent_t (id int PRIMARY KEY, c text);
CREATE TABLE child_t () INHERITS (parent_t);
INSERT INTO parent_t VALUES (1, 'parent');
INSERT INTO child_t VALUES (2, 'child');
SELECT hyperline.create_model('parent_t', 'parent_t', 'id', $$ {"customer_id": "{{ row.c }}", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
INSERT INTO child_t VALUES (3, 'child');
SELECT key FROM hyperline.preview('parent_t');
SELECT hyperline.backfill('parent_t');
SELECT event_key FROM events WHERE model = 'parent_t';

-- A row moved to another partition by an UPDATE of its key.
CREATE TABLE regional (id int, region text, n int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE regional_eu PARTITION OF regional FOR VALUES IN ('eu');
CREATE TABLE regional_us PARTITION OF regional FOR VALUES IN ('us');
SELECT hyperline.create_model('regional', 'regional', 'id, region', $$ {"customer_id": "{{ row.region }}",
  "event_type": "e", "timestamp": 0, "record": {"id": "{{ row.id }}-{{ row.region }}", "n": {{ row.n }}}} $$,
  triggers => '{insert,update,delete}');
INSERT INTO regional VALUES (1, 'eu', 1);
UPDATE regional SET region = 'us' WHERE id = 1;
SELECT event_key, operation, record FROM events WHERE model = 'regional' ORDER BY id;

-- Long model names (up to 63 characters) never truncate a trigger's name.
DELETE FROM hyperline.outbox;
CREATE TABLE long_names (id int PRIMARY KEY, flag boolean);
SELECT hyperline.create_model('a_model_name_of_exactly_sixty_three_characters_for_the_test_xyz', 'long_names', 'id',
  $$ {"customer_id": "c", "event_type": "e", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$,
  triggers => '{insert,update,delete}', filter => 'flag');
SELECT hyperline.create_model('a_model_name_of_exactly_sixty_three_characters_for_the_test_xy2', 'long_names', 'id',
  $$ {"customer_id": "c", "event_type": "e", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
SELECT tgname, length(tgname) FROM pg_trigger WHERE tgrelid = 'long_names'::regclass ORDER BY tgname;
SELECT hyperline.alter_model('a_model_name_of_exactly_sixty_three_characters_for_the_test_xyz', enabled => false);
INSERT INTO long_names VALUES (1, true);
SELECT model, count(*) FROM events GROUP BY model;
SELECT hyperline.drop_model('a_model_name_of_exactly_sixty_three_characters_for_the_test_xyz');
SELECT hyperline.drop_model('a_model_name_of_exactly_sixty_three_characters_for_the_test_xy2');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'long_names'::regclass;

SET client_min_messages = warning;
DROP TABLE usage, daily, loose, wide, long_names, parent_t CASCADE;
DROP TABLE regional;
DROP VIEW events;
DROP OWNED BY hl_owner;
DROP ROLE hl_owner;
DROP FUNCTION secret_rule(int);
