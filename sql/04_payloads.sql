-- JSON-aware typing and escaping of rendered payloads, straight from tuples.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_key_1234');

CREATE TABLE typed (
  id bigint PRIMARY KEY,
  "customerId" text,
  "Event Type" varchar(40),
  amount numeric,
  big bigint,
  small smallint,
  ratio double precision,
  flag boolean,
  tags text[],
  counts int[],
  props jsonb,
  raw json,
  at timestamptz,
  local_at timestamp,
  day date,
  uid uuid
);
SELECT hyperline.create_model('typed', 'typed', 'id', $$ {
  // comments and trailing commas are accepted, as pasted from Hightouch
  "customer_id": "{{ row.customerId }}",
  "event_type": "{{ row["Event Type"] }}",
  "timestamp": "{{ row.at }}",
  /* bare placeholders are typed */
  "record": {
    "id": "{{ row.id }}",
    "amount": {{ row.amount }},
    "big": {{ row.big }},
    "small": {{ row.small }},
    "ratio": {{ row.ratio }},
    "flag": {{ row.flag }},
    "tags": {{ row.tags }},
    "counts": {{ row.counts }},
    "localAt": "{{ row.local_at }}",
    "day": "{{ row.day }}",
    "uid": "{{ row.uid }}",
    "amountText": "{{ row.amount }}",
  },
  "props": {{ row.props }},
  "raw": {{ row.raw }},
} $$);

-- the session's TimeZone and DateStyle do not change what is sent
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
INSERT INTO typed VALUES (1, 'cus_"quoted"\back', 'api call', 12345678901234567890.123456789,
  9007199254740993, -7, 0.1, true, '{a,"b c",NULL}', '{1,2,3}',
  '{"plan": "pro", "seats": 3, "nested": {"x": [1, 2.50]}}', '{"k": 12345678901234567890}',
  '2024-12-20 11:04:11-05', '2024-12-20 16:04:11', '2024-12-20',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
INSERT INTO typed (id, "customerId", "Event Type", at, local_at)
  VALUES (2, E'line1\nline2\ttab \u00e9\u4e2d\U0001F600 \\ "', 'e', '2024-01-02 03:04:05.123+00', '2024-01-02 03:04:05.5');
-- NULLs: null as a bare value, "" inside a string
INSERT INTO typed (id) VALUES (3);
RESET TimeZone;
RESET DateStyle;

SELECT event_key, operation, status, jsonb_pretty(payload) FROM hyperline.outbox ORDER BY id;
-- exactness, checked as text (jsonb keeps numeric exactly)
SELECT payload->'record'->>'amount' AS amount, payload->'record'->>'big' AS big,
       payload->'record'->>'amountText' AS amount_text
  FROM hyperline.outbox WHERE event_key = '1';
SELECT payload->>'customer_id' = E'cus_"quoted"\\back' AS quotes_ok,
       (SELECT payload->>'customer_id' FROM hyperline.outbox WHERE event_key = '2')
         = E'line1\nline2\ttab \u00e9\u4e2d\U0001F600 \\ "' AS unicode_ok
  FROM hyperline.outbox WHERE event_key = '1';

-- Hyperline's own Hightouch example shape, pasted as is
CREATE TABLE usage_events (
  id text PRIMARY KEY, customer_id text, event_type text, created_at timestamptz,
  duration_ms int, is_verified boolean);
SELECT hyperline.create_model('usage', 'usage_events', 'id', $$
{
  "customer_id": "{{ row.customer_id }}",
  "event_type": "{{ row.event_type }}",
  "timestamp": "{{ row.created_at }}",
  "record": {
    "id": "{{ row.id }}",
    "durationInMs": {{ row.duration_ms }},
    "isVerified": {{ row.is_verified }}, // Any other property you want to ingest
  }
}
$$);
INSERT INTO usage_events VALUES ('D32NAA8', 'cus_CrqwefTRWBWRT', 'api_call', '2024-12-20 16:04:11Z', 32, true);
SELECT payload FROM hyperline.outbox WHERE model = 'usage';

-- Liquid filters and conditionals inside the JSON structure
CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric, coupon text);
SELECT hyperline.create_model('orders', 'orders', 'id', $$ {
  "customer_id": "{{ row.customer | upcase }}",
  "event_type": "order_{{ operation }}",
  "timestamp": {{ row.id | times: 1000 }},
  "record": {
    "id": "{{ model }}-{{ row.id }}",
    "cents": {{ row.total | times: 100 }},
    {% if row.coupon %}"coupon": "{{ row.coupon }}",{% endif %}
    "size": {{ row.customer | size }},
  }
} $$);
INSERT INTO orders VALUES (1, 'acme', 10.5, 'WINTER'), (2, 'globex', 3, NULL);
SELECT event_key, payload FROM hyperline.outbox WHERE model = 'orders' ORDER BY id;

-- The trigger builds jsonb from tokens, with literal keys sorted when the
-- template is compiled; the result is byte for byte what the text path
-- (preview: JSON text through jsonb_in) gives, including repeated keys
-- (the last wins), keys from Liquid output, and objects from json columns.
CREATE TABLE key_order (id int PRIMARY KEY, s text, k text, n numeric, j jsonb);
SELECT hyperline.create_model('key_order', 'key_order', 'id', $$ {
  "timestamp": {{ row.id }}, "event_type": "x", "customer_id": "{{ row.s }}",
  "record": {"isVerified": true, "id": "{{ row.id }}", "durationInMs": {{ row.n }}},
  "zz": [{"bb": 1, "a": {"é": "{{ row.s }}", "z": 2, "": 3, "B": 4, "b": {{ row.n }}}}, {}],
  "a": "{{ row.s }}",
  "dups": {"k": 1, "a": 2, "k": {{ row.n }}, "a": "{{ row.s }}"},
  "dyn": {"{{ row.k }}": 1, "m": 2, "a{{ row.k }}": 3, "": {"y": 1, "x": 2}},
  "col": {{ row.j }}
} $$);
INSERT INTO key_order VALUES
  (1, 'cus_1', 'm', 1.50, '{"b": 1, "a": {"d": [1, {"y": 2, "x": 3}], "c": 2}, "b": 3}'),
  (2, 'cus_2', '', -0.0, '[]'),
  (3, E'\u00e9', 'a', 12345678901234567890.123, 'null'),
  (4, NULL, NULL, NULL, NULL),
  -- integers take a shortcut to numeric up to 18 digits; the same bytes either way
  (5, 'i', 'b', -42, '[0, -7, 100000000]'),
  (6, 'i', 'c', 123456789012345678, '[-999999999999999999, 1000000000000000000]'),
  (7, 'i', 'd', -1234567890123456789, '[10000, 1e3, -0]');
SELECT payload FROM hyperline.outbox WHERE model = 'key_order' AND event_key = '1';
SELECT count(*) AS events,
       count(*) FILTER (WHERE o.payload::text = p.payload::text
                          AND pg_column_size(o.payload) = pg_column_size(p.payload))
         AS byte_identical
  FROM hyperline.outbox o
  JOIN hyperline.preview('key_order', 100) p ON p.key = o.event_key
 WHERE o.model = 'key_order';

-- real (float4) renders with float4's shortest digits, as Postgres prints it
-- (never the float4's exact binary value through a double), bare and quoted
CREATE TABLE reals (id int PRIMARY KEY, r real, d double precision);
SELECT hyperline.create_model('reals', 'reals', 'id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}", "r": {{ row.r }}, "rs": "{{ row.r }}", "d": {{ row.d }}}} $$);
INSERT INTO reals VALUES (1, 0.1, 0.1), (2, 3.4028235e38, 1e-300), (3, 1.1754944e-38, -0.5),
  (4, 16777217, 123456789.123), (5, -2.5e-7, 0);
SELECT r.id, r.r::text AS postgres, o.payload->'record'->'r' AS bare, o.payload->'record'->>'rs' AS quoted
  FROM reals r JOIN hyperline.outbox o ON o.model = 'reals' AND o.event_key = r.id::text ORDER BY r.id;
SELECT hyperline.drop_model('reals');
DROP TABLE reals;

-- timestamps and dates over PostgreSQL's whole range render exactly (years past
-- 9999 and BC years as ISO 8601 expanded years), infinity as a string
CREATE TABLE far (id int PRIMARY KEY, ts timestamptz, d date, wall timestamp);
SELECT hyperline.create_model('far', 'far', 'id', $$ {"customer_id": "c", "event_type": "e",
  "timestamp": 0, "record": {"id": "{{ row.id }}", "ts": {{ row.ts }}, "d": {{ row.d }}, "wall": "{{ row.wall }}"}} $$);
SET TIME ZONE 'America/New_York';
INSERT INTO far VALUES
  (1, '294247-06-01 00:00:00+00', '5874897-12-31', '294276-12-31 23:59:59.999999'),
  (2, '4714-11-24 00:00:00+00 BC', '4714-11-24 BC', '0001-01-01 00:00:00 BC'),
  (3, 'infinity', '-infinity', 'infinity'),
  (4, '2024-12-20 11:04:11.5', '2024-12-20', '9999-12-31 23:59:59'),
  (5, '10000-01-01 00:00:00+00', '10000-01-01', '1999-12-31 23:59:59.000001');
RESET TIME ZONE;
SELECT event_key, payload->'record' AS record FROM hyperline.outbox WHERE model = 'far' ORDER BY event_key;
SELECT hyperline.drop_model('far');
DROP TABLE far;
