# hyperline.requests: one row per HTTP request of the delivery worker, so that
# "what did Hyperline answer at time T?" has an answer; purged like delivered
# events (hyperline.delivered_retention); not dumped.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = start_mock();
my $node = new_node('requests');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 10);});

# Before T: answers 201. From T: the service is down (503). Then it is back.
insert_events($node, 30, prefix => 'a');
wait_drained($node, 'the first events delivered');
sleep 0.5;
my $t = $node->safe_psql('postgres', 'SELECT now()');
mock_post($mock, '/_mock/config', { fail_rate => 1, fail_status => 503 });
insert_events($node, 10, prefix => 'b');
ok( $node->poll_query_until('postgres', "SELECT count(*) >= 2 FROM hyperline.requests WHERE http_status = 503"),
	'the refused requests are logged');
sleep 0.5;
my $back = $node->safe_psql('postgres', 'SELECT now()');
mock_post($mock, '/_mock/config', { fail_rate => 0 });
wait_drained($node, 'delivered once the service is back');

# What did Hyperline answer just before T, and in the minute after?
is( $node->safe_psql('postgres', qq{
		SELECT http_status || ' ' || events || ' ' || (error IS NULL)
		  FROM hyperline.requests WHERE sent_at <= '$t' ORDER BY sent_at DESC LIMIT 1}),
	'201 10 true', 'before T: 201 for a batch of 10, no error');
my ($n, $statuses, $error) = split /\|/, $node->safe_psql('postgres', qq{
	SELECT count(*), string_agg(DISTINCT http_status::text, ','), min(error)
	  FROM hyperline.requests WHERE sent_at > '$t' AND sent_at < '$back'});
cmp_ok($n, '>=', 2, "between T and the recovery: $n requests");
is($statuses, '503', 'all answered 503');
like($error, qr/503/, "with the answer as error: $error");
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM hyperline.requests WHERE sent_at >= '$back' AND http_status = 201"),
	'1', 'after: the 10 events in one 201');
my $stats = mock_get($mock, '/_mock/stats');
is($node->safe_psql('postgres', 'SELECT count(*) FROM hyperline.requests'), $stats->{requests},
	'one row per request the mock saw');
is($node->safe_psql('postgres', "SELECT sum(events) FROM hyperline.requests WHERE http_status = 201"),
	'40', 'the 2xx requests carried the 40 events');
is( $node->safe_psql('postgres',
		'SELECT count(*) FROM hyperline.requests WHERE duration_ms < 0 OR duration_ms > 10000 OR sent_at > now()'),
	'0', 'durations and times are sane');

# Not dumped: history, like delivered events.
my ($stdout, $stderr) = run_command(['pg_dump', '--data-only', '-d', $node->connstr('postgres')]);
like($stdout, qr/COPY hyperline\.outbox /, 'pg_dump dumps the outbox');
unlike($stdout, qr/hyperline\._requests/, 'but leaves the request log out');

# Query model runs (hyperline.sync_runs) are history too: three runs of a
# model, of which only the last is kept after the retention.
$node->safe_psql('postgres', q{
	CREATE TABLE seats (account text PRIMARY KEY, n int);
	INSERT INTO seats VALUES ('acc_1', 3);
	SELECT hyperline.create_query_model('seats', 'SELECT account, n FROM seats', 'account',
	  $${"customer_id": "{{ row.account }}", "event_type": "seats", "timestamp": 0,
	     "record": {"id": "seats-{{ row.account }}", "n": {{ row.n }}}}$$,
	  schedule => '1 day');});
$node->safe_psql('postgres', "SELECT hyperline.run_model('seats')") for 1 .. 3;
is($node->safe_psql('postgres', "SELECT count(*) FROM hyperline.sync_runs WHERE model = 'seats'"),
	'3', 'three runs recorded');
my $last_run = $node->safe_psql('postgres', "SELECT max(run_id) FROM hyperline.sync_runs");

# Purged after hyperline.delivered_retention by the upkeep.
$node->append_conf('postgresql.conf', "hyperline.delivered_retention = '1s'\n");
$node->reload;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hyperline.requests'),
	'purged after the retention');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 1 FROM hyperline.sync_runs'),
	'runs purged after the retention');
is($node->safe_psql('postgres', 'SELECT run_id FROM hyperline.sync_runs'), $last_run,
	'but the last run of the model is kept');

check_log($node, 'test_key');
$node->stop;
done_testing();
