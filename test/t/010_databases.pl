# Every database: with hyperline.database unset, a delivery worker runs in each
# database where the extension exists, started by CREATE EXTENSION without a
# restart, gone after DROP EXTENSION; DROP DATABASE, ALTER DATABASE RENAME /
# SET TABLESPACE, CREATE DATABASE ... TEMPLATE and DROP TABLESPACE succeed at
# once while workers run, and the other databases keep delivering.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $mock = start_mock();
my $node = new_node('databases', 'hyperline.database' => "''", allow_in_place_tablespaces => 'on');

# Runs $sql in database postgres and returns how long it took (seconds).
sub timed {
	my ($sql) = @_;
	my $t0 = time;
	$node->safe_psql('postgres', $sql);
	return time - $t0;
}

sub workers {
	return $node->safe_psql('postgres',
		"SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_stat_activity"
		  . " WHERE backend_type = 'pg_hyperline delivery worker'");
}

sub wait_worker {
	my ($db) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = '$db'"
	);
}

sub setup_db {
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION pg_hyperline;
		SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}');});
}

# Events of database $db (ids "$db-1".."$db-$n"), drained.
sub deliver {
	my ($db, $n, $what) = @_;
	insert_events($node, $n, db => $db, prefix => "$db-");
	wait_drained($node, $what, $db);
}

# Two databases deliver at the same time with one server.
setup_db('app1');
setup_db('app2');
ok(wait_worker('app1') && wait_worker('app2'), 'a delivery worker in app1 and in app2');
insert_events($node, 500, db => 'app1', prefix => 'app1-');
insert_events($node, 500, db => 'app2', prefix => 'app2-');
wait_drained($node, 'app1 drained', 'app1');
wait_drained($node, 'app2 drained', 'app2');
my $events = mock_get($mock, '/_mock/events');
my %by_db;
$by_db{ ($_->{record}{id} =~ /^(app\d)-/)[0] // 'other' }++ for @$events;
is($by_db{app1}, 500, 'the 500 events of app1 at the mock');
is($by_db{app2}, 500, 'the 500 events of app2 at the mock');
is(workers(), 'app1,app2', 'one worker per database with the extension, none elsewhere');

# CREATE EXTENSION in a third database starts its delivery within 10 s.
$node->safe_psql('postgres', 'CREATE DATABASE app3');
my $t0 = time;
$node->safe_psql('app3', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}');});
insert_events($node, 20, db => 'app3', prefix => 'app3-');
ok( $node->poll_query_until('app3',
		"SELECT count(*) = 20 FROM hyperline.outbox WHERE status = 'delivered'"),
	'app3 delivers without a restart');
cmp_ok(time - $t0, '<', 10, 'within 10 s of CREATE EXTENSION');

# Never a worker in a template or a database without connections; CREATE
# DATABASE ... TEMPLATE works from a template with the extension.
$node->safe_psql('postgres', 'CREATE DATABASE noconn');
$node->safe_psql('noconn', 'CREATE EXTENSION pg_hyperline');
ok(wait_worker('noconn'), 'a worker in noconn');
$node->safe_psql('postgres', 'ALTER DATABASE noconn ALLOW_CONNECTIONS false');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'noconn'"),
	'it leaves once noconn refuses connections');
$node->safe_psql('template1', 'CREATE EXTENSION pg_hyperline');
sleep 2;
is(workers(), 'app1,app2,app3', 'no worker in template1 nor in a database without connections');
my $took = timed('CREATE DATABASE fromtemplate');
cmp_ok($took, '<', 5, 'CREATE DATABASE from template1 (with the extension) works');
ok(wait_worker('fromtemplate'), 'and the copy, which has the extension, gets a worker');
$node->safe_psql('template1', 'DROP EXTENSION pg_hyperline CASCADE');

# Plain DROP DATABASE of a served database succeeds at once; the others keep
# delivering.
$took = timed('DROP DATABASE app2');
cmp_ok($took, '<', 5, sprintf('DROP DATABASE app2 with its worker running (%.2f s)', $took));
is(workers(), 'app1,app3,fromtemplate', 'its worker is gone, the others run');
deliver('app1', 50, 'app1 still delivers');
deliver('app3', 50, 'app3 still delivers');

# CREATE DATABASE x; DROP DATABASE x completes in seconds (the launcher may be
# looking at x meanwhile).
for my $i (1 .. 5) {
	$took = timed("CREATE DATABASE quick$i") + timed("DROP DATABASE quick$i");
	cmp_ok($took, '<', 5, sprintf('CREATE DATABASE; DROP DATABASE quick%d (%.2f s)', $i, $took));
}

# ALTER DATABASE RENAME and SET TABLESPACE of a served database: its worker is
# stopped for the command, then comes back and delivers.
$took = timed('ALTER DATABASE app3 RENAME TO app3b');
cmp_ok($took, '<', 5, 'ALTER DATABASE RENAME with a worker running');
ok(wait_worker('app3b'), 'a worker in the renamed database');
deliver('app3b', 10, 'the renamed database delivers');
$node->safe_psql('postgres', "CREATE TABLESPACE inplace LOCATION ''");
$took = timed('ALTER DATABASE app1 SET TABLESPACE inplace');
cmp_ok($took, '<', 5, 'ALTER DATABASE SET TABLESPACE with a worker running');
ok(wait_worker('app1'), 'the worker is back');
deliver('app1', 10, 'app1 delivers from its new tablespace');

# CREATE DATABASE ... TEMPLATE of a served (non-template) database.
$took = timed('CREATE DATABASE app1copy TEMPLATE app1');
cmp_ok($took, '<', 5, 'CREATE DATABASE TEMPLATE app1 with its worker running');
ok(wait_worker('app1') && wait_worker('app1copy'), 'workers in app1 and in its copy');
deliver('app1', 10, 'app1 delivers after the copy');

# DROP TABLESPACE waits for every process to accept a ProcSignalBarrier, the
# launcher's and the workers' included.
$node->safe_psql('postgres', "CREATE TABLESPACE empty LOCATION ''");
$took = timed('DROP TABLESPACE empty');
cmp_ok($took, '<', 5, 'DROP TABLESPACE completes');

# A failed DROP DATABASE (another session connected) leaves the worker running.
my $session = $node->background_psql('app1copy');
$session->query_safe('SELECT 1');
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app1copy');
like($err, qr/being accessed by other users/, 'DROP DATABASE of a database in use fails as usual');
$session->quit;
ok(wait_worker('app1copy'), 'and the worker comes back');
$took = timed('DROP DATABASE app1copy');
cmp_ok($took, '<', 5, 'then DROP DATABASE succeeds');

# A role that does not own the database cannot stop its worker with a DROP
# DATABASE bound to fail.
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN CREATEDB');
my $pid = worker_pid($node, 'app1');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app1', extra_params => [ '-U', 'mallory' ]);
like($err, qr/must be owner of database app1/, 'DROP DATABASE by another role fails');
($rc, $out, $err) = $node->psql('postgres', 'CREATE DATABASE stolen TEMPLATE app1', extra_params => [ '-U', 'mallory' ]);
like($err, qr/permission denied to copy database "app1"/, 'so does copying it');
is(worker_pid($node, 'app1'), $pid, 'and the worker of app1 was not stopped');

# DROP EXTENSION: the worker notices and exits.
$node->safe_psql('app3b', 'DROP EXTENSION pg_hyperline CASCADE');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'app3b'"),
	'no worker after DROP EXTENSION');
is(workers(), 'app1,fromtemplate', 'the other workers run');

my $log = slurp_file($node->logfile);
unlike($log, qr/exited; starting a new one/, 'no worker exited unexpectedly');
unlike($log, qr/still waiting for backend/, 'no command waited for a ProcSignalBarrier');
check_log($node, 'test_key');
$node->stop;
done_testing();
