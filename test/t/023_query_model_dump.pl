# pg_dump / pg_restore of a database with query models: the models (owner,
# search_path, schedule) and what their runs recorded come back, the run
# history does not; the restored database goes on comparing from where it was
# (nothing is sent again) and sends only what changes after the restore.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use File::Temp qw(tempdir);
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_node('qm_dump', 'hyperline.enabled' => 'off');
my $dir = tempdir(CLEANUP => 1);

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'k', 'http://127.0.0.1:9');
	CREATE ROLE analyst;
	SELECT hyperline.grant_destination('hyperline', 'analyst');
	CREATE SCHEMA crm;
	GRANT USAGE, CREATE ON SCHEMA crm TO analyst;
	CREATE TABLE crm.members (account text, member text, PRIMARY KEY (account, member));
	GRANT SELECT ON crm.members TO analyst;
	INSERT INTO crm.members SELECT 'acc_' || (i % 50), 'user_' || i FROM generate_series(1, 500) i;
	SET ROLE analyst;
	SET search_path = crm;
	SELECT hyperline.create_query_model('seats',
	  'SELECT account, count(*) AS seats FROM members GROUP BY account', 'account',
	  $${"customer_id": "{{ row.account }}", "event_type": "seats", "timestamp": 0,
	     "record": {"id": "seats-{{ row.account }}", "seats": {{ row.seats }}}}$$,
	  schedule => '0 3 * * *', triggers => '{insert,update,delete}');
	RESET search_path;
	SELECT added FROM hyperline.run_model('seats');
	RESET ROLE;});
is($node->safe_psql('postgres', 'SELECT count(*) FROM hyperline._query_state'),
	'50', 'the first run recorded 50 keys');

my $dump = "$dir/source.dump";
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

is( $node->safe_psql('restored', q{
		SELECT concat_ws(' ', name, kind, owner, search_path, schedule, next_run_at IS NOT NULL)
		  FROM hyperline._models}),
	'seats query analyst crm 0 3 * * * t', 'the model came back with its owner, search_path and schedule');
is($node->safe_psql('restored', 'SELECT count(*) FROM hyperline._query_state'),
	'50', 'and what its runs recorded');
is($node->safe_psql('restored', 'SELECT count(*) FROM hyperline.sync_runs'),
	'0', 'the run history is not dumped');

# The restored database sends nothing again, only what changes afterwards.
is($node->safe_psql('restored', q{
	SELECT concat_ws(' ', added, updated, removed, unchanged) FROM hyperline.run_model('seats')}),
	'0 0 0 50', 'its first run after the restore finds nothing to send');
# (the first run's events were pending: they came back too, and are left alone)
my $last = $node->safe_psql('restored', 'SELECT max(id) FROM hyperline.outbox');
is($node->safe_psql('restored', 'SELECT count(*) FROM hyperline.outbox'), '50',
	"the first run's 50 undelivered events came back");
$node->safe_psql('restored', q{
	INSERT INTO crm.members VALUES ('acc_1', 'newcomer'), ('acc_new', 'first');
	DELETE FROM crm.members WHERE account = 'acc_2';});
is($node->safe_psql('restored', q{
	SELECT concat_ws(' ', added, updated, removed, unchanged) FROM hyperline.run_model('seats')}),
	'1 1 1 48', 'then only the changes');
is( $node->safe_psql('restored', q{
		SELECT string_agg(operation || ':' || event_key, ' ' ORDER BY event_key)
		  FROM hyperline.outbox WHERE model = 'seats' AND id > } . $last),
	'update:acc_1 delete:acc_2 insert:acc_new', 'as three events');
# The query still runs as its owner, with its search_path.
$node->safe_psql('restored', 'REVOKE SELECT ON crm.members FROM analyst');
my ($rc, $out, $err) = $node->psql('restored', q{SELECT * FROM hyperline.run_model('seats')});
like($err, qr/permission denied for table members/, 'as its owner (whose rights apply)');

check_log($node);
$node->stop;
done_testing();
