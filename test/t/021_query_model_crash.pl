# A scheduled run killed (SIGKILL) in the middle of a large run leaves
# nothing behind; the next run sends each change exactly once, and the killed
# run shows as failed in hyperline.sync_runs.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $mock = start_mock();
# The test framework turns restart_after_crash off; a real server has it on.
my $node = new_node('qm_crash', restart_after_crash => 'on');
my $rows = 100_000;
my $changed = 1_000;
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 500);
	CREATE TABLE meters (id int PRIMARY KEY, units bigint NOT NULL);
	INSERT INTO meters SELECT i, i FROM generate_series(1, $rows) i;});
# A large result, slowed down so that a run lasts a few seconds: a pause of
# 30 ms every 500 rows.
$node->safe_psql('postgres', q{
	SELECT hyperline.create_query_model('meters',
	  'SELECT id, units FROM meters WHERE id % 500 <> 0 OR pg_sleep(0.03) IS NOT NULL', 'id',
	  $${"customer_id": "c{{ row.id }}", "event_type": "units", "timestamp": 0,
	     "record": {"id": "m{{ row.id }}", "units": {{ row.units }}}}$$,
	  schedule => NULL, send_initial => false)});
# The first run records the result without sending it.
is($node->safe_psql('postgres', 'SELECT added FROM hyperline.run_model($$meters$$)'),
	$rows, "first run recorded $rows keys");
is(mock_get($mock, '/_mock/stats')->{events_received}, 0, 'and sent nothing');

# 1 % of the rows change; the scheduled run starts.
$node->safe_psql('postgres', qq{
	UPDATE meters SET units = units + 1 WHERE id % 100 = 0;
	UPDATE hyperline._models SET schedule = '1 hour', next_run_at = now() WHERE name = 'meters';});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline sync'
		   AND query = 'running query model meters'}),
	'the scheduled run is under way');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hyperline sync'");
sleep 1;    # in the middle of the run
is( $node->safe_psql('postgres',
		"SELECT status FROM hyperline.sync_runs WHERE model = 'meters' ORDER BY run_id DESC LIMIT 1"),
	'running', 'the run shows as running');
is($node->safe_psql('postgres', 'SELECT count(*) FROM hyperline.outbox'),
	'0', 'its events are not visible before it commits');
kill 'KILL', $pid;

# The server restarts every process; the next run (due again) does the whole diff.
wait_restarted($node, $pid);
$node->safe_psql('postgres',
	"UPDATE hyperline._models SET next_run_at = now() WHERE name = 'meters'");
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM hyperline.sync_runs WHERE model = 'meters' AND status = 'succeeded'
		   AND updated > 0}),
	'the next run succeeded');
is( $node->safe_psql('postgres', q{
		SELECT concat_ws(' ', rows, added, updated, removed, unchanged) FROM hyperline.sync_runs
		 WHERE model = 'meters' AND status = 'succeeded' AND updated > 0}),
	"$rows 0 $changed 0 " . ($rows - $changed), 'and found each change once');
like( $node->safe_psql('postgres', q{
		SELECT status || ': ' || error FROM hyperline.sync_runs WHERE model = 'meters'
		 ORDER BY run_id LIMIT 1 OFFSET 1}),
	qr/^failed: interrupted/, 'the killed run shows as failed');
wait_drained($node, 'its events delivered');
my $stats = mock_get($mock, '/_mock/stats');
is($stats->{events_received}, $changed, "exactly $changed events received");
is($stats->{events_unique}, $changed, 'one per changed key');
for my $id (100, 50_000, $rows) {
	my $log = mock_get($mock, "/_mock/log?record_id=m$id");
	is(scalar @$log, 1, "key m$id received once");
}
# Nothing is sent again.
is($node->safe_psql('postgres', q{
	SELECT concat_ws(' ', added, updated, removed) FROM hyperline.run_model('meters')}),
	'0 0 0', 'a further run finds nothing to send');

check_log($node, 'test_key', $pid);
$node->stop;
done_testing();
