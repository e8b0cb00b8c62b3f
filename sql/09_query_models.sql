-- Query models: create/alter/drop, validation errors, schedules, runs diffed
-- by key (added, updated, removed, unchanged), duplicate and NULL keys, query
-- errors, send_initial, delete modes, and who sees and manages what.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
DROP SCHEMA IF EXISTS crm CASCADE;
DROP SCHEMA IF EXISTS qm CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
-- this test's tables live in schema qm: a query model keeps the search_path
-- its creator had
CREATE SCHEMA qm;
GRANT USAGE ON SCHEMA qm TO PUBLIC;
SET search_path = qm, public;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_key_1234');
CREATE VIEW events WITH (security_invoker = true) AS
  SELECT id, model, event_key, operation, method, status, payload->'record' AS record, last_error
  FROM hyperline.outbox;
CREATE VIEW runs WITH (security_invoker = true) AS
  SELECT run_id, model, status, rows, added, updated, removed, unchanged, error,
         finished_at >= started_at AS timed
  FROM hyperline.sync_runs;
GRANT SELECT ON events, runs TO PUBLIC;

-- ---------------------------------------------------------------------------
-- A query model: the seats of each account, from a membership table
-- ---------------------------------------------------------------------------
CREATE TABLE members (account text NOT NULL, member text NOT NULL, role text,
                      PRIMARY KEY (account, member));
INSERT INTO members VALUES ('acme', 'ann', 'admin'), ('acme', 'bob', 'user'), ('globex', 'cid', 'user');
SELECT hyperline.create_query_model('seats',
  $$SELECT account, count(*) AS seats FROM members GROUP BY account$$, 'account',
  $$ {"customer_id": "{{ row.account }}", "event_type": "seats", "timestamp": "2024-12-20T00:00:00Z",
      "record": {"id": "seats-{{ row.account }}", "seats": {{ row.seats }},
                 "previous": {{ old.seats | default: 0 }},
                 "deleted": {% if operation == 'delete' %}true{% else %}false{% endif %}}} $$,
  schedule => NULL, triggers => '{insert,update,delete}');
SELECT name, kind, source, query, primary_key, triggers, schedule, enabled, delete_mode
  FROM hyperline.models;
SELECT name, owner, search_path, send_initial, next_run_at FROM hyperline._models;
-- preview renders the query's rows; nothing is recorded or sent
SELECT * FROM hyperline.preview('seats') ORDER BY key;
SELECT count(*) AS events, (SELECT count(*) FROM hyperline._query_state) AS keys FROM hyperline.outbox;

-- the first run sends every row as added
SELECT * FROM hyperline.run_model('seats');
SELECT event_key, operation, method, record FROM events ORDER BY event_key;
SELECT * FROM runs;
-- nothing changed: nothing sent
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');
SELECT count(*) AS events FROM hyperline.outbox;
-- a hand-made change set: acme grows (updated), globex goes (removed),
-- initech comes (added), hooli stays as it was (unchanged)
INSERT INTO members VALUES ('hooli', 'gav', 'user');
SELECT added FROM hyperline.run_model('seats');
DELETE FROM hyperline.outbox;
INSERT INTO members VALUES ('acme', 'dan', 'user'), ('initech', 'eve', 'admin');
DELETE FROM members WHERE account = 'globex';
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');
-- the update sees the previous row as `old`; the removal is the last row the
-- model recorded, rendered with operation 'delete'
SELECT event_key, operation, method, record FROM events ORDER BY event_key;
SELECT model, key, run_id > 0 AS recorded FROM hyperline._query_state ORDER BY key;
-- a change that does not change the payload sends nothing
DELETE FROM hyperline.outbox;
UPDATE members SET role = 'admin' WHERE member = 'bob';
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');
SELECT count(*) AS events FROM hyperline.outbox;
-- ... nor does a change of a column the template does not read
SELECT hyperline.alter_model('seats',
  query => $$SELECT account, count(*) AS seats, max(member) AS last_member FROM members GROUP BY account$$);
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');
INSERT INTO members VALUES ('hooli', 'aaron', 'user');
DELETE FROM members WHERE member = 'gav';
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');
SELECT count(*) AS events FROM hyperline.outbox;
SELECT run_id, status, rows, added, updated, removed, unchanged, error, timed FROM runs ORDER BY run_id;

-- each kind produces an event only if its trigger is on; the state follows
-- the result either way
SELECT hyperline.alter_model('seats', triggers => '{insert}');
DELETE FROM members WHERE account = 'hooli';
INSERT INTO members VALUES ('initech', 'fay', 'user'), ('umbrella', 'gus', 'user');
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');
SELECT event_key, operation FROM events ORDER BY event_key;
SELECT key FROM hyperline._query_state ORDER BY key;
DELETE FROM hyperline.outbox;
SELECT hyperline.alter_model('seats', triggers => '{insert,update,delete}');
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');

-- a new payload changes what Hyperline receives: every key is updated
SELECT hyperline.alter_model('seats', payload => $$ {"customer_id": "{{ row.account }}",
  "event_type": "seats", "timestamp": "2024-12-20T00:00:00Z",
  "record": {"id": "seats-{{ row.account }}", "seats": {{ row.seats }}, "plan": "team"}} $$);
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');
SELECT event_key, operation, record FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;

-- a new query is diffed against what the old one sent
SELECT hyperline.alter_model('seats',
  query => $$SELECT account, count(*) FILTER (WHERE role = 'admin') AS seats FROM members GROUP BY account$$);
SELECT added, updated, removed, unchanged FROM hyperline.run_model('seats');
SELECT event_key, operation, record FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;

-- ---------------------------------------------------------------------------
-- Runs that fail change nothing
-- ---------------------------------------------------------------------------
CREATE TABLE usage_events (id bigserial PRIMARY KEY, customer text, day date, units numeric);
INSERT INTO usage_events (customer, day, units) VALUES
  ('cus_1', '2024-12-20', 2.5), ('cus_1', '2024-12-20', 1), ('cus_2', '2024-12-20', 7),
  ('cus_1', '2024-12-21', 4);
SELECT hyperline.create_query_model('daily_usage',
  $$SELECT customer, day, sum(units) AS units FROM usage_events GROUP BY customer, day$$,
  'customer, day',
  $$ {"customer_id": "{{ row.customer }}", "event_type": "api_usage", "timestamp": "{{ row.day }}T00:00:00Z",
      "record": {"id": "{{ row.customer }}-{{ row.day }}", "units": {{ row.units }}}} $$,
  schedule => '1 day');
SELECT added, updated, removed, unchanged FROM hyperline.run_model('daily_usage');
-- a timestamp Hyperline would reject (a date alone) is a warning, not an
-- error: the model is created
SELECT hyperline.create_query_model('dated', $$SELECT min(day) AS day FROM usage_events$$, 'day',
  $$ {"customer_id": "c", "event_type": "e", "timestamp": "{{ row.day }}", "record": {"id": "{{ row.day }}"}} $$,
  schedule => NULL);
SELECT hyperline.drop_model('dated');
-- composite keys: event_key is the JSON array of the key values as text
SELECT event_key, operation, record FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;
-- a key twice in the result: the run fails naming it
SELECT hyperline.alter_model('daily_usage',
  query => $$SELECT customer, day, units FROM usage_events$$);
SELECT * FROM hyperline.run_model('daily_usage');
-- the query's own error, with Postgres's message (it ran at alter time: no
-- key summed to 500 then)
SELECT hyperline.alter_model('daily_usage',
  query => $$SELECT customer, day, sum(units) / (sum(units) - 500) AS units FROM usage_events GROUP BY customer, day$$);
INSERT INTO usage_events (customer, day, units) VALUES ('cus_3', '2024-12-22', 500);
SELECT * FROM hyperline.run_model('daily_usage');
-- a NULL key
SELECT hyperline.alter_model('daily_usage',
  query => $$SELECT customer, day, sum(units) AS units FROM usage_events GROUP BY customer, day
             UNION ALL SELECT NULL, NULL, 1 WHERE EXISTS (SELECT 1 FROM usage_events WHERE units > 100)$$);
SELECT * FROM hyperline.run_model('daily_usage');
-- statement_timeout and cancel act inside a run
SELECT hyperline.alter_model('daily_usage',
  query => $$SELECT customer, day, sum(units) AS units FROM usage_events
             WHERE pg_sleep(0.2) IS NOT NULL GROUP BY customer, day$$);
SET statement_timeout = '300ms';
SELECT * FROM hyperline.run_model('daily_usage');
RESET statement_timeout;
-- nothing of the failed runs was kept: no event, no state change, no run
SELECT count(*) AS events FROM hyperline.outbox;
SELECT key, run_id = (SELECT min(run_id) FROM runs WHERE model = 'daily_usage') AS first_run
  FROM hyperline._query_state WHERE model = 'daily_usage' ORDER BY key;
SELECT count(*) AS runs FROM runs WHERE model = 'daily_usage';
-- fixed, the next run does the whole diff
SELECT hyperline.alter_model('daily_usage',
  query => $$SELECT customer, day, sum(units) AS units FROM usage_events GROUP BY customer, day$$);
SELECT added, updated, removed, unchanged FROM hyperline.run_model('daily_usage');
SELECT event_key, operation, record FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;

-- ---------------------------------------------------------------------------
-- send_initial => false: the first run records the result without sending it
-- ---------------------------------------------------------------------------
SELECT hyperline.create_query_model('quiet',
  $$SELECT account, count(*) AS seats FROM members GROUP BY account$$, 'account',
  $$ {"customer_id": "{{ row.account }}", "event_type": "seats", "timestamp": 0,
      "record": {"id": "q-{{ row.account }}", "seats": {{ row.seats }}}} $$,
  schedule => NULL, send_initial => false);
SELECT added, updated, removed, unchanged FROM hyperline.run_model('quiet');
SELECT count(*) AS events FROM hyperline.outbox;
INSERT INTO members VALUES ('umbrella', 'hal', 'user'), ('wayne', 'ivy', 'user');
SELECT added, updated, removed, unchanged FROM hyperline.run_model('quiet');
SELECT event_key, operation, record FROM events ORDER BY event_key;
DELETE FROM hyperline.outbox;

-- ---------------------------------------------------------------------------
-- Removed keys, by delete_mode
-- ---------------------------------------------------------------------------
SELECT hyperline.create_query_model('plans',
  $$SELECT account, max(role) AS top_role, now() - now() AS age FROM members GROUP BY account$$, 'account',
  $$ {"customer_id": "{{ row.account }}", "event_type": "plan", "timestamp": 0,
      "record": {"id": "p-{{ row.account }}", "role": "{{ row.top_role }}", "op": "{{ operation }}"}} $$,
  schedule => NULL, triggers => '{insert,update,delete}');
SELECT added FROM hyperline.run_model('plans');
DELETE FROM hyperline.outbox;
-- 'event' (the default): the removal is posted as an event, operation 'delete'
DELETE FROM members WHERE account = 'wayne';
SELECT removed FROM hyperline.run_model('plans');
-- 'api': DELETE /v1/events with the rendered record.id
SELECT hyperline.alter_model('plans', delete_mode => 'api');
DELETE FROM members WHERE account = 'umbrella';
SELECT removed FROM hyperline.run_model('plans');
SELECT event_key, operation, method, record FROM events ORDER BY id;
DELETE FROM hyperline.outbox;

-- ---------------------------------------------------------------------------
-- Every validation error, with its message; nothing created
-- ---------------------------------------------------------------------------
\set tmpl '{"customer_id": "{{ row.account }}", "event_type": "e", "timestamp": 0, "record": {"id": "{{ row.account }}"}}'
-- the query: one read-only SELECT that runs
SELECT hyperline.create_query_model('bad', 'DELETE FROM members RETURNING account', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT 1 AS account; SELECT 2 AS account', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT account INTO TEMP t FROM members', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members FOR UPDATE', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad',
  'WITH gone AS (DELETE FROM members RETURNING account) SELECT account FROM gone', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM (SELECT * FROM members FOR SHARE) m',
  'account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELEC account FROM members', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM no_such_table', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT account, 1 / 0 AS x FROM members', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', '', 'account', :'tmpl');
-- a query ending in a comment or a semicolon is fine (the model is dropped again)
SELECT hyperline.create_query_model('fine', E'SELECT DISTINCT account FROM members; -- accounts\n',
  'account', :'tmpl', schedule => NULL);
SELECT * FROM hyperline.preview('fine', 1);
SELECT hyperline.drop_model('fine');
-- the key columns and every row.x exist in the result (did-you-mean)
SELECT hyperline.create_query_model('bad', 'SELECT account AS "Account" FROM members', 'account',
  $${"customer_id": "x", "event_type": "e", "timestamp": 0, "record": {"id": "1"}}$$);
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'acount', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account, account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT account, member FROM members', 'account',
  $${"customer_id": "{{ row.acount }}", "event_type": "e", "timestamp": 0, "record": {"id": "1"}}$$);
SELECT hyperline.create_query_model('bad', 'SELECT account, member FROM members', 'account',
  $${"customer_id": "{{ old.Member }}", "event_type": "e", "timestamp": 0, "record": {"id": "1"}}$$);
SELECT hyperline.create_query_model('bad', 'SELECT m.account, n.account FROM members m JOIN members n USING (member)',
  'account', :'tmpl');
-- the template parses and renders an event Hyperline accepts
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account',
  $${"customer_id": "{{ row.account }", "event_type": "e"}$$);
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account',
  $${"event_type": "e", "timestamp": 0, "record": {"id": "{{ row.account }}"}}$$);
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account',
  $${"customer_id": "{{ row.account }}", "event_type": "e", "timestamp": 0, "record": {"id": {{ 1 | divided_by: 0 }}}}$$);
-- ... also on a sample row when the query returns none
SELECT hyperline.create_query_model('bad', 'SELECT account, 2 AS n FROM members WHERE false', 'account',
  $${"customer_id": "{{ row.account }}", "event_type": "e", "timestamp": 0, "record": {"ref": "{{ row.n }}"}}$$);
-- a NULL key in the first row
SELECT hyperline.create_query_model('bad', 'SELECT NULL::text AS account', 'account', :'tmpl');
-- the schedule: an interval, or a five-field cron expression in UTC
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account', :'tmpl',
  schedule => '15 fortnights');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account', :'tmpl',
  schedule => '1 month');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account', :'tmpl',
  schedule => '0 25 * * *');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account', :'tmpl',
  schedule => '*/15 * * *');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account', :'tmpl',
  schedule => '0 0 * * funday');
-- the other settings
SELECT hyperline.create_query_model('Bad', 'SELECT account FROM members', 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', NULL, 'account', :'tmpl');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account', :'tmpl',
  triggers => '{insert,upsert}');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account', :'tmpl',
  delete_mode => 'soft');
SELECT hyperline.create_query_model('bad', 'SELECT account FROM members', 'account', :'tmpl',
  destination => 'nowhere');
SELECT hyperline.create_query_model('seats', 'SELECT account FROM members', 'account', :'tmpl');
SELECT count(*) AS models, count(*) FILTER (WHERE name = 'bad') AS bad FROM hyperline.models;

-- alter_model checks the same way; filter is for table models
SELECT hyperline.alter_model('seats', query => 'SELECT account FROM members');
SELECT hyperline.alter_model('seats', query => 'UPDATE members SET role = NULL');
SELECT hyperline.alter_model('seats', payload => '{"customer_id": "{{ row.nope }}"}');
SELECT hyperline.alter_model('seats', schedule => '61 * * * *');
SELECT hyperline.alter_model('seats', filter => 'seats > 1');
SELECT query FROM hyperline.models WHERE name = 'seats';
-- run_model runs query models that are enabled
CREATE TABLE plain (id int PRIMARY KEY, c text);
SELECT hyperline.create_model('plain', 'plain', 'id', $${"customer_id": "{{ row.c }}", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}"}}$$);
SELECT * FROM hyperline.run_model('plain');
SELECT * FROM hyperline.run_model('nope');
SELECT hyperline.alter_model('seats', enabled => false);
SELECT * FROM hyperline.run_model('seats');
SELECT hyperline.alter_model('seats', enabled => true);

-- ---------------------------------------------------------------------------
-- Schedules
-- ---------------------------------------------------------------------------
SELECT s AS schedule, hyperline._next_run_at(s, '2024-12-20 16:04:11.5+00') AT TIME ZONE 'UTC' AS next_run
  FROM unnest(ARRAY['15 minutes', '1 hour', '1 day', '90 seconds', '1h30m', '0 * * * *',
                    '*/15 * * * *', '30 2 * * mon-fri', '0 0 1 * *', '0 9 * * 0', '@daily', '@hourly',
                    ' 5 4 * * * ', '']) s;
-- after a run, an interval keeps its phase and skips the slots the run overran
SELECT hyperline._next_due('15 minutes', '2024-12-20 16:00:00+00', '2024-12-20 16:47:03+00') AT TIME ZONE 'UTC';
SELECT hyperline._next_due('0 * * * *', '2024-12-20 16:00:00+00', '2024-12-20 16:00:01+00') AT TIME ZONE 'UTC';
-- the first run is one step away; a NULL or '' schedule runs only when asked
SELECT name, schedule, next_run_at > now() + interval '23 hours 59 minutes'
                       AND next_run_at <= now() + interval '1 day' AS in_a_day
  FROM hyperline._models WHERE name = 'daily_usage';
SELECT hyperline.alter_model('daily_usage', schedule => '0 3 * * *');
SELECT schedule, extract(hour FROM next_run_at AT TIME ZONE 'UTC') AS hour_utc,
       extract(minute FROM next_run_at AT TIME ZONE 'UTC') AS minute FROM hyperline._models WHERE name = 'daily_usage';
SELECT hyperline.alter_model('daily_usage', schedule => '');
SELECT schedule, next_run_at FROM hyperline._models WHERE name = 'daily_usage';

-- ---------------------------------------------------------------------------
-- Who sees and manages what
-- ---------------------------------------------------------------------------
CREATE ROLE hl_qowner;
CREATE ROLE hl_qother;
CREATE ROLE hl_qadmin;
CREATE ROLE hl_qauditor IN ROLE hl_qadmin;
CREATE SCHEMA crm;
CREATE TABLE crm.accounts (id text PRIMARY KEY, plan text, secret text);
INSERT INTO crm.accounts VALUES ('acc_1', 'pro', 's1'), ('acc_2', 'free', 's2');
GRANT USAGE, CREATE ON SCHEMA crm TO hl_qowner;
GRANT SELECT (id, plan) ON crm.accounts TO hl_qowner;
-- any role may create a query model, once it may use the destination
SET ROLE hl_qowner;
SELECT hyperline.create_query_model('accounts', 'SELECT id, plan FROM crm.accounts', 'id',
  $${"customer_id": "{{ row.id }}", "event_type": "plan", "timestamp": 0, "record": {"id": "{{ row.id }}", "plan": "{{ row.plan }}"}}$$);
RESET ROLE;
SELECT hyperline.grant_destination('hyperline', 'hl_qowner');
SET ROLE hl_qowner;
-- the query runs with the owner's rights: a column it may not read is refused
SELECT hyperline.create_query_model('accounts', 'SELECT id, secret FROM crm.accounts', 'id',
  $${"customer_id": "{{ row.id }}", "event_type": "plan", "timestamp": 0, "record": {"id": "{{ row.id }}"}}$$);
-- ... and with the owner's search_path at creation
SET search_path = crm, public;
SELECT hyperline.create_query_model('accounts', 'SELECT id, plan, current_user AS runner FROM accounts', 'id',
  $${"customer_id": "{{ row.id }}", "event_type": "plan", "timestamp": 0,
     "record": {"id": "{{ row.id }}", "plan": "{{ row.plan }}", "runner": "{{ row.runner }}"}}$$,
  schedule => '1 hour');
SET search_path = qm, public;
SELECT name, owner, search_path FROM hyperline.models JOIN hyperline._models USING (name);
-- ... inside a security-restricted operation, whoever runs it
CREATE FUNCTION crm.sneaky() RETURNS text LANGUAGE plpgsql AS
  $$BEGIN CREATE TEMP TABLE grab (x int); RETURN 'x'; END$$;
SELECT hyperline.create_query_model('sneaky', 'SELECT crm.sneaky() AS id', 'id',
  $${"customer_id": "{{ row.id }}", "event_type": "plan", "timestamp": 0, "record": {"id": "{{ row.id }}"}}$$);
SELECT added FROM hyperline.run_model('accounts');
SELECT name, status, added FROM hyperline.sync_runs JOIN hyperline.models ON name = model;
SELECT key FROM hyperline._query_state;
SELECT event_key, record FROM events;
RESET ROLE;
-- another role sees none of it and may not touch it
SET ROLE hl_qother;
SELECT count(*) AS models FROM hyperline.models;
SELECT count(*) AS runs FROM hyperline.sync_runs;
SELECT count(*) AS keys FROM hyperline._query_state;
SELECT * FROM hyperline.run_model('accounts');
SELECT hyperline.alter_model('accounts', schedule => '1 minute');
SELECT hyperline.drop_model('accounts');
SELECT * FROM hyperline.preview('accounts');
RESET ROLE;
-- members of hyperline.admin_role see everything, manage nothing of others'
SET hyperline.admin_role = 'hl_qadmin';
SET ROLE hl_qauditor;
SELECT name FROM hyperline.models ORDER BY name;
SELECT count(*) > 0 AS sees_runs FROM hyperline.sync_runs WHERE model = 'accounts';
SELECT key FROM hyperline._query_state WHERE model = 'accounts';
SELECT * FROM hyperline.run_model('accounts');
-- (preview runs the owner's query with the owner's rights: managers only)
SELECT * FROM hyperline.preview('accounts');
RESET ROLE;
RESET hyperline.admin_role;
-- a superuser's run_model runs the query as its owner, in a restricted
-- operation
UPDATE crm.accounts SET plan = 'team' WHERE id = 'acc_2';
SELECT updated FROM hyperline.run_model('accounts');
SELECT event_key, record FROM events WHERE event_key = 'acc_2' ORDER BY id DESC LIMIT 1;
-- a member of the owning role manages it
GRANT hl_qowner TO hl_qother;
SET ROLE hl_qother;
SELECT hyperline.alter_model('accounts', schedule => '30 minutes');
RESET ROLE;
SELECT schedule FROM hyperline.models WHERE name = 'accounts';
-- internal functions are not for PUBLIC
SET ROLE hl_qother;
SELECT hyperline._run_query_model('accounts', 1);
SELECT * FROM hyperline._claim_due_run();
SELECT hyperline._purge_sync_runs();
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A result larger than work_mem: its partitions split while compared (a
-- 64kB work_mem splits these twice), and the diff is still exact
-- ---------------------------------------------------------------------------
CREATE TABLE qm.big (k int PRIMARY KEY, v int);
INSERT INTO qm.big SELECT g, g FROM generate_series(1, 30000) g;
SELECT hyperline.create_query_model('big', 'SELECT k, v FROM qm.big', 'k',
  $$ {"customer_id": "c{{ row.k }}", "event_type": "big", "timestamp": 0,
      "record": {"id": "big-{{ row.k }}", "v": {{ row.v }}}} $$, schedule => '1 day',
  triggers => '{insert,update,delete}');
SET work_mem = '64kB';
SELECT added, updated, removed, unchanged FROM hyperline.run_model('big');
UPDATE qm.big SET v = v + 1 WHERE k % 100 = 0;
DELETE FROM qm.big WHERE k % 1000 = 1;
INSERT INTO qm.big SELECT g, g FROM generate_series(30001, 30050) g;
SELECT added, updated, removed, unchanged FROM hyperline.run_model('big');
SELECT added, updated, removed, unchanged FROM hyperline.run_model('big');
RESET work_mem;
-- one event per change: 30,000 + 50 added, 300 updated, 30 removed (as
-- events: delete_mode 'event', rendered from the recorded row)
SELECT operation, count(*), count(DISTINCT event_key) AS keys
  FROM hyperline.outbox WHERE model = 'big' GROUP BY operation ORDER BY operation;
SELECT payload FROM hyperline.outbox
 WHERE model = 'big' AND event_key IN ('500', '2001') ORDER BY id DESC LIMIT 2;

-- ---------------------------------------------------------------------------
-- The state's digest; a small model's state read by its primary key
-- ---------------------------------------------------------------------------
-- a run records the digest of the state it leaves (a version byte, the
-- number of keys, two sums over the keys' hashes); an unchanged result has
-- the same digest and is not compared key by key
SELECT length(state_digest) AS digest_bytes FROM hyperline._models WHERE name = 'big';
CREATE TEMP TABLE saved_digest AS SELECT state_digest FROM hyperline._models WHERE name = 'big';
SELECT added, updated, removed, unchanged FROM hyperline.run_model('big');
-- a digest that does not match (here: garbage) costs a comparison key by
-- key, which finds the same and records the right digest again
UPDATE hyperline._models SET state_digest = '\x00' WHERE name = 'big';
SELECT added, updated, removed, unchanged FROM hyperline.run_model('big');
SELECT m.state_digest = s.state_digest AS digest_restored
  FROM hyperline._models m, saved_digest s WHERE m.name = 'big';
-- one change after an unchanged run is found, and only it
UPDATE qm.big SET v = v + 1 WHERE k = 7;
SELECT added, updated, removed, unchanged FROM hyperline.run_model('big');
SELECT event_key, operation, payload->'record' AS record FROM hyperline.outbox
 WHERE model = 'big' ORDER BY id DESC LIMIT 1;
-- a digest without its state (say the models restored without the state)
-- is not trusted: every key is recorded and sent again
DELETE FROM hyperline._query_state WHERE model = 'big';
SELECT added, updated, removed, unchanged FROM hyperline.run_model('big');
-- a new payload or query forgets the digest
SELECT hyperline.alter_model('big', payload => $$ {"customer_id": "c{{ row.k }}", "event_type": "big",
  "timestamp": 0, "record": {"id": "big-{{ row.k }}", "v": {{ row.v }}, "w": 1}} $$);
SELECT state_digest IS NULL AS digest_forgotten FROM hyperline._models WHERE name = 'big';
-- a model with fewer keys than the state table has pages reads its state
-- by the primary key instead of scanning every model's: the same diff
CREATE TABLE qm.few (k int PRIMARY KEY, v int);
INSERT INTO qm.few VALUES (1, 1), (2, 2), (3, 3);
SELECT hyperline.create_query_model('few', 'SELECT k, v FROM qm.few', 'k',
  $$ {"customer_id": "c{{ row.k }}", "event_type": "few", "timestamp": 0,
      "record": {"id": "few-{{ row.k }}", "v": {{ row.v }}, "was": {{ old.v | default: 0 }}}} $$,
  schedule => NULL, triggers => '{insert,update,delete}');
SELECT added, updated, removed, unchanged FROM hyperline.run_model('few');
UPDATE qm.few SET v = 20 WHERE k = 2;
DELETE FROM qm.few WHERE k = 3;
INSERT INTO qm.few VALUES (4, 4);
SELECT added, updated, removed, unchanged FROM hyperline.run_model('few');
SELECT added, updated, removed, unchanged FROM hyperline.run_model('few');
SELECT event_key, operation, payload->'record' AS record FROM hyperline.outbox
 WHERE model = 'few' ORDER BY id;
SELECT key FROM hyperline._query_state WHERE model = 'few' ORDER BY key;
SELECT hyperline.drop_model('few');
-- an update is rendered again as an update when the template reads
-- `operation`, also by a name chosen at render time (else the rendering that
-- found the change is the update's)
CREATE TABLE qm.ops (k int PRIMARY KEY, v int);
INSERT INTO qm.ops VALUES (1, 1), (2, 2);
SELECT hyperline.create_query_model('ops', 'SELECT k, v FROM qm.ops', 'k',
  $$ {"customer_id": "c{{ row.k }}", "event_type": "ops", "timestamp": 0,
      "record": {"id": "ops-{{ row.k }}", "v": {{ row.v }},
                 "op": "{% assign n = 'oper' | append: 'ation' %}{{ [n] }}"}} $$,
  schedule => NULL, triggers => '{insert,update,delete}');
SELECT added, updated, removed, unchanged FROM hyperline.run_model('ops');
UPDATE qm.ops SET v = 3 WHERE k = 2;
SELECT added, updated, removed, unchanged FROM hyperline.run_model('ops');
SELECT event_key, operation, payload->'record' AS record FROM hyperline.outbox
 WHERE model = 'ops' ORDER BY id;
SELECT hyperline.drop_model('ops');
SELECT hyperline.drop_model('big');

-- ---------------------------------------------------------------------------
-- Run history upkeep; drop_model
-- ---------------------------------------------------------------------------
-- a run left running by a process that is gone is marked failed
INSERT INTO hyperline._sync_runs (model, started_at, status, pid) VALUES ('seats', now(), 'running', 0);
SELECT hyperline._fail_interrupted_runs();
SELECT status, error FROM hyperline.sync_runs WHERE model = 'seats' ORDER BY run_id DESC LIMIT 1;
-- the purge keeps the last run of each model
UPDATE hyperline._sync_runs SET finished_at = now() - interval '30 days';
SELECT hyperline._purge_sync_runs() > 0 AS purged;
SELECT model, count(*) AS runs FROM hyperline.sync_runs GROUP BY model ORDER BY model;
-- dropping a query model drops its state and runs; its events stay
SELECT count(*) AS events_before FROM hyperline.outbox WHERE model = 'accounts';
SELECT hyperline.drop_model('accounts');
SELECT count(*) AS keys FROM hyperline._query_state WHERE model = 'accounts';
SELECT count(*) AS runs FROM hyperline.sync_runs WHERE model = 'accounts';
SELECT count(*) AS events_after FROM hyperline.outbox WHERE model = 'accounts';

SET client_min_messages = warning;
DROP EXTENSION pg_hyperline CASCADE;
DROP SCHEMA crm CASCADE;
DROP SCHEMA qm CASCADE;
RESET client_min_messages;
RESET search_path;
DROP ROLE hl_qowner, hl_qother, hl_qauditor, hl_qadmin;
