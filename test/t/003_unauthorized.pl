# A wrong key fails nothing: the destination shows unauthorized, the rows wait
# without counting attempts, and a key fixed with alter_destination delivers
# everything at once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
# retry_max_ms is long: only the key change can make delivery happen soon.
my $node = new_node('unauthorized', 'hyperline.retry_max_ms' => 600000);
my $wrong = 'wrong_key_4711';
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', '$wrong', '$mock->{url}', batch_size => 50);});

insert_events($node, 200);
ok( $node->poll_query_until('postgres',
		"SELECT state = 'unauthorized' FROM hyperline.destinations WHERE name = 'hyperline'"),
	'destination marked unauthorized');
like($node->safe_psql('postgres', "SELECT last_error FROM hyperline.destinations"),
	qr/401/, 'destination last_error says 401');
is($node->safe_psql('postgres', "SELECT count(*) FROM hyperline.outbox WHERE status = 'failed'"),
	'0', 'nothing failed');
is($node->safe_psql('postgres', "SELECT max(attempts) FROM hyperline.outbox"),
	'0', '401 does not count as an attempt');
# (That the destination is not hammered — its first batches only, then one
# probe every retry_max_ms — is DeliveryEngine.UnauthorizedWaitsForANewKey...
# and ...IsProbedEveryRetryMax, in fake time.)
is($node->safe_psql('postgres', "SELECT count(*) FROM hyperline.outbox WHERE status = 'pending'"),
	'200', 'all rows wait');

$node->safe_psql('postgres', "SELECT hyperline.alter_destination('hyperline', api_key => 'test_key')");
wait_drained($node, 'delivered after the key was fixed');
is(mock_get($mock, '/_mock/stats')->{events_unique}, 200, 'every event at the mock');
is_deeply(outbox_counts($node), { delivered => 200 }, 'all delivered, none failed');
is($node->safe_psql('postgres', "SELECT state || '/' || coalesce(last_error, '') FROM hyperline.destinations"),
	'active/', 'destination active again');
is($node->safe_psql('postgres', "SELECT max(attempts) FROM hyperline.outbox"), '1',
	'one counted attempt per row');

check_log($node, $wrong);
unlike(slurp_file($node->logfile), qr/test_key/, 'the new key is not in the log either');
$node->stop;
done_testing();
