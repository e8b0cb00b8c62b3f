# hyperline.stats against what hyperline-mock counted: after deliveries through
# injected 500s and 429s, the counters (requests, 2xx, 5xx, 429, events) equal
# the mock's, retries equal the events of the failed requests in
# hyperline.requests, the latency percentiles are there and ordered.
# reset_stats() zeroes them; they survive a restart of the delivery worker
# (pg_terminate_backend); a SIGKILL of the worker restarts the whole server
# (restart_after_crash), which starts them again from zero with a new
# stats_reset — as documented.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock('--seed', '11');
my $node = new_node('stats', track_commit_timestamp => 'on', restart_after_crash => 'on');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 20);
	CREATE TABLE usage (id int PRIMARY KEY, customer text);
	SELECT hyperline.create_model('usage', 'usage', 'id', \$\$ {"customer_id": "{{ row.customer }}",
	  "event_type": "api_call", "timestamp": "2024-12-20T16:04:11Z",
	  "record": {"id": "{{ row.id }}"}} \$\$);});

my @counters = qw(events_enqueued events_delivered events_failed events_superseded requests
  responses_2xx responses_4xx responses_429 responses_5xx transport_errors retries bytes_sent);

# The row of one destination or model, as a hash.
sub stats_row {
	my ($kind, $name) = @_;
	my $cols = join(', ', @counters,
		qw(latency_p50_ms latency_p90_ms latency_p99_ms last_success_at last_failure_at stats_reset));
	my $line = $node->safe_psql('postgres',
		"SELECT $cols FROM hyperline.stats WHERE kind = '$kind' AND name = '$name'");
	my @v = split /\|/, $line, -1;
	my %row;
	@row{ @counters, qw(p50 p90 p99 last_success_at last_failure_at stats_reset) } = @v;
	return \%row;
}

# 1. Deliveries through 500s (a third of the requests, seeded) and three 429s.
mock_post($mock, '/_mock/config',
	{ fail_rate => 0.3, fail_status => 500, force_429 => 3, retry_after => 1 });
for my $t (0 .. 3) {
	my $from = $t * 100 + 1;
	my $to = $from + 99;
	$node->safe_psql('postgres',
		"INSERT INTO usage SELECT g, 'cus_' || g % 7 FROM generate_series($from, $to) g");
}
wait_drained($node, 'all 400 events delivered through the faults');
mock_post($mock, '/_mock/config', { fail_rate => 0 });
# The worker adds a turn's figures at the top of its next turn.
ok( $node->poll_query_until('postgres',
		"SELECT events_delivered = 400 FROM hyperline.stats WHERE kind = 'destination'"),
	'the counters caught up');
my $mock_stats = mock_get($mock, '/_mock/stats');
my $by = $mock_stats->{requests_by_status};
my $d = stats_row('destination', 'hyperline');
note(explain($mock_stats));
cmp_ok($by->{500} // 0, '>', 0, 'the mock answered some 500s');
is($by->{429} // 0, 3, 'and three 429s');
is($d->{requests}, $mock_stats->{requests}, "requests = the mock's ($d->{requests})");
is($d->{responses_2xx}, $by->{201}, "responses_2xx = the mock's 201s ($d->{responses_2xx})");
is($d->{responses_5xx}, $by->{500}, "responses_5xx = the mock's 500s ($d->{responses_5xx})");
is($d->{responses_429}, 3, 'responses_429 = the mock\'s 429s');
is($d->{responses_4xx}, 0, 'no other 4xx');
is($d->{transport_errors}, 0, 'no transport error');
is($d->{events_delivered}, $mock_stats->{events_received},
	"events_delivered = events the mock accepted ($d->{events_delivered})");
is($mock_stats->{events_unique}, 400, 'the mock holds the 400 events');
is($d->{events_enqueued}, 400, 'events_enqueued: the 400 committed events');
is($d->{events_failed}, 0, 'none failed');
my ($log_requests, $log_failed_events) = split /\|/, $node->safe_psql('postgres',
	"SELECT count(*), coalesce(sum(events) FILTER (WHERE http_status <> 201), 0) FROM hyperline.requests");
is($log_requests, $mock_stats->{requests}, 'hyperline.requests: one row per request');
is($d->{retries}, $log_failed_events, "retries = the events of the refused requests ($d->{retries})");
cmp_ok($d->{bytes_sent}, '>', 400 * 100, "bytes_sent ($d->{bytes_sent})");
isnt($d->{last_success_at}, '', 'last_success_at is set');
isnt($d->{last_failure_at}, '', 'last_failure_at is set');
# Latency from each event's commit to its 2xx.
ok($d->{p50} ne '' && $d->{p90} ne '' && $d->{p99} ne '', "latency percentiles: $d->{p50} / $d->{p90} / $d->{p99} ms");
ok($d->{p50} > 0 && $d->{p50} <= $d->{p90} && $d->{p90} <= $d->{p99}, 'p50 <= p90 <= p99');
cmp_ok($d->{p99}, '>=', 1000, 'p99 includes a Retry-After of 1 s');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM hyperline.outbox
		 WHERE committed_at IS NULL OR committed_at < created_at OR committed_at > delivered_at}),
	'0', 'committed_at recorded for every event, between created_at and delivered_at');
# The model's row: the same events (one model), requests that carried them.
my $m = stats_row('model', 'usage');
is($m->{$_}, $d->{$_}, "model row: $_") for qw(events_enqueued events_delivered requests responses_2xx
  responses_5xx responses_429 retries);

# 2. reset_stats() zeroes them and moves stats_reset.
my $reset_before = $d->{stats_reset};
$node->safe_psql('postgres', 'SELECT hyperline.reset_stats()');
my $z = stats_row('destination', 'hyperline');
is(join(',', map { $z->{$_} } @counters), join(',', map { 0 } @counters), 'reset_stats() zeroes every counter');
is($z->{p50}, '', 'and the percentiles');
is( $node->safe_psql('postgres',
		"SELECT stats_reset > '$reset_before' AND stats_reset <= now() FROM hyperline.stats WHERE kind = 'model'"),
	't', 'stats_reset is the time of the reset');

# 3. They survive a restart of the delivery worker.
$node->safe_psql('postgres', 'INSERT INTO usage SELECT g, \'c\' FROM generate_series(1001, 1050) g');
wait_drained($node);
ok( $node->poll_query_until('postgres',
		"SELECT events_delivered = 50 FROM hyperline.stats WHERE kind = 'destination'"),
	'50 more counted');
my $before = stats_row('destination', 'hyperline');
my $pid = worker_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND pid <> $pid"),
	'a new delivery worker after pg_terminate_backend');
is_deeply(stats_row('destination', 'hyperline'), $before, 'the counters are kept across the worker restart');
$node->safe_psql('postgres', 'INSERT INTO usage SELECT g, \'c\' FROM generate_series(2001, 2010) g');
wait_drained($node);
ok( $node->poll_query_until('postgres',
		"SELECT events_delivered = 60 AND events_enqueued = 60 FROM hyperline.stats WHERE kind = 'destination'"),
	'and go on counting');

# 4. SIGKILL of the worker: the postmaster reinitializes shared memory. (The
# worker commits asynchronously: flush its last outcomes first, or the crash
# would undo them and their events would be sent — and counted — again.)
$node->safe_psql('postgres', 'CHECKPOINT');
my $killed = worker_pid($node);
my $at = $node->safe_psql('postgres', 'SELECT now()');
kill 'KILL', $killed;
wait_restarted($node, $killed);
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND pid <> $killed"),
	'the server restarted after the SIGKILL');
my $after = stats_row('destination', 'hyperline');
is($after->{events_delivered}, 0, 'a crash restart starts the counters again') or diag(explain($after));
is($node->safe_psql('postgres', "SELECT stats_reset > '$at' FROM hyperline.stats WHERE kind = 'destination'"),
	't', 'stats_reset says when');
$node->safe_psql('postgres', 'INSERT INTO usage SELECT g, \'c\' FROM generate_series(3001, 3005) g');
wait_drained($node);
ok( $node->poll_query_until('postgres',
		"SELECT events_delivered = 5 FROM hyperline.stats WHERE kind = 'destination'"),
	'counting again after the crash restart');

check_log($node, 'test_key', $killed);
$node->stop;
done_testing();
