# Restarts: a terminated launcher is started again by the postmaster, a
# terminated delivery worker by the launcher, both within seconds, both logged,
# and delivery goes on. The launcher ignores a cancel request and exits
# quietly at server shutdown.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $mock = start_mock();
my $node = new_node('restarts', 'hyperline.database' => "''");
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}');});
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity"
	  . " WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'postgres'")
  or die 'no delivery worker';
insert_events($node, 10, prefix => 'a');
wait_drained($node, 'delivers before the restarts');

# The launcher ignores pg_cancel_backend (it has no statement to cancel).
my $launcher = launcher_pid($node);
$node->safe_psql('postgres', "SELECT pg_cancel_backend($launcher)");
sleep 1;
is(launcher_pid($node), $launcher, 'the launcher survives a cancel request');

# pg_terminate_backend of the launcher: it exits with code 1, so the postmaster
# starts it again (bgw_restart_time); the delivery worker keeps running.
my $worker = worker_pid($node);
my $t0 = time;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline launcher' AND pid <> $launcher"),
	'a new launcher after pg_terminate_backend');
cmp_ok(time - $t0, '<', 15, 'within seconds');
is(worker_pid($node), $worker, 'the delivery worker kept running meanwhile');
my $log = slurp_file($node->logfile);
like($log, qr/pg_hyperline: launcher terminated by process \d+; the server starts it again/,
	'the log says the launcher was terminated');
like($log, qr/pg_hyperline: launcher restarted; 1 delivery worker kept running/,
	'and that it is back');
insert_events($node, 10, prefix => 'b');
wait_drained($node, 'delivers after the launcher restart');

# pg_terminate_backend of the delivery worker: the launcher starts a new one.
$t0 = time;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($worker)");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker'"
		  . " AND datname = 'postgres' AND pid <> $worker"),
	'a new delivery worker after pg_terminate_backend');
cmp_ok(time - $t0, '<', 10, 'within seconds');
$log = slurp_file($node->logfile);
like($log, qr/the delivery worker of database "postgres" \(PID $worker\) exited; starting a new one/,
	'the launcher logs the restart');
insert_events($node, 10, prefix => 'c');
wait_drained($node, 'delivers after the worker restart');

# Both at once: the new launcher finds no worker and starts one.
$launcher = launcher_pid($node);
$worker = worker_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($worker), pg_terminate_backend($launcher)");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker'"
		  . " AND datname = 'postgres' AND pid <> $worker"),
	'launcher and worker terminated together: both back');
insert_events($node, 10, prefix => 'd');
wait_drained($node, 'and delivering');
is(mock_get($mock, '/_mock/stats')->{events_unique}, 40, 'every event at the mock');

# Shutdown: the launcher exits with 0 (the postmaster logs nothing for it).
my $exit_re = qr/"pg_hyperline launcher" \(PID \d+\) exited with exit code 1|launcher terminated by process/;
my $before = () = slurp_file($node->logfile) =~ /$exit_re/g;
$node->stop('fast');
my $after = () = slurp_file($node->logfile) =~ /$exit_re/g;
is($after, $before, 'the launcher exits quietly at shutdown');

check_log($node, 'test_key');
done_testing();
