-- API keys are readable by superusers only; models need table ownership.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_secret_never_shown_abcd');
CREATE ROLE hl_reader LOGIN;
GRANT USAGE ON SCHEMA hyperline TO hl_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA hyperline TO hl_reader;
SET ROLE hl_reader;
SELECT name, api_key_hint FROM hyperline.destinations;
-- no relation in schema hyperline holds the key
SELECT count(*) AS columns_named_like_key FROM information_schema.columns
  WHERE table_schema = 'hyperline' AND column_name = 'api_key';
SELECT * FROM _hyperline.api_keys;
SELECT hyperline.create_destination('mine', api_key => 'x');
SELECT hyperline.alter_destination('hyperline', api_key => 'x');
RESET ROLE;
-- superusers can read it
SELECT destination, api_key FROM _hyperline.api_keys;

-- a table owner who is not a superuser can attach a model to their own table,
-- once allowed to use a destination
CREATE ROLE hl_owner LOGIN;
GRANT CREATE, USAGE ON SCHEMA public TO hl_owner;
SET ROLE hl_owner;
CREATE TABLE owned (id int PRIMARY KEY, c text);
SELECT hyperline.create_model('owned', 'owned', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
RESET ROLE;
SELECT hyperline.grant_destination('hyperline', 'hl_owner');
SELECT name, grantees FROM hyperline.destinations;
SET ROLE hl_owner;
SELECT hyperline.create_model('owned', 'owned', 'id', $$ {"customer_id": "{{ row.c }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.id }}"}} $$);
INSERT INTO owned VALUES (1, 'c');
SELECT * FROM hyperline.preview('owned');
-- owners see their models' events (and only those)
SELECT model, event_key, status FROM hyperline.outbox;
SELECT model, pending FROM hyperline.model_status;
RESET ROLE;
SELECT model, event_key, status FROM hyperline.outbox;
-- another role may not touch it
SET ROLE hl_reader;
SELECT hyperline.alter_model('owned', enabled => false);
SELECT hyperline.backfill('owned');
RESET ROLE;
-- names are quoted everywhere
CREATE TABLE "Weird ""Table""" ("Id" int PRIMARY KEY, "Customer Name" text);
SELECT hyperline.create_model('weird', '"Weird ""Table"""', 'Id', $$ {"customer_id": "{{ row["Customer Name"] }}",
  "event_type": "x", "timestamp": 0, "record": {"id": "{{ row.Id }}"}} $$);
INSERT INTO "Weird ""Table""" VALUES (1, 'Ann');
-- a role with only INSERT on a model's table writes events too
GRANT INSERT ON "Weird ""Table""" TO hl_reader;
SET ROLE hl_reader;
INSERT INTO "Weird ""Table""" VALUES (2, 'Bob');
SELECT count(*) AS visible_to_writer FROM hyperline.outbox;
RESET ROLE;
SELECT payload FROM hyperline.outbox WHERE model = 'weird';
SET client_min_messages = warning;
DROP TABLE owned, "Weird ""Table""";
DROP OWNED BY hl_owner;
DROP OWNED BY hl_reader;
DROP ROLE hl_owner;
DROP ROLE hl_reader;
