-- Attacks by an ordinary role that owns a table, a schema or a database
-- (issue 11): each is tried as that role and must leave it without superuser
-- rights, without anything of another role's, and with a clear error.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
DROP SCHEMA IF EXISTS mal CASCADE;
DROP TABLE IF EXISTS victim_calls;
DROP ROLE IF EXISTS hl_mallory;
DROP ROLE IF EXISTS hl_alice;
DROP ROLE IF EXISTS hl_admins;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_key_1234');
SELECT hyperline.create_destination('shared', api_key => 'sk_test_key_5678');

-- The victim: a superuser's table and model.
CREATE TABLE victim_calls (id int PRIMARY KEY, customer text, secret text);
INSERT INTO victim_calls VALUES (1, 'cus_v', 'victim secret');
SELECT hyperline.create_model('victim', 'victim_calls', 'id', $$ {"customer_id": "{{ row.customer }}",
  "event_type": "victim", "timestamp": 0, "record": {"id": "v{{ row.id }}", "s": "{{ row.secret }}"}} $$);

-- The attacker owns a schema, a table in it, and may use destination hyperline.
CREATE ROLE hl_mallory LOGIN;
CREATE SCHEMA mal AUTHORIZATION hl_mallory;
SELECT hyperline.grant_destination('hyperline', 'hl_mallory');
SET ROLE hl_mallory;
-- Code the attacker wants a superuser to run: it records who ran it and makes
-- the attacker a superuser when it runs as anyone else.
CREATE TABLE mal.ran (who text, what text);
GRANT INSERT ON mal.ran TO PUBLIC;
CREATE FUNCTION mal.escalate(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF current_user <> 'hl_mallory' THEN
    INSERT INTO mal.ran VALUES (current_user, what);
    EXECUTE 'ALTER ROLE hl_mallory SUPERUSER';
  END IF;
END $$;
CREATE FUNCTION mal.evil_eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mal.escalate('operator =');
  RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR mal.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mal.evil_eq);
CREATE FUNCTION mal.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mal.escalate('now()');
  RETURN pg_catalog.now();
END $$;
CREATE TABLE mal.mt (id int PRIMARY KEY, c text);
RESET ROLE;

-- 1. The row trigger read hyperline._models with the writer's search_path:
-- an operator = of the attacker's ran as the extension's owner.
SET ROLE hl_mallory;
SELECT hyperline.create_model('mt', 'mal.mt', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
SET search_path = mal, pg_catalog;
INSERT INTO mal.mt VALUES (1, 'a');
UPDATE mal.mt SET c = 'b';
-- the same through every public function, with the attacker's search_path
SELECT * FROM hyperline.preview('mt');
SELECT hyperline.backfill('mt');
SELECT hyperline.alter_model('mt', payload => $$ {"customer_id": "{{ row.c }}", "event_type": "y",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
SELECT hyperline.retry('mt');
SELECT count(*) AS own_events FROM hyperline.outbox;
RESET search_path;
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'hl_mallory';
SELECT * FROM mal.ran;

-- ... and with the search_path set on a function that calls them
SET ROLE hl_mallory;
CREATE FUNCTION mal.via_function() RETURNS bigint LANGUAGE sql
  SET search_path = mal, pg_catalog AS $$ SELECT hyperline.backfill('mt') $$;
SELECT mal.via_function();
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'hl_mallory';
SELECT * FROM mal.ran;

-- 3. preview/backfill/test_delivery cast the key to text: an enum key with the
-- attacker's cast to text ran the cast as a superuser.
SET ROLE hl_mallory;
CREATE TYPE mal.plan AS ENUM ('free', 'pro');
CREATE FUNCTION mal.plan_text(p mal.plan) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mal.escalate('cast');
  RETURN 'plan';
END $$;
CREATE CAST (mal.plan AS text) WITH FUNCTION mal.plan_text(mal.plan);
CREATE TABLE mal.plans (p mal.plan PRIMARY KEY, customer text);
INSERT INTO mal.plans VALUES ('free', 'c1'), ('pro', 'c2');
SELECT hyperline.create_model('plans', 'mal.plans', 'p', $$ {"customer_id": "{{ row.customer }}",
  "event_type": "plan", "timestamp": 0, "record": {"id": "{{ row.p }}"}} $$);
SELECT * FROM hyperline.preview('plans');
SELECT hyperline.backfill('plans');
SELECT event_key FROM hyperline.outbox WHERE model = 'plans' ORDER BY id;
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'hl_mallory';
SELECT * FROM mal.ran;

-- 5. Ownership was checked against the outer user: an index expression run by
-- a superuser's ANALYZE (or autovacuum) dropped another role's model.
SET ROLE hl_mallory;
CREATE FUNCTION mal.drop_victim(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  BEGIN
    PERFORM hyperline.drop_model('victim');
  EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'drop_model from an index expression: %', SQLERRM;
  END;
  RETURN i;
END $$;
CREATE TABLE mal.ix (i int);
INSERT INTO mal.ix VALUES (1);
CREATE INDEX ON mal.ix (mal.drop_victim(i));
RESET ROLE;
SET client_min_messages = notice;
ANALYZE mal.ix;
RESET client_min_messages;
SELECT name FROM hyperline.models WHERE name = 'victim';
-- a SECURITY DEFINER function of the attacker, called by a superuser, acts
-- with the attacker's rights (its current user), not the superuser's
SET ROLE hl_mallory;
CREATE FUNCTION mal.helper() RETURNS void LANGUAGE sql SECURITY DEFINER AS $$
  SELECT hyperline.drop_model('victim') $$;
RESET ROLE;
SELECT mal.helper();
SELECT name FROM hyperline.models WHERE name = 'victim';

-- 6. preview ignored row level security on the source.
CREATE ROLE hl_alice LOGIN;
CREATE ROLE hl_admins;
GRANT hl_admins TO hl_alice;
CREATE POLICY only_mine ON victim_calls USING (customer = current_user::text);
ALTER TABLE victim_calls ENABLE ROW LEVEL SECURITY;
INSERT INTO victim_calls VALUES (2, 'hl_alice', 'alice row');
GRANT SELECT ON victim_calls TO hl_alice;
SET hyperline.admin_role = 'hl_admins';
SET ROLE hl_alice;
SELECT id FROM victim_calls;
SELECT key FROM hyperline.preview('victim');
RESET ROLE;
-- a member of hyperline.admin_role sees every model; alone, alice sees none
RESET hyperline.admin_role;
SET ROLE hl_alice;
SELECT * FROM hyperline.preview('victim');
SELECT count(*) AS models_seen FROM hyperline.models;
RESET ROLE;
ALTER TABLE victim_calls DISABLE ROW LEVEL SECURITY;

-- 7. Events under another model's name: the trigger function is not
-- executable by PUBLIC, and fires only on its model's table.
SET ROLE hl_mallory;
CREATE TABLE mal.fake (id int PRIMARY KEY, customer text);
CREATE TRIGGER fake AFTER INSERT ON mal.fake FOR EACH ROW EXECUTE FUNCTION hyperline._trigger('victim');
RESET ROLE;
CREATE TABLE not_victim (id int PRIMARY KEY, customer text, secret text);
CREATE TRIGGER by_hand AFTER INSERT ON not_victim FOR EACH ROW EXECUTE FUNCTION hyperline._trigger('victim');
INSERT INTO not_victim VALUES (7, 'c', 's');
DROP TABLE not_victim;
-- ... and a destination is used only by whom a superuser allowed
SET ROLE hl_mallory;
CREATE TABLE mal.overwrite (id int PRIMARY KEY);
SELECT hyperline.create_model('overwrite', 'mal.overwrite', 'id', $$ {"customer_id": "c",
  "event_type": "victim", "timestamp": 0, "record": {"id": "v1"}} $$, destination => 'shared');
RESET ROLE;
SELECT hyperline.revoke_destination('hyperline', 'hl_mallory');
SELECT hyperline.drop_model('mt');
SELECT hyperline.drop_model('plans');
SELECT hyperline.revoke_destination('hyperline', 'hl_mallory');
SET ROLE hl_mallory;
SELECT hyperline.create_model('overwrite', 'mal.overwrite', 'id', $$ {"customer_id": "c",
  "event_type": "victim", "timestamp": 0, "record": {"id": "v1"}} $$);
RESET ROLE;

-- 8. Templates, models, events and private functions are not for everyone.
SET ROLE hl_mallory;
SELECT count(*) AS models_seen FROM hyperline._models;
SELECT count(*) AS models_seen FROM hyperline.models;
SELECT count(*) AS events_seen FROM hyperline.outbox WHERE model = 'victim';
SELECT count(*) AS status_seen FROM hyperline.model_status WHERE model = 'victim';
SELECT * FROM hyperline.preview('victim');
SELECT hyperline.drop_model('victim');
SELECT hyperline._caller();
SELECT hyperline._backfill_rows('victim');
SELECT hyperline._drop_model('victim');
SELECT * FROM hyperline._render_rows('victim', 5);
SELECT hyperline._validate_model('victim_calls', 'id', '{}', 'x', NULL);
SELECT hyperline._send_test('victim', '{}', 'insert');
SELECT * FROM _hyperline.api_keys;
RESET ROLE;

-- 9. Code run as the attacker (a function its query model's query calls, a
-- policy on its own table) set search_path for the session with
-- set_config(..., false), which outlives a function's SET clause: the
-- extension owner's code after it (run_model's clock_timestamp(), backfill's
-- and alter_model's now() and =) resolved names in the attacker's schema. What
-- such code sets is undone when the extension takes its rights back.
SELECT hyperline.grant_destination('hyperline', 'hl_mallory');
SET ROLE hl_mallory;
CREATE FUNCTION mal.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mal.escalate('clock_timestamp()');
  RETURN pg_catalog.clock_timestamp();
END $$;
CREATE FUNCTION mal.hijack() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_catalog.set_config('search_path', 'mal, pg_catalog', false);
  PERFORM pg_catalog.set_config('work_mem', '77kB', false);
  RETURN 1;
END $$;
SELECT hyperline.create_query_model('hijack', 'SELECT 1 AS id, mal.hijack() AS h', 'id',
  $$ {"customer_id": "c", "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$,
  schedule => '');
SHOW search_path;
SELECT * FROM hyperline.run_model('hijack');
SHOW search_path;
SHOW work_mem;
CREATE TABLE mal.rls (id int PRIMARY KEY);
INSERT INTO mal.rls VALUES (1);
SELECT hyperline.create_model('rls', 'mal.rls', 'id', $$ {"customer_id": "c", "event_type": "x",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
ALTER TABLE mal.rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE mal.rls FORCE ROW LEVEL SECURITY;
CREATE POLICY hijack ON mal.rls USING (mal.hijack() = 1);
SELECT * FROM hyperline.preview('rls');
SELECT hyperline.backfill('rls');
SELECT hyperline.alter_model('rls', payload => $$ {"customer_id": "d", "event_type": "x",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
SHOW search_path;
SELECT hyperline.drop_model('rls');
SELECT hyperline.drop_model('hijack');
RESET ROLE;
SELECT hyperline.revoke_destination('hyperline', 'hl_mallory');
SELECT rolsuper FROM pg_roles WHERE rolname = 'hl_mallory';

-- After all of it: the attacker is no superuser, and no code of its ran as anyone else.
SELECT rolsuper FROM pg_roles WHERE rolname = 'hl_mallory';
SELECT count(*) AS ran_as_someone_else FROM mal.ran;
SELECT name FROM hyperline.models ORDER BY name;

SET client_min_messages = warning;
DROP SCHEMA mal CASCADE;
DROP TABLE victim_calls;
DROP OWNED BY hl_mallory;
DROP OWNED BY hl_alice;
DROP ROLE hl_mallory;
DROP ROLE hl_alice;
DROP ROLE hl_admins;

-- 4. A schema hyperline made before CREATE EXTENSION by a role that owns the
-- database (or may create schemas in it): the extension refuses to install
-- into it, as into any schema that already holds something.
DROP EXTENSION pg_hyperline CASCADE;
DROP SCHEMA IF EXISTS hyperline;
CREATE ROLE hl_dbowner;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO hl_dbowner', current_database()); END $$;
SET ROLE hl_dbowner;
CREATE SCHEMA hyperline;
CREATE FUNCTION hyperline._get_model(model text, see_only boolean) RETURNS void LANGUAGE sql AS 'SELECT';
RESET ROLE;
CREATE EXTENSION pg_hyperline;
DROP SCHEMA hyperline CASCADE;
SET ROLE hl_dbowner;
CREATE SCHEMA hyperline;
RESET ROLE;
CREATE EXTENSION pg_hyperline;
DROP SCHEMA hyperline;
-- the superuser's own empty schema is fine
CREATE SCHEMA hyperline;
CREATE EXTENSION pg_hyperline;
SELECT extname FROM pg_extension WHERE extname = 'pg_hyperline';
DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM hl_dbowner', current_database()); END $$;
DROP ROLE hl_dbowner;
