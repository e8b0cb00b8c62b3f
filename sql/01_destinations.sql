-- Destinations: create, alter, drop, the view, and every bad input.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.create_destination('hyperline', api_key => 'sk_test_0123456789abcdef9f2a');
SELECT * FROM hyperline.destinations;
-- defaults match SPEC
SELECT base_url, batch_size, max_requests_per_second, timeout_ms, state FROM hyperline.destinations;

-- bad inputs, each with a clear message; nothing created
SELECT hyperline.create_destination('Bad-Name', api_key => 'k');
SELECT hyperline.create_destination('hyperline', api_key => 'sk_other');
SELECT hyperline.create_destination('d2', api_key => '');
SELECT hyperline.create_destination('d2', api_key => 'has space');
SELECT hyperline.create_destination('d2', api_key => NULL);
SELECT hyperline.create_destination('d2', api_key => 'k', batch_size => 0);
SELECT hyperline.create_destination('d2', api_key => 'k', batch_size => 5001);
SELECT hyperline.create_destination('d2', api_key => 'k', max_requests_per_second => 0);
SELECT hyperline.create_destination('d2', api_key => 'k', timeout_ms => 5);
SELECT hyperline.create_destination('d2', api_key => 'k', base_url => 'ftp://example.com');
SELECT hyperline.create_destination('d2', api_key => 'k', base_url => 'https://user:pw@example.com');
SELECT hyperline.create_destination('d2', api_key => 'k', base_url => 'http://example.com');
SELECT count(*) AS destinations FROM hyperline.destinations;

-- plain http to loopback is fine; elsewhere only with hyperline.allow_http
SELECT hyperline.create_destination('local', api_key => 'test_key', base_url => 'http://127.0.0.1:9/');
SELECT hyperline.create_destination('local6', api_key => 'test_key', base_url => 'http://[::1]:9');
SELECT hyperline.create_destination('localname', api_key => 'test_key', base_url => 'http://localhost:9');
SET hyperline.allow_http = on;
SELECT hyperline.create_destination('insecure', api_key => 'k', base_url => 'http://example.com');
RESET hyperline.allow_http;
SELECT name, base_url FROM hyperline.destinations ORDER BY name;

-- alter: NULL leaves a setting unchanged; a new key changes the hint only
SELECT hyperline.alter_destination('hyperline', batch_size => 1000);
SELECT hyperline.alter_destination('hyperline', api_key => 'sk_live_rotated_77aa');
SELECT name, api_key_hint, batch_size, timeout_ms FROM hyperline.destinations WHERE name = 'hyperline';
SELECT hyperline.alter_destination('hyperline', batch_size => 6000);
SELECT hyperline.alter_destination('nope', batch_size => 10);
SELECT hyperline.alter_destination('hyperline', base_url => 'http://example.com');
SELECT hyperline.alter_destination('hyperline', max_requests_per_second => 2.5);
SELECT max_requests_per_second FROM hyperline.destinations WHERE name = 'hyperline';

-- drop
SELECT hyperline.drop_destination('insecure');
SELECT hyperline.drop_destination('insecure');
SELECT name FROM hyperline.destinations ORDER BY name;
