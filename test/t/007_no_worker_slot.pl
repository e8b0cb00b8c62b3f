# Upkeep without a free background worker slot: the delivery worker cannot start
# its upkeep worker, so it purges and vacuums the outbox itself, between sends,
# and says so once in the log.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
# Three slots: the logical replication launcher, ours and the delivery worker;
# none left for upkeep.
my $node = new_node(
	'noslot',
	max_worker_processes => 3,
	'hyperline.delivered_retention' => 0,
	'hyperline.vacuum_threshold' => 100);
$node->safe_psql('postgres', 'CREATE EXTENSION pg_hyperline');
$node->safe_psql('postgres',
	"SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 100)");
my $vacuums = outbox_vacuums($node);

insert_events($node, 300);
wait_drained($node);
is(mock_get($mock, '/_mock/stats')->{events_unique}, 300, 'all 300 events at the mock');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM hyperline.outbox'),
	'delivered rows purged by the delivery worker itself');
ok(wait_outbox_vacuumed($node, $vacuums), 'and the outbox vacuumed');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_hyperline upkeep'"),
	'0', 'no upkeep worker ran');
my $log = slurp_file($node->logfile);
is(scalar(() = $log =~ /could not start the upkeep worker/g),
	1, 'says once that it has no slot for the upkeep worker');

check_log($node, 'test_key');
$node->stop;
done_testing();
