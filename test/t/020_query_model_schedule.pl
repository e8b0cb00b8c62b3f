# Query models on a schedule: the sync worker runs them at their time and
# their changes reach the mock without anyone calling run_model; runs start
# within moments of their time; a run due while the server was down runs once
# it is up (next_run_at survives restarts); delivery keeps flowing while a slow
# run executes.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $mock = start_mock();
my $node = new_node('qm_schedule');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 100);
	CREATE TABLE members (account text, member text, PRIMARY KEY (account, member));
	INSERT INTO members SELECT 'acc_' || (i % 20), 'user_' || i FROM generate_series(1, 100) i;});

# Every account's seats, every 2 seconds: the first run sends all 20.
$node->safe_psql('postgres', q{
	SELECT hyperline.create_query_model('seats',
	  'SELECT account, count(*) AS seats FROM members GROUP BY account', 'account',
	  $${"customer_id": "{{ row.account }}", "event_type": "seats", "timestamp": 0,
	     "record": {"id": "seats-{{ row.account }}", "seats": {{ row.seats }}}}$$,
	  schedule => '2 seconds')});

# The mock's stored event of a record id (undef if none).
sub mock_event {
	my ($id) = @_;
	my ($e) = grep { $_->{record}{id} eq $id } @{ mock_get($mock, '/_mock/events') };
	return $e;
}

sub wait_for {
	my ($what, $cond, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	while (time < $deadline) {
		return 1 if $cond->();
		usleep(100_000);
	}
	return 0;
}

ok(wait_for('initial', sub { mock_get($mock, '/_mock/stats')->{events_unique} == 20 }),
	'the first scheduled run sent every account');
is(mock_event('seats-acc_3')->{record}{seats}, 5, 'with its seats');

# A change reaches Hyperline at the next scheduled run, without run_model.
$node->safe_psql('postgres', "INSERT INTO members VALUES ('acc_3', 'newcomer')");
ok(wait_for('change', sub { (mock_event('seats-acc_3') // {})->{record}{seats} == 6 }),
	'a change is delivered by a scheduled run');
is(mock_get($mock, '/_mock/stats')->{events_received}, 21, 'and only the change was sent');
my $runs = $node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
	       max(extract(epoch FROM r.started_at - r.scheduled_for))
	FROM hyperline._sync_runs r WHERE model = 'seats'});
my ($succeeded, $failed, $max_delay) = split /\|/, $runs;
cmp_ok($succeeded, '>=', 2, "scheduled runs recorded in sync_runs ($succeeded)");
is($failed, 0, 'none failed');
cmp_ok($max_delay, '<', 3, "each started within moments of its time (at most ${max_delay}s late)");
like(
	$node->safe_psql('postgres', q{
		SELECT string_agg(DISTINCT status, ',') FROM hyperline.sync_runs WHERE model = 'seats'}),
	qr/^(running,)?succeeded$/,
	'hyperline.sync_runs shows them');

# A server restart keeps the schedule: a run due while the server is down
# starts once it is up.
$node->safe_psql('postgres', q{
	SELECT hyperline.alter_model('seats', schedule => '1 hour');
	UPDATE hyperline._models SET next_run_at = clock_timestamp() + interval '3 seconds' WHERE name = 'seats';});
my $due = $node->safe_psql('postgres', "SELECT next_run_at FROM hyperline._models WHERE name = 'seats'");
$node->safe_psql('postgres', "INSERT INTO members VALUES ('acc_4', 'while_down')");
$node->stop('fast');
sleep 4;
$node->start;
ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM hyperline._sync_runs
		 WHERE model = 'seats' AND scheduled_for = '$due' AND status = 'succeeded'}),
	'the run due while the server was down ran after the restart');
ok(wait_for('after restart', sub { (mock_event('seats-acc_4') // {})->{record}{seats} == 6 }),
	'and its change was delivered');
is( $node->safe_psql('postgres', q{
		SELECT next_run_at > now() + interval '50 minutes' FROM hyperline._models WHERE name = 'seats'}),
	't', 'the next run is an hour after the one that was due');

# Delivery goes on while a slow run executes (runs are not in the delivery
# worker).
$node->safe_psql('postgres', q{
	SELECT hyperline.create_query_model('slow',
	  'SELECT account, count(*) AS seats FROM members WHERE pg_sleep(0.1) IS NOT NULL GROUP BY account',
	  'account',
	  $${"customer_id": "{{ row.account }}", "event_type": "seats", "timestamp": 0,
	     "record": {"id": "slow-{{ row.account }}", "seats": {{ row.seats }}}}$$,
	  schedule => '1 hour');
	UPDATE hyperline._models SET next_run_at = now() WHERE name = 'slow';});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM hyperline.sync_runs WHERE model = 'slow' AND status = 'running'}),
	'the slow run started');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_hyperline sync'
		   AND query LIKE 'running query model slow'}),
	'1', 'in a sync worker');
my $t0 = time;
insert_events($node, 200, prefix => 'during-slow-');
wait_drained($node, 'events drained during the slow run');
my $drain = time - $t0;
is( $node->safe_psql('postgres', "SELECT status FROM hyperline.sync_runs WHERE model = 'slow'"),
	'running', sprintf('while the run was still going (drained in %.1f s)', $drain));
ok( $node->poll_query_until('postgres', q{
		SELECT status = 'succeeded' AND added = 20 FROM hyperline.sync_runs WHERE model = 'slow'}),
	'the slow run finished');
ok(wait_for('slow events', sub { mock_get($mock, '/_mock/stats')->{events_unique} == 20 + 200 + 20 }),
	'and its events were delivered');

check_log($node, 'test_key');
$node->stop;
done_testing();
