-- Operating it: hyperline.stats, hyperline.reset_stats(), hyperline.requests,
-- hyperline.health() — their shapes, who sees what, and what needs no worker
-- (pg_regress runs with hyperline.enabled = off: nothing is delivered here;
-- the TAP tests 040-043 deliver).
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
\set regress_db :DBNAME

-- The shapes.
SELECT table_name, string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
  FROM information_schema.columns
 WHERE table_schema = 'hyperline' AND table_name IN ('stats', 'requests')
 GROUP BY table_name ORDER BY table_name;
SELECT pg_get_function_result('hyperline.health()'::regprocedure) AS health,
       pg_get_function_result('hyperline.reset_stats()'::regprocedure) AS reset_stats;
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'hyperline' AND table_name = 'outbox' AND column_name = 'committed_at';
SELECT name, setting, unit FROM pg_settings
 WHERE name IN ('hyperline.alert_backlog_age', 'hyperline.max_stats_entries') ORDER BY name;

-- One row per destination and model, zero until something happens; the
-- percentiles are NULL without deliveries.
SELECT hyperline.create_destination('ops_dest', api_key => 'sk_ops_key_0001');
SELECT hyperline.create_destination('ops_other', api_key => 'sk_ops_key_0002');
CREATE ROLE hl_ops_owner LOGIN;
CREATE ROLE hl_ops_grantee LOGIN;
CREATE ROLE hl_ops_nobody LOGIN;
CREATE ROLE hl_ops_admins;
CREATE ROLE hl_ops_watcher LOGIN IN ROLE hl_ops_admins;
GRANT CREATE, USAGE ON SCHEMA public TO hl_ops_owner;
SELECT hyperline.grant_destination('ops_dest', 'hl_ops_owner');
SELECT hyperline.grant_destination('ops_dest', 'hl_ops_grantee');
CREATE TABLE ops_su (id int PRIMARY KEY, c text);
SELECT hyperline.create_model('ops_su', 'ops_su', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$, destination => 'ops_other');
SET ROLE hl_ops_owner;
CREATE TABLE ops_owned (id int PRIMARY KEY, c text, n int);
SELECT hyperline.create_model('ops_owned', 'ops_owned', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}", "n": {{ row.n }} }} $$,
  destination => 'ops_dest');
RESET ROLE;
SELECT kind, name, events_enqueued, events_delivered, requests, latency_p50_ms IS NULL AS no_latency,
       last_success_at, stats_reset IS NOT NULL AS has_reset
  FROM hyperline.stats WHERE name LIKE 'ops%' ORDER BY kind, name;

-- events_enqueued counts committed events, once, at commit: not those of a
-- rolled back transaction or subtransaction.
INSERT INTO ops_su VALUES (1, 'a'), (2, 'b');
BEGIN;
INSERT INTO ops_su VALUES (3, 'c');
SAVEPOINT s;
INSERT INTO ops_su VALUES (4, 'd');
ROLLBACK TO SAVEPOINT s;
INSERT INTO ops_su VALUES (5, 'e');
SELECT events_enqueued AS before_commit FROM hyperline.stats WHERE kind = 'model' AND name = 'ops_su';
COMMIT;
BEGIN;
INSERT INTO ops_su VALUES (6, 'f');
ROLLBACK;
UPDATE ops_su SET c = 'z' WHERE id = 1;
SET ROLE hl_ops_owner;
INSERT INTO ops_owned VALUES (1, 'a', 1);
RESET ROLE;
SELECT kind, name, events_enqueued, events_failed FROM hyperline.stats
 WHERE name LIKE 'ops%' ORDER BY kind, name;

-- An event that fails to render counts as enqueued and failed (a column the
-- template uses dropped since: the write goes on).
SET client_min_messages = error;
ALTER TABLE ops_owned DROP COLUMN n;
RESET client_min_messages;
INSERT INTO ops_owned VALUES (2, 'b');
SELECT kind, name, events_enqueued, events_failed FROM hyperline.stats
 WHERE name LIKE 'ops%' ORDER BY kind, name;

-- Who sees which row: a model's owner its model, a grantee its destination,
-- nobody nothing, an admin_role member and superusers everything.
SET ROLE hl_ops_owner;
SELECT kind, name, events_enqueued FROM hyperline.stats WHERE name LIKE 'ops%' ORDER BY kind, name;
SET ROLE hl_ops_grantee;
SELECT kind, name, events_enqueued FROM hyperline.stats WHERE name LIKE 'ops%' ORDER BY kind, name;
SET ROLE hl_ops_nobody;
SELECT kind, name FROM hyperline.stats;
SELECT count(*) AS rows_of_the_function FROM hyperline.stats();
RESET ROLE;
SET hyperline.admin_role = 'hl_ops_admins';
SET ROLE hl_ops_watcher;
SELECT kind, name, events_enqueued FROM hyperline.stats WHERE name LIKE 'ops%' ORDER BY kind, name;
RESET ROLE;
RESET hyperline.admin_role;

-- The request log: one row per request (written by the worker; here by
-- hand), seen as destination statistics are.
INSERT INTO hyperline._requests (destination, sent_at, duration_ms, events, http_status, error) VALUES
  ('ops_dest', '2024-12-20 03:12:00+00', 12.5, 500, 201, NULL),
  ('ops_dest', '2024-12-20 03:12:05+00', 30000, 500, NULL, 'timed out after 30000 ms'),
  ('ops_other', '2024-12-20 03:12:07+00', 8.25, 10, 503, '503: {"message":"down"}');
SELECT destination, sent_at, duration_ms, events, http_status, error FROM hyperline.requests
 WHERE sent_at BETWEEN '2024-12-20 03:12:00+00' AND '2024-12-20 03:13:00+00' ORDER BY sent_at;
SET ROLE hl_ops_grantee;
SELECT destination, http_status FROM hyperline.requests ORDER BY sent_at;
SET ROLE hl_ops_nobody;
SELECT count(*) AS requests_seen FROM hyperline.requests;
SELECT count(*) FROM hyperline._requests;
RESET ROLE;

-- reset_stats(): superusers (and whom they grant it); zeroes this database's
-- counters and moves stats_reset.
SET ROLE hl_ops_owner;
SELECT hyperline.reset_stats();
RESET ROLE;
CREATE TEMP TABLE before AS SELECT max(stats_reset) AS t FROM hyperline.stats;
SELECT hyperline.reset_stats();
SELECT kind, name, events_enqueued, events_failed, stats_reset > (SELECT t FROM before) AS reset_moved
  FROM hyperline.stats WHERE name LIKE 'ops%' ORDER BY kind, name;
GRANT EXECUTE ON FUNCTION hyperline.reset_stats() TO hl_ops_owner;
SET ROLE hl_ops_owner;
SELECT hyperline.reset_stats();
RESET ROLE;
REVOKE EXECUTE ON FUNCTION hyperline.reset_stats() FROM hl_ops_owner;
-- internal functions stay internal
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p WHERE p.pronamespace = 'hyperline'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE') AND p.proname LIKE '\_%'
 ORDER BY 1;

-- health(): the checks, whatever the worker does here (its status depends on
-- timing in this database).
SELECT check_name FROM hyperline.health();
-- A backlog older than hyperline.alert_backlog_age: warning; twice that:
-- critical (nothing is delivered here).
UPDATE hyperline.outbox SET created_at = now() - interval '7 minutes'
 WHERE model = 'ops_su' AND event_key = '1';
SELECT status FROM hyperline.health() WHERE check_name = 'backlog';
UPDATE hyperline.outbox SET created_at = now() - interval '11 minutes'
 WHERE model = 'ops_su' AND event_key = '1';
SELECT status, detail LIKE 'the oldest pending event waits since %' AS says_since
  FROM hyperline.health() WHERE check_name = 'backlog';
-- ... as the caller sees the outbox: not the owner of ops_owned.
SET ROLE hl_ops_owner;
SELECT status FROM hyperline.health() WHERE check_name = 'backlog';
RESET ROLE;
SET hyperline.alert_backlog_age = '1h';
SELECT status FROM hyperline.health() WHERE check_name = 'backlog';
RESET hyperline.alert_backlog_age;
-- A destination without its key (as after a restore) is critical.
DELETE FROM _hyperline.api_keys WHERE destination = 'ops_other';
SELECT check_name, status, detail FROM hyperline.health()
 WHERE check_name IN ('destinations', 'failed_events', 'query_models');
-- An event failed in the last hour: failed_events is a warning.
INSERT INTO ops_owned VALUES (3, 'c');
SELECT check_name, status, detail FROM hyperline.health() WHERE check_name = 'failed_events';
SET ROLE hl_ops_nobody;
SELECT check_name, status FROM hyperline.health() WHERE check_name <> 'worker';
RESET ROLE;

-- A database no worker serves (a template): the worker check is critical.
CREATE DATABASE hl_ops_template IS_TEMPLATE true;
\c hl_ops_template
SET client_min_messages = error;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT check_name, status, detail FROM hyperline.health() WHERE check_name = 'worker';
-- (No worker here runs query models either:) a query model more than a
-- minute overdue is a warning, one whose last run failed critical.
SELECT check_name, status, detail FROM hyperline.health() WHERE check_name = 'query_models';
SELECT hyperline.create_destination('hyperline', api_key => 'sk_ops_key_0003');
CREATE TABLE seats (account text PRIMARY KEY, n int);
INSERT INTO seats VALUES ('acme', 3);
SELECT hyperline.create_query_model('ops_seats', 'SELECT account, n FROM seats', 'account',
  $$ {"customer_id": "{{ row.account }}", "event_type": "seats", "timestamp": 0,
      "record": {"id": "{{ row.account }}", "n": {{ row.n }} }} $$, schedule => '1 hour');
SELECT check_name, status, detail FROM hyperline.health() WHERE check_name = 'query_models';
-- a run's events count as enqueued too
SELECT added FROM hyperline.run_model('ops_seats');
SELECT kind, name, events_enqueued FROM hyperline.stats ORDER BY kind, name;
UPDATE hyperline._models SET next_run_at = now() - interval '5 minutes' WHERE name = 'ops_seats';
SELECT check_name, status, detail FROM hyperline.health() WHERE check_name = 'query_models';
INSERT INTO hyperline._sync_runs (model, started_at, finished_at, status, error)
  VALUES ('ops_seats', now() - interval '2 minutes', now() - interval '2 minutes', 'failed', 'boom');
SELECT check_name, status, detail FROM hyperline.health() WHERE check_name = 'query_models';
-- a run under way is not overdue; a later run that succeeded clears the failure
INSERT INTO hyperline._sync_runs (model, started_at, status, pid) VALUES ('ops_seats', now(), 'running', 0);
SELECT check_name, status, detail FROM hyperline.health() WHERE check_name = 'query_models';
UPDATE hyperline._sync_runs SET status = 'succeeded', finished_at = now() WHERE status = 'running';
UPDATE hyperline._models SET next_run_at = now() + interval '1 hour' WHERE name = 'ops_seats';
SELECT check_name, status, detail FROM hyperline.health() WHERE check_name = 'query_models';
\c :regress_db
ALTER DATABASE hl_ops_template IS_TEMPLATE false;
DROP DATABASE hl_ops_template;

-- Clean up.
SET client_min_messages = warning;
DROP EXTENSION pg_hyperline CASCADE;
DROP TABLE ops_su, ops_owned;
REVOKE CREATE, USAGE ON SCHEMA public FROM hl_ops_owner;
DROP ROLE hl_ops_owner, hl_ops_grantee, hl_ops_nobody, hl_ops_watcher, hl_ops_admins;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
