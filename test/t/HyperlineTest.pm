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
  wait_drained check_log worker_pid outbox_counts outbox_vacuums wait_outbox_vacuumed);

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 30);
my @mocks;
my $mock_counter = 0;

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

END {
	for my $m (@mocks) {
		kill 'TERM', $m->{pid};
		waitpid($m->{pid}, 0);
	}
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
# and wakes the worker at commit.
sub insert_events {
	my ($node, $n, %opt) = @_;
	my $prefix = $opt{prefix} // 'r';
	my $dest = $opt{destination} // 'hyperline';
	my $model = $opt{model} // 'm';
	my $op = $opt{operation} // 'insert';
	$node->safe_psql('postgres', qq{
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

# Waits until no row is pending or sending.
sub wait_drained {
	my ($node, $what) = @_;
	ok( $node->poll_query_until('postgres',
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

# The delivery worker's pid (the process connected to the database).
sub worker_pid {
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND datname = 'postgres'"
	);
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

1;
