# A backfill on a live table: an UPDATE committed while the backfill runs must
# never be overtaken by the backfill's older version of the same row, and a
# row the backfill has read waits for it (its change is ordered after).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;
use Time::HiRes qw(time);

my $mock = start_mock();
my $node = new_node('backfill', 'hyperline.enabled' => 'off');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 1000);
	CREATE TABLE t (id int PRIMARY KEY, v int);
	INSERT INTO t SELECT g, 1 FROM generate_series(1, 1000) g;
	-- a slow template, so that the backfill takes seconds
	SELECT hyperline.create_model('m', 't', 'id', \$\$ {"customer_id": "c", "event_type": "e",
	  "timestamp": 0, "record": {"id": "{{ row.id }}", "v": {{ row.v }},
	  "pad": "{% for i in (1..20000) %}{% endfor %}"}} \$\$);});
# As many rows as this machine renders in about 5 s.
my $t = time;
$node->safe_psql('postgres', "SELECT count(*) FROM hyperline.preview('m', 1000)");
my $rows = int(5 / ((time - $t) / 1000));
$rows = 2000 if $rows < 2000;
$rows = 200000 if $rows > 200000;
note("$rows rows");
$node->safe_psql('postgres', "INSERT INTO t SELECT g, 1 FROM generate_series(1001, $rows) g");

my $backfill = $node->background_psql('postgres');
my $t0 = time;
$backfill->query_until(qr/started/, "\\echo started\nSELECT hyperline.backfill('m');\n");
sleep 1;

# The last row, not read yet: its update does not wait, and the backfill,
# reaching it after the commit, must read the new version.
my $t1 = time;
$node->safe_psql('postgres', "UPDATE t SET v = 2 WHERE id = $rows");
my $waited = time - $t1;
# The first row, read already: its update waits for the backfill.
my ($rc, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '300ms'; UPDATE t SET v = 3 WHERE id = 1");
like($err, qr/lock timeout/, 'a row the backfill has read is locked until it commits');
$backfill->query_safe('SELECT 1');
my $took = time - $t0;
$backfill->quit;
cmp_ok($took, '>', 2, sprintf('the backfill took %.1f s (long enough to overlap the update)', $took));
cmp_ok($waited, '<', 1, 'the update of a row the backfill had not read did not wait');
$node->safe_psql('postgres', 'UPDATE t SET v = 3 WHERE id = 1');

$node->append_conf('postgresql.conf', "hyperline.enabled = on\n");
$node->reload;
wake($node);
wait_drained($node);
my %v = map { $_->{record}{id} => $_->{record}{v} } @{ mock_get($mock, "/_mock/events?record_id__in=1,$rows") };
is_deeply(\%v, { 1 => 3, $rows => 2 }, 'the newest committed version of each row is the one at Hyperline');
for my $id (1, $rows) {
	my @seen = map { $_->{event}{record}{v} } grep { !$_->{deleted} } @{ mock_get($mock, "/_mock/log?record_id=$id") };
	my @sorted = sort { $a <=> $b } @seen;
	is_deeply(\@seen, \@sorted, "row $id: no older version arrived after a newer one (@seen)");
}
is(scalar(@{ mock_get($mock, '/_mock/events') }), $rows, 'every row arrived');
check_log($node, 'test_key');
done_testing();
