\set c random(1, 1000)
\set d random(1, 5000)
WITH u AS (INSERT INTO bench.oltp_floor (customer_id, event_type, created_at, duration_ms, is_verified) VALUES ('cus_' || :c, 'api_call', now(), :d, :d % 3 = 0) RETURNING *) INSERT INTO bench.outbox_d (model, event_key, operation, payload, destination) SELECT 'oltp_floor', u.id, 'insert', '{"customer_id": "cus_1", "event_type": "api_call", "timestamp": "2024-12-20T16:04:11Z", "record": {"id": "o1", "durationInMs": 1234, "isVerified": true}}', 'hyperline' FROM u;
