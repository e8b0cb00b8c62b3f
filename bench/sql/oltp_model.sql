\set c random(1, 1000)
\set d random(1, 5000)
INSERT INTO bench.oltp_model (customer_id, event_type, created_at, duration_ms, is_verified) VALUES ('cus_' || :c, 'api_call', now(), :d, :d % 3 = 0);
