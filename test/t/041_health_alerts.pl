# hyperline.health() and NOTIFY hyperline_alerts: a wrong key turns the
# destinations check critical and a LISTEN session receives exactly one
# notification; a restart of the delivery worker sends nothing again; fixing
# the key turns it ok with a second notification. A backlog older than
# hyperline.alert_backlog_age (delivery disabled) turns the backlog check
# warning, then critical, each announced once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = start_mock();
my $node = new_node('alerts', 'hyperline.retry_max_ms' => 600000);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 50);
	CREATE TABLE usage (id int PRIMARY KEY, customer text);
	SELECT hyperline.create_model('usage', 'usage', 'id', \$\$ {"customer_id": "{{ row.customer }}",
	  "event_type": "api_call", "timestamp": "2024-12-20T16:04:11Z",
	  "record": {"id": "{{ row.id }}"}} \$\$);});
$node->safe_psql('postgres', "INSERT INTO usage SELECT g, 'c' FROM generate_series(1, 20) g");
wait_drained($node, 'delivers with the right key');

sub statuses {
	return $node->safe_psql('postgres',
		"SELECT string_agg(check_name || '=' || status, ' ') FROM hyperline.health()");
}
ok( $node->poll_query_until('postgres',
		"SELECT bool_and(status = 'ok') FROM hyperline.health()"),
	'every check ok: ' . statuses());

# A session listening for alerts; each call of take_alerts returns the
# payloads (decoded) that arrived since the last.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN hyperline_alerts');
my @alerts;
sub take_alerts {
	my $out = $listener->query_safe('SELECT 1');
	my @new;
	while ($out =~ /Asynchronous notification "hyperline_alerts" with payload "(.*)" received from server process/g) {
		push @new, decode_json($1);
	}
	push @alerts, @new;
	return @new;
}
# Waits up to $timeout s for alerts; returns all received meanwhile.
sub wait_alerts {
	my ($n, $timeout) = @_;
	my @got;
	my $end = time + $timeout;
	while (time < $end) {
		push @got, take_alerts();
		last if @got >= $n;
		sleep 0.25;
	}
	return @got;
}

# 1. A wrong key: critical, one notification.
$node->safe_psql('postgres', "SELECT hyperline.alter_destination('hyperline', api_key => 'wrong_key_0815')");
$node->safe_psql('postgres', "INSERT INTO usage SELECT g, 'c' FROM generate_series(101, 120) g");
ok( $node->poll_query_until('postgres',
		"SELECT status = 'critical' FROM hyperline.health() WHERE check_name = 'destinations'"),
	'health(): destinations critical with a wrong key');
like($node->safe_psql('postgres', "SELECT detail FROM hyperline.health() WHERE check_name = 'destinations'"),
	qr/unauthorized: hyperline \(.*401/, 'the detail names the destination and the answer');
my @first = wait_alerts(1, 30);
is(scalar(@first), 1, 'one notification');
is($first[0]{check_name}, 'destinations', 'for the destinations check');
is($first[0]{status}, 'critical', 'status critical');
is($first[0]{previous_status}, 'ok', 'previous_status ok');
is($first[0]{database}, 'postgres', 'database');
like($first[0]{at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'at: ISO 8601 UTC');
like($first[0]{detail}, qr/unauthorized: hyperline/, 'detail');
unlike(join(' ', map { encode_json($_) } @first), qr/wrong_key_0815/, 'no key in the payload');

# 2. A restart of the worker: the new one finds the same statuses in shared
# memory and sends nothing again (it evaluates a second after it starts).
my $pid = worker_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_hyperline delivery worker' AND pid <> $pid"),
	'a new delivery worker');
# Longer than HealthMonitor::kInterval (10 s): at least one evaluation by the
# new worker, and a periodic one.
my @again = wait_alerts(1, 13);
is(scalar(@again), 0, 'no notification again after the restart, nor on later evaluations');

# 3. The key fixed: ok, a second notification.
$node->safe_psql('postgres', "SELECT hyperline.alter_destination('hyperline', api_key => 'test_key')");
wait_drained($node, 'the waiting events are delivered with the new key');
my @second = wait_alerts(1, 30);
is(scalar(@second), 1, 'a second notification');
is($second[0]{check_name} . '/' . $second[0]{status} . '/' . $second[0]{previous_status},
	'destinations/ok/critical', 'destinations ok again');
is($node->safe_psql('postgres', "SELECT status FROM hyperline.health() WHERE check_name = 'destinations'"),
	'ok', 'health(): destinations ok');
is(scalar(@alerts), 2, 'two notifications in all');
my $log = slurp_file($node->logfile);
like($log, qr/pg_hyperline: health check destinations is critical \(was ok\)/, 'the change is logged');

# 4. A backlog older than hyperline.alert_backlog_age, delivery disabled.
$node->append_conf('postgresql.conf', "hyperline.enabled = off\nhyperline.alert_backlog_age = '2s'\n");
$node->reload;
ok( $node->poll_query_until('postgres',
		"SELECT status = 'warning' FROM hyperline.health() WHERE check_name = 'worker'"),
	'the worker check warns while delivery is off');
$node->safe_psql('postgres', "INSERT INTO usage SELECT g, 'c' FROM generate_series(201, 210) g");
ok( $node->poll_query_until('postgres',
		"SELECT status = 'warning' FROM hyperline.health() WHERE check_name = 'backlog'"),
	'backlog warning: older than alert_backlog_age');
ok( $node->poll_query_until('postgres',
		"SELECT status = 'critical' FROM hyperline.health() WHERE check_name = 'backlog'"),
	'backlog critical: older than twice that');
like($node->safe_psql('postgres', "SELECT detail FROM hyperline.health() WHERE check_name = 'backlog'"),
	qr/the oldest pending event waits since .*hyperline.alert_backlog_age is 00:00:02/, 'the detail says so');
my @backlog;
my $end = time + 30;
while (time < $end && !grep { $_->{check_name} eq 'backlog' && $_->{status} eq 'critical' } @backlog) {
	push @backlog, take_alerts();
	sleep 0.25;
}
my @about_backlog = grep { $_->{check_name} eq 'backlog' } @backlog;
ok(scalar(grep { $_->{status} eq 'critical' } @about_backlog), 'a backlog notification: critical');
ok(scalar(@about_backlog) <= 2, 'at most warning then critical (' . scalar(@about_backlog) . ')');
ok(scalar(grep { $_->{check_name} eq 'worker' && $_->{status} eq 'warning' } @backlog),
	'and one for the worker check (delivery off)');

# Delivery back on: everything ok, announced.
$node->append_conf('postgresql.conf', "hyperline.enabled = on\n");
$node->reload;
wait_drained($node, 'delivered once enabled');
ok( $node->poll_query_until('postgres',
		"SELECT bool_and(status = 'ok') FROM hyperline.health()"),
	'every check ok again');
$end = time + 30;
my @recovered;
while (time < $end && !grep { $_->{check_name} eq 'backlog' && $_->{status} eq 'ok' } @recovered) {
	push @recovered, take_alerts();
	sleep 0.25;
}
ok(scalar(grep { $_->{check_name} eq 'backlog' && $_->{status} eq 'ok' } @recovered), 'backlog ok announced');

$listener->quit;
check_log($node, 'wrong_key_0815');
$node->stop;
done_testing();
