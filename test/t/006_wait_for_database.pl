# hyperline.database set: the launcher waits quietly while that database does
# not exist, and a worker delivers there once the database and the extension
# are created; no crash loop. CREATE EXTENSION in another database warns that
# nothing is delivered from there.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $node = new_node('waitdb', 'hyperline.database' => "'billing'");
sleep 2;
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_hyperline launcher' AND datname IS NULL"),
	'1',
	'launcher runs while the database is missing');
like($node->safe_psql('postgres', "SELECT query FROM pg_stat_activity WHERE backend_type = 'pg_hyperline launcher'"),
	qr/waiting for database "billing" \(hyperline.database\) to be created/,
	'pg_stat_activity says what the launcher waits for');
my $log = slurp_file($node->logfile);
unlike($log, qr/(FATAL|ERROR)/, 'no errors while waiting');
is(scalar(() = $log =~ /waiting for database "billing"/g), 1, 'says once that it waits');

# The wrong database trap: with hyperline.database = 'billing', a database
# elsewhere is not served, and the function the install script ends with says
# so. (The function is declared here: the SQL scripts declare it as
# hyperline._database_served.)
$node->safe_psql('postgres',
	"CREATE FUNCTION served(boolean) RETURNS boolean LANGUAGE c AS 'pg_hyperline', 'hyperline_database_served'");
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT served(true)');
is($out, 'f', 'postgres is not served');
like($err, qr/WARNING:  no pg_hyperline worker delivers events from database "postgres"/, 'a WARNING says so');
like($err, qr/DETAIL:  hyperline.database is set to "billing": only that database is served./,
	'and why');
like($err, qr/HINT:  Create the extension in database "billing", or set hyperline.database = ''/,
	'and what to do');
($rc, $out, $err) = $node->psql('postgres', 'SELECT served(false)');
is($err, '', 'no WARNING when not asked');
($rc, $out, $err) = $node->psql('template1',
	"BEGIN; CREATE FUNCTION served(boolean) RETURNS boolean LANGUAGE c AS 'pg_hyperline', 'hyperline_database_served'; SELECT served(true); ROLLBACK");
like($err, qr/DETAIL:  hyperline.database is set to "billing"/, 'template1 is not served either');

$node->safe_psql('postgres', 'CREATE DATABASE billing');
$node->safe_psql('billing',
	"CREATE FUNCTION served(boolean) RETURNS boolean LANGUAGE c AS 'pg_hyperline', 'hyperline_database_served'");
($rc, $out, $err) = $node->psql('billing', 'SELECT served(true)');
is($out . $err, 't', 'billing is served, without a WARNING');
$node->safe_psql('billing', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}');
	INSERT INTO hyperline.outbox (model, event_key, operation, payload, destination)
	SELECT 'm', i::text, 'insert', jsonb_build_object('customer_id', 'c', 'event_type', 'e',
	  'timestamp', '2024-12-20T16:04:11Z', 'record', jsonb_build_object('id', 'w' || i)), 'hyperline'
	FROM generate_series(1, 10) i;});
ok( $node->poll_query_until('billing',
		"SELECT count(*) = 10 FROM hyperline.outbox WHERE status = 'delivered'"),
	'delivers once the extension exists');
is(mock_get($mock, '/_mock/stats')->{events_unique}, 10, 'events at the mock');

# SIGTERM of the delivery worker (e.g. pg_terminate_backend): a clean exit, and
# the launcher starts a new one.
my $pid = $node->safe_psql('billing',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'billing'");
$node->safe_psql('billing', "SELECT pg_terminate_backend($pid)");
ok( $node->poll_query_until('billing',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'billing' AND pid <> $pid"),
	'a new delivery worker after SIGTERM');

# SIGHUP reloads settings in the worker.
$node->append_conf('postgresql.conf', "hyperline.enabled = off\n");
$node->reload;
$node->poll_query_until('billing',
	"SELECT query LIKE 'disabled%' FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'billing'")
  or die 'worker did not reload';
$node->safe_psql('billing', q{
	INSERT INTO hyperline.outbox (model, event_key, operation, payload, destination)
	VALUES ('m', 'off', 'insert', '{"customer_id": "c", "event_type": "e", "timestamp": "2024-12-20T16:04:11Z", "record": {"id": "off"}}', 'hyperline');
	SELECT hyperline._wake();});
sleep 1;
is($node->safe_psql('billing', "SELECT status FROM hyperline.outbox WHERE event_key = 'off'"),
	'pending', 'hyperline.enabled = off keeps events pending');
$node->append_conf('postgresql.conf', "hyperline.enabled = on\n");
$node->reload;
ok( $node->poll_query_until('billing', "SELECT status = 'delivered' FROM hyperline.outbox WHERE event_key = 'off'"),
	'delivered once enabled again');

# DROP EXTENSION: the worker exits; CREATE EXTENSION again starts a new one.
$node->safe_psql('billing', 'DROP EXTENSION pg_hyperline CASCADE');
ok( $node->poll_query_until('billing',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker'"),
	'worker gone after DROP EXTENSION');
$node->safe_psql('billing', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}');
	INSERT INTO hyperline.outbox (model, event_key, operation, payload, destination)
	VALUES ('m', 'again', 'insert', '{"customer_id": "c", "event_type": "e", "timestamp": "2024-12-20T16:04:11Z", "record": {"id": "again"}}', 'hyperline');
	SELECT hyperline._wake();});
ok($node->poll_query_until('billing', "SELECT status = 'delivered' FROM hyperline.outbox WHERE event_key = 'again'"),
	'delivers after the extension was re-created');

check_log($node, 'test_key');
$node->stop;
done_testing();
