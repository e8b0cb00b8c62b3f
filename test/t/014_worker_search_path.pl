# Security: the workers run as the bootstrap superuser, so no search_path a
# database owner (or a role setting) puts in place may ever make them run
# another role's code. The attacker owns the database (not a superuser), plants
# evil.now(), evil.max(), evil.unnest() and evil.= operators that would make it
# a superuser, and sets ALTER DATABASE ... SET search_path = evil, pg_catalog.
# After a worker restart and deliveries that run every statement of the
# workers (claims, records, retries, superseding, a refused key, the purge),
# the attacker is still not a superuser and nothing of its was called. Then the
# same with ALTER ROLE <bootstrap superuser> SET search_path. Then a database
# setting of role.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $node = new_node('search_path',
	'hyperline.delivered_retention' => 0,
	'hyperline.vacuum_threshold' => 20,
	'hyperline.max_attempts' => 50);
my $boot = $node->safe_psql('postgres', 'SELECT rolname FROM pg_roles WHERE oid = 10');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 10);
	SELECT hyperline.create_destination('single', 'test_key', '$mock->{url}', batch_size => 1);
	CREATE ROLE attacker LOGIN;
	ALTER DATABASE postgres OWNER TO attacker;});

# The attack, written by the database owner. Each function escalates only when
# a superuser background process calls it (a client session of the test's own
# superuser resolves the same names; that is not the attack under test).
$node->safe_psql('postgres', q{
	CREATE SCHEMA evil;
	CREATE TABLE evil.calls (who text, what text, backend text);
	GRANT INSERT ON evil.calls TO PUBLIC;
	CREATE FUNCTION evil.pwn(what text) RETURNS void LANGUAGE plpgsql
	  SET search_path = pg_catalog, pg_temp AS $$
	DECLARE
	  kind text := (SELECT a.backend_type FROM pg_catalog.pg_stat_activity a
	                WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid());
	BEGIN
	  IF kind IS DISTINCT FROM 'client backend'
	     AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
	    INSERT INTO evil.calls VALUES (current_user, what, kind);
	    EXECUTE 'ALTER ROLE attacker SUPERUSER';
	  END IF;
	END $$;
	CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql
	  SET search_path = pg_catalog, pg_temp AS $$
	  BEGIN PERFORM evil.pwn('now()'); RETURN pg_catalog.now(); END $$;
	CREATE FUNCTION evil.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql
	  SET search_path = pg_catalog, pg_temp AS $$
	  BEGIN PERFORM evil.pwn('unnest'); RETURN QUERY SELECT * FROM pg_catalog.unnest($1); END $$;
	CREATE FUNCTION evil.max_step(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql
	  SET search_path = pg_catalog, pg_temp AS $$
	  BEGIN PERFORM evil.pwn('max'); RETURN pg_catalog.timestamptz_larger($1, $2); END $$;
	CREATE AGGREGATE evil.max(timestamptz) (SFUNC = evil.max_step, STYPE = timestamptz);
	CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql
	  SET search_path = pg_catalog, pg_temp AS $$
	  BEGIN PERFORM evil.pwn('text ='); RETURN pg_catalog.texteq($1, $2); END $$;
	CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
	CREATE FUNCTION evil.int8_eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql
	  SET search_path = pg_catalog, pg_temp AS $$
	  BEGIN PERFORM evil.pwn('bigint ='); RETURN pg_catalog.int8eq($1, $2); END $$;
	CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8_eq);
	CREATE FUNCTION evil.ts_le(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql
	  SET search_path = pg_catalog, pg_temp AS $$
	  BEGIN PERFORM evil.pwn('timestamptz <='); RETURN pg_catalog.timestamptz_le($1, $2); END $$;
	CREATE OPERATOR evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_le);
	CREATE FUNCTION evil.ts_lt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql
	  SET search_path = pg_catalog, pg_temp AS $$
	  BEGIN PERFORM evil.pwn('timestamptz <'); RETURN pg_catalog.timestamptz_lt($1, $2); END $$;
	CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_lt);
}, extra_params => [ '--username' => 'attacker' ]);

sub attacker_is_superuser {
	return $node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'attacker'");
}
sub evil_calls {
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(DISTINCT what || ' by ' || backend, ', '), '') FROM evil.calls");
}

# Restarts the delivery worker (the launcher starts a new one, which applies
# the database's and role's settings at connection) and waits for it.
sub restart_worker {
	my $old = worker_pid($node);
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($old)");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker'"
		  . " AND datname = 'postgres' AND pid <> $old")
	  or die 'the delivery worker did not come back';
	return worker_pid($node);
}

# Deliveries that run every statement of the workers.
sub deliver_everything {
	my ($round) = @_;
	# Claims and records, batches and singles.
	insert_events($node, 30, prefix => "$round-b");
	insert_events($node, 3, prefix => "$round-s", destination => 'single');
	wait_drained($node, "$round: delivered");
	# Retries, and a newer row of a key waiting for one (superseding).
	mock_post($mock, '/_mock/config', { fail_rate => 1, fail_status => 503 });
	insert_events($node, 2, prefix => "$round-r", destination => 'single');
	$node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM hyperline.outbox WHERE event_key LIKE '$round-r%' AND attempts >= 1")
	  or die 'no retry';
	insert_events($node, 1, prefix => "$round-r", destination => 'single');
	mock_post($mock, '/_mock/config', { fail_rate => 0 });
	wait_drained($node, "$round: retried and superseded");
	# A refused key, then a new one.
	mock_post($mock, '/_mock/config', { api_keys => ['other_key'] });
	insert_events($node, 5, prefix => "$round-u");
	$node->poll_query_until('postgres',
		"SELECT state = 'unauthorized' FROM hyperline.destinations WHERE name = 'hyperline'")
	  or die 'not unauthorized';
	$node->safe_psql('postgres', "SELECT hyperline.alter_destination('hyperline', api_key => 'other_key')");
	wait_drained($node, "$round: delivered after a new key");
	mock_post($mock, '/_mock/config', { api_keys => ['test_key', 'other_key'] });
	$node->safe_psql('postgres', "SELECT hyperline.alter_destination('hyperline', api_key => 'test_key')");
	# The purge (retention 0) and the vacuum, by the upkeep worker.
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM hyperline.outbox WHERE status IN ('delivered', 'superseded')"),
		"$round: delivered events purged");
}

# 1. The database's search_path.
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET search_path = evil, pg_catalog',
	extra_params => [ '--username' => 'attacker' ]);
is($node->safe_psql('postgres', 'SHOW search_path', extra_params => [ '--username' => 'attacker' ]),
	'evil, pg_catalog', 'the database search_path is the attacker\'s');
my $pid = restart_worker();
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid"), '1',
	'a new delivery worker runs');
deliver_everything('db');
restart_worker();    # the reset at start, with rows waiting
is(attacker_is_superuser(), 'f', 'database search_path: the attacker is still not a superuser');
is(evil_calls(), '', 'database search_path: no function or operator of the attacker was called');

# 2. A role-level search_path on the bootstrap superuser (the workers' role).
$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET search_path',
	extra_params => [ '--username' => 'attacker' ]);
$node->safe_psql('postgres', qq{ALTER ROLE "$boot" SET search_path = evil, pg_catalog});
restart_worker();
deliver_everything('role');
restart_worker();
is(attacker_is_superuser(), 'f', 'role search_path: the attacker is still not a superuser');
is(evil_calls(), '', 'role search_path: no function or operator of the attacker was called');
$node->safe_psql('postgres', qq{ALTER ROLE "$boot" RESET search_path});

# 3. A role named by the database's settings. A database owner may
# ALTER DATABASE ... SET role to any role (Postgres checks it only when a
# session applies it, and the workers' session user, the bootstrap superuser,
# may become anyone): every worker of the database then ran as that role, and
# failed on permission errors in a loop. The workers keep their own identity.
# (The test's own sessions say role=none on their command line, which the
# database's setting does not override.)
$node->safe_psql('postgres', q{
	CREATE ROLE victim;
	SELECT hyperline.create_query_model('as_whom', 'SELECT 1 AS id, current_user AS who', 'id',
	  $${"customer_id": "c", "event_type": "x", "timestamp": 0, "record": {"id": "q{{ row.id }}"}}$$,
	  schedule => '1 second');});
$node->safe_psql('postgres', q{ALTER DATABASE postgres SET role = 'victim'},
	extra_params => [ '--username' => 'attacker' ]);
my $since = $node->safe_psql('postgres', 'SELECT now()');
{
	local $ENV{PGOPTIONS} = '-c role=none';
	restart_worker();
	deliver_everything('setrole');
	ok($node->poll_query_until('postgres', qq{
			SELECT count(*) >= 2 FROM hyperline._sync_runs
			 WHERE model = 'as_whom' AND status = 'succeeded' AND started_at > '$since'}),
		'database role setting: the sync worker runs the scheduled query model');
	is($node->safe_psql('postgres', qq{
			SELECT count(*) FROM hyperline._sync_runs
			 WHERE model = 'as_whom' AND status = 'failed' AND started_at > '$since'}),
		'0', 'database role setting: no run failed');
	$node->safe_psql('postgres', 'SELECT hyperline.drop_model(\'as_whom\')');
}
$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET role',
	extra_params => [ '--username' => 'attacker' ]);
unlike(slurp_file($node->logfile), qr/permission denied for/,
	'database role setting: no worker met a permission error');

check_log($node, 'test_key');
$node->stop;
done_testing();
