# Upgrades: a database created at every earlier release, with destinations,
# models (their triggers), pending and failed events, is updated with ALTER
# EXTENSION pg_hyperline UPDATE. Then (a) every object of the extension is
# described exactly as in a fresh install of the current version, (b) every
# pending event is delivered, (c) the models keep producing events.
#
# A new release adds its predecessor to @released (and ships the upgrade script
# from it); nothing else here changes.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use File::Temp qw(tempdir);
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;

my @released = ('0.1.0');
my ($current) = slurp_control() =~ /^default_version = '([^']+)'/m;

my $mock = start_mock();
my $node = new_node('upgrade', 'hyperline.enabled' => 'off');

# What a user of any release has: two destinations, models with every trigger
# on tables with data, events pending and failed. Written with the API every
# release has had.
sub populate {
	my ($db, $fresh) = @_;
	$node->safe_psql($db, qq{
		SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 50);
		SELECT hyperline.create_destination('single', 'test_key', '$mock->{url}', batch_size => 1);
		CREATE TABLE api_calls (id int PRIMARY KEY, customer text NOT NULL, units numeric, d int DEFAULT 1);
		SELECT hyperline.create_model('api_calls', 'api_calls', 'id', \$\$ {
		  "customer_id": "{{ row.customer }}", "event_type": "api_call", "timestamp": 0,
		  "record": {"id": "a{{ row.id }}", "units": {{ row.units }}, "q": {{ 10 | divided_by: row.d }}}} \$\$,
		  triggers => '{insert,update,delete}');
		CREATE TABLE seats (id text PRIMARY KEY, customer text);
		SELECT hyperline.create_model('seats', 'seats', 'id', \$\$ {
		  "customer_id": "{{ row.customer }}", "event_type": "seat", "timestamp": 0,
		  "record": {"id": "s{{ row.id }}"}} \$\$, destination => 'single');
		-- insert only (0.2.0 adds a trigger for key changes), and a name whose
		-- trigger name 0.1.0 truncated
		SELECT hyperline.create_model('seats_added', 'seats', 'id', \$\$ {
		  "customer_id": "{{ row.customer }}", "event_type": "seat_added", "timestamp": 0,
		  "record": {"id": "added-{{ row.id }}"}} \$\$, triggers => '{insert}', destination => 'single');
		SELECT hyperline.create_model('a_model_name_long_enough_that_its_trigger_name_was_cut', 'seats', 'id', \$\$ {
		  "customer_id": "{{ row.customer }}", "event_type": "seat_long", "timestamp": 0,
		  "record": {"id": "long-{{ row.id }}"}} \$\$, triggers => '{update}', destination => 'single');
	});
	# A model of a role that is not a superuser (0.2.0 wants it granted the
	# destination first; the upgrade grants it).
	$node->safe_psql($db, "SELECT hyperline.grant_destination('hyperline', 'tenant')") if $fresh;
	$node->safe_psql($db, q{
		CREATE TABLE tenant_calls (id int PRIMARY KEY, customer text);
		ALTER TABLE tenant_calls OWNER TO tenant;
		SET ROLE tenant;
		SELECT hyperline.create_model('tenant_calls', 'tenant_calls', 'id', $$ {
		  "customer_id": "{{ row.customer }}", "event_type": "tenant", "timestamp": 0,
		  "record": {"id": "t{{ row.id }}"}} $$);
		RESET ROLE;});
}

sub describe_to_file {
	my ($db, $dir, $name) = @_;
	my $path = "$dir/$name";
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh describe_extension($node, $db), "\n";
	close $fh;
	return $path;
}

my $dir = tempdir(CLEANUP => 1);
$node->safe_psql('postgres', 'CREATE ROLE tenant; CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION pg_hyperline');
populate('fresh', 1);
is($node->safe_psql('fresh', "SELECT extversion FROM pg_extension WHERE extname = 'pg_hyperline'"),
	$current, "a fresh install is version $current");
my $fresh = describe_to_file('fresh', $dir, 'fresh');

for my $from (@released) {
	# The delivery worker serves database postgres: each release is tried there.
	$node->safe_psql('postgres', 'DROP EXTENSION IF EXISTS pg_hyperline CASCADE');
	$node->safe_psql('postgres', 'DROP TABLE IF EXISTS api_calls, seats, tenant_calls');
	$node->safe_psql('postgres', "CREATE EXTENSION pg_hyperline VERSION '$from'");
	populate('postgres');
	$node->safe_psql('postgres', qq{
		INSERT INTO api_calls VALUES (1, 'cus_1', 1.5, 1), (2, 'cus_2', 2, 1), (3, 'cus_3', 3, 0);
		UPDATE api_calls SET units = 1.25 WHERE id = 1;
		DELETE FROM api_calls WHERE id = 2;
		INSERT INTO seats SELECT 'k' || i, 'cus_' || i FROM generate_series(1, 5) i;
		-- a failed delivery, as the worker records one
		INSERT INTO hyperline.outbox (model, event_key, operation, payload, status, attempts, http_status, last_error, destination)
		  VALUES ('seats', 'old', 'insert', '{"customer_id": "cus_0", "event_type": "seat", "timestamp": 0, "record": {"id": "sold"}}',
		          'failed', 12, 503, 'gave up after 12 attempts', 'single');
	});
	is_deeply(outbox_counts($node), { pending => 14, failed => 2 }, "$from: events pending and failed before the update");

	# The library is newer than the schema: even with hyperline.enabled on, the
	# worker leaves the schema alone, says once in the log what to run, and
	# shows it in pg_stat_activity.
	mock_post($mock, '/_mock/reset');
	$node->append_conf('postgresql.conf', "hyperline.enabled = on\n");
	$node->reload;
	wake($node);
	ok( $node->poll_query_until('postgres',
			"SELECT query LIKE 'waiting for ALTER EXTENSION pg_hyperline UPDATE (installed $from, library $current)' FROM pg_stat_activity"
			  . " WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'postgres'"),
		"$from: pg_stat_activity shows that the worker waits for ALTER EXTENSION UPDATE");
	sleep 2;    # many polls of the worker
	my $says = qr/extension pg_hyperline \Q$from\E in database "postgres" does not match the library \(\Q$current\E\); nothing is delivered until you run ALTER EXTENSION pg_hyperline UPDATE in database "postgres"/;
	is(scalar(() = slurp_file($node->logfile) =~ /$says/g), 1, "$from: the log says once what to run");
	is_deeply(outbox_counts($node), { pending => 14, failed => 2 }, "$from: nothing claimed before the update");
	is(mock_get($mock, '/_mock/stats')->{requests}, 0, "$from: nothing sent before the update");

	$node->safe_psql('postgres', 'ALTER EXTENSION pg_hyperline UPDATE');
	is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'pg_hyperline'"),
		$current, "$from: updated to $current");

	is($node->safe_psql('postgres', "SELECT grantees::text FROM hyperline.destinations WHERE name = 'hyperline'"),
		'{tenant}', "$from: the owner of a model keeps the destination it uses");

	# (a) the same objects as a fresh install
	my $upgraded = describe_to_file('postgres', $dir, "from-$from");
	my $diff = `diff -u $fresh $upgraded`;
	is($diff, '', "$from: every object is described as in a fresh install of $current");
	diag("fresh (-) vs upgraded from $from (+):\n$diff") if $diff ne '';

	# (b) every pending event is delivered (the worker resumes by itself),
	# failed ones stay failed
	wait_drained($node, "$from: the events pending before the update are delivered");
	like(slurp_file($node->logfile), qr/extension pg_hyperline in database "postgres" is now version \Q$current\E; delivery resumes/,
		"$from: the log says that delivery resumes");
	# a1's insert is superseded by its update, a2's insert by its delete
	is_deeply(outbox_counts($node), { delivered => 12, superseded => 2, failed => 2 },
		"$from: nothing lost, nothing resent");
	my $events = mock_get($mock, '/_mock/events');
	my %units = map { $_->{record}{id} => $_->{record}{units} } grep { $_->{event_type} eq 'api_call' } @$events;
	is_deeply(\%units, { a1 => 1.25 }, "$from: the newest version of each key arrived");
	is(scalar(grep { $_->{event_type} eq 'seat' } @$events), 5, "$from: the seats arrived one by one");
	is(scalar(grep { $_->{event_type} eq 'seat_added' } @$events), 5, "$from: the second model's events arrived");

	# (c) the models keep working
	$node->safe_psql('postgres', "INSERT INTO seats VALUES ('k6', 'cus_6')");
	wait_drained($node, "$from: a new event after the update is delivered");
	is(scalar(@{ mock_get($mock, '/_mock/events?record_id__in=sk6,added-k6') }), 2,
		"$from: the models work after the update");
	$node->safe_psql('postgres', "UPDATE seats SET customer = 'cus_7' WHERE id = 'k6'");
	wait_drained($node, "$from: an update after the update is delivered");
	is(mock_get($mock, '/_mock/events?record_id__in=long-k6')->[0]{customer_id}, 'cus_7',
		"$from: the model with a long name works after the update");

	$node->append_conf('postgresql.conf', "hyperline.enabled = off\n");
	$node->reload;
}

check_log($node, 'test_key');
done_testing();

# The control file of the checkout under test.
sub slurp_control {
	open(my $fh, '<', "$FindBin::RealBin/../../pg_hyperline.control") or die $!;
	local $/;
	return <$fh>;
}
