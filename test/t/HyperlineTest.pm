# HyperlineTest.pm: shared helpers for the pg_hyperline TAP tests.
#
# A test node is a PostgreSQL::Test::Cluster with pg_hyperline preloaded, the
# worker in database postgres and short retry settings; a mock is a running
# hyperline-mock (path in $ENV{HYPERLINE_MOCK_BIN}) on a free loopback port.
package HyperlineTest;

use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(new_node start_mock mock_get mock_post insert_events wake
  wait_drained check_log worker_pid launcher_pid outbox_counts outbox_vacuums wait_outbox_vacuumed
  describe_extension wait_restarted);

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 30);
my @mocks;
my $mock_counter = 0;

# Waits until `$node` has restarted after `$pid` (one of its processes) was
# killed with SIGKILL and accepts queries again; dies after 180 s. The killed
# process's entry in pg_stat_activity stays until the crash restart resets
# shared memory, so a query that succeeds before the postmaster has noticed
# the crash does not count. Why not poll_query_until alone: while the
# postmaster refuses connections, psql can exit before it is fed its query,
# and IPC::Run then dies of the broken pipe instead of trying again.
sub wait_restarted {
	my ($node, $pid) = @_;
	my $deadline = time() + 180;
	while (time() < $deadline) {
		my $gone = eval {
			$node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") eq '0';
		};
		return 1 if $gone;
		usleep(100_000);
	}
	die "the server did not restart and accept queries within 180 s of the SIGKILL of $pid";
}

# Creates and starts a node; %conf adds or overrides postgresql.conf settings.
sub new_node {
	my ($name, %conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my %settings = (
		shared_preload_libraries => "'pg_hyperline'",
		'hyperline.database' => "'postgres'",
		'hyperline.retry_base_ms' => 50,
		'hyperline.retry_max_ms' => 500,
		'hyperline.poll_interval_ms' => 200,
		# Statement logging would print the key passed to create_destination;
		# the extension itself never logs it.
		log_statement => "'none'",
		%conf);
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = $settings{$_}\n" } sort keys %settings));
	$node->start;
	return $node;
}

# Starts hyperline-mock with extra flags; returns {pid, port, url}.
sub start_mock {
	my (@args) = @_;
	my $bin = $ENV{HYPERLINE_MOCK_BIN};
	plan skip_all => 'HYPERLINE_MOCK_BIN is not set' unless $bin && -x $bin;
	my $port_file = "$PostgreSQL::Test::Utils::tmp_check/mock_port_${$}_" . $mock_counter++;
	unlink $port_file;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0) {
		open(STDOUT, '>', '/dev/null');
		{ no warnings 'exec'; exec($bin, '--port', '0', '--port-file', $port_file, '--quiet', @args); }
		POSIX::_exit(127);
	}
	my $port;
	for (1 .. 400) {
		if (-s $port_file) {
			$port = slurp_file($port_file);
			chomp $port;
			last if $port =~ /^\d+$/;
		}
		usleep(25_000);
	}
	die "hyperline-mock did not start" unless $port;
	my $mock = { pid => $pid, port => $port, url => "http://127.0.0.1:$port" };
	push @mocks, $mock;
	return $mock;
}

# Stops the mocks. Why keep $?: it is the test's exit status, and waitpid
# sets it; a mock that does not exit cleanly on SIGTERM fails the test, and
# says so.
END {
	my $status = $?;
	for my $m (@mocks) {
		kill 'TERM', $m->{pid};
		waitpid($m->{pid}, 0);
		if ($? != 0) {
			print STDERR "# hyperline-mock (pid $m->{pid}) did not exit cleanly on SIGTERM: wait status $?\n";
			$status ||= 1;
		}
	}
	$? = $status;
}

# GET a control or API path of the mock; returns the decoded JSON.
sub mock_get {
	my ($mock, $path) = @_;
	my $r = $http->get("$mock->{url}$path");
	die "GET $path: $r->{status} $r->{content}" unless $r->{success};
	return $json->decode($r->{content});
}

# POST JSON to a control path of the mock; returns the decoded answer.
sub mock_post {
	my ($mock, $path, $body) = @_;
	my $r = $http->post("$mock->{url}$path",
		{ content => $json->encode($body // {}), headers => { 'content-type' => 'application/json' } });
	die "POST $path: $r->{status} $r->{content}" unless $r->{success};
	return $json->decode($r->{content});
}

# Inserts $n events straight into the outbox (ids "${prefix}1".."${prefix}$n")
# of database $opt{db} (default postgres) and wakes the worker at commit.
sub insert_events {
	my ($node, $n, %opt) = @_;
	my $db = $opt{db} // 'postgres';
	my $prefix = $opt{prefix} // 'r';
	my $dest = $opt{destination} // 'hyperline';
	my $model = $opt{model} // 'm';
	my $op = $opt{operation} // 'insert';
	$node->safe_psql($db, qq{
		BEGIN;
		INSERT INTO hyperline.outbox (model, event_key, operation, payload, destination)
		SELECT '$model', '$prefix' || i, '$op',
		       jsonb_build_object('customer_id', 'cus_1', 'event_type', 'api_call',
		                          'timestamp', '2024-12-20T16:04:11Z',
		                          'record', jsonb_build_object('id', '$prefix' || i, 'n', i)),
		       '$dest'
		FROM generate_series(1, $n) i;
		SELECT hyperline._wake();
		COMMIT;});
}

# Wakes the worker (as a commit that wrote outbox rows would).
sub wake {
	my ($node) = @_;
	$node->safe_psql('postgres', 'SELECT hyperline._wake()');
}

# Waits until no row is pending or sending (in database $db, default postgres).
sub wait_drained {
	my ($node, $what, $db) = @_;
	ok( $node->poll_query_until($db // 'postgres',
			"SELECT count(*) = 0 FROM hyperline.outbox WHERE status IN ('pending', 'sending')"),
		$what // 'outbox drained');
}

# Rows per status, as a hash.
sub outbox_counts {
	my ($node) = @_;
	my %c = map { split /\|/ } split /\n/,
	  $node->safe_psql('postgres', 'SELECT status, count(*) FROM hyperline.outbox GROUP BY 1');
	return \%c;
}

# How many times hyperline.outbox has been vacuumed (pg_stat_user_tables).
sub outbox_vacuums {
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'hyperline.outbox'::regclass");
}

# Waits until hyperline.outbox has been vacuumed more than $before times;
# true if it was.
sub wait_outbox_vacuumed {
	my ($node, $before) = @_;
	return $node->poll_query_until('postgres',
		"SELECT vacuum_count > $before FROM pg_stat_user_tables"
		  . " WHERE relid = 'hyperline.outbox'::regclass");
}

# The pid of the delivery worker of database $db (default postgres).
sub worker_pid {
	my ($node, $db) = @_;
	$db //= 'postgres';
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = '$db'"
	);
}

# The launcher's pid (connected to no database).
sub launcher_pid {
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hyperline launcher'");
}

# Fails if the server log shows a crash (other than of the pids in @killed)
# or the given secret.
sub check_log {
	my ($node, $secret, @killed) = @_;
	my $log = slurp_file($node->logfile);
	my @crashes = grep { /terminated by signal/ } split /\n/, $log;
	for my $pid (@killed) {
		@crashes = grep { !/\(PID $pid\)/ } @crashes;
	}
	is(join("\n", @crashes), '', 'no process terminated by a signal');
	unlike($log, qr/\Q$secret\E/, 'the API key is not in the server log') if defined $secret;
}

# A description of every object of the extension in database $db, one block per
# object, sorted: what must be identical between an upgraded and a fresh install.
# Covers the extension row (version, schema, config-dump tables and filters), its
# member list, functions (signature, security, settings, body, ACL, comment),
# relations (columns with types, defaults, collations, NOT NULL; constraints,
# indexes, triggers, policies, options, row security, ACLs, comments; view
# definitions; sequence parameters), types, schemas and event triggers, and the
# triggers the extension put on user tables.
my $describe_sql = <<'SQL';
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'pg_hyperline'),
members AS (SELECT d.classid, d.objid FROM pg_depend d JOIN ext ON d.refobjid = ext.oid
            WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'),
rels AS (SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
         UNION SELECT c.* FROM pg_class c JOIN pg_type t ON t.typrelid = c.oid
           JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid),
funcs AS (SELECT p.* FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid)
SELECT block FROM (
  SELECT 'extension ' || e.extname || ' version ' || e.extversion || ' schema ' || e.extnamespace::regnamespace
         || ' relocatable ' || e.extrelocatable || ' owner-is-superuser '
         || (SELECT rolsuper FROM pg_roles WHERE oid = e.extowner)
         || E'\n  config: ' || coalesce((SELECT string_agg(c::regclass::text || ' [' || f || ']', ', ' ORDER BY c::regclass::text)
                                      FROM unnest(e.extconfig, e.extcondition) u(c, f)), '') AS block
    FROM pg_extension e WHERE e.extname = 'pg_hyperline'
  UNION ALL
  SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM members m
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
         || E'\n  acl: ' || coalesce(p.proacl::text, '-') || E'\n  comment: ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
    FROM funcs p
  UNION ALL
  SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text || ' persistence ' || c.relpersistence::text
         || ' rls ' || c.relrowsecurity || '/' || c.relforcerowsecurity
         || E'\n  options: ' || coalesce(c.reloptions::text, '-')
         || E'\n  owner-is-superuser: ' || (SELECT rolsuper FROM pg_roles WHERE oid = c.relowner)
         || E'\n  acl: ' || coalesce(c.relacl::text, '-')
         || E'\n  comment: ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
         || coalesce(E'\n  columns:' || (SELECT string_agg(E'\n    ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                 || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                 || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
                 || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
                 || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
                 || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                         THEN ' collate ' || a.attcollation::regcollation ELSE '' END
                 || coalesce(' acl ' || a.attacl::text, '')
                 || coalesce(' comment ' || col_description(c.oid, a.attnum), ''), '' ORDER BY a.attnum)
               FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
         || coalesce(E'\n  constraints:' || (SELECT string_agg(E'\n    ' || co.conname || ' ' || pg_get_constraintdef(co.oid), '' ORDER BY co.conname)
               FROM pg_constraint co WHERE co.conrelid = c.oid), '')
         || coalesce(E'\n  indexes:' || (SELECT string_agg(E'\n    ' || pg_get_indexdef(i.indexrelid), '' ORDER BY i.indexrelid::regclass::text)
               FROM pg_index i WHERE i.indrelid = c.oid), '')
         || coalesce(E'\n  triggers:' || (SELECT string_agg(E'\n    ' || pg_get_triggerdef(tg.oid) || ' enabled ' || tg.tgenabled::text, '' ORDER BY tg.tgname)
               FROM pg_trigger tg WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal), '')
         || coalesce(E'\n  policies:' || (SELECT string_agg(E'\n    ' || po.polname || ' ' || po.polcmd::text || ' permissive ' || po.polpermissive
                 || ' roles ' || po.polroles::regrole[]::text || ' using ' || coalesce(pg_get_expr(po.polqual, po.polrelid), '-')
                 || ' check ' || coalesce(pg_get_expr(po.polwithcheck, po.polrelid), '-'), '' ORDER BY po.polname)
               FROM pg_policy po WHERE po.polrelid = c.oid), '')
         || CASE WHEN c.relkind IN ('v', 'm') THEN E'\n  definition: ' || pg_get_viewdef(c.oid) ELSE '' END
         || coalesce((SELECT E'\n  sequence: ' || format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement
                 || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache || ' cycle ' || s.seqcycle
               FROM pg_sequence s WHERE s.seqrelid = c.oid), '')
    FROM rels c
  UNION ALL
  SELECT 'type ' || t.oid::regtype || ' type ' || t.typtype::text || E'\n  acl: ' || coalesce(t.typacl::text, '-')
    FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
  UNION ALL
  SELECT 'schema ' || n.nspname || ' owner-is-superuser ' || (SELECT rolsuper FROM pg_roles WHERE oid = n.nspowner)
         || E'\n  acl: ' || coalesce(n.nspacl::text, '-') || E'\n  comment: ' || coalesce(obj_description(n.oid, 'pg_namespace'), '-')
    FROM pg_namespace n WHERE n.nspname IN ('hyperline', '_hyperline')
  UNION ALL
  SELECT 'event trigger ' || ev.evtname || ' on ' || ev.evtevent || ' function ' || ev.evtfoid::regprocedure
         || ' enabled ' || ev.evtenabled::text || ' tags ' || coalesce(ev.evttags::text, '-')
    FROM pg_event_trigger ev JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = ev.oid
  UNION ALL
  SELECT 'trigger on user table ' || pg_get_triggerdef(tg.oid) || ' enabled ' || tg.tgenabled::text
    FROM pg_trigger tg JOIN funcs p ON p.oid = tg.tgfoid
    WHERE NOT tg.tgisinternal AND tg.tgrelid NOT IN (SELECT oid FROM rels)
) blocks
ORDER BY block;
SQL

sub describe_extension {
	my ($node, $db) = @_;
	return $node->safe_psql($db, $describe_sql);
}

1;
