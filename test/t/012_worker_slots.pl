# Worker slots exhausted: with no free background worker slot for a database's
# delivery worker, the launcher says so once in the log (not at every retry)
# and in pg_stat_activity (what is wrong, what to change), never crash-loops,
# and delivery in that database starts as soon as a slot frees.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $mock = start_mock();
# Three slots: the logical replication launcher, ours, and one delivery worker.
my $node = new_node('slots', 'hyperline.database' => "''", max_worker_processes => 3);
for my $db (qw(first second)) {
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION pg_hyperline;
		SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}');});
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'first'")
	  or die 'no worker in first';
}
insert_events($node, 10, db => 'first', prefix => 'first-');
insert_events($node, 10, db => 'second', prefix => 'second-');
wait_drained($node, 'first delivers', 'first');

ok( $node->poll_query_until('postgres',
		"SELECT query LIKE '%no free background worker slot for the delivery worker of database \"second\"; raise max_worker_processes (now 3)'"
		  . " FROM pg_stat_activity WHERE backend_type = 'pg_hyperline launcher'"),
	'pg_stat_activity says which slot is missing and what to change');
my $said = 0;
for (1 .. 100) {
	last if ($said = slurp_file($node->logfile) =~ /no free background worker slot/);
	sleep 0.1;
}
ok($said, 'the log says so');
sleep 4;    # the launcher retries every second meanwhile
my $log = slurp_file($node->logfile);
is(scalar(() = $log =~ /WARNING:  pg_hyperline: no free background worker slot for the delivery worker of database "second"/g),
	1, 'once, not at every retry');
like($log, qr/HINT:  Raise max_worker_processes/, 'with the hint');
is($node->safe_psql('second', "SELECT count(*) FROM hyperline.outbox WHERE status = 'pending'"),
	'10', 'second waits with its events pending');

# A slot frees (the first database goes away): second starts delivering.
$node->safe_psql('postgres', 'DROP DATABASE first');
wait_drained($node, 'second delivers once a slot is free', 'second');
like(slurp_file($node->logfile), qr/no delivery worker waits for a background worker slot any more/,
	'the log says the shortage is over');
is(mock_get($mock, '/_mock/stats')->{events_unique}, 20, 'every event at the mock');

check_log($node, 'test_key');
$node->stop;
done_testing();
