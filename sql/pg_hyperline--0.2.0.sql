-- pg_hyperline 0.2.0: destinations, models, the outbox and their functions.
--
-- Vocabulary (kept from Hightouch): a destination is where events go (base URL,
-- secret API key, delivery settings); a model is a source table (or query), its
-- primary key and a Liquid payload template; a model's triggers say which row
-- changes (insert/update/delete) produce events. Every event is a row of
-- hyperline.outbox, written in the transaction that changed the source row and
-- delivered by the background worker.
--
-- Who may do what: destinations are managed by superusers (and whom they grant
-- EXECUTE); using one in a model needs USAGE on it (grant_destination). A model
-- belongs to the owner of its source table; the public functions that act for a
-- caller are gates (src/pg/gate.cpp) over private twins named _<function>, which
-- run as the extension's owner with a fixed search_path and read the caller's
-- data with the caller's rights. Row level security shows a role only its own
-- models, their events and runs (superusers and hyperline.admin_role see all).
--
-- The part between BEGIN REPLACEABLE and END REPLACEABLE holds every function
-- and view, written so that it can run again over an older version: the
-- upgrade scripts include it (Makefile: pg_hyperline--0.1.0--0.2.0.sql).
\echo Use "CREATE EXTENSION pg_hyperline" to load this file. \quit

-- A schema hyperline that someone prepared before CREATE EXTENSION could hold
-- objects (say, an overload of one of our functions) that our functions would
-- then run with the extension owner's rights: install only into a schema made
-- by this CREATE EXTENSION (its owner is the installing superuser), or an
-- empty one of the bootstrap superuser.
DO $guard$
DECLARE
  s record;
BEGIN
  SELECT n.oid, n.nspowner INTO s FROM pg_catalog.pg_namespace n WHERE n.nspname = 'hyperline';
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
              WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.refobjid = s.oid
                AND d.classid <> 'pg_catalog.pg_extension'::pg_catalog.regclass)
     OR NOT (s.nspowner = 10 OR s.nspowner = pg_catalog.current_user()::pg_catalog.regrole) THEN
    RAISE EXCEPTION 'schema "hyperline" already exists and was not made for pg_hyperline'
      USING ERRCODE = 'duplicate_schema',
            DETAIL = 'pg_hyperline installs only into an empty schema hyperline owned by the bootstrap superuser or by the role running CREATE EXTENSION.',
            HINT = 'Drop or rename that schema first.';
  END IF;
END
$guard$;

-- Private schema for secrets: a role granted SELECT on every relation in schema
-- hyperline still cannot read an API key.
CREATE SCHEMA _hyperline;
REVOKE ALL ON SCHEMA _hyperline FROM PUBLIC;

CREATE TABLE hyperline._destinations (
  name text PRIMARY KEY CONSTRAINT destination_name_format CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  base_url text NOT NULL,
  api_key_hint text NOT NULL,
  batch_size int NOT NULL DEFAULT 500 CHECK (batch_size BETWEEN 1 AND 5000),
  max_requests_per_second real CHECK (max_requests_per_second > 0),
  timeout_ms int NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 600000),
  state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'unauthorized')),
  last_error text,
  key_version int NOT NULL DEFAULT 1,
  -- true when a superuser allowed a plain-http, non-loopback base_url
  -- (hyperline.allow_http on at create/alter): the worker honours that choice.
  allow_http boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE hyperline._destinations IS 'Destinations (private: use the hyperline.destinations view).';

-- Never dumped: a restored destination waits for alter_destination(api_key => ...).
CREATE TABLE _hyperline.api_keys (
  destination text PRIMARY KEY REFERENCES hyperline._destinations (name) ON DELETE CASCADE,
  api_key text NOT NULL
);
COMMENT ON TABLE _hyperline.api_keys IS 'Destination API keys; readable by superusers only.';

CREATE TABLE hyperline._models (
  name text PRIMARY KEY CONSTRAINT model_name_format CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  source regclass,
  primary_key text NOT NULL,
  payload text NOT NULL,
  triggers text[] NOT NULL,
  destination text NOT NULL REFERENCES hyperline._destinations (name),
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL DEFAULT 'table' CONSTRAINT model_kind CHECK (kind IN ('table', 'query')),
  -- the filter as Postgres normalizes it (names qualified where needed)
  filter text,
  delete_mode text NOT NULL DEFAULT 'event' CONSTRAINT model_delete_mode CHECK (delete_mode IN ('event', 'api')),
  query text,
  schedule text,
  send_initial boolean NOT NULL DEFAULT true,
  -- query models: the role that created it, whose rights the query runs with,
  -- and its search_path then (table models belong to their table's owner)
  owner regrole,
  search_path text,
  next_run_at timestamptz,
  -- query models: the digest of the state's keys and input hashes, written by
  -- the run that wrote the state (NULL: unknown); a run whose result has the
  -- same digest is unchanged without comparing key by key
  state_digest bytea,
  CONSTRAINT model_source CHECK (CASE kind WHEN 'table' THEN source IS NOT NULL AND query IS NULL
                                 ELSE source IS NULL AND query IS NOT NULL AND owner IS NOT NULL END)
);
COMMENT ON TABLE hyperline._models IS 'Models (private: use the hyperline.models view).';

-- Who may use a destination in a model, besides superusers.
CREATE TABLE hyperline._destination_grants (
  destination text NOT NULL REFERENCES hyperline._destinations (name) ON DELETE CASCADE,
  grantee regrole NOT NULL,
  PRIMARY KEY (destination, grantee)
);
COMMENT ON TABLE hyperline._destination_grants IS 'Roles that may use a destination in their models (see grant_destination).';

CREATE TABLE hyperline.outbox (
  id bigserial PRIMARY KEY,
  model text COLLATE "C" NOT NULL,
  event_key text COLLATE "C" NOT NULL,
  operation text NOT NULL CHECK (operation IN ('insert', 'update', 'delete')),
  payload jsonb,
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'superseded')),
  attempts int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  http_status int,
  last_error text,
  destination text NOT NULL,
  method text NOT NULL DEFAULT 'POST' CONSTRAINT outbox_method CHECK (method IN ('POST', 'DELETE'))
);
COMMENT ON TABLE hyperline.outbox IS 'One row per usage event: what was rendered, where it is in delivery, and why it failed.';
COMMENT ON COLUMN hyperline.outbox.event_key IS 'The source row''s primary key value, as text.';
COMMENT ON COLUMN hyperline.outbox.payload IS 'The rendered event; NULL when rendering failed (see last_error).';
COMMENT ON COLUMN hyperline.outbox.status IS 'pending, sending, delivered, failed (final) or superseded (replaced by a newer change of the same key before it was sent).';
COMMENT ON COLUMN hyperline.outbox.destination IS 'Destination the event goes to (kept so events of dropped models are still delivered).';
COMMENT ON COLUMN hyperline.outbox.method IS 'POST: the event is sent to /v1/events; DELETE: its record.id is deleted with DELETE /v1/events (delete_mode api).';
-- The worker claims pending rows in id (commit) order.
CREATE INDEX outbox_pending_idx ON hyperline.outbox (id) WHERE status = 'pending';
-- Superseding looks up the older pending rows of a key that the worker put off
-- (a retry, a Retry-After, a refused key). Rows fresh from the trigger have
-- next_attempt_at = created_at and are not in this index, so the write path
-- pays nothing for it: an older fresh row of the same key is always claimed
-- with (or before) the newer one, in id order.
CREATE INDEX outbox_key_idx ON hyperline.outbox (model, event_key)
  WHERE status = 'pending' AND next_attempt_at > created_at;
-- Every event leaves dead versions behind (status changes, then the purge):
-- vacuum the outbox early and unthrottled so its space is reused instead of
-- growing (measured in docs/benchmarks.md, "outbox upkeep").
ALTER TABLE hyperline.outbox SET (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0,
  autovacuum_vacuum_insert_scale_factor = 0.05);

-- What pg_dump keeps: destinations (without keys), grants, models, and events
-- not delivered yet (delivered and superseded ones are history).
SELECT pg_catalog.pg_extension_config_dump('hyperline._destinations', '');
SELECT pg_catalog.pg_extension_config_dump('hyperline._destination_grants', '');
SELECT pg_catalog.pg_extension_config_dump('hyperline._models', '');
SELECT pg_catalog.pg_extension_config_dump('hyperline.outbox', 'WHERE status IN (''pending'', ''sending'', ''failed'')');
SELECT pg_catalog.pg_extension_config_dump('hyperline.outbox_id_seq', '');

-- ---------------------------------------------------------------------------
-- Operating (src/pg/stats.cpp, health.cpp): when events committed, and the
-- request log.
-- ---------------------------------------------------------------------------
-- hyperline.stats measures delivery latency from an event's commit: its first
-- claim records it here (with track_commit_timestamp on; else created_at).
ALTER TABLE hyperline.outbox ADD COLUMN committed_at timestamptz;
COMMENT ON COLUMN hyperline.outbox.committed_at IS 'When the event''s transaction committed, recorded when the worker first claims it (needs track_commit_timestamp = on); hyperline.stats measures latency from it, or from created_at without it.';

-- One row per HTTP request of the delivery worker, written with the outcomes
-- of the request's events. Not dumped (history); purged after
-- hyperline.delivered_retention (upkeep worker). Why no primary key: at
-- batch_size 1 there is a row per event, and a second index was a fifth of
-- its cost (docs/benchmarks.md); ids come from the sequence, and searches and
-- the purge go by sent_at.
CREATE TABLE hyperline._requests (
  id bigserial NOT NULL,
  destination text NOT NULL,
  sent_at timestamptz NOT NULL,
  duration_ms double precision NOT NULL,
  events int NOT NULL,
  http_status int,
  error text
);
COMMENT ON TABLE hyperline._requests IS 'The delivery worker''s HTTP requests (private: use the hyperline.requests view).';
CREATE INDEX requests_sent_at_idx ON hyperline._requests (sent_at);
-- Visible as a destination's statistics are: to superusers, members of
-- hyperline.admin_role, and the roles granted the destination.
ALTER TABLE hyperline._requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY requests_visible ON hyperline._requests FOR SELECT USING (
  EXISTS (SELECT 1 FROM hyperline._destination_grants g
           WHERE g.destination = _requests.destination AND pg_has_role(g.grantee::oid, 'USAGE'))
  OR EXISTS (SELECT 1 FROM pg_roles r
              WHERE r.rolname = current_setting('hyperline.admin_role', true) AND pg_has_role(r.oid, 'MEMBER')));
GRANT SELECT ON hyperline._requests TO PUBLIC;
-- (end of Operating)

-- Row level security: a role sees the models on tables it owns (and query
-- models it owns), and their events; members of hyperline.admin_role see all;
-- superusers bypass it. The expressions are inlined (a policy may not call a
-- function PUBLIC cannot execute). Policies are stored parsed: the session's
-- search_path plays no part when they run.
ALTER TABLE hyperline._models ENABLE ROW LEVEL SECURITY;
CREATE POLICY models_visible ON hyperline._models FOR SELECT USING (
  pg_has_role(coalesce((SELECT c.relowner FROM pg_class c WHERE c.oid = source), owner::oid), 'USAGE')
  OR EXISTS (SELECT 1 FROM pg_roles r
              WHERE r.rolname = current_setting('hyperline.admin_role', true) AND pg_has_role(r.oid, 'MEMBER')));
ALTER TABLE hyperline.outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY outbox_owner_read ON hyperline.outbox FOR SELECT USING (
  EXISTS (SELECT 1 FROM hyperline._models m WHERE m.name = outbox.model)
  OR EXISTS (SELECT 1 FROM pg_roles r
              WHERE r.rolname = current_setting('hyperline.admin_role', true) AND pg_has_role(r.oid, 'MEMBER')));

-- ---------------------------------------------------------------------------
-- Query models (src/pg/query_model.cpp): the history of runs and, per model,
-- the state of every key its runs recorded.
-- ---------------------------------------------------------------------------
-- One row per run of a query model. Not dumped (history); purged after
-- hyperline.delivered_retention, the last run of each model kept
-- (_purge_sync_runs).
CREATE TABLE hyperline._sync_runs (
  run_id bigserial PRIMARY KEY,
  model text NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  status text NOT NULL CONSTRAINT sync_run_status CHECK (status IN ('running', 'succeeded', 'failed')),
  rows bigint,
  added bigint,
  updated bigint,
  removed bigint,
  unchanged bigint,
  error text,
  -- scheduled runs: when the run was due, and the process running it (a run
  -- left running by a process that is gone failed: _fail_interrupted_runs)
  scheduled_for timestamptz,
  pid int
);
COMMENT ON TABLE hyperline._sync_runs IS 'Runs of query models (private: use the hyperline.sync_runs view).';
CREATE INDEX sync_runs_model_idx ON hyperline._sync_runs (model, run_id);
CREATE INDEX sync_runs_running_idx ON hyperline._sync_runs (run_id) WHERE status = 'running';

-- What the runs of each query model recorded, one row per key (its event_key,
-- and a hash of it that orders the state): the hash of the key's row as the
-- query returned it (input_hash: an unchanged row is not rendered again), the
-- hash of its rendered payload (what decides that it changed), the row values
-- its template read (a removal, or an update's `old`, is rendered from them),
-- and the run that recorded them. Dumped: a restored database goes on diffing
-- from where it was instead of sending every row again. A run reads the
-- model's keys with one scan, and updates changed keys in place (HOT: no
-- indexed column changes, room left on each page); vacuumed early.
CREATE TABLE hyperline._query_state (
  model text NOT NULL,
  key_hash bigint NOT NULL,
  input_hash bigint NOT NULL,
  hash bigint NOT NULL,
  run_id bigint NOT NULL,
  key text COLLATE "C" NOT NULL,
  row_values bytea NOT NULL,
  PRIMARY KEY (model, key_hash, key)
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
COMMENT ON TABLE hyperline._query_state IS 'Per query model and key: hashes of the row and of the payload last recorded, and the row values it was rendered from (encoded).';
SELECT pg_catalog.pg_extension_config_dump('hyperline._query_state', '');

-- A role sees the runs and state of the models it sees (row level security on
-- hyperline._models decides), members of hyperline.admin_role all.
ALTER TABLE hyperline._sync_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY sync_runs_visible ON hyperline._sync_runs FOR SELECT USING (
  EXISTS (SELECT 1 FROM hyperline._models m WHERE m.name = _sync_runs.model)
  OR EXISTS (SELECT 1 FROM pg_roles r
              WHERE r.rolname = current_setting('hyperline.admin_role', true) AND pg_has_role(r.oid, 'MEMBER')));
ALTER TABLE hyperline._query_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY query_state_visible ON hyperline._query_state FOR SELECT USING (
  EXISTS (SELECT 1 FROM hyperline._models m WHERE m.name = _query_state.model)
  OR EXISTS (SELECT 1 FROM pg_roles r
              WHERE r.rolname = current_setting('hyperline.admin_role', true) AND pg_has_role(r.oid, 'MEMBER')));
GRANT SELECT ON hyperline._sync_runs, hyperline._query_state TO PUBLIC;
-- (end of Query models)

-- BEGIN REPLACEABLE
-- ---------------------------------------------------------------------------
-- C functions (src/pg). Private ones are prefixed with _.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION hyperline._trigger() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_trigger';
COMMENT ON FUNCTION hyperline._trigger() IS 'Row trigger of every model: renders the payload into hyperline.outbox.';

CREATE OR REPLACE FUNCTION hyperline._caller() RETURNS regrole
  LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_caller';
COMMENT ON FUNCTION hyperline._caller() IS 'The role calling the public function being run (recorded by its gate).';

CREATE OR REPLACE FUNCTION hyperline._database_served(warn boolean DEFAULT false) RETURNS boolean
  LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'hyperline_database_served';
COMMENT ON FUNCTION hyperline._database_served(boolean) IS 'Whether a pg_hyperline delivery worker serves this database (hyperline.database, template, connections allowed); with warn, a WARNING says why not.';

CREATE OR REPLACE FUNCTION hyperline._in_gate() RETURNS boolean
  LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_in_gate';
COMMENT ON FUNCTION hyperline._in_gate() IS 'Whether a public function of the extension is running (its gate is active).';

CREATE OR REPLACE FUNCTION hyperline._validate_model(source regclass, primary_key text, payload text,
    model text, filter text)
  RETURNS text LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_validate_model';
COMMENT ON FUNCTION hyperline._validate_model(regclass, text, text, text, text) IS 'Checks a table model as its caller; raises an error naming the problem; returns the normalized filter.';

CREATE OR REPLACE FUNCTION hyperline._render_rows(model text, sample int)
  RETURNS TABLE (key text, payload jsonb) LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_render_rows';
COMMENT ON FUNCTION hyperline._render_rows(text, int) IS 'Renders the first rows of a table model, read with the caller''s rights.';

CREATE OR REPLACE FUNCTION hyperline._backfill_rows(model text)
  RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_backfill_rows';
COMMENT ON FUNCTION hyperline._backfill_rows(text) IS 'Enqueues every row of a table model, read with the caller''s rights; returns how many.';

CREATE OR REPLACE FUNCTION hyperline._key_columns(source regclass, primary_key text)
  RETURNS text[] LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_key_columns';
COMMENT ON FUNCTION hyperline._key_columns(regclass, text) IS 'The column names a primary_key setting names.';

CREATE OR REPLACE FUNCTION hyperline._filter_condition(source regclass, filter text, alias text)
  RETURNS text LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_filter_condition';
COMMENT ON FUNCTION hyperline._filter_condition(regclass, text, text) IS 'A normalized filter over new. or old. columns, for a trigger''s WHEN clause.';

CREATE OR REPLACE FUNCTION hyperline._filter_of_qual(source regclass, qual text)
  RETURNS text LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_filter_of_qual';
COMMENT ON FUNCTION hyperline._filter_of_qual(regclass, text) IS 'The normalized filter inside a model trigger''s WHEN clause, with current column names.';

CREATE OR REPLACE FUNCTION hyperline._model_problem(model text)
  RETURNS text LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_model_problem';
COMMENT ON FUNCTION hyperline._model_problem(text) IS 'Why a model cannot render events any more (a column it uses is gone), or NULL.';

-- An event inserted as 'sending' comes from a dump taken while it was being
-- sent: no worker holds it, so it is pending again. (The trigger path and the
-- worker never insert 'sending' rows; the trigger path does not fire triggers.)
CREATE OR REPLACE FUNCTION hyperline._restored_event() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  NEW.status := 'pending';
  RETURN NEW;
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline._models_changed() RETURNS void
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_models_changed';
COMMENT ON FUNCTION hyperline._models_changed() IS 'Invalidates every backend''s compiled templates at commit.';

CREATE OR REPLACE FUNCTION hyperline._wake() RETURNS void
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_wake';
COMMENT ON FUNCTION hyperline._wake() IS 'Wakes the delivery worker at commit.';

CREATE OR REPLACE FUNCTION hyperline.render_template(template text, context jsonb DEFAULT '{}')
  RETURNS text LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'hyperline_render_template';
COMMENT ON FUNCTION hyperline.render_template(text, jsonb) IS 'Renders a Liquid template with a JSON context (the engine alone, standard Liquid output).';

CREATE OR REPLACE FUNCTION hyperline._send_test(model text, payload jsonb, operation text)
  RETURNS TABLE (http_status int, response text)
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_test_delivery';
COMMENT ON FUNCTION hyperline._send_test(text, jsonb, text) IS 'Sends one rendered payload to a model''s destination synchronously.';

-- ---------------------------------------------------------------------------
-- Destinations (superusers, and whom they grant EXECUTE)
-- ---------------------------------------------------------------------------
-- Whether a base_url is plain http to a host that is not loopback.
CREATE OR REPLACE FUNCTION hyperline._insecure_url(url text) RETURNS boolean
  LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT url ~* '^http://' AND NOT coalesce(
    lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(\[[^]]*\]|[^/:?#@]*)'))
      ~ '^(localhost|\[::1\]|127\.[0-9]+\.[0-9]+\.[0-9]+)$', false)
$fn$;

CREATE OR REPLACE FUNCTION hyperline._check_destination(base_url text, api_key text, batch_size int,
    max_requests_per_second real, timeout_ms int) RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  host text;
  url text := rtrim(base_url, '/');
BEGIN
  IF api_key IS NOT NULL AND (api_key = '' OR api_key ~ '[[:space:][:cntrl:]]') THEN
    RAISE EXCEPTION 'api_key must be a non-empty string without spaces or control characters'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF batch_size IS NOT NULL AND (batch_size < 1 OR batch_size > 5000) THEN
    RAISE EXCEPTION 'batch_size must be between 1 and 5000 (got %)', batch_size
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Hyperline accepts at most 5000 events per batch request.';
  END IF;
  IF max_requests_per_second IS NOT NULL AND NOT (max_requests_per_second > 0) THEN
    RAISE EXCEPTION 'max_requests_per_second must be positive (got %)', max_requests_per_second
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use NULL for no limit.';
  END IF;
  IF timeout_ms IS NOT NULL AND (timeout_ms < 100 OR timeout_ms > 600000) THEN
    RAISE EXCEPTION 'timeout_ms must be between 100 and 600000 (got %)', timeout_ms
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF url IS NULL THEN
    RETURN NULL;
  END IF;
  host := lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(\[[^]]*\]|[^/:?#@]*)'));
  IF url !~* '^https?://' OR host IS NULL OR host = '' OR url ~ '[[:space:][:cntrl:]]' THEN
    RAISE EXCEPTION 'base_url must be an http(s) URL with a host, e.g. https://ingest.hyperline.co (got "%")', base_url
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF url ~ '^https?://[^/]*@' OR url ~ '[?#]' THEN
    RAISE EXCEPTION 'base_url must not contain credentials, a query or a fragment (got "%")', base_url
      USING ERRCODE = 'invalid_parameter_value', HINT = 'The API key is given with api_key.';
  END IF;
  IF hyperline._insecure_url(url) AND coalesce(current_setting('hyperline.allow_http', true), 'off') <> 'on' THEN
    RAISE EXCEPTION 'plain http is refused for non-loopback host "%"', host
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Use https, or have a superuser SET hyperline.allow_http = on.';
  END IF;
  RETURN url;
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline.create_destination(name text, api_key text,
    base_url text DEFAULT 'https://ingest.hyperline.co', batch_size int DEFAULT 500,
    max_requests_per_second real DEFAULT NULL, timeout_ms int DEFAULT 10000)
  RETURNS void LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp SET log_min_error_statement = 'panic' AS $fn$
DECLARE
  url text;
BEGIN
  IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION 'invalid destination name "%"', name
      USING ERRCODE = 'invalid_name', HINT = 'Names are lower case: ^[a-z_][a-z0-9_]{0,62}$.';
  END IF;
  IF api_key IS NULL THEN
    RAISE EXCEPTION 'api_key must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF base_url IS NULL OR batch_size IS NULL OR timeout_ms IS NULL THEN
    RAISE EXCEPTION 'base_url, batch_size and timeout_ms must not be NULL'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  url := hyperline._check_destination(base_url, api_key, batch_size, max_requests_per_second, timeout_ms);
  IF EXISTS (SELECT 1 FROM hyperline._destinations d WHERE d.name = create_destination.name) THEN
    RAISE EXCEPTION 'destination "%" already exists', name USING ERRCODE = 'duplicate_object',
      HINT = 'Use hyperline.alter_destination to change it.';
  END IF;
  INSERT INTO hyperline._destinations (name, base_url, api_key_hint, batch_size,
      max_requests_per_second, timeout_ms, allow_http)
    VALUES (name, url, '…' || right(api_key, 4), batch_size, max_requests_per_second, timeout_ms,
            hyperline._insecure_url(url));
  INSERT INTO _hyperline.api_keys (destination, api_key) VALUES (name, api_key);
  PERFORM hyperline._wake();
END
$fn$;
COMMENT ON FUNCTION hyperline.create_destination(text, text, text, int, real, int) IS 'Creates a destination: where events go, with its API key and delivery settings.';

CREATE OR REPLACE FUNCTION hyperline.alter_destination(name text, api_key text DEFAULT NULL,
    base_url text DEFAULT NULL, batch_size int DEFAULT NULL,
    max_requests_per_second real DEFAULT NULL, timeout_ms int DEFAULT NULL)
  RETURNS void LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp SET log_min_error_statement = 'panic' AS $fn$
DECLARE
  url text;
BEGIN
  url := hyperline._check_destination(base_url, api_key, batch_size, max_requests_per_second, timeout_ms);
  PERFORM 1 FROM hyperline._destinations d WHERE d.name = alter_destination.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'destination "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  UPDATE hyperline._destinations d SET
      base_url = coalesce(url, d.base_url),
      allow_http = hyperline._insecure_url(coalesce(url, d.base_url)),
      batch_size = coalesce(alter_destination.batch_size, d.batch_size),
      max_requests_per_second = coalesce(alter_destination.max_requests_per_second, d.max_requests_per_second),
      timeout_ms = coalesce(alter_destination.timeout_ms, d.timeout_ms),
      api_key_hint = CASE WHEN api_key IS NULL THEN d.api_key_hint ELSE '…' || right(api_key, 4) END,
      -- A new key (or URL) clears an unauthorized state: the worker retries at once.
      state = CASE WHEN api_key IS NULL AND url IS NULL THEN d.state ELSE 'active' END,
      last_error = CASE WHEN api_key IS NULL AND url IS NULL THEN d.last_error END,
      key_version = d.key_version + (api_key IS NOT NULL)::int
    WHERE d.name = alter_destination.name;
  IF api_key IS NOT NULL THEN
    -- An upsert: a destination restored from a dump has no key yet.
    INSERT INTO _hyperline.api_keys AS k (destination, api_key) VALUES (alter_destination.name, api_key)
      ON CONFLICT (destination) DO UPDATE SET api_key = excluded.api_key;
    -- Rows held back by an unauthorized answer are due now.
    UPDATE hyperline.outbox o SET next_attempt_at = now()
      WHERE o.status = 'pending' AND o.destination = alter_destination.name AND o.next_attempt_at > now();
  END IF;
  PERFORM hyperline._wake();
END
$fn$;
COMMENT ON FUNCTION hyperline.alter_destination(text, text, text, int, real, int) IS 'Changes a destination; NULL leaves a setting unchanged (use it to rotate the API key).';

CREATE OR REPLACE FUNCTION hyperline.drop_destination(name text) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  users text;
  waiting bigint;
BEGIN
  PERFORM 1 FROM hyperline._destinations d WHERE d.name = drop_destination.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'destination "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  SELECT string_agg(m.name, ', ' ORDER BY m.name) INTO users
    FROM hyperline._models m WHERE m.destination = drop_destination.name;
  IF users IS NOT NULL THEN
    RAISE EXCEPTION 'destination "%" is used by models: %', name, users
      USING ERRCODE = 'dependent_objects_still_exist', HINT = 'Drop those models first.';
  END IF;
  SELECT count(*) INTO waiting FROM hyperline.outbox o
    WHERE o.destination = drop_destination.name AND o.status IN ('pending', 'sending');
  IF waiting > 0 THEN
    RAISE EXCEPTION 'destination "%" still has % undelivered events', name, waiting
      USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Wait for them to be delivered, or mark them failed first.';
  END IF;
  DELETE FROM hyperline._destinations d WHERE d.name = drop_destination.name;
END
$fn$;
COMMENT ON FUNCTION hyperline.drop_destination(text) IS 'Drops a destination; refused while models use it or events wait for it.';

CREATE OR REPLACE FUNCTION hyperline.grant_destination(destination text, role regrole) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF destination IS NULL OR role IS NULL THEN
    RAISE EXCEPTION 'destination and role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM 1 FROM hyperline._destinations d WHERE d.name = grant_destination.destination FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'destination "%" does not exist', destination USING ERRCODE = 'undefined_object';
  END IF;
  INSERT INTO hyperline._destination_grants (destination, grantee) VALUES (destination, role)
    ON CONFLICT DO NOTHING;
END
$fn$;
COMMENT ON FUNCTION hyperline.grant_destination(text, regrole) IS 'Lets a role (and its members) use a destination in their models.';

CREATE OR REPLACE FUNCTION hyperline.revoke_destination(destination text, role regrole) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  users text;
BEGIN
  IF destination IS NULL OR role IS NULL THEN
    RAISE EXCEPTION 'destination and role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM 1 FROM hyperline._destinations d WHERE d.name = revoke_destination.destination FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'destination "%" does not exist', destination USING ERRCODE = 'undefined_object';
  END IF;
  -- Models of that role keep their destination only while they may use it.
  SELECT string_agg(m.name, ', ' ORDER BY m.name) INTO users
    FROM hyperline._models m
   WHERE m.destination = revoke_destination.destination
     AND hyperline._model_owner(m) = role::oid
     AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = role::oid AND r.rolsuper);
  IF users IS NOT NULL THEN
    RAISE EXCEPTION 'role % has models that use destination "%": %', role, destination, users
      USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Drop those models or move them to another destination first.';
  END IF;
  DELETE FROM hyperline._destination_grants g
    WHERE g.destination = revoke_destination.destination AND g.grantee = role;
END
$fn$;
COMMENT ON FUNCTION hyperline.revoke_destination(text, regrole) IS 'Takes back grant_destination; refused while the role''s models use the destination.';

-- Whether `role` may use destination `dest` in a model.
CREATE OR REPLACE FUNCTION hyperline._can_use_destination(dest text, role oid) RETURNS boolean
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = role AND r.rolsuper)
      OR EXISTS (SELECT 1 FROM hyperline._destination_grants g
                  WHERE g.destination = dest AND pg_has_role(role, g.grantee::oid, 'USAGE'))
$fn$;

CREATE OR REPLACE VIEW hyperline.destinations AS
  SELECT d.name, d.base_url, d.api_key_hint, d.batch_size, d.max_requests_per_second, d.timeout_ms,
         CASE WHEN k.destination IS NULL THEN 'unauthorized' ELSE d.state END AS state,
         CASE WHEN k.destination IS NULL
              THEN 'no API key: destinations restored from a dump have none; set it with hyperline.alter_destination(name, api_key => ...)'
              ELSE d.last_error END AS last_error,
         ARRAY(SELECT g.grantee FROM hyperline._destination_grants g
                WHERE g.destination = d.name ORDER BY g.grantee::text) AS grantees
  FROM hyperline._destinations d LEFT JOIN _hyperline.api_keys k ON k.destination = d.name;
COMMENT ON VIEW hyperline.destinations IS 'Destinations; the API key shows only as a hint (…last 4 characters); grantees may use it in their models.';

-- ---------------------------------------------------------------------------
-- Models: public functions are gates (hyperline_gate) over the private twins
-- below, which run as the extension's owner; hyperline._caller() is the role
-- whose rights apply.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION hyperline._check_triggers(triggers text[]) RETURNS text[]
  LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  t text;
  result text[] := '{}';
BEGIN
  IF triggers IS NULL OR cardinality(triggers) = 0 THEN
    RAISE EXCEPTION 'triggers must name at least one of insert, update, delete'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOREACH t IN ARRAY triggers LOOP
    IF t IS NULL OR lower(t) NOT IN ('insert', 'update', 'delete') THEN
      RAISE EXCEPTION 'unknown trigger "%"', t USING ERRCODE = 'invalid_parameter_value',
        HINT = 'Triggers are insert (row added), update (row changed) and delete (row removed).';
    END IF;
    IF NOT lower(t) = ANY (result) THEN
      result := result || lower(t);
    END IF;
  END LOOP;
  RETURN ARRAY(SELECT x FROM unnest(ARRAY['insert', 'update', 'delete']) x WHERE x = ANY (result));
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline._check_delete_mode(delete_mode text) RETURNS text
  LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF delete_mode IS NULL OR delete_mode NOT IN ('event', 'api') THEN
    RAISE EXCEPTION 'delete_mode must be event or api (got "%")', delete_mode
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'event posts the removed row''s event (operation = ''delete''); api calls DELETE /v1/events.';
  END IF;
  RETURN delete_mode;
END
$fn$;

-- The role a model belongs to: its source table's owner, or a query model's owner.
CREATE OR REPLACE FUNCTION hyperline._model_owner(m hyperline._models) RETURNS oid
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT coalesce((SELECT c.relowner FROM pg_class c WHERE c.oid = m.source), m.owner::oid)
$fn$;

-- Whether the caller is a superuser or a member of hyperline.admin_role.
CREATE OR REPLACE FUNCTION hyperline._caller_is_admin() RETURNS boolean
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = hyperline._caller()::oid AND r.rolsuper)
      OR EXISTS (SELECT 1 FROM pg_roles r
                  WHERE r.rolname = current_setting('hyperline.admin_role', true)
                    AND pg_has_role(hyperline._caller()::oid, r.oid, 'MEMBER'))
$fn$;

-- Whether the caller may manage the model: as its owner (or a member of the
-- owning role), or a superuser. A model whose source table is gone belongs to
-- no one: superusers and members of hyperline.admin_role may drop it.
CREATE OR REPLACE FUNCTION hyperline._caller_manages(m hyperline._models) RETURNS boolean
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT CASE WHEN hyperline._model_owner(m) IS NOT NULL
              THEN pg_has_role(hyperline._caller()::oid, hyperline._model_owner(m), 'USAGE')
              ELSE hyperline._caller_is_admin() END
$fn$;

-- Loads a model the caller may manage (or, with see_only, see).
CREATE OR REPLACE FUNCTION hyperline._get_model(model text, see_only boolean DEFAULT false)
  RETURNS hyperline._models
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models;
BEGIN
  SELECT * INTO m FROM hyperline._models WHERE name = model;
  IF NOT FOUND OR NOT (hyperline._caller_manages(m) OR (see_only AND hyperline._caller_is_admin())) THEN
    -- Why the same message: a role must not learn the names of others' models.
    RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
  END IF;
  RETURN m;
END
$fn$;

-- The source must be a table the caller owns.
CREATE OR REPLACE FUNCTION hyperline._check_source(source regclass) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  owner oid;
BEGIN
  SELECT c.relowner INTO owner FROM pg_class c WHERE c.oid = source AND c.relkind IN ('r', 'p');
  IF NOT FOUND THEN
    RAISE EXCEPTION '"%" is not a table', source USING ERRCODE = 'wrong_object_type';
  END IF;
  IF NOT pg_has_role(hyperline._caller()::oid, owner, 'USAGE') THEN
    RAISE EXCEPTION 'must be owner of table %', source USING ERRCODE = 'insufficient_privilege',
      HINT = 'Only the owner of a table (or a superuser) can attach a model to it.';
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline._check_destination_use(destination text) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM hyperline._destinations d WHERE d.name = destination) THEN
    RAISE EXCEPTION 'destination "%" does not exist', destination USING ERRCODE = 'undefined_object',
      HINT = 'Create it with hyperline.create_destination.';
  END IF;
  IF NOT hyperline._can_use_destination(destination, hyperline._caller()::oid) THEN
    RAISE EXCEPTION 'permission denied for destination "%"', destination
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'A superuser can allow it with hyperline.grant_destination(destination, role).';
  END IF;
END
$fn$;

-- The name of a model's triggers: hyperline_<model>, shortened with a hash of
-- the name when it would not leave room for a suffix (_upd_out) in 63 bytes,
-- so that no trigger name is ever truncated.
CREATE OR REPLACE FUNCTION hyperline._trigger_name(model text) RETURNS name
  LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT CASE WHEN length(model) <= 45 THEN 'hyperline_' || model
              ELSE 'hyperline_' || left(model, 36) || '_' || left(md5(model), 8) END
$fn$;

-- The model's triggers, found by what they are (our trigger function with the
-- model's name as first argument), whatever their names; partitions' clones
-- of them are left out (they go with them).
CREATE OR REPLACE FUNCTION hyperline._model_triggers(model text)
  RETURNS TABLE (oid oid, tgname name, tgrelid regclass)
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT tg.oid, tg.tgname, tg.tgrelid::regclass FROM pg_trigger tg
   WHERE tg.tgfoid = 'hyperline._trigger()'::regprocedure AND NOT tg.tgisinternal
     AND tg.tgparentid = 0 AND tg.tgnargs >= 1
     AND convert_from(substring(tg.tgargs FROM 1 FOR position('\x00'::bytea IN tg.tgargs) - 1), 'SQL_ASCII') = model
$fn$;

CREATE OR REPLACE FUNCTION hyperline._drop_triggers(model text)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT * FROM hyperline._model_triggers(model) LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid);
  END LOOP;
END
$fn$;

-- (Re)creates the model's triggers on its source table. The row trigger
-- renders each event (the library writes the buffered events into the outbox
-- at the end of each statement; src/pg/outbox.hpp); its second argument says
-- which change a firing is (src/pg/trigger.cpp):
--   no filter:   one trigger on the model's events (added on INSERT, removed on
--                DELETE, changed on UPDATE); without `update`, a second one
--                catches updates of the key (the old key removed, the new
--                added).
--   with filter: WHEN clauses over old and new rows, so that rows outside the
--                filter never reach the trigger: INSERT in the filter = added;
--                UPDATE into it = added, out of it = removed, within it =
--                changed; DELETE in it = removed.
CREATE OR REPLACE FUNCTION hyperline._create_trigger(model text, source regclass, trigger_name name,
    events text, condition text, kind text)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s FOR EACH ROW%s EXECUTE FUNCTION hyperline._trigger(%L%s)',
                 trigger_name, events, source,
                 CASE WHEN condition IS NULL THEN '' ELSE ' WHEN (' || condition || ')' END,
                 model, CASE WHEN kind IS NULL THEN '' ELSE ', ' || quote_literal(kind) END);
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline._install_triggers(model text)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models;
  base name;
  on_insert boolean;
  on_update boolean;
  on_delete boolean;
  key_changed text;
  f_new text;
  f_old text;
  t record;
BEGIN
  SELECT * INTO STRICT m FROM hyperline._models x WHERE x.name = model;
  PERFORM hyperline._drop_triggers(model);
  base := hyperline._trigger_name(model);
  on_insert := 'insert' = ANY (m.triggers);
  on_update := 'update' = ANY (m.triggers);
  on_delete := 'delete' = ANY (m.triggers);
  SELECT format('ROW(%s) IS DISTINCT FROM ROW(%s)',
                string_agg(format('old.%I', k), ', '), string_agg(format('new.%I', k), ', '))
    INTO key_changed FROM unnest(hyperline._key_columns(m.source, m.primary_key)) k;
  IF m.filter IS NULL THEN
    IF on_update THEN
      PERFORM hyperline._create_trigger(model, m.source, base, array_to_string(m.triggers, ' OR '), NULL, NULL);
    ELSE
      PERFORM hyperline._create_trigger(model, m.source, base, array_to_string(m.triggers, ' OR '), NULL, NULL);
      PERFORM hyperline._create_trigger(model, m.source, base || '_upd', 'UPDATE', key_changed, 'changed');
    END IF;
  ELSE
    f_new := format('(%s) IS TRUE', hyperline._filter_condition(m.source, m.filter, 'new'));
    f_old := format('(%s) IS TRUE', hyperline._filter_condition(m.source, m.filter, 'old'));
    IF on_insert THEN
      PERFORM hyperline._create_trigger(model, m.source, base || '_ins', 'INSERT', f_new, 'added');
      PERFORM hyperline._create_trigger(model, m.source, base || '_upd_in', 'UPDATE',
                                        format('NOT %s AND %s', f_old, f_new), 'added');
    END IF;
    IF on_delete THEN
      PERFORM hyperline._create_trigger(model, m.source, base || '_del', 'DELETE', f_old, 'removed');
      PERFORM hyperline._create_trigger(model, m.source, base || '_upd_out', 'UPDATE',
                                        format('%s AND NOT %s', f_old, f_new), 'removed');
    END IF;
    PERFORM hyperline._create_trigger(model, m.source, base || '_upd', 'UPDATE',
                                      format('%s AND %s', f_old, f_new)
                                        || CASE WHEN on_update THEN '' ELSE ' AND ' || key_changed END,
                                      'changed');
  END IF;
  IF NOT m.enabled THEN
    FOR t IN SELECT * FROM hyperline._model_triggers(model) LOOP
      EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', t.tgrelid, t.tgname);
    END LOOP;
  END IF;
END
$fn$;

-- How many triggers _install_triggers gives a model.
CREATE OR REPLACE FUNCTION hyperline._trigger_count(m hyperline._models) RETURNS int
  LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT CASE WHEN m.filter IS NULL THEN CASE WHEN 'update' = ANY (m.triggers) THEN 1 ELSE 2 END
              ELSE 1 + 2 * ('insert' = ANY (m.triggers))::int + 2 * ('delete' = ANY (m.triggers))::int END
$fn$;

-- DDL on a model's source table (event triggers, run by whoever runs the DDL).
-- DROP TABLE (plain, CASCADE, or with its schema) drops the table's models:
-- their committed events are still delivered. A model whose triggers were
-- dropped (DROP TRIGGER, DROP COLUMN ... CASCADE) gets a WARNING.
CREATE OR REPLACE FUNCTION hyperline._on_sql_drop() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m record;
  changed boolean := false;
BEGIN
  IF to_regclass('hyperline._models') IS NULL THEN
    RETURN;  -- DROP EXTENSION
  END IF;
  FOR m IN SELECT x.name, d.object_identity,
                  (SELECT count(*) FROM hyperline.outbox o
                    WHERE o.model = x.name AND o.status IN ('pending', 'sending')) AS waiting
             FROM pg_event_trigger_dropped_objects() d JOIN hyperline._models x ON x.source = d.objid
            WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 LOOP
    DELETE FROM hyperline._models x WHERE x.name = m.name;
    changed := true;
    RAISE NOTICE 'model "%" dropped with its source table %', m.name, m.object_identity
      USING DETAIL = format('Its %s undelivered events are still delivered.', m.waiting);
  END LOOP;
  -- (Our own functions drop and recreate triggers: not a loss.)
  IF NOT hyperline._in_gate()
     AND EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() d WHERE d.object_type = 'trigger') THEN
    FOR m IN SELECT x.name FROM hyperline._models x
              WHERE x.kind = 'table' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.source)
                AND (SELECT count(*) FROM hyperline._model_triggers(x.name)) < hyperline._trigger_count(x) LOOP
      RAISE WARNING 'model "%" lost its triggers: row changes of its table produce no events', m.name
        USING HINT = 'Give it back its triggers with hyperline.alter_model (e.g. a new filter), or drop the model.';
    END LOOP;
  END IF;
  IF changed THEN
    PERFORM hyperline._models_changed();
  END IF;
END
$fn$;

-- ALTER TABLE of a model's source: the filter text follows renamed columns
-- (the triggers' WHEN clauses do by themselves), and a model that cannot render
-- any more (a column its template or key uses renamed or dropped) gets a
-- WARNING naming it. Writes never fail for it: its events are recorded failed.
CREATE OR REPLACE FUNCTION hyperline._on_ddl_end() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models;
  fresh text;
  problem text;
BEGIN
  IF to_regclass('hyperline._models') IS NULL THEN
    RETURN;
  END IF;
  FOR m IN SELECT x.* FROM hyperline._models x
            WHERE x.source IN (SELECT c.objid FROM pg_event_trigger_ddl_commands() c
                                WHERE c.classid = 'pg_class'::regclass) LOOP
    IF m.filter IS NOT NULL THEN
      SELECT hyperline._filter_of_qual(m.source, tg.tgqual::text) INTO fresh
        FROM hyperline._model_triggers(m.name) t JOIN pg_trigger tg ON tg.oid = t.oid
       WHERE tg.tgqual IS NOT NULL LIMIT 1;
      IF fresh IS NOT NULL AND fresh IS DISTINCT FROM m.filter THEN
        UPDATE hyperline._models x SET filter = fresh, updated_at = now() WHERE x.name = m.name;
      END IF;
    END IF;
    problem := hyperline._model_problem(m.name);
    IF problem IS NOT NULL THEN
      RAISE WARNING '%', problem
        USING HINT = 'Writes go on and its events are recorded failed until hyperline.alter_model gives it a payload (or key) that fits the table.';
    END IF;
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline.create_model(name text, source regclass, primary_key text, payload text,
    triggers text[] DEFAULT '{insert,update}', destination text DEFAULT 'hyperline',
    enabled boolean DEFAULT true, backfill boolean DEFAULT false,
    filter text DEFAULT NULL, delete_mode text DEFAULT 'event')
  RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.create_model(text, regclass, text, text, text[], text, boolean, boolean, text, text) IS 'Creates a model: a source table whose row changes become events rendered from a Liquid payload.';
CREATE OR REPLACE FUNCTION hyperline._create_model(name text, source regclass, primary_key text, payload text,
    triggers text[], destination text, enabled boolean, backfill boolean, filter text, delete_mode text)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  trig text[];
  normalized_filter text;
BEGIN
  IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION 'invalid model name "%"', name USING ERRCODE = 'invalid_name',
      HINT = 'Model names are lower case letters, digits and _, starting with a letter or _, at most 63 characters.';
  END IF;
  IF source IS NULL OR primary_key IS NULL OR payload IS NULL OR destination IS NULL OR enabled IS NULL THEN
    RAISE EXCEPTION 'source, primary_key, payload, destination and enabled must not be NULL'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM hyperline._check_source(source);
  trig := hyperline._check_triggers(triggers);
  PERFORM hyperline._check_delete_mode(delete_mode);
  PERFORM hyperline._check_destination_use(destination);
  IF EXISTS (SELECT 1 FROM hyperline._models m WHERE m.name = _create_model.name) THEN
    RAISE EXCEPTION 'model "%" already exists', name USING ERRCODE = 'duplicate_object',
      HINT = 'Use hyperline.alter_model to change it.';
  END IF;
  normalized_filter := hyperline._validate_model(source, primary_key, payload, name, nullif(filter, ''));
  INSERT INTO hyperline._models (name, source, primary_key, payload, triggers, destination, enabled,
                                 filter, delete_mode)
    VALUES (name, source, primary_key, payload, trig, destination, enabled, normalized_filter, delete_mode);
  PERFORM hyperline._install_triggers(name);
  PERFORM hyperline._models_changed();
  IF backfill THEN
    PERFORM hyperline._backfill(name);
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline.alter_model(name text, payload text DEFAULT NULL,
    triggers text[] DEFAULT NULL, enabled boolean DEFAULT NULL, filter text DEFAULT NULL,
    delete_mode text DEFAULT NULL, query text DEFAULT NULL, schedule text DEFAULT NULL)
  RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.alter_model(text, text, text[], boolean, text, text, text, text) IS 'Changes a model; NULL leaves a setting unchanged, filter => '''' removes the filter.';
CREATE OR REPLACE FUNCTION hyperline._alter_model(name text, payload text, triggers text[], enabled boolean,
    filter text, delete_mode text, query text, schedule text)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(name);
  trig text[] := m.triggers;
  new_filter text := m.filter;
BEGIN
  IF m.kind = 'query' THEN
    PERFORM hyperline._alter_query_model(m, payload, triggers, enabled, filter, delete_mode, query, schedule);
    RETURN;
  END IF;
  IF m.kind = 'table' THEN
    PERFORM hyperline._check_source(m.source);
  END IF;
  IF query IS NOT NULL OR schedule IS NOT NULL THEN
    RAISE EXCEPTION 'query and schedule apply to query models; "%" is a table model', name
      USING ERRCODE = 'wrong_object_type';
  END IF;
  IF triggers IS NOT NULL THEN
    trig := hyperline._check_triggers(triggers);
  END IF;
  IF delete_mode IS NOT NULL THEN
    PERFORM hyperline._check_delete_mode(delete_mode);
  END IF;
  IF payload IS NOT NULL OR filter IS NOT NULL THEN
    new_filter := hyperline._validate_model(m.source, m.primary_key, coalesce(payload, m.payload), name,
                                            CASE WHEN filter IS NULL THEN m.filter ELSE nullif(filter, '') END);
  END IF;
  UPDATE hyperline._models x SET payload = coalesce(_alter_model.payload, x.payload), triggers = trig,
      enabled = coalesce(_alter_model.enabled, x.enabled), filter = new_filter,
      delete_mode = coalesce(_alter_model.delete_mode, x.delete_mode), updated_at = now()
    WHERE x.name = _alter_model.name;
  PERFORM hyperline._install_triggers(name);
  PERFORM hyperline._models_changed();
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline.drop_model(name text) RETURNS void
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.drop_model(text) IS 'Drops a model and its trigger; its outbox rows stay, and pending ones are still delivered.';
CREATE OR REPLACE FUNCTION hyperline._drop_model(name text) RETURNS void
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(name);
BEGIN
  PERFORM hyperline._drop_triggers(name);
  DELETE FROM hyperline._models x WHERE x.name = _drop_model.name;
  PERFORM hyperline._models_changed();
END
$fn$;

CREATE OR REPLACE VIEW hyperline.models WITH (security_invoker = true) AS
  SELECT name, source, primary_key, triggers, destination, enabled, kind, query, schedule, filter,
         delete_mode
  FROM hyperline._models;
COMMENT ON VIEW hyperline.models IS 'Models: source table (or query), primary key, triggers, destination, whether enabled, filter and delete mode.';

CREATE OR REPLACE FUNCTION hyperline.preview(model text, sample int DEFAULT 5)
  RETURNS TABLE (key text, payload jsonb) LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.preview(text, int) IS 'Renders a sample of current rows with the model''s payload, read with the caller''s rights; no side effects.';
CREATE OR REPLACE FUNCTION hyperline._preview(model text, sample int)
  RETURNS TABLE (key text, payload jsonb)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(model, see_only => true);
BEGIN
  IF sample IS NULL OR sample < 0 THEN
    RAISE EXCEPTION 'sample must be zero or more (got %)', sample USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF m.kind = 'query' THEN
    -- Why managers only: the query runs with its owner's rights.
    IF NOT hyperline._caller_manages(m) THEN
      RAISE EXCEPTION 'only the owner of query model "%" may preview it', m.name
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Its query runs with its owner''s rights: its owner (or a member of that role) may preview it.';
    END IF;
    RETURN QUERY SELECT r.key, r.payload FROM hyperline._render_query_rows(m.name, sample) r;
    RETURN;
  END IF;
  RETURN QUERY SELECT r.key, r.payload FROM hyperline._render_rows(m.name, sample) r;
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline.backfill(model text) RETURNS bigint
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.backfill(text) IS 'Enqueues every current row of the model as an insert event (as a first sync does); returns how many.';
CREATE OR REPLACE FUNCTION hyperline._backfill(model text) RETURNS bigint
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(model);
  n bigint;
BEGIN
  n := hyperline._backfill_rows(m.name);
  PERFORM hyperline._wake();
  RETURN n;
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline.test_delivery(model text)
  RETURNS TABLE (http_status int, response text) LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.test_delivery(text) IS 'Sends one sample row to the destination now, synchronously, and reports the answer.';
CREATE OR REPLACE FUNCTION hyperline._test_delivery(model text)
  RETURNS TABLE (http_status int, response text)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(model);
  p jsonb;
BEGIN
  SELECT r.payload INTO p FROM hyperline._render_rows(m.name, 1) r;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'table % has no rows to send', m.source USING ERRCODE = 'no_data_found',
      HINT = 'Insert a row first; test_delivery sends one real row.';
  END IF;
  -- The test request goes out either way; say so when no worker would send the
  -- model's events from this database.
  PERFORM hyperline._database_served(warn => true);
  RETURN QUERY SELECT s.http_status, s.response FROM hyperline._send_test(m.name, p, 'insert') s;
END
$fn$;

-- ---------------------------------------------------------------------------
-- Query models: a model over a SQL query, run on a schedule (or with
-- run_model) and diffed by key against what its earlier runs recorded
-- (src/pg/query_model.cpp). A query model belongs to the role that created it:
-- its query runs with that role's rights and search_path, whoever runs it.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION hyperline._validate_query_model(name text, query text, primary_key text,
    payload text, owner regrole, search_path text)
  RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_validate_query_model';
COMMENT ON FUNCTION hyperline._validate_query_model(text, text, text, text, regrole, text) IS 'Checks a query model as it will run (its query, run with LIMIT 1 as its owner, its key and template); raises an error naming the problem.';

CREATE OR REPLACE FUNCTION hyperline._run_query_model(model text, run_id bigint, OUT rows bigint,
    OUT added bigint, OUT updated bigint, OUT removed bigint, OUT unchanged bigint)
  RETURNS record LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_run_query_model';
COMMENT ON FUNCTION hyperline._run_query_model(text, bigint) IS 'Runs a query model in this transaction: its events and new state commit with it.';

CREATE OR REPLACE FUNCTION hyperline._render_query_rows(model text, sample int)
  RETURNS TABLE (key text, payload jsonb) LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_render_query_rows';
COMMENT ON FUNCTION hyperline._render_query_rows(text, int) IS 'Renders the first rows of a query model''s query, run as its owner.';

CREATE OR REPLACE FUNCTION hyperline._caller_search_path() RETURNS text
  LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_caller_search_path';
COMMENT ON FUNCTION hyperline._caller_search_path() IS 'The search_path of the role calling the public function being run.';

CREATE OR REPLACE FUNCTION hyperline._next_run_at(schedule text, after timestamptz) RETURNS timestamptz
  LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_next_run_at';
COMMENT ON FUNCTION hyperline._next_run_at(text, timestamptz) IS 'The first run time of a schedule after an instant (NULL for no schedule); raises an error naming what does not parse.';

CREATE OR REPLACE FUNCTION hyperline._next_due(schedule text, last_due timestamptz, now timestamptz)
  RETURNS timestamptz LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_next_due';
COMMENT ON FUNCTION hyperline._next_due(text, timestamptz, timestamptz) IS 'The run time after the run due at last_due started at now (intervals keep their phase).';

CREATE OR REPLACE FUNCTION hyperline.create_query_model(name text, query text, primary_key text,
    payload text, schedule text DEFAULT '1 hour', triggers text[] DEFAULT '{insert,update}',
    destination text DEFAULT 'hyperline', enabled boolean DEFAULT true,
    delete_mode text DEFAULT 'event', send_initial boolean DEFAULT true)
  RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.create_query_model(text, text, text, text, text, text[], text, boolean, text, boolean) IS 'Creates a query model: a SQL query run on a schedule, whose added, changed and removed rows (by key) become events.';
CREATE OR REPLACE FUNCTION hyperline._create_query_model(name text, query text, primary_key text,
    payload text, schedule text, triggers text[], destination text, enabled boolean,
    delete_mode text, send_initial boolean)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  trig text[];
  path text := hyperline._caller_search_path();
  sched text := nullif(btrim(schedule), '');
  first_run timestamptz;
BEGIN
  IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION 'invalid model name "%"', name USING ERRCODE = 'invalid_name',
      HINT = 'Model names are lower case letters, digits and _, starting with a letter or _, at most 63 characters.';
  END IF;
  IF query IS NULL OR primary_key IS NULL OR payload IS NULL OR destination IS NULL OR enabled IS NULL
     OR send_initial IS NULL THEN
    RAISE EXCEPTION 'query, primary_key, payload, destination, enabled and send_initial must not be NULL'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  trig := hyperline._check_triggers(triggers);
  PERFORM hyperline._check_delete_mode(delete_mode);
  PERFORM hyperline._check_destination_use(destination);
  IF EXISTS (SELECT 1 FROM hyperline._models m WHERE m.name = _create_query_model.name) THEN
    RAISE EXCEPTION 'model "%" already exists', name USING ERRCODE = 'duplicate_object',
      HINT = 'Use hyperline.alter_model to change it.';
  END IF;
  -- The first run is one schedule step away (run_model runs it at once).
  first_run := hyperline._next_run_at(sched, now());
  PERFORM hyperline._validate_query_model(name, query, primary_key, payload, hyperline._caller(), path);
  INSERT INTO hyperline._models (name, kind, query, primary_key, payload, triggers, destination,
                                 enabled, delete_mode, schedule, send_initial, owner, search_path,
                                 next_run_at)
    VALUES (name, 'query', query, primary_key, payload, trig, destination, enabled, delete_mode,
            sched, send_initial, hyperline._caller(), path, first_run);
  PERFORM hyperline._models_changed();
END
$fn$;

-- alter_model for query models (called by _alter_model): payload and query
-- are checked as the model will run (as its owner, with its search_path);
-- schedule => '' removes the schedule (the model then runs only when asked).
CREATE OR REPLACE FUNCTION hyperline._alter_query_model(m hyperline._models, payload text,
    triggers text[], enabled boolean, filter text, delete_mode text, query text, schedule text)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  trig text[] := m.triggers;
  sched text := m.schedule;
  next_run timestamptz := m.next_run_at;
BEGIN
  IF filter IS NOT NULL THEN
    RAISE EXCEPTION 'filter applies to table models; "%" is a query model', m.name
      USING ERRCODE = 'wrong_object_type', HINT = 'Filter rows in the query itself (WHERE ...).';
  END IF;
  IF triggers IS NOT NULL THEN
    trig := hyperline._check_triggers(triggers);
  END IF;
  IF delete_mode IS NOT NULL THEN
    PERFORM hyperline._check_delete_mode(delete_mode);
  END IF;
  IF schedule IS NOT NULL THEN
    sched := nullif(btrim(schedule), '');
    next_run := hyperline._next_run_at(sched, now());
  END IF;
  IF payload IS NOT NULL OR query IS NOT NULL THEN
    PERFORM hyperline._validate_query_model(m.name, coalesce(query, m.query), m.primary_key,
                                            coalesce(payload, m.payload), m.owner, m.search_path);
  END IF;
  UPDATE hyperline._models x SET payload = coalesce(_alter_query_model.payload, x.payload),
      query = coalesce(_alter_query_model.query, x.query), triggers = trig,
      enabled = coalesce(_alter_query_model.enabled, x.enabled),
      delete_mode = coalesce(_alter_query_model.delete_mode, x.delete_mode),
      schedule = sched, next_run_at = next_run, updated_at = now(),
      state_digest = CASE WHEN _alter_query_model.payload IS NULL AND _alter_query_model.query IS NULL
                          THEN x.state_digest END
    WHERE x.name = m.name;
  PERFORM hyperline._models_changed();
END
$fn$;

CREATE OR REPLACE FUNCTION hyperline.run_model(name text)
  RETURNS TABLE (run_id bigint, added bigint, updated bigint, removed bigint, unchanged bigint)
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.run_model(text) IS 'Runs a query model now, in this transaction: returns the run and its added, updated, removed and unchanged keys.';
CREATE OR REPLACE FUNCTION hyperline._run_model(name text)
  RETURNS TABLE (run_id bigint, added bigint, updated bigint, removed bigint, unchanged bigint)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(name);
  run bigint;
  started timestamptz := clock_timestamp();
  r record;
BEGIN
  IF m.kind <> 'query' THEN
    RAISE EXCEPTION 'model "%" is a table model: run_model runs query models', m.name
      USING ERRCODE = 'wrong_object_type', HINT = 'hyperline.backfill sends every row of a table model.';
  END IF;
  IF NOT m.enabled THEN
    RAISE EXCEPTION 'model "%" is disabled', m.name USING ERRCODE = 'object_not_in_prerequisite_state',
      HINT = 'Enable it first: hyperline.alter_model(name, enabled => true).';
  END IF;
  run := nextval('hyperline._sync_runs_run_id_seq');
  SELECT * INTO STRICT r FROM hyperline._run_query_model(m.name, run);
  INSERT INTO hyperline._sync_runs AS s (run_id, model, started_at, finished_at, status, rows, added,
                                         updated, removed, unchanged)
    VALUES (run, m.name, started, clock_timestamp(), 'succeeded', r.rows, r.added, r.updated,
            r.removed, r.unchanged);
  RETURN QUERY SELECT run, r.added, r.updated, r.removed, r.unchanged;
END
$fn$;

-- The scheduler's side (src/pg/sync_worker.cpp), run by the worker's
-- superuser. Takes the query model due first that no one runs, moves its
-- next run time on and records its run as running; nothing when none is due.
CREATE OR REPLACE FUNCTION hyperline._claim_due_run(OUT model text, OUT run_id bigint)
  RETURNS record LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m record;
  next_run timestamptz;
  problem text;
BEGIN
  SELECT x.name, x.schedule, x.next_run_at INTO m FROM hyperline._models x
   WHERE x.kind = 'query' AND x.enabled AND x.next_run_at <= now()
   ORDER BY x.next_run_at LIMIT 1 FOR NO KEY UPDATE OF x SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  BEGIN
    next_run := hyperline._next_due(m.schedule, m.next_run_at, now());
  EXCEPTION WHEN OTHERS THEN
    -- A schedule that no longer parses stops the schedule, visibly.
    GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
    UPDATE hyperline._models x SET next_run_at = NULL WHERE x.name = m.name;
    INSERT INTO hyperline._sync_runs (model, started_at, finished_at, status, error, scheduled_for)
      VALUES (m.name, now(), now(), 'failed', problem || ' (the model is no longer scheduled)', m.next_run_at);
    RETURN;
  END;
  UPDATE hyperline._models x SET next_run_at = next_run WHERE x.name = m.name;
  INSERT INTO hyperline._sync_runs AS s (model, started_at, status, scheduled_for, pid)
    VALUES (m.name, clock_timestamp(), 'running', m.next_run_at, pg_backend_pid())
    RETURNING s.run_id INTO _claim_due_run.run_id;
  model := m.name;
END
$fn$;

-- Records the end of a scheduled run.
CREATE OR REPLACE FUNCTION hyperline._finish_run(run_id bigint, rows bigint, added bigint,
    updated bigint, removed bigint, unchanged bigint, error text)
  RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $fn$
  UPDATE hyperline._sync_runs r
     SET finished_at = clock_timestamp(), status = CASE WHEN $7 IS NULL THEN 'succeeded' ELSE 'failed' END,
         rows = $2, added = $3, updated = $4, removed = $5, unchanged = $6, error = $7
   WHERE r.run_id = $1
$fn$;

-- Runs left running by a process that is gone (a crash, a restart) failed:
-- their transaction, and so everything they did, was rolled back.
CREATE OR REPLACE FUNCTION hyperline._fail_interrupted_runs() RETURNS bigint
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  n bigint;
BEGIN
  UPDATE hyperline._sync_runs r
     SET status = 'failed', finished_at = now(),
         error = 'interrupted: the process running it stopped (a crash or a restart); nothing of it was kept'
   WHERE r.status = 'running'
     AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.pid AND a.backend_start <= r.started_at);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;

-- Purges runs finished longer than hyperline.delivered_retention ago, keeping
-- the last run of each model; returns how many. For the upkeep worker.
CREATE OR REPLACE FUNCTION hyperline._purge_sync_runs() RETURNS bigint
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  retention bigint;
  n bigint;
BEGIN
  SELECT s.setting::bigint INTO retention FROM pg_settings s WHERE s.name = 'hyperline.delivered_retention';
  IF retention IS NULL OR retention < 0 THEN
    RETURN 0;
  END IF;
  DELETE FROM hyperline._sync_runs r
   WHERE r.status <> 'running' AND r.finished_at < now() - make_interval(secs => retention)
     AND r.run_id < (SELECT max(x.run_id) FROM hyperline._sync_runs x WHERE x.model = r.model);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;

-- Trigger on hyperline._models: a dropped query model's state and runs go
-- with it (a model created again under its name starts afresh).
CREATE OR REPLACE FUNCTION hyperline._forget_query_model() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  DELETE FROM hyperline._query_state s WHERE s.model = old.name;
  DELETE FROM hyperline._sync_runs r WHERE r.model = old.name;
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE VIEW hyperline.sync_runs WITH (security_invoker = true) AS
  SELECT run_id, model, started_at, finished_at, status, rows, added, updated, removed, unchanged, error
  FROM hyperline._sync_runs;
COMMENT ON VIEW hyperline.sync_runs IS 'Runs of query models: when, how they ended (running, succeeded, failed), the result''s rows and its added, updated, removed and unchanged keys.';
GRANT SELECT ON hyperline.sync_runs TO PUBLIC;
-- (end of Query models)

-- ---------------------------------------------------------------------------
-- Outbox upkeep and status
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION hyperline.retry(model text DEFAULT NULL) RETURNS bigint
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_gate';
COMMENT ON FUNCTION hyperline.retry(text) IS 'Puts failed events (of one model, or all the caller manages) back to pending; returns how many. Rows that failed to render stay failed; a failed event with a newer change of the same key is superseded instead.';
CREATE OR REPLACE FUNCTION hyperline._retry(model text) RETURNS bigint
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  n bigint;
  stale bigint;
  everything boolean := EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = hyperline._caller()::oid AND r.rolsuper);
  mine text[];
BEGIN
  -- The models whose events the caller may retry: those it manages (a
  -- superuser: every event, also of dropped models).
  SELECT array_agg(m.name) INTO mine FROM hyperline._models m WHERE hyperline._caller_manages(m);
  IF model IS NOT NULL AND NOT model = ANY (coalesce(mine, '{}'))
     AND NOT (everything AND EXISTS (SELECT 1 FROM hyperline.outbox o WHERE o.model = _retry.model)) THEN
    RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
  END IF;
  -- Why: sending a failed event when a newer change of its key exists would
  -- put the older version back at Hyperline (after a newer one was delivered,
  -- or after a delete). Such events are superseded instead.
  UPDATE hyperline.outbox o SET status = 'superseded'
    WHERE o.status = 'failed' AND (_retry.model IS NULL OR o.model = _retry.model)
      AND (everything OR o.model = ANY (mine))
      AND EXISTS (SELECT 1 FROM hyperline.outbox n
                  WHERE n.model = o.model AND n.event_key = o.event_key AND n.id > o.id);
  GET DIAGNOSTICS stale = ROW_COUNT;
  IF stale > 0 THEN
    RAISE NOTICE '% failed events not retried but superseded: a newer change of the same key exists', stale;
  END IF;
  UPDATE hyperline.outbox o SET status = 'pending', attempts = 0, next_attempt_at = now()
    WHERE o.status = 'failed' AND o.payload IS NOT NULL AND (_retry.model IS NULL OR o.model = _retry.model)
      AND (everything OR o.model = ANY (mine));
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM hyperline._wake();
  RETURN n;
END
$fn$;

CREATE OR REPLACE VIEW hyperline.model_status WITH (security_invoker = true) AS
  WITH names AS (
    SELECT name AS model FROM hyperline._models
    UNION SELECT DISTINCT o.model FROM hyperline.outbox o
  ),
  -- Whether a delivery worker serves this database (as the launcher decides:
  -- hyperline.database empty or naming it, not a template, connections allowed).
  served AS (
    SELECT coalesce(current_setting('hyperline.database', true), '') IN ('', current_database())
           AND NOT d.datistemplate AND d.datallowconn AS served,
           current_setting('hyperline.database', true) AS setting
      FROM pg_database d WHERE d.datname = current_database()
  )
  SELECT n.model,
         count(*) FILTER (WHERE o.status = 'pending') AS pending,
         count(*) FILTER (WHERE o.status = 'sending') AS sending,
         count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
         count(*) FILTER (WHERE o.status = 'failed') AS failed,
         now() - min(o.created_at) FILTER (WHERE o.status = 'pending') AS oldest_pending,
         max(o.delivered_at) AS last_delivered_at,
         CASE WHEN NOT (SELECT served FROM served) AND count(*) FILTER (WHERE o.status = 'pending') > 0
              THEN format('no pg_hyperline worker delivers from database %s (hyperline.database = %L): its events wait',
                          current_database(), (SELECT setting FROM served))
              ELSE (SELECT e.last_error FROM hyperline.outbox e
                     WHERE e.model = n.model AND e.last_error IS NOT NULL
                     ORDER BY e.id DESC LIMIT 1) END COLLATE "default" AS last_error
  FROM names n LEFT JOIN hyperline.outbox o ON o.model = n.model
  GROUP BY n.model;
COMMENT ON VIEW hyperline.model_status IS 'Per model: events by status, age of the oldest pending, last delivery and last error.';

-- Privileges: every function is for its owner unless granted below; the gates
-- check the caller themselves. The trigger function is not executable by
-- PUBLIC, so only the extension itself attaches it to a table.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA hyperline FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  hyperline.create_model(text, regclass, text, text, text[], text, boolean, boolean, text, text),
  hyperline.alter_model(text, text, text[], boolean, text, text, text, text), hyperline.drop_model(text),
  hyperline.preview(text, int), hyperline.backfill(text), hyperline.test_delivery(text),
  hyperline.retry(text), hyperline.render_template(text, jsonb)
  TO PUBLIC;
-- Query models: their public functions.
GRANT EXECUTE ON FUNCTION
  hyperline.create_query_model(text, text, text, text, text, text[], text, boolean, text, boolean),
  hyperline.run_model(text)
  TO PUBLIC;
-- ---------------------------------------------------------------------------
-- Operating: counters (shared memory, src/pg/stats.cpp), the request log,
-- health and its alerts (src/pg/health.cpp).
-- ---------------------------------------------------------------------------
-- Like pg_stat_statements, a function and a view of the same name: the
-- function shows each role only the rows it may see (models by row level
-- security on hyperline._models; destinations to superusers, members of
-- hyperline.admin_role and their grantees), and adds failed_last_hour.
CREATE OR REPLACE FUNCTION hyperline.stats()
  RETURNS TABLE (kind text, name text, events_enqueued bigint, events_delivered bigint,
    events_failed bigint, events_superseded bigint, requests bigint, responses_2xx bigint,
    responses_4xx bigint, responses_429 bigint, responses_5xx bigint, transport_errors bigint,
    retries bigint, bytes_sent bigint, latency_p50_ms double precision,
    latency_p90_ms double precision, latency_p99_ms double precision, last_success_at timestamptz,
    last_failure_at timestamptz, stats_reset timestamptz, failed_last_hour bigint)
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'hyperline_stats';
COMMENT ON FUNCTION hyperline.stats() IS 'Delivery counters per destination and model the caller may see (the hyperline.stats view), plus events failed in the last hour.';

CREATE OR REPLACE VIEW hyperline.stats WITH (security_invoker = true) AS
  SELECT kind, name, events_enqueued, events_delivered, events_failed, events_superseded, requests,
         responses_2xx, responses_4xx, responses_429, responses_5xx, transport_errors, retries,
         bytes_sent, latency_p50_ms, latency_p90_ms, latency_p99_ms, last_success_at,
         last_failure_at, stats_reset
  FROM hyperline.stats();
COMMENT ON VIEW hyperline.stats IS 'Per destination and model: events enqueued, delivered, failed, superseded; requests by answer; retries; bytes; commit-to-2xx latency percentiles over the last minutes; since stats_reset (kept in shared memory: a server restart resets them).';

CREATE OR REPLACE FUNCTION hyperline.reset_stats() RETURNS void
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'hyperline_reset_stats';
COMMENT ON FUNCTION hyperline.reset_stats() IS 'Zeroes the counters of hyperline.stats in this database and sets their stats_reset to now (superusers, and roles granted EXECUTE).';

CREATE OR REPLACE VIEW hyperline.requests WITH (security_invoker = true) AS
  SELECT id, destination, sent_at, duration_ms, events, http_status, error FROM hyperline._requests;
COMMENT ON VIEW hyperline.requests IS 'The delivery worker''s HTTP requests, one row each: when, how long, how many events, the status (NULL: no answer) and the error; kept like delivered events.';

CREATE OR REPLACE FUNCTION hyperline.health() RETURNS TABLE (check_name text, status text, detail text)
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'hyperline_health';
COMMENT ON FUNCTION hyperline.health() IS 'One row per check (worker, backlog, destinations, failed_events, query_models) with status ok, warning or critical, as the caller sees things; changes are sent with NOTIFY hyperline_alerts.';

-- (After the REVOKE above: this part grants what it makes.)
REVOKE ALL ON FUNCTION hyperline.stats(), hyperline.reset_stats(), hyperline.health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hyperline.stats(), hyperline.health() TO PUBLIC;
GRANT SELECT ON hyperline.stats, hyperline.requests TO PUBLIC;
-- (end of Operating)
-- END REPLACEABLE

CREATE TRIGGER outbox_restored_sending BEFORE INSERT ON hyperline.outbox FOR EACH ROW
  WHEN (NEW.status = 'sending') EXECUTE FUNCTION hyperline._restored_event();
CREATE EVENT TRIGGER hyperline_sql_drop ON sql_drop EXECUTE FUNCTION hyperline._on_sql_drop();
CREATE EVENT TRIGGER hyperline_ddl_end ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
  EXECUTE FUNCTION hyperline._on_ddl_end();

-- Query models: a dropped query model takes its state and runs with it.
CREATE TRIGGER query_model_dropped AFTER DELETE ON hyperline._models
  FOR EACH ROW WHEN (old.kind = 'query') EXECUTE FUNCTION hyperline._forget_query_model();

GRANT USAGE ON SCHEMA hyperline TO PUBLIC;
-- Readable by all (row level security filters models and events; no secret is
-- in these tables). pg_dump of the database by a non-superuser reads them.
GRANT SELECT ON hyperline.models, hyperline.destinations, hyperline._models, hyperline.outbox,
  hyperline.model_status, hyperline._destinations, hyperline._destination_grants TO PUBLIC;
GRANT SELECT ON SEQUENCE hyperline.outbox_id_seq TO PUBLIC;

-- Last: say so now if no worker delivers from this database.
SELECT hyperline._database_served(warn => true);
