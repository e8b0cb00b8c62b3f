# Runs of one query model never overlap: a second run_model while a run is in
# progress is refused at once with a clear message, the scheduler leaves a
# model alone while a session runs it, and each change is sent once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;
use Time::HiRes qw(time);

my $mock = start_mock();
my $node = new_node('qm_concurrency');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 100);
	CREATE TABLE meters (id int PRIMARY KEY, units bigint NOT NULL);
	INSERT INTO meters SELECT i, i FROM generate_series(1, 1000) i;
	SELECT hyperline.create_query_model('meters', 'SELECT id, units FROM meters', 'id',
	  \$\${"customer_id": "c{{ row.id }}", "event_type": "units", "timestamp": 0,
	     "record": {"id": "m{{ row.id }}", "units": {{ row.units }}}}\$\$,
	  schedule => NULL);});

# A scheduled run falls due in 3 s; meanwhile session A runs the model in a
# transaction it keeps open (the model's row is locked by a run: changing the
# model waits for it too).
$node->safe_psql('postgres', q{
	UPDATE hyperline._models SET schedule = '1 hour', next_run_at = clock_timestamp() + interval '3 seconds'
	 WHERE name = 'meters'});
my $a = $node->background_psql('postgres');
$a->query_safe('BEGIN');
is($a->query_safe("SELECT added FROM hyperline.run_model('meters')"), '1000', 'session A ran it');

# Session B is refused at once, with a clear message.
my $t0 = time;
my ($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM hyperline.run_model('meters')");
my $took = time - $t0;
isnt($rc, 0, 'a second run_model fails');
like($err, qr/model "meters" is being run or changed by another transaction/, 'with a clear message');
cmp_ok($took, '<', 2, sprintf('at once (%.2f s), not after waiting', $took));

# The scheduler leaves it alone while session A holds it.
sleep 5;
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM hyperline.sync_runs WHERE model = 'meters'}),
	'0', 'the due scheduled run did not start while session A runs the model');

# A commits: its events are delivered once; the scheduled run then finds
# nothing new.
$a->query_safe('COMMIT');
$a->quit;
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 2 FROM hyperline.sync_runs WHERE model = 'meters' AND status = 'succeeded'}),
	'the scheduled run ran once A was done');
wait_drained($node);
is( $node->safe_psql('postgres', q{
		SELECT sum(added + updated + removed) FROM hyperline.sync_runs WHERE model = 'meters'}),
	'1000', 'the 1000 keys were diffed as changes once in all');
my $stats = mock_get($mock, '/_mock/stats');
is($stats->{events_received}, 1000, 'and sent once each');

# Two sessions racing for a change: exactly one of them sends it.
$node->safe_psql('postgres', q{
	SELECT hyperline.alter_model('meters', schedule => '');
	UPDATE meters SET units = units + 1 WHERE id <= 10;});
my @sessions = map { $node->background_psql('postgres', on_error_stop => 0) } 1 .. 2;
$_->query_safe('BEGIN') for @sessions;
my @results;
for my $s (@sessions) {
	my $r = $s->query("SELECT updated FROM hyperline.run_model('meters')");
	push @results, $r;
}
$_->query('COMMIT') for @sessions;
$_->quit for @sessions;
is(scalar(grep { defined && /^10$/ } @results), 1, 'one session found the 10 changes');
wait_drained($node);
is(mock_get($mock, '/_mock/stats')->{events_received}, 1010, 'they were sent once');

check_log($node, 'test_key');
$node->stop;
done_testing();
