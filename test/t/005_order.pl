# Per-key order: 40 rapid updates of one key, each its own transaction, under
# injected failures, end with the mock holding the last value, and the mock's
# log never shows an older version arriving after a newer one.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;

my $mock = start_mock('--fail-rate', '0.4', '--fail-status', '503', '--delay-ms', '5', '--seed', '7');
my $node = new_node('order', 'hyperline.max_attempts' => 50, 'hyperline.retry_max_ms' => 200);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 1);
	CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL);
	SELECT hyperline.create_model('counter', 'counter', 'id',
	  '{"customer_id": "cus_1", "event_type": "counter", "timestamp": "2024-12-20T16:04:11Z",
	    "record": {"id": "c{{ row.id }}", "v": {{ row.v }}}}');
	INSERT INTO counter VALUES (1, 0), (2, 0);});

# 40 updates of key 1 (and of key 2, interleaved), each committed on its own.
# A short pause between updates so that many versions are sent (not all superseded).
my $sql = join('',
	map { "UPDATE counter SET v = $_ WHERE id = 1;\nUPDATE counter SET v = $_ WHERE id = 2;\nSELECT pg_sleep(0.01);\n" } 1 .. 40);
$node->safe_psql('postgres', $sql);
wait_drained($node);

for my $key (qw(c1 c2)) {
	my $events = mock_get($mock, "/_mock/events?record_id__in=$key");
	is($events->[0]{record}{v}, 40, "$key: the mock holds the last value");
	my $log = mock_get($mock, "/_mock/log?record_id=$key");
	my ($max, $regressions) = (-1, 0);
	for my $entry (@$log) {
		my $v = $entry->{event}{record}{v};
		$regressions++ if $v < $max;
		$max = $v if $v > $max;
	}
	is($regressions, 0, "$key: no older version after a newer one (" . scalar(@$log) . ' receipts)');
	cmp_ok(scalar(@$log), '>=', 5, "$key: several versions were delivered");
}
is($node->safe_psql('postgres', "SELECT count(*) FROM hyperline.outbox WHERE status = 'failed'"),
	'0', 'nothing failed');
is( $node->safe_psql('postgres',
		"SELECT payload->'record'->>'v' FROM hyperline.outbox WHERE status = 'delivered' AND event_key = '1' ORDER BY id DESC LIMIT 1"),
	'40',
	'the newest row was delivered');
my $superseded = $node->safe_psql('postgres', "SELECT count(*) FROM hyperline.outbox WHERE status = 'superseded'");
note("superseded rows: $superseded");
cmp_ok(mock_get($mock, '/_mock/stats')->{requests_by_status}{503} // 0, '>', 0, 'failures were injected');

check_log($node, 'test_key');
$node->stop;
done_testing();
