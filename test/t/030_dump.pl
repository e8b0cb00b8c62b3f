# pg_dump / pg_restore: destinations (without their keys), grants, models
# with each trigger exactly once, and undelivered events (pending, sending,
# failed) come back; delivered and superseded history does not; a restored
# destination waits, unauthorized, until it gets its key, then delivers. Also:
# a plain-format dump into an empty database, a restore next to other objects,
# a schema-only dump, and a dump by the database's (non-superuser) owner.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use File::Temp qw(tempdir);
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $key = 'sk_live_SECRET_must_not_be_dumped_9f2a';
my $mock = start_mock('--api-key', $key);
my $node = new_node('dump', 'hyperline.enabled' => 'off');
my $dir = tempdir(CLEANUP => 1);
sub q1 { my ($db, $sql) = @_; return $node->safe_psql($db, $sql) }

# The source: everything a production database has.
q1('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', '$key', '$mock->{url}', batch_size => 10);
	CREATE ROLE billing;
	SELECT hyperline.grant_destination('hyperline', 'billing');
	CREATE TABLE usage (customer text NOT NULL, day date NOT NULL, units int, billable boolean,
	                    PRIMARY KEY (customer, day));
	SELECT hyperline.create_model('usage', 'usage', 'customer, day', \$\$ {
	  "customer_id": "{{ row.customer }}", "event_type": "units", "timestamp": "{{ row.day }}T00:00:00Z",
	  "record": {"id": "{{ row.customer }}-{{ row.day }}", "units": {{ row.units }}}} \$\$,
	  triggers => '{insert,update,delete}', filter => 'billable');
	CREATE TABLE seats (id int PRIMARY KEY, customer text);
	SELECT hyperline.create_model('seats', 'seats', 'id', \$\$ {
	  "customer_id": "{{ row.customer }}", "event_type": "seat", "timestamp": 0,
	  "record": {"id": "seat-{{ row.id }}"}} \$\$);
	INSERT INTO usage SELECT 'cus_' || i, '2024-12-20', i, true FROM generate_series(1, 6) i;
	INSERT INTO seats VALUES (1, 'cus_1'), (2, 'cus_2');
	UPDATE seats SET customer = 'cus_1b' WHERE id = 1;
	-- history the dump leaves out, and states it keeps
	UPDATE hyperline.outbox SET status = 'delivered', delivered_at = now() WHERE event_key = '["cus_1","2024-12-20"]';
	UPDATE hyperline.outbox SET status = 'superseded' WHERE event_key = '1' AND operation = 'insert';
	UPDATE hyperline.outbox SET status = 'sending' WHERE event_key = '["cus_2","2024-12-20"]';
	UPDATE hyperline.outbox SET status = 'failed', last_error = 'rejected' WHERE event_key = '["cus_3","2024-12-20"]';
});
my %before = %{ outbox_counts($node) };
is_deeply(\%before, { pending => 5, sending => 1, failed => 1, delivered => 1, superseded => 1 },
	'the source has events in every state');

# A custom-format dump, and what it holds.
my $dump = "$dir/source.dump";
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump -Fc');
my $text = "$dir/source.sql";
command_ok([ 'pg_restore', '-f', $text, $dump ], 'the dump as SQL');
my $sql = slurp_file($text);
unlike($sql, qr/\Q$key\E/, 'the API key is not in the dump');
unlike($sql, qr/SECRET/, 'no part of the key is in the dump');
unlike($sql, qr/cus_1-2024-12-20/, 'delivered events are not in the dump');
like($sql, qr/CREATE TRIGGER hyperline_usage_ins/, "the models' triggers are in the dump");

# pg_restore into an empty database.
q1('postgres', 'CREATE DATABASE restored');
my ($stdout, $stderr);
my $ok = run_log([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ]);
ok($ok, 'pg_restore into an empty database succeeds');
is( q1('restored', q{SELECT string_agg(name || ':' || (SELECT count(*) FROM hyperline._model_triggers(name)), ' ' ORDER BY name)
	FROM hyperline._models}),
	'seats:1 usage:5', 'models restored, each with its triggers exactly once');
is(q1('restored', 'SELECT filter FROM hyperline.models WHERE name = \'usage\''), 'billable', 'the filter too');
is(q1('restored', "SELECT grantees::text FROM hyperline.destinations"), '{billing}', 'grants restored');
is( q1('restored', 'SELECT status, count(*) FROM hyperline.outbox GROUP BY 1 ORDER BY 1'),
	"failed|1\npending|6", 'undelivered events restored; one caught sending is pending again; no history');
is(q1('restored', 'SELECT state FROM hyperline.destinations'), 'unauthorized',
	'a restored destination has no key: unauthorized');
like(q1('restored', 'SELECT last_error FROM hyperline.destinations'), qr/no API key/,
	'... and its last_error says why');
is(q1('restored', 'SELECT count(*) FROM _hyperline.api_keys'), '0', 'no key restored');

# The same dump restored into the database the worker serves: events wait for
# the key, then go.
q1('postgres', 'DROP EXTENSION pg_hyperline CASCADE; DROP TABLE usage, seats');
$ok = run_log([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('postgres'), $dump ]);
ok($ok, 'pg_restore into the worker\'s database succeeds');
$node->append_conf('postgresql.conf', "hyperline.enabled = on\n");
$node->reload;
wake($node);
sleep 2;
is(mock_get($mock, '/_mock/stats')->{requests}, 0, 'nothing is sent without a key');
is(q1('postgres', "SELECT count(*) FROM hyperline.outbox WHERE status = 'pending'"), '6', 'the events wait');
q1('postgres', "SELECT hyperline.alter_destination('hyperline', api_key => '$key')");
wait_drained($node, 'with the key back, the restored events are delivered');
is(scalar(@{ mock_get($mock, '/_mock/events') }), 6, 'all six at the mock');
q1('postgres', "INSERT INTO usage VALUES ('cus_9', '2024-12-21', 9, true)");
wait_drained($node, 'a new write after the restore is delivered');
is(scalar(@{ mock_get($mock, '/_mock/events?record_id__in=cus_9-2024-12-21') }), 1, 'the restored model works');

# A plain-format dump into an empty database, with psql.
q1('postgres', 'CREATE DATABASE plain');
my $plain = "$dir/plain.sql";
command_ok([ 'pg_dump', '-Fp', '-f', $plain, '-d', $node->connstr('restored') ], 'pg_dump -Fp');
command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('plain'), '-f', $plain ],
	'the plain dump restores into an empty database with psql');
is(q1('plain', 'SELECT count(*) FROM hyperline.outbox'), '7', 'its events are there');

# pg_restore into a database that already has objects of its own.
q1('postgres', 'CREATE DATABASE busy');
q1('busy', 'CREATE TABLE other (x int); CREATE SCHEMA app; CREATE TABLE app.y (y int)');
$ok = run_log([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('busy'), $dump ]);
ok($ok, 'pg_restore next to other objects succeeds');

# A schema-only dump restores without errors.
q1('postgres', 'CREATE DATABASE schema_only');
my $schema = "$dir/schema.sql";
command_ok([ 'pg_dump', '--schema-only', '-f', $schema, '-d', $node->connstr('restored') ], 'pg_dump --schema-only');
command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('schema_only'), '-f', $schema ],
	'the schema-only dump restores without errors');

# The database's owner, not a superuser, dumps the database it owns (with its
# own models); row level security applies to what it may see.
q1('postgres', q{
	CREATE ROLE dbowner LOGIN;
	CREATE DATABASE owned OWNER dbowner;
	SELECT hyperline.grant_destination('hyperline', 'dbowner');});
q1('owned', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', '$key', '$mock->{url}');
	SELECT hyperline.grant_destination('hyperline', 'dbowner');
	SET ROLE dbowner;
	CREATE TABLE mine (id int PRIMARY KEY, c text);
	SELECT hyperline.create_model('mine', 'mine', 'id', \$\$ {"customer_id": "{{ row.c }}",
	  "event_type": "e", "timestamp": 0, "record": {"id": "{{ row.id }}"}} \$\$);
	INSERT INTO mine VALUES (1, 'c');});
my $owned = "$dir/owned.dump";
command_ok(
	[ 'pg_dump', '-Fc', '--enable-row-security', '-U', 'dbowner', '-f', $owned, '-d', $node->connstr('owned') ],
	'the database owner dumps its database');
q1('postgres', 'CREATE DATABASE owned_copy');
$ok = run_log([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('owned_copy'), $owned ]);
ok($ok, "the owner's dump restores");
is(q1('owned_copy', 'SELECT count(*) FROM hyperline.outbox'), '1', "with the owner's events");
unlike(slurp_file($owned), qr/\Q$key\E/, "no key in the owner's dump");

check_log($node, $key);
done_testing();
