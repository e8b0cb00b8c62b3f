-- DROP EXTENSION: refused while events wait (they are committed usage),
-- allowed with CASCADE; no schema hyperline is left behind.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_key_1234');
CREATE TABLE life (id int PRIMARY KEY, c text);
SELECT hyperline.create_model('life', 'life', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "e", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
INSERT INTO life VALUES (1, 'a'), (2, 'b');
-- undelivered events: refused, with how many
DROP EXTENSION pg_hyperline;
SELECT hyperline.drop_model('life');
DROP EXTENSION pg_hyperline;
-- failed and delivered events do not hold it back
UPDATE hyperline.outbox SET status = 'delivered' WHERE event_key = '1';
UPDATE hyperline.outbox SET status = 'failed' WHERE event_key = '2';
DROP EXTENSION pg_hyperline;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname IN ('hyperline', '_hyperline');
-- CASCADE discards waiting events
CREATE EXTENSION pg_hyperline;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_key_1234');
SELECT hyperline.create_model('life', 'life', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "e", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
INSERT INTO life VALUES (3, 'c');
SET client_min_messages = warning;
DROP EXTENSION pg_hyperline CASCADE;
RESET client_min_messages;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname IN ('hyperline', '_hyperline');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'life'::regclass;
INSERT INTO life VALUES (4, 'd');
-- a schema hyperline holding a user's object stays
CREATE EXTENSION pg_hyperline;
CREATE TABLE hyperline.mine (x int);
DROP EXTENSION pg_hyperline;
SELECT nspname FROM pg_namespace WHERE nspname = 'hyperline';
DROP TABLE hyperline.mine;
DROP SCHEMA hyperline;
CREATE EXTENSION pg_hyperline;
DROP TABLE life;
