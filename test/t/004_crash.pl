# Crash safety: SIGKILL of the delivery worker during a 20,000-event drain, and
# an immediate server stop during another, both end with every event at the
# mock and nothing lost or failed (rows left 'sending' go back to pending).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;

# Slow answers so that the drain takes a few seconds and can be interrupted.
my $mock = start_mock('--delay-ms', '15');
# The test framework turns restart_after_crash off; a real server has it on.
my $node = new_node('crash', restart_after_crash => 'on');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 50);});

# 1. SIGKILL the worker mid-drain.
insert_events($node, 20000, prefix => 'k');
$node->poll_query_until('postgres',
	"SELECT count(*) >= 2000 FROM hyperline.outbox WHERE status = 'delivered'")
  or die 'delivery did not start';
my $pid = worker_pid($node);
ok($pid =~ /^\d+$/, "found the delivery worker ($pid)");
my $sending = $node->safe_psql('postgres',
	"SELECT count(*) FROM hyperline.outbox WHERE status IN ('pending', 'sending')");
cmp_ok($sending, '>', 0, "killed with $sending events undelivered");
kill 'KILL', $pid;
# The postmaster restarts every process after a crash; the outbox then drains.
wait_restarted($node, $pid);
wait_drained($node, 'drained after the worker was killed');
my $stats = mock_get($mock, '/_mock/stats');
is($stats->{events_unique}, 20000, 'all 20,000 events at the mock after SIGKILL');
is_deeply(outbox_counts($node), { delivered => 20000 }, 'every row delivered, none failed');
isnt(worker_pid($node), $pid, 'a new worker runs');

# 2. Immediate stop and start mid-drain.
mock_post($mock, '/_mock/reset');
insert_events($node, 20000, prefix => 'i');
$node->poll_query_until('postgres',
	"SELECT count(*) >= 2000 FROM hyperline.outbox WHERE status = 'delivered' AND event_key LIKE 'i%'")
  or die 'delivery did not start';
$node->stop('immediate');
$node->start;
wait_drained($node, 'drained after an immediate restart');
is(mock_get($mock, '/_mock/stats')->{events_unique}, 20000, 'all 20,000 events at the mock after restart');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM hyperline.outbox WHERE event_key LIKE 'i%' AND status = 'delivered'"),
	'20000',
	'every row delivered after restart');

check_log($node, 'test_key', $pid);
$node->stop;
done_testing();
