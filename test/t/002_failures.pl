# Failure handling against a real server: events_failed fails only its rows;
# 5xx and network errors are retried with backoff until max_attempts; other
# 4xx fail at once with the answer; plain http is re-checked at send time.
# (Timing rules — Retry-After, max_requests_per_second — are unit-tested in
# fake time: test/unit/delivery_engine_test.cpp.)
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;

my $mock = start_mock();
my $node = new_node('failures', 'hyperline.max_attempts' => 4);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 100);
	SELECT hyperline.create_destination('single', 'test_key', '$mock->{url}', batch_size => 1);});

sub q1 { $node->safe_psql('postgres', shift) }

# Partial batch failure: the rejected ids fail, the rest of the batch is delivered.
mock_post($mock, '/_mock/config', { reject_ids => [ 'p3', 'p7' ] });
insert_events($node, 10, prefix => 'p');
wait_drained($node);
is(q1("SELECT string_agg(event_key, ',' ORDER BY id) FROM hyperline.outbox WHERE status = 'failed'"),
	'p3,p7', 'only the rejected events failed');
is(q1("SELECT count(*) FROM hyperline.outbox WHERE event_key LIKE 'p%' AND status = 'delivered'"),
	'8', 'the rest of the batch delivered');
like(q1("SELECT last_error FROM hyperline.outbox WHERE event_key = 'p3'"),
	qr/rejected/, 'the reason is in last_error');
is(q1("SELECT attempts FROM hyperline.outbox WHERE event_key = 'p3'"), '1', 'no retry of a rejected event');
mock_post($mock, '/_mock/config', { reject_ids => [] });

# 503: retried with backoff, then delivered once the destination recovers.
# (max_attempts raised for this part: 4 attempts of 50-500 ms can all pass
# before the test turns the failures off on a loaded machine.)
$node->append_conf('postgresql.conf', "hyperline.max_attempts = 30\n");
$node->reload;
sleep 1;    # let the worker apply the SIGHUP
mock_post($mock, '/_mock/config', { fail_rate => 1, fail_status => 503 });
insert_events($node, 20, prefix => 'f');
ok( $node->poll_query_until('postgres',
		"SELECT bool_and(attempts >= 2 AND status = 'pending') FROM hyperline.outbox WHERE event_key LIKE 'f%'"),
	'503 answers are retried');
like(q1("SELECT last_error FROM hyperline.outbox WHERE event_key = 'f1'"), qr/503/, 'row last_error names the status');
like(q1("SELECT last_error FROM hyperline.destinations WHERE name = 'hyperline'"),
	qr/503/, 'destination last_error kept current');
mock_post($mock, '/_mock/config', { fail_rate => 0 });
wait_drained($node);
is(q1("SELECT count(*) FROM hyperline.outbox WHERE event_key LIKE 'f%' AND status = 'delivered'"),
	'20', 'delivered after the destination recovered');
is(scalar(@{ mock_get($mock, '/_mock/events?record_id__in=' . join(',', map { "f$_" } 1 .. 20)) }),
	20, 'all 20 at the mock');
is(q1("SELECT last_error IS NULL FROM hyperline.destinations WHERE name = 'hyperline'"),
	't', 'destination last_error cleared by a success');

# Connections dropped after the events were stored: resent, stored once.
# (max_attempts raised for this part: half the requests are dropped.)
$node->append_conf('postgresql.conf', "hyperline.max_attempts = 30\n");
$node->reload;
sleep 1;    # let the worker apply the SIGHUP
mock_post($mock, '/_mock/config', { drop_rate => 0.5, drop_mode => 'after' });
q1("SELECT hyperline.alter_destination('hyperline', batch_size => 10)");
insert_events($node, 50, prefix => 'd');
wait_drained($node);
mock_post($mock, '/_mock/config', { drop_rate => 0 });
is(q1("SELECT count(*) FROM hyperline.outbox WHERE event_key LIKE 'd%' AND status = 'delivered'"),
	'50', 'delivered despite dropped connections');
is(scalar(@{ mock_get($mock, '/_mock/events?record_id__in=' . join(',', map { "d$_" } 1 .. 50)) }),
	50, 'each event stored once at the mock');
q1("SELECT hyperline.alter_destination('hyperline', batch_size => 100)");
$node->append_conf('postgresql.conf', "hyperline.max_attempts = 4\n");
$node->reload;
sleep 1;

# Retries exhausted: failed after hyperline.max_attempts.
mock_post($mock, '/_mock/config', { fail_rate => 1, fail_status => 500 });
insert_events($node, 3, prefix => 'x');
wait_drained($node);
is(q1("SELECT string_agg(DISTINCT status || '/' || attempts, ',') FROM hyperline.outbox WHERE event_key LIKE 'x%'"),
	'failed/4', 'failed after max_attempts (4) attempts');
like(q1("SELECT last_error FROM hyperline.outbox WHERE event_key = 'x1'"),
	qr/gave up after 4 attempts.*500/, 'last_error says why');
mock_post($mock, '/_mock/config', { fail_rate => 0 });

# (A Retry-After honoured in full beyond retry_max_ms: the engine's unit test
# DeliveryEngine.RetryAfterIsHonouredBeyondRetryMax, in fake time.)

# Other 4xx: failed at once, with the response body.
q1(q{INSERT INTO hyperline.outbox (model, event_key, operation, payload, destination)
	VALUES ('m', 'bad1', 'insert', '{"event_type": "x", "timestamp": "2024-12-20T16:04:11Z", "record": {"id": "bad1"}}', 'single');
	SELECT hyperline._wake();});
wait_drained($node);
is(q1("SELECT status || '/' || attempts || '/' || http_status FROM hyperline.outbox WHERE event_key = 'bad1'"),
	'failed/1/400', '400 fails at once');
like(q1("SELECT last_error FROM hyperline.outbox WHERE event_key = 'bad1'"),
	qr/400.*customer_id/, 'last_error holds the response body');

# Network errors: retried, then failed; the error is the transport's.
q1("SELECT hyperline.create_destination('closed', 'test_key', 'http://127.0.0.1:1')");
insert_events($node, 2, prefix => 'n', destination => 'closed');
wait_drained($node);
is(q1("SELECT string_agg(DISTINCT status || '/' || attempts, ',') FROM hyperline.outbox WHERE event_key LIKE 'n%'"),
	'failed/4', 'connection errors retried up to max_attempts');
like(q1("SELECT last_error FROM hyperline.outbox WHERE event_key = 'n1'"),
	qr/connect/i, 'last_error is the connection error');

# Plain http to a non-loopback host (0.0.0.0 reaches the mock but is not a
# loopback name): a superuser who SET hyperline.allow_http may create such a
# destination, and the worker honours that choice. Without it (allow_http false
# for the destination, off in the worker), the worker re-checks at send time
# and refuses.
my $remote = "http://0.0.0.0:$mock->{port}";
$node->safe_psql('postgres', qq{
	SET hyperline.allow_http = on;
	SELECT hyperline.create_destination('remote', 'test_key', '$remote');});
insert_events($node, 1, prefix => 'h', destination => 'remote');
wait_drained($node);
is(q1("SELECT status FROM hyperline.outbox WHERE event_key = 'h1'"),
	'delivered', 'plain http destination allowed by a superuser is used');
q1("UPDATE hyperline._destinations SET allow_http = false WHERE name = 'remote'");
insert_events($node, 1, prefix => 'h2-', destination => 'remote');
wait_drained($node);
is(q1("SELECT status || '/' || attempts FROM hyperline.outbox WHERE event_key = 'h2-1'"),
	'failed/4', 'plain http to a remote host is refused at send time');
like(q1("SELECT last_error FROM hyperline.outbox WHERE event_key = 'h2-1'"),
	qr/plain http is refused/, 'with a clear reason');
is(scalar(@{ mock_get($mock, '/_mock/log?record_id=h2-1') }), 0, 'nothing was sent');

# (max_requests_per_second: DeliveryEngine.MaxRequestsPerSecondIsKept; that a
# rate-limited destination drains at its rate: 001_delivery.pl.)

check_log($node, 'test_key');
$node->stop;
done_testing();
