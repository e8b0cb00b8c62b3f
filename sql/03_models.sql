-- Models: validation before anything is created, alter, drop, the view.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_key_1234');
CREATE TABLE api_calls (
  event_id text PRIMARY KEY,
  customer_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT '2024-12-20 16:04:11+00',
  duration_ms int,
  "isVerified" boolean DEFAULT true
);

-- a good model
SELECT hyperline.create_model('api_calls', 'api_calls', 'event_id', $$ {
  "customer_id": "{{ row.customer_id }}",
  "event_type": "api_call",
  "timestamp": "{{ row.created_at }}",
  "record": {"id": "{{ row.event_id }}", "durationInMs": {{ row.duration_ms }}, "isVerified": {{ row.isVerified }}}
} $$);
SELECT * FROM hyperline.models;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'api_calls'::regclass ORDER BY tgname;

-- every bad input: a clear error, and nothing created
SELECT hyperline.create_model('Bad Name', 'api_calls', 'event_id', '{}');
SELECT hyperline.create_model('api_calls', 'api_calls', 'event_id', '{}');
SELECT hyperline.create_model('m1', 'no_such_table', 'event_id', '{}');
SELECT hyperline.create_model('m1', 'api_calls', 'eventid', '{}');
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', '{}', destination => 'nowhere');
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', '{}', triggers => '{insert,upsert}');
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', '{}', triggers => '{}');
-- Liquid syntax error: line, column, token
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {
  "customer_id": "{{ row.customer_id | }}"
} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"a": "{% if row.x %}"} $$);
-- JSON syntax error: line and column in the template
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {
  "customer_id": "{{ row.customer_id }}"
  "event_type": "api_call"
} $$);
-- unknown column, with did-you-mean for case mismatches and typos
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"customer_id": "{{ row.CUSTOMER_ID }}"} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"x": {{ row.isverified }}} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"x": "{{ row.custmer_id }}"} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"x": "{{ old.nothing }}"} $$);
-- missing required fields
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"event_type": "e", "timestamp": 1, "record": {"id": "x"}} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"customer_id": "c", "timestamp": 1, "record": {"id": "x"}} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"customer_id": "c", "event_type": "e", "record": {"id": "x"}} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"customer_id": "c", "event_type": "e", "timestamp": 1} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"customer_id": "c", "event_type": "e", "timestamp": 1, "record": {"n": 1}} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"customer_id": "c", "event_type": "e", "timestamp": 1, "record": "x"} $$);
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ ["not", "an", "object"] $$);
-- table not owned by the caller
CREATE ROLE hl_other LOGIN;
GRANT USAGE ON SCHEMA public TO hl_other;
SET ROLE hl_other;
SELECT hyperline.create_model('m1', 'api_calls', 'event_id', $$ {"customer_id": "c", "event_type": "e", "timestamp": 1, "record": {"id": "x"}} $$);
SELECT hyperline.drop_model('api_calls');
SELECT hyperline.alter_model('api_calls', enabled => false);
SELECT * FROM hyperline.preview('api_calls');
RESET ROLE;
SELECT name FROM hyperline.models ORDER BY name;

-- WARNING (not an error) for objects inside record
SELECT hyperline.create_model('nested', 'api_calls', 'event_id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 1, "record": {"id": "x", "meta": {"a": 1}, "list": [{"b": 2}]}} $$);
SELECT hyperline.drop_model('nested');

-- preview on an empty table returns nothing; then with rows
SELECT * FROM hyperline.preview('api_calls');
INSERT INTO api_calls (event_id, customer_id, duration_ms) VALUES ('e1', 'cus_1', 32), ('e2', 'cus_2', NULL);
SELECT * FROM hyperline.preview('api_calls', 1);
SELECT * FROM hyperline.preview('nope');
SELECT * FROM hyperline.preview('api_calls', -1);

-- alter_model: payload validated like create_model; triggers; enabled
SELECT hyperline.alter_model('api_calls', payload => '{"customer_id": "{{ row.nope }}"}');
SELECT hyperline.alter_model('api_calls', triggers => '{insert,update,delete}');
SELECT hyperline.alter_model('api_calls', enabled => false);
SELECT name, triggers, enabled FROM hyperline.models;
SELECT tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'api_calls'::regclass ORDER BY tgname;
INSERT INTO api_calls (event_id, customer_id) VALUES ('while_disabled', 'cus_1');
SELECT count(*) AS events_while_disabled FROM hyperline.outbox WHERE event_key = 'while_disabled';
SELECT hyperline.alter_model('api_calls', enabled => true);
SELECT hyperline.alter_model('nope', enabled => true);

-- backfill: every current row, as a first sync
SELECT hyperline.backfill('api_calls');
SELECT model, event_key, operation, status, payload FROM hyperline.outbox ORDER BY id;

-- a model created with backfill => true enqueues existing rows at once
SELECT hyperline.create_model('api_calls_bf', 'api_calls', 'event_id', $$ {"customer_id": "{{ row.customer_id }}",
  "event_type": "bf", "timestamp": "{{ row.created_at }}", "record": {"id": "bf-{{ row.event_id }}"}} $$,
  backfill => true);
SELECT event_key, payload->'record'->>'id' AS record_id FROM hyperline.outbox WHERE model = 'api_calls_bf' ORDER BY event_key;

-- drop_model removes the trigger but keeps the outbox rows
SELECT hyperline.drop_model('api_calls_bf');
SELECT count(*) AS kept FROM hyperline.outbox WHERE model = 'api_calls_bf';
SELECT tgname FROM pg_trigger WHERE tgrelid = 'api_calls'::regclass ORDER BY tgname;
SELECT hyperline.drop_model('api_calls_bf');

-- a destination in use cannot be dropped
SELECT hyperline.drop_destination('hyperline');
DROP OWNED BY hl_other;
DROP ROLE hl_other;
