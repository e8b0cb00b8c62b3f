# Large events: request bodies stay under hyperline.max_request_bytes, an
# event larger than that fails alone without being sent, a batch answered 413
# is split and its halves retried (one event too large for the server fails
# with the answer, its neighbours are delivered), retry() does not rebuild a
# failing batch, and the worker's memory stays bounded however large the
# backlog (claims read a bounded number of payload bytes, compressed or not).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

# A server that takes bodies of at most 800 kB; the worker's cap is 1 MB.
my $mock = start_mock('--max-body-bytes', '800000');
my $node = new_node('large',
	'hyperline.max_request_bytes' => "'1MB'",
	'hyperline.enabled' => 'off');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', '$mock->{url}', batch_size => 100);});

sub q1 { $node->safe_psql('postgres', shift) }

# $n events of about $kb kB: incompressible (md5 digits) unless $plain.
sub insert_large {
	my ($prefix, $n, $kb, $plain) = @_;
	my $pad = $plain
	  ? "repeat('a', $kb * 1000)"
	  : "(SELECT string_agg(md5(i::text || '-' || j::text), '') FROM generate_series(1, $kb * 1000 / 32) j)";
	q1(qq{
		INSERT INTO hyperline.outbox (model, event_key, operation, payload, destination)
		SELECT 'm', '$prefix' || i, 'insert',
		       jsonb_build_object('customer_id', 'cus_1', 'event_type', 'blob',
		                          'timestamp', '2024-12-20T16:04:11Z',
		                          'record', jsonb_build_object('id', '$prefix' || i, 'pad', $pad)),
		       'hyperline'
		FROM generate_series(1, $n) i;});
}

insert_large('big', 100, 300, 0);       # 3 fit under 1 MB, 2 under the server's 800 kB
insert_large('zip', 30, 500, 1);        # ~6 kB each as stored, 500 kB once read
insert_large('huge', 1, 1500, 0);       # over hyperline.max_request_bytes
insert_large('toobig', 1, 900, 0);     # under the worker's cap, over the server's
cmp_ok(q1("SELECT sum(octet_length(payload::text)) FROM hyperline.outbox"), '>', 45_000_000,
	'a backlog of more than 45 MB of events');
cmp_ok(q1("SELECT sum(pg_column_size(payload)) FROM hyperline.outbox WHERE event_key LIKE 'zip%'"),
	'<', 1_000_000, 'the compressible ones are small as stored');

# The worker's private memory (RssAnon), sampled during the drain.
my $pid = worker_pid($node);
sub rss_anon_kb {
	open(my $fh, '<', "/proc/$pid/status") or return 0;
	while (<$fh>) { return $1 if /^RssAnon:\s+(\d+) kB/; }
	return 0;
}
my $before = rss_anon_kb();
$node->append_conf('postgresql.conf', "hyperline.enabled = on\n");
$node->reload;
my $peak = $before;
my $drained = 0;
for (1 .. 6000) {    # up to 2 minutes
	for (1 .. 5) {
		my $kb = rss_anon_kb();
		$peak = $kb if $kb > $peak;
		usleep(20_000);
	}
	$drained = q1("SELECT count(*) = 0 FROM hyperline.outbox WHERE status IN ('pending', 'sending')") eq 't';
	last if $drained;
}
ok($drained, 'the backlog drained');
is(worker_pid($node), $pid, 'the same worker did all of it');
my $growth_mb = ($peak - $before) / 1024;
note(sprintf('worker RssAnon: %.1f MB before, peak %.1f MB', $before / 1024, $peak / 1024));
cmp_ok($growth_mb, '<', 32,
	sprintf('the worker held a bounded share of the 47 MB backlog (RssAnon grew %.1f MB)', $growth_mb));

# Everything but the two events that cannot be taken arrived.
is_deeply(outbox_counts($node), { delivered => 130, failed => 2 }, '130 delivered, 2 failed');
is(mock_get($mock, '/_mock/stats')->{events_unique}, 130, 'all 130 at the mock');
my $stats = mock_get($mock, '/_mock/stats');
cmp_ok($stats->{requests_by_status}{413} // 0, '>', 0,
	'batches over the server limit were answered 413 and split');

# The event over hyperline.max_request_bytes failed alone, unsent.
like(q1("SELECT status || '/' || attempts || '/' || coalesce(http_status::text, '-') || ' ' || last_error FROM hyperline.outbox WHERE event_key = 'huge1'"),
	qr{^failed/0/- the event is \d+ bytes, more than hyperline\.max_request_bytes \(1048576 bytes\): not sent$},
	'an event over the cap fails alone with a clear error');
is(scalar(@{ mock_get($mock, '/_mock/log?record_id=huge1') }), 0, 'and is never sent');

# The event the server refuses fails with the server's answer.
like(q1("SELECT status || '/' || http_status || ' ' || last_error FROM hyperline.outbox WHERE event_key = 'toobig1'"),
	qr{^failed/413 HTTP 413: .*Request body too large}, 'an event the server finds too large fails with its answer');
cmp_ok(q1("SELECT min(attempts) FROM hyperline.outbox WHERE event_key LIKE 'big%'"), '>=', 1,
	'attempts count the requests that carried an event');

# retry(): the failed events go alone, not in a rebuilt batch that fails again.
mock_post($mock, '/_mock/reset');
is(q1('SELECT hyperline.retry()'), '2', 'retry() puts the two failed events back');
wait_drained($node);
is_deeply(outbox_counts($node), { delivered => 130, failed => 2 }, 'after retry(): the same two failed');
$stats = mock_get($mock, '/_mock/stats');
is_deeply($stats->{requests_by_status}, { 413 => 1 }, 'one request: the refused event alone');

check_log($node, 'test_key');
$node->stop;
done_testing();
