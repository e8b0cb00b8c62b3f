# End-to-end delivery: outbox rows reach the mock in batches and one by one,
# the worker is woken at commit, is visible in pg_stat_activity, test_delivery
# answers synchronously, deletes are sent, delivered rows are purged.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $mock = start_mock();
# A long poll interval: only the wake-up at commit can make delivery fast.
my $node = new_node('delivery', 'hyperline.poll_interval_ms' => 60000);

# Without the extension no delivery worker stays in the database (the one the
# launcher starts to look exits at once).
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker'"),
	'no delivery worker without the extension');

$node->safe_psql('postgres', 'CREATE EXTENSION pg_hyperline');
$node->safe_psql('postgres',
	"SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 100)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity"
	  . " WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'postgres'")
  or die 'no delivery worker after CREATE EXTENSION';

# Batches: 1000 events in requests of at most 100.
insert_events($node, 1000);
wait_drained($node, 'batch delivery drained');
my $stats = mock_get($mock, '/_mock/stats');
is($stats->{events_unique}, 1000, 'all 1000 events at the mock');
is($stats->{requests_by_status}{201}, 10, 'sent as 10 batch requests');
is_deeply(outbox_counts($node), { delivered => 1000 }, 'every row delivered');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM hyperline.outbox WHERE attempts = 1 AND http_status = 201 AND delivered_at IS NOT NULL"),
	'1000',
	'attempts, http_status and delivered_at recorded');

# The worker's statistics reach pg_stat_user_tables (autovacuum needs them).
ok( $node->poll_query_until('postgres',
		"SELECT n_tup_upd >= 2000 FROM pg_stat_user_tables WHERE relid = 'hyperline.outbox'::regclass"),
	'worker updates counted in pg_stat_user_tables');

# A rate-limited destination keeps going without waiting for the (60 s) poll.
$node->safe_psql('postgres',
	"SELECT hyperline.create_destination('limited', 'test_key', '$mock->{url}', batch_size => 1, max_requests_per_second => 4)");
my $t_rl = time;
insert_events($node, 12, prefix => 'lim', destination => 'limited');
wait_drained($node);
cmp_ok(time - $t_rl, '<', 15, 'rate-limited destination drained at its rate, not at the poll interval');

# Retries come when due, not at the next (60 s) poll: a 429 with Retry-After 1 s,
# then 503s with backoff (retry_max_ms 500).
mock_post($mock, '/_mock/config', { force_429 => 1, retry_after => 1 });
my $t_retry = time;
insert_events($node, 1, prefix => 'retry429-');
wait_drained($node);
cmp_ok(time - $t_retry, '<', 10, 'a 429 is retried after its Retry-After, without waiting for the poll');
mock_post($mock, '/_mock/config', { fail_rate => 1, fail_status => 503 });
insert_events($node, 1, prefix => 'retry503-');
$node->poll_query_until('postgres',
	"SELECT attempts >= 2 FROM hyperline.outbox WHERE event_key = 'retry503-1'")
  or die 'no retries';
mock_post($mock, '/_mock/config', { fail_rate => 0 });
$t_retry = time;
wait_drained($node);
cmp_ok(time - $t_retry, '<', 10, 'a 503 is retried with backoff, without waiting for the poll');

# Woken at commit: with a 60 s poll interval, a committed row still arrives at once.
mock_post($mock, '/_mock/reset');
$node->safe_psql('postgres', 'SELECT hyperline.alter_destination(\'hyperline\', batch_size => 1)');
my @lat;
for my $i (1 .. 5) {
	my $t0 = time;
	insert_events($node, 1, prefix => "wake$i-");
	my $got;
	for (1 .. 400) {
		$got = mock_get($mock, "/_mock/log?record_id=wake$i-1");
		last if @$got;
		usleep(5000);
	}
	ok(scalar(@$got), "event $i arrived without polling");
	push @lat, time - $t0;
}
@lat = sort { $a <=> $b } @lat;
cmp_ok($lat[2], '<', 1.0, "median commit-to-receipt is fast (" . sprintf('%.1f ms', $lat[2] * 1000) . ")");

# The worker in pg_stat_activity.
is( $node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'postgres'"),
	't',
	'delivery worker visible in pg_stat_activity');

# A model: trigger → outbox → worker; delete sends DELETE /v1/events.
$node->safe_psql('postgres', q{
	CREATE TABLE usage (id int PRIMARY KEY, customer text, units int);
	SELECT hyperline.create_model('usage', 'usage', 'id',
	  '{"customer_id": "{{ row.customer }}", "event_type": "units", "timestamp": "2024-12-20T16:04:11Z",
	    "record": {"id": "u{{ row.id }}", "units": {{ row.units }},
	               "deleted_at": "{% if operation == ''delete'' %}2024-12-21T00:00:00Z{% endif %}"}}',
	  '{insert,update,delete}');
	INSERT INTO usage VALUES (1, 'cus_a', 5), (2, 'cus_b', 7);});
wait_drained($node);
my $events = mock_get($mock, '/_mock/events?record_id__in=u1,u2');
is(scalar(@$events), 2, 'model rows delivered');
my %units = map { $_->{record}{id} => $_->{record}{units} } @$events;
is_deeply(\%units, { u1 => 5, u2 => 7 }, 'payloads rendered from the rows');

my $td = $node->safe_psql('postgres', "SELECT http_status, response FROM hyperline.test_delivery('usage')");
like($td, qr/^201\|.*"customer_id":"cus_a"/, 'test_delivery returns the status and the answer');

# delete_mode 'event' (the default): a removal is posted as the removed row's
# event, which replaces the earlier one at Hyperline; no DELETE request.
$node->safe_psql('postgres', 'DELETE FROM usage WHERE id = 2');
wait_drained($node);
my $log = mock_get($mock, '/_mock/log?record_id=u2');
ok(!$log->[-1]{deleted}, "delete_mode 'event': no DELETE /v1/events");
is($log->[-1]{event}{record}{deleted_at}, '2024-12-21T00:00:00Z', "delete_mode 'event': the event carries the rendered removal");
is(mock_get($mock, '/_mock/events?record_id__in=u2')->[0]{record}{deleted_at}, '2024-12-21T00:00:00Z',
	'... and replaces the stored event');
is(mock_get($mock, '/_mock/stats')->{events_deleted}, 0, 'nothing deleted at the mock');
# delete_mode 'api': DELETE /v1/events with the rendered record.id.
$node->safe_psql('postgres', "SELECT hyperline.alter_model('usage', delete_mode => 'api')");
$node->safe_psql('postgres', 'DELETE FROM usage WHERE id = 1');
wait_drained($node);
$log = mock_get($mock, '/_mock/log?record_id=u1');
ok($log->[-1]{deleted}, "delete_mode 'api': sent as DELETE /v1/events");
is(mock_get($mock, '/_mock/stats')->{events_deleted}, 1, 'one event deleted at the mock');
$node->safe_psql('postgres', "INSERT INTO usage VALUES (3, 'cus_c', 1)");
wait_drained($node);

# test_delivery against an unreachable destination: a clear error without the key.
$node->safe_psql('postgres', q{
	SELECT hyperline.create_destination('down', 'test_key', 'http://127.0.0.1:1');
	CREATE TABLE other (id int PRIMARY KEY);
	INSERT INTO other VALUES (1);
	SELECT hyperline.create_model('other', 'other', 'id',
	  '{"customer_id": "c", "event_type": "e", "timestamp": "2024-12-20T16:04:11Z", "record": {"id": "{{ row.id }}"}}',
	  destination => 'down');});
my ($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM hyperline.test_delivery('other')");
isnt($ret, 0, 'test_delivery to a closed port fails');
like($err, qr/could not deliver to destination "down"/, 'error names the destination');
unlike($err, qr/test_key/, 'error does not show the key');

# test_delivery is interruptible: a statement_timeout cancels a slow request.
mock_post($mock, '/_mock/config', { delay_ms => 5000 });
my $t0 = time;
($ret, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '300ms'; SELECT * FROM hyperline.test_delivery('usage')");
isnt($ret, 0, 'a slow test_delivery is cancelled');
like($err, qr/statement timeout/, 'by the statement timeout');
cmp_ok(time - $t0, '<', 3, 'promptly');
mock_post($mock, '/_mock/config', { delay_ms => 0 });

# Upkeep beside delivery: every delivered event leaves dead row versions (its
# status changes), and after hyperline.vacuum_threshold of them the upkeep
# worker vacuums the outbox during the drain, before anything can be purged
# (retention still 7 days), while the delivery worker keeps running.
my $delivery_pid = worker_pid($node);
my $vacuums_drain = outbox_vacuums($node);
$node->append_conf('postgresql.conf', "hyperline.vacuum_threshold = 100\n");
$node->reload;
insert_events($node, 300, prefix => 'upkeep-');
wait_drained($node);
ok(wait_outbox_vacuumed($node, $vacuums_drain),
	'the upkeep worker vacuumed the outbox after 100 delivered events');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM hyperline.outbox WHERE event_key LIKE 'upkeep-%' AND status = 'delivered'"),
	'300', 'nothing purged within the retention');
is(worker_pid($node), $delivery_pid, 'the delivery worker did not restart');

# Purge: delivered rows older than the retention go away, and the outbox is
# then vacuumed (hyperline.vacuum_threshold purged rows).
my $vacuums_before = outbox_vacuums($node);
$node->append_conf('postgresql.conf',
	"hyperline.delivered_retention = 0\nhyperline.vacuum_threshold = 100\n");
$node->reload;
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM hyperline.outbox WHERE status = 'delivered'"),
	'delivered rows purged after hyperline.delivered_retention');
ok(wait_outbox_vacuumed($node, $vacuums_before),
	'the worker vacuumed the outbox after purging');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker'"
		  . " AND datname IS NOT NULL"),
	'the worker is still running after its vacuum');

check_log($node, 'test_key');
$node->stop;
done_testing();
