# docs/monitoring.md's recipe, run: prometheus-postgres-exporter (Debian's,
# installed by scripts/setup.sh) with contrib/prometheus/queries.yaml, as the
# role the doc recommends (pg_monitor + hyperline.admin_role), against a test
# cluster on a free loopback port; /metrics has hyperline.stats and
# hyperline.health() with the values SQL shows, models of other roles
# included, and every metric the alert rules use.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use HTTP::Tiny;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my ($exporter) = grep { -x $_ } map { "$_/prometheus-postgres-exporter" } split(/:/, $ENV{PATH}),
  '/usr/bin';
plan skip_all => 'prometheus-postgres-exporter is not installed (scripts/setup.sh installs it)'
  unless $exporter;
my $contrib = "$FindBin::RealBin/../../contrib/prometheus";

my $mock = start_mock('--seed', '3');
my $node = new_node('prometheus', 'hyperline.admin_role' => "'hyperline_admins'");
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 10);
	SELECT hyperline.create_destination('restored', 'some_key', '$mock->{url}');
	DELETE FROM _hyperline.api_keys WHERE destination = 'restored';
	CREATE TABLE usage (id int PRIMARY KEY, customer text);
	SELECT hyperline.create_model('usage', 'usage', 'id', \$\$ {"customer_id": "{{ row.customer }}",
	  "event_type": "api_call", "timestamp": "2024-12-20T16:04:11Z",
	  "record": {"id": "{{ row.id }}"}} \$\$);
	-- a model of another role: the exporter must see it too
	CREATE ROLE app LOGIN;
	GRANT CREATE, USAGE ON SCHEMA public TO app;
	SELECT hyperline.grant_destination('hyperline', 'app');
	SET ROLE app;
	CREATE TABLE app_usage (id int PRIMARY KEY);
	SELECT hyperline.create_model('app_usage', 'app_usage', 'id', \$\$ {"customer_id": "c",
	  "event_type": "api_call", "timestamp": "2024-12-20T16:04:11Z", "record": {"id": "{{ row.id }}"}} \$\$);
	RESET ROLE;
	-- the exporter's role, as docs/monitoring.md says
	CREATE ROLE hyperline_admins NOLOGIN;
	CREATE ROLE prometheus LOGIN IN ROLE pg_monitor, hyperline_admins;});
mock_post($mock, '/_mock/config', { fail_rate => 0.2, fail_status => 500 });
$node->safe_psql('postgres', "INSERT INTO usage SELECT g, 'c' || g % 3 FROM generate_series(1, 100) g");
$node->safe_psql('postgres', 'INSERT INTO app_usage SELECT g FROM generate_series(1, 30) g');
wait_drained($node, 'delivered (through some 500s)');
mock_post($mock, '/_mock/config', { fail_rate => 0 });
ok( $node->poll_query_until('postgres',
		"SELECT events_delivered = 130 FROM hyperline.stats WHERE kind = 'destination' AND name = 'hyperline'"),
	'counted');
ok( $node->poll_query_until('postgres',
		"SELECT status = 'critical' FROM hyperline.health() WHERE check_name = 'destinations'"),
	'a destination without its key: critical');
# What the exporter's role sees, in SQL.
my %sql = map { my ($k, $v) = split /=/; ($k => $v) } split /\n/, $node->safe_psql('postgres', q{
	SET ROLE prometheus;
	SELECT 'requests=' || requests FROM hyperline.stats WHERE kind = 'destination' AND name = 'hyperline';
	SELECT '2xx=' || responses_2xx FROM hyperline.stats WHERE kind = 'destination' AND name = 'hyperline';
	SELECT '5xx=' || responses_5xx FROM hyperline.stats WHERE kind = 'destination' AND name = 'hyperline';
	SELECT 'models=' || count(*) FROM hyperline.stats WHERE kind = 'model';});
is($sql{models}, 2, 'the exporter role sees both models in SQL');
cmp_ok($sql{'5xx'}, '>', 0, "some 500s ($sql{'5xx'})");

# Start the exporter on a free loopback port.
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = sprintf('host=%s port=%d user=prometheus dbname=postgres sslmode=disable', $node->host, $node->port);
my $log = "$PostgreSQL::Test::Utils::tmp_check/exporter_$$.log";
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
	open(STDOUT, '>', $log);
	open(STDERR, '>&', \*STDOUT);
	$ENV{DATA_SOURCE_NAME} = $dsn;
	{ exec($exporter, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$contrib/queries.yaml",
		'--disable-settings-metrics', '--log.level=warn') };
	POSIX::_exit(127);  # exec failed
}
my $http = HTTP::Tiny->new(timeout => 10);
my $metrics = '';
my $end = time + 60;
while (time < $end) {
	my $r = $http->get("http://127.0.0.1:$port/metrics");
	if ($r->{success} && $r->{content} =~ /^hyperline_health_status\{/m) {
		$metrics = $r->{content};
		last;
	}
	sleep 0.5;
}
ok($metrics ne '', "scraped http://127.0.0.1:$port/metrics") or diag(slurp_file($log));

# The value of metric $name with (at least) these labels; undef if none.
sub metric {
	my ($name, %labels) = @_;
	for my $line (split /\n/, $metrics) {
		next unless $line =~ /^\Q$name\E\{([^}]*)\} (\S+)$/;
		my ($set, $value) = ($1, $2);
		my %have = $set =~ /(\w+)="([^"]*)"/g;
		next if grep { ($have{$_} // '') ne $labels{$_} } keys %labels;
		return $value;
	}
	return undef;
}

my %d = (database => 'postgres', destination => 'hyperline');
is(metric('hyperline_destination_events_delivered', %d), 130, 'hyperline_destination_events_delivered');
is(metric('hyperline_destination_events_enqueued', %d), 130, 'hyperline_destination_events_enqueued');
is(metric('hyperline_destination_requests', %d), $sql{requests}, "hyperline_destination_requests ($sql{requests})");
is(metric('hyperline_destination_http_responses', %d, code => '2xx'), $sql{'2xx'}, 'responses{code="2xx"}');
is(metric('hyperline_destination_http_responses', %d, code => '5xx'), $sql{'5xx'}, 'responses{code="5xx"}');
is(metric('hyperline_destination_http_responses', %d, code => '429'), 0, 'responses{code="429"}');
is(metric('hyperline_destination_retries', %d), $node->safe_psql('postgres',
	"SELECT retries FROM hyperline.stats WHERE kind = 'destination' AND name = 'hyperline'"), 'retries');
my $p50 = metric('hyperline_destination_latency_seconds', %d, quantile => '0.5');
my $p99 = metric('hyperline_destination_latency_seconds', %d, quantile => '0.99');
ok(defined $p50 && defined $p99 && $p50 > 0 && $p50 <= $p99, 'latency quantiles in seconds: ' . ($p50 // 'none') . ' <= ' . ($p99 // 'none'));
cmp_ok(metric('hyperline_destination_last_success_timestamp_seconds', %d), '>', 1.7e9, 'last success, Unix time');
is(metric('hyperline_model_events_delivered', database => 'postgres', model => 'usage'), 100, 'model usage');
is(metric('hyperline_model_events_delivered', database => 'postgres', model => 'app_usage'), 30,
	'model app_usage of another role');
is(metric('hyperline_health_status', database => 'postgres', check => 'worker'), 0, 'health worker: 0 (ok)');
is(metric('hyperline_health_status', database => 'postgres', check => 'destinations'), 2, 'health destinations: 2 (critical)');
is(metric('hyperline_health_status', database => 'postgres', check => 'backlog'), 0, 'health backlog: 0');
is(metric('hyperline_health_status', database => 'postgres', check => $_), 0, "health $_: 0")
  for qw(failed_events query_models);

# Every metric the alert rules use is exported.
my $rules = slurp_file("$contrib/alerts.yml");
my @used = $rules =~ /expr:.*?\b(hyperline_\w+)/g;
is(scalar(@used), 4, 'the rules use four expressions');
for my $m (@used) {
	like($metrics, qr/^\Q$m\E\{/m, "alert rule metric $m is exported");
}
like($rules, qr/alert: HyperlineWorkerDown/, 'rule: worker down');
like($rules, qr/alert: HyperlineBacklogTooOld/, 'rule: backlog too old');
like($rules, qr/alert: HyperlineDestinationUnauthorized/, 'rule: destination unauthorized');
unlike(slurp_file($log), qr/level=error/, 'the exporter logged no error');

kill 'TERM', $pid;
waitpid($pid, 0);
ok(!$http->get("http://127.0.0.1:$port/metrics")->{success}, 'the exporter is stopped');
check_log($node, 'test_key');
$node->stop;
done_testing();
