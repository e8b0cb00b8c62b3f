-- pg_hyperline 0.2.0: destinations, models, the outbox and their functions.
--
-- Vocabulary (kept from Hightouch): a destination is where events go (base URL,
-- secret API key, delivery settings); a model is a source table, its primary key
-- and a Liquid payload template; a model's triggers say which row changes
-- (insert/update/delete) produce events. Every event is a row of
-- hyperline.outbox, written in the transaction that changed the source row and
-- delivered by the background worker.
\echo Use "CREATE EXTENSION pg_hyperline" to load this file. \quit

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

CREATE TABLE _hyperline.api_keys (
  destination text PRIMARY KEY REFERENCES hyperline._destinations (name) ON DELETE CASCADE,
  api_key text NOT NULL
);
COMMENT ON TABLE _hyperline.api_keys IS 'Destination API keys; readable by superusers only.';

CREATE TABLE hyperline._models (
  name text PRIMARY KEY CONSTRAINT model_name_format CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  source regclass NOT NULL,
  primary_key text NOT NULL,
  payload text NOT NULL,
  triggers text[] NOT NULL,
  destination text NOT NULL REFERENCES hyperline._destinations (name),
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE hyperline._models IS 'Models (private: use the hyperline.models view).';

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
  destination text NOT NULL
);
COMMENT ON TABLE hyperline.outbox IS 'One row per usage event: what was rendered, where it is in delivery, and why it failed.';
COMMENT ON COLUMN hyperline.outbox.event_key IS 'The source row''s primary key value, as text.';
COMMENT ON COLUMN hyperline.outbox.payload IS 'The rendered event; NULL when rendering failed (see last_error).';
COMMENT ON COLUMN hyperline.outbox.status IS 'pending, sending, delivered, failed (final) or superseded (replaced by a newer change of the same key before it was sent).';
COMMENT ON COLUMN hyperline.outbox.destination IS 'Destination the event goes to (kept so events of dropped models are still delivered).';
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

SELECT pg_catalog.pg_extension_config_dump('hyperline._destinations', '');
SELECT pg_catalog.pg_extension_config_dump('_hyperline.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('hyperline._models', '');
SELECT pg_catalog.pg_extension_config_dump('hyperline.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('hyperline.outbox_id_seq', '');

-- ---------------------------------------------------------------------------
-- C functions (src/pg). Private ones are prefixed with _.
-- ---------------------------------------------------------------------------
CREATE FUNCTION hyperline._trigger() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_trigger';
COMMENT ON FUNCTION hyperline._trigger() IS 'Row trigger of every model: renders the payload into hyperline.outbox.';

CREATE FUNCTION hyperline._validate_model(source regclass, primary_key text, payload text, model text)
  RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_validate_model';
COMMENT ON FUNCTION hyperline._validate_model(regclass, text, text, text) IS 'Checks a model definition; raises an error naming the problem.';

CREATE TYPE hyperline._rendered AS (payload jsonb, error text);
CREATE FUNCTION hyperline._render_event(model text, r record, operation text)
  RETURNS hyperline._rendered LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hyperline_render_event';
COMMENT ON FUNCTION hyperline._render_event(text, record, text) IS 'Renders a model''s payload for one row; errors are returned, not raised.';

CREATE FUNCTION hyperline._caller_owns(rel regclass) RETURNS boolean
  LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'hyperline_caller_owns';
COMMENT ON FUNCTION hyperline._caller_owns(regclass) IS 'Whether the user who called the outermost SECURITY DEFINER function owns the table.';
CREATE FUNCTION hyperline._caller_can_select(rel regclass) RETURNS boolean
  LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'hyperline_caller_can_select';
COMMENT ON FUNCTION hyperline._caller_can_select(regclass) IS 'Whether the calling user may SELECT from the table.';

CREATE FUNCTION hyperline._models_changed() RETURNS void
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_models_changed';
COMMENT ON FUNCTION hyperline._models_changed() IS 'Invalidates every backend''s compiled templates at commit.';

CREATE FUNCTION hyperline._wake() RETURNS void
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_wake';
COMMENT ON FUNCTION hyperline._wake() IS 'Wakes the delivery worker at commit.';

CREATE FUNCTION hyperline.render_template(template text, context jsonb DEFAULT '{}')
  RETURNS text LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'hyperline_render_template';
COMMENT ON FUNCTION hyperline.render_template(text, jsonb) IS 'Renders a Liquid template with a JSON context (the engine alone, standard Liquid output).';

CREATE FUNCTION hyperline._test_delivery(model text, payload jsonb, operation text)
  RETURNS TABLE (http_status int, response text)
  LANGUAGE c AS 'MODULE_PATHNAME', 'hyperline_test_delivery';
COMMENT ON FUNCTION hyperline._test_delivery(text, jsonb, text) IS 'Sends one rendered payload synchronously.';

-- ---------------------------------------------------------------------------
-- Destinations
-- ---------------------------------------------------------------------------
-- Whether a base_url is plain http to a host that is not loopback.
CREATE FUNCTION hyperline._insecure_url(url text) RETURNS boolean
  LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT url ~* '^http://' AND NOT coalesce(
    lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(\[[^]]*\]|[^/:?#@]*)'))
      ~ '^(localhost|\[::1\]|127\.[0-9]+\.[0-9]+\.[0-9]+)$', false)
$fn$;

CREATE FUNCTION hyperline._check_destination(base_url text, api_key text, batch_size int,
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

CREATE FUNCTION hyperline.create_destination(name text, api_key text,
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

CREATE FUNCTION hyperline.alter_destination(name text, api_key text DEFAULT NULL,
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
    UPDATE _hyperline.api_keys k SET api_key = alter_destination.api_key
      WHERE k.destination = alter_destination.name;
    -- Rows held back by an unauthorized answer are due now.
    UPDATE hyperline.outbox o SET next_attempt_at = now()
      WHERE o.status = 'pending' AND o.destination = alter_destination.name AND o.next_attempt_at > now();
  END IF;
  PERFORM hyperline._wake();
END
$fn$;
COMMENT ON FUNCTION hyperline.alter_destination(text, text, text, int, real, int) IS 'Changes a destination; NULL leaves a setting unchanged (use it to rotate the API key).';

CREATE FUNCTION hyperline.drop_destination(name text) RETURNS void
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

CREATE VIEW hyperline.destinations AS
  SELECT name, base_url, api_key_hint, batch_size, max_requests_per_second, timeout_ms,
         state, last_error
  FROM hyperline._destinations;
COMMENT ON VIEW hyperline.destinations IS 'Destinations; the API key shows only as a hint (…last 4 characters).';

-- ---------------------------------------------------------------------------
-- Models
-- ---------------------------------------------------------------------------
CREATE FUNCTION hyperline._check_triggers(triggers text[]) RETURNS text[]
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

-- Drops the model's triggers from its source table, if there.
CREATE FUNCTION hyperline._drop_triggers(model text, source regclass)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  t name;
BEGIN
  FOR t IN SELECT tgname FROM pg_trigger WHERE tgrelid = source AND NOT tgisinternal
             AND tgname = 'hyperline_' || model LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', t, source);
  END LOOP;
END
$fn$;

-- (Re)creates the model's trigger on its source table: the row trigger that
-- renders each event (the library writes the buffered events into the outbox
-- at the end of each statement; src/pg/outbox.hpp).
CREATE FUNCTION hyperline._install_trigger(model text, source regclass, triggers text[], enabled boolean)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM hyperline._drop_triggers(model, source);
  EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s FOR EACH ROW EXECUTE FUNCTION hyperline._trigger(%L)',
                 'hyperline_' || model, array_to_string(triggers, ' OR '), source, model);
  IF NOT enabled THEN
    EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', source, 'hyperline_' || model);
  END IF;
END
$fn$;

CREATE FUNCTION hyperline._check_model_access(source regclass) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = source AND c.relkind IN ('r', 'p')) THEN
    RAISE EXCEPTION '"%" is not a table', source USING ERRCODE = 'wrong_object_type';
  END IF;
  IF NOT hyperline._caller_owns(source) THEN
    RAISE EXCEPTION 'must be owner of table %', source USING ERRCODE = 'insufficient_privilege',
      HINT = 'Only the owner of a table (or a superuser) can attach a model to it.';
  END IF;
END
$fn$;

CREATE FUNCTION hyperline._get_model(model text) RETURNS hyperline._models
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models;
BEGIN
  SELECT * INTO m FROM hyperline._models WHERE name = model;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
  END IF;
  RETURN m;
END
$fn$;

CREATE FUNCTION hyperline.create_model(name text, source regclass, primary_key text, payload text,
    triggers text[] DEFAULT '{insert,update}', destination text DEFAULT 'hyperline',
    enabled boolean DEFAULT true, backfill boolean DEFAULT false)
  RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  trig text[];
BEGIN
  IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION 'invalid model name "%"', name USING ERRCODE = 'invalid_name',
      HINT = 'Model names are lower case letters, digits and _, starting with a letter or _, at most 63 characters.';
  END IF;
  IF source IS NULL OR primary_key IS NULL OR payload IS NULL OR destination IS NULL OR enabled IS NULL THEN
    RAISE EXCEPTION 'source, primary_key, payload, destination and enabled must not be NULL'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM hyperline._check_model_access(source);
  trig := hyperline._check_triggers(triggers);
  IF NOT EXISTS (SELECT 1 FROM hyperline._destinations d WHERE d.name = create_model.destination) THEN
    RAISE EXCEPTION 'destination "%" does not exist', destination USING ERRCODE = 'undefined_object',
      HINT = 'Create it with hyperline.create_destination.';
  END IF;
  IF EXISTS (SELECT 1 FROM hyperline._models m WHERE m.name = create_model.name) THEN
    RAISE EXCEPTION 'model "%" already exists', name USING ERRCODE = 'duplicate_object',
      HINT = 'Use hyperline.alter_model to change it.';
  END IF;
  PERFORM hyperline._validate_model(source, primary_key, payload, name);
  INSERT INTO hyperline._models (name, source, primary_key, payload, triggers, destination, enabled)
    VALUES (name, source, primary_key, payload, trig, destination, enabled);
  PERFORM hyperline._install_trigger(name, source, trig, enabled);
  PERFORM hyperline._models_changed();
  IF backfill THEN
    PERFORM hyperline.backfill(name);
  END IF;
END
$fn$;
COMMENT ON FUNCTION hyperline.create_model(text, regclass, text, text, text[], text, boolean, boolean) IS 'Creates a model: a source table whose row changes become events rendered from a Liquid payload.';

CREATE FUNCTION hyperline.alter_model(name text, payload text DEFAULT NULL,
    triggers text[] DEFAULT NULL, enabled boolean DEFAULT NULL)
  RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(name);
  trig text[] := m.triggers;
BEGIN
  PERFORM hyperline._check_model_access(m.source);
  IF triggers IS NOT NULL THEN
    trig := hyperline._check_triggers(triggers);
  END IF;
  IF payload IS NOT NULL THEN
    PERFORM hyperline._validate_model(m.source, m.primary_key, payload, name);
  END IF;
  UPDATE hyperline._models x SET payload = coalesce(alter_model.payload, x.payload), triggers = trig,
      enabled = coalesce(alter_model.enabled, x.enabled), updated_at = now()
    WHERE x.name = alter_model.name;
  PERFORM hyperline._install_trigger(name, m.source, trig, coalesce(enabled, m.enabled));
  PERFORM hyperline._models_changed();
END
$fn$;
COMMENT ON FUNCTION hyperline.alter_model(text, text, text[], boolean) IS 'Changes a model''s payload, triggers or enabled flag; NULL leaves a setting unchanged.';

CREATE FUNCTION hyperline.drop_model(name text) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(name);
BEGIN
  PERFORM hyperline._check_model_access(m.source);
  PERFORM hyperline._drop_triggers(name, m.source);
  DELETE FROM hyperline._models x WHERE x.name = drop_model.name;
  PERFORM hyperline._models_changed();
END
$fn$;
COMMENT ON FUNCTION hyperline.drop_model(text) IS 'Drops a model and its trigger; its outbox rows stay, and pending ones are still delivered.';

CREATE VIEW hyperline.models AS
  SELECT name, source, primary_key, triggers, destination, enabled FROM hyperline._models;
COMMENT ON VIEW hyperline.models IS 'Models: source table, primary key, triggers, destination and whether enabled.';

CREATE FUNCTION hyperline.preview(model text, sample int DEFAULT 5)
  RETURNS TABLE (key text, payload jsonb)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(model);
BEGIN
  IF NOT hyperline._caller_can_select(m.source) THEN
    RAISE EXCEPTION 'permission denied for table %', m.source USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF sample IS NULL OR sample < 0 THEN
    RAISE EXCEPTION 'sample must be zero or more (got %)', sample USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT k, CASE WHEN (r).error IS NULL THEN (r).payload
                    ELSE hyperline._preview_error(k, (r).error) END
       FROM (SELECT t.%I::text AS k, hyperline._render_event(%L, t, ''insert'') AS r
               FROM %s t ORDER BY 1 LIMIT %s) s',
    m.primary_key, model, m.source, sample);
END
$fn$;
COMMENT ON FUNCTION hyperline.preview(text, int) IS 'Renders a sample of current rows with the model''s payload; no side effects.';

CREATE FUNCTION hyperline._preview_error(key text, error text) RETURNS jsonb
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  RAISE EXCEPTION 'rendering the row with key % failed: %', key, error
    USING ERRCODE = 'data_exception';
END
$fn$;

CREATE FUNCTION hyperline.backfill(model text) RETURNS bigint
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(model);
  n bigint;
BEGIN
  PERFORM hyperline._check_model_access(m.source);
  EXECUTE format(
    'INSERT INTO hyperline.outbox (model, event_key, operation, payload, status, last_error, destination)
     SELECT %L, k, ''insert'', (r).payload,
            CASE WHEN (r).error IS NULL THEN ''pending'' ELSE ''failed'' END, (r).error, %L
       FROM (SELECT t.%I::text AS k, hyperline._render_event(%L, t, ''insert'') AS r FROM %s t) s',
    model, m.destination, m.primary_key, model, m.source);
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM hyperline._wake();
  RETURN n;
END
$fn$;
COMMENT ON FUNCTION hyperline.backfill(text) IS 'Enqueues every current row of the model as an insert event (as a first sync does); returns how many.';

CREATE FUNCTION hyperline.test_delivery(model text)
  RETURNS TABLE (http_status int, response text)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m hyperline._models := hyperline._get_model(model);
  p jsonb;
BEGIN
  PERFORM hyperline._check_model_access(m.source);
  SELECT pv.payload INTO p FROM hyperline.preview(model, 1) pv;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'table % has no rows to send', m.source USING ERRCODE = 'no_data_found',
      HINT = 'Insert a row first; test_delivery sends one real row.';
  END IF;
  RETURN QUERY SELECT * FROM hyperline._test_delivery(model, p, 'insert');
END
$fn$;
COMMENT ON FUNCTION hyperline.test_delivery(text) IS 'Sends one sample row to the destination now, synchronously, and reports the answer.';

-- ---------------------------------------------------------------------------
-- Outbox upkeep and status
-- ---------------------------------------------------------------------------
CREATE FUNCTION hyperline.retry(model text DEFAULT NULL) RETURNS bigint
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  n bigint;
  stale bigint;
BEGIN
  IF model IS NOT NULL THEN
    PERFORM 1 FROM hyperline._models m WHERE m.name = retry.model;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM hyperline.outbox o WHERE o.model = retry.model) THEN
      RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
    END IF;
  END IF;
  -- Why: sending a failed event when a newer change of its key exists would
  -- put the older version back at Hyperline (after a newer one was delivered,
  -- or after a delete). Such events are superseded instead.
  UPDATE hyperline.outbox o SET status = 'superseded'
    WHERE o.status = 'failed' AND (retry.model IS NULL OR o.model = retry.model)
      AND EXISTS (SELECT 1 FROM hyperline.outbox n
                  WHERE n.model = o.model AND n.event_key = o.event_key AND n.id > o.id);
  GET DIAGNOSTICS stale = ROW_COUNT;
  IF stale > 0 THEN
    RAISE NOTICE '% failed events not retried but superseded: a newer change of the same key exists', stale;
  END IF;
  UPDATE hyperline.outbox o SET status = 'pending', attempts = 0, next_attempt_at = now()
    WHERE o.status = 'failed' AND o.payload IS NOT NULL AND (retry.model IS NULL OR o.model = retry.model);
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM hyperline._wake();
  RETURN n;
END
$fn$;
COMMENT ON FUNCTION hyperline.retry(text) IS 'Puts failed events (of one model, or all) back to pending; returns how many. Rows that failed to render stay failed; a failed event with a newer change of the same key is superseded instead.';

CREATE VIEW hyperline.model_status WITH (security_invoker = true) AS
  WITH names AS (
    SELECT name AS model FROM hyperline._models
    UNION SELECT DISTINCT o.model FROM hyperline.outbox o
  )
  SELECT n.model,
         count(*) FILTER (WHERE o.status = 'pending') AS pending,
         count(*) FILTER (WHERE o.status = 'sending') AS sending,
         count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
         count(*) FILTER (WHERE o.status = 'failed') AS failed,
         now() - min(o.created_at) FILTER (WHERE o.status = 'pending') AS oldest_pending,
         max(o.delivered_at) AS last_delivered_at,
         (SELECT e.last_error FROM hyperline.outbox e
           WHERE e.model = n.model AND e.last_error IS NOT NULL
           ORDER BY e.id DESC LIMIT 1) AS last_error
  FROM names n LEFT JOIN hyperline.outbox o ON o.model = n.model
  GROUP BY n.model;
COMMENT ON VIEW hyperline.model_status IS 'Per model: events by status, age of the oldest pending, last delivery and last error.';

-- Privileges: destinations are for superusers (and whom they grant); table
-- owners manage models on their own tables and see those models' events: the
-- outbox has row level security, so a role sees only the events of models whose
-- source table it owns (superusers and the worker see everything).
ALTER TABLE hyperline.outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY outbox_owner_read ON hyperline.outbox FOR SELECT USING (
  EXISTS (SELECT 1 FROM hyperline._models m JOIN pg_catalog.pg_class c ON c.oid = m.source
           WHERE m.name = outbox.model AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA hyperline FROM PUBLIC;
GRANT USAGE ON SCHEMA hyperline TO PUBLIC;
GRANT EXECUTE ON FUNCTION hyperline.create_model(text, regclass, text, text, text[], text, boolean, boolean),
  hyperline.alter_model(text, text, text[], boolean), hyperline.drop_model(text),
  hyperline.preview(text, int), hyperline.backfill(text), hyperline.test_delivery(text),
  hyperline.render_template(text, jsonb), hyperline._trigger(),
  hyperline._caller_owns(regclass), hyperline._caller_can_select(regclass), hyperline._wake()
  TO PUBLIC;
GRANT SELECT ON hyperline.models, hyperline.destinations, hyperline._models,
  hyperline.outbox, hyperline.model_status TO PUBLIC;
