# Chaos: concurrent writers updating a shared set of keys, a backfill in the
# middle, a destination that fails (5xx), drops connections after storing,
# rate-limits (429) and answers too slowly (timeouts), a delivery worker
# killed with SIGKILL, and an immediate server stop. At the end, for every key
# the version at hyperline-mock is the newest committed one, no key ever
# received an older version after a newer one, and nothing is left sending.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $keys = 150;
my $mock = start_mock('--seed', '42');
my $node = new_node('chaos', 'hyperline.max_attempts' => 1000, 'max_connections' => 40,
	restart_after_crash => 'on');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 20,
	                                    timeout_ms => 300);
	CREATE TABLE kv (k int PRIMARY KEY, v int NOT NULL);
	INSERT INTO kv SELECT g, 1 FROM generate_series(1, $keys) g;
	SELECT hyperline.create_model('kv', 'kv', 'k', \$\$ {"customer_id": "c", "event_type": "kv",
	  "timestamp": 0, "record": {"id": "{{ row.k }}", "v": {{ row.v }}}} \$\$);});

# Writers: pgbench clients bumping random keys' versions (a new version is
# always higher: v = v + 1 under the row lock).
my $script = "$PostgreSQL::Test::Utils::tmp_check/chaos.sql";
open(my $fh, '>', $script) or die $!;
print $fh "\\set k random(1, $keys)\nUPDATE kv SET v = v + 1 WHERE k = :k;\n";
close $fh;
sub writers {
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-T', $seconds, '-f', $script, '-d', $node->connstr('postgres') ],
		'>', \$out, '2>', \$err);
}
sub fault { mock_post($mock, '/_mock/config', shift) }

my @killed;
# Phase 1: faults, a backfill, then a SIGKILLed worker (a crash restart of the
# whole server: writers in flight lose their uncommitted transactions only).
fault({ fail_rate => 0.15, fail_status => 503, drop_rate => 0.1, drop_mode => 'after', rate_limit => 40 });
my $w = writers(20);
sleep 4;
$node->safe_psql('postgres', "SELECT hyperline.backfill('kv')");
sleep 2;
fault({ delay_ms => 400 });    # every answer too slow: timeouts
sleep 2;
fault({ delay_ms => 0 });
sleep 2;
my $pid = worker_pid($node);
push @killed, $pid;
kill 'KILL', $pid;
$w->finish;    # its clients may have lost their connections in the crash
ok(wait_restarted($node, $pid), 'the server is back after the worker was killed');

# Phase 2: more writes, then an immediate stop in the middle of them.
$w = writers(10);
sleep 5;
$node->stop('immediate');
$w->finish;
$node->start;
$w = writers(5);
$w->finish;

# The destination recovers: everything committed is delivered.
fault({ fail_rate => 0, drop_rate => 0, rate_limit => 0, delay_ms => 0 });
wake($node);
wait_drained($node, 'the outbox drains');
is( $node->safe_psql('postgres', "SELECT count(*) FROM hyperline.outbox WHERE status NOT IN ('delivered', 'superseded')"),
	'0', 'nothing left pending, sending or failed');

my %table = map { split /\|/ } split /\n/, $node->safe_psql('postgres', 'SELECT k, v FROM kv');
my %at_mock = map { $_->{record}{id} => $_->{record}{v} } @{ mock_get($mock, '/_mock/events') };
my @wrong = grep { ($at_mock{$_} // -1) != $table{$_} } sort { $a <=> $b } keys %table;
is(scalar(@wrong), 0, "every key's newest committed version is at the mock")
  or diag('keys with another version: ' . join(', ', map { "$_: table $table{$_}, mock " . ($at_mock{$_} // 'none') } @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]));
my @reordered;
for my $k (1 .. $keys) {
	my @seen = map { $_->{event}{record}{v} } grep { !$_->{deleted} } @{ mock_get($mock, "/_mock/log?record_id=$k") };
	for my $i (1 .. $#seen) {
		if ($seen[$i] < $seen[ $i - 1 ]) { push @reordered, "$k: @seen"; last }
	}
}
is(scalar(@reordered), 0, 'no key received an older version after a newer one')
  or diag(join("\n", @reordered[0 .. ($#reordered < 4 ? $#reordered : 4)]));
my $stats = mock_get($mock, '/_mock/stats');
note("mock: $stats->{requests} requests, " . join(', ', map { "$_: $stats->{requests_by_status}{$_}" } sort keys %{ $stats->{requests_by_status} })
	  . ", $stats->{requests_dropped} dropped, $stats->{duplicates} duplicates");
cmp_ok($stats->{requests_by_status}{503} // 0, '>', 0, 'there were failures');
cmp_ok($stats->{requests_dropped}, '>', 0, 'and dropped connections');
check_log($node, 'test_key', @killed);
done_testing();
