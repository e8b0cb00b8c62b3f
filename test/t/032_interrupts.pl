# Rendering inside a user's write obeys cancel, statement_timeout and
# terminate: the events of a bulk statement are rendered by our row trigger at
# the end of the statement, in a loop Postgres does not interrupt by itself.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use HyperlineTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = new_node('interrupts', 'hyperline.enabled' => 'off');
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_hyperline;
	SELECT hyperline.create_destination('hyperline', 'test_key', 'http://127.0.0.1:9');
	CREATE TABLE heavy (id int PRIMARY KEY);
	SELECT hyperline.create_model('heavy', 'heavy', 'id', $$ {"customer_id": "c", "event_type": "e",
	  "timestamp": 0, "record": {"id": "{{ row.id }}", "pad": "{% for i in (1..2000) %}{% endfor %}"}} $$);});

# How long one row takes, to size the statement well past the timeout.
my $t0 = time;
$node->safe_psql('postgres', 'INSERT INTO heavy SELECT g FROM generate_series(1, 1000) g');
my $per_row = (time - $t0) / 1000;
my $n = int(20 / $per_row);    # about 20 s of rendering
note(sprintf('%.0f us per row; inserting %d rows', $per_row * 1e6, $n));

# statement_timeout fires within a few rows of its time.
$t0 = time;
my ($rc, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '1s'; INSERT INTO heavy SELECT g FROM generate_series(1001, 1000 + $n) g");
my $elapsed = time - $t0;
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cancels the insert');
cmp_ok($elapsed, '<', 1.5, sprintf('... %.2f s after it began (timeout 1 s)', $elapsed));

# pg_terminate_backend ends the session within a moment.
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_until(qr/go/, "\\echo go\nINSERT INTO heavy SELECT g FROM generate_series(1000001, 1000000 + $n) g;\n");
sleep 1;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$t0 = time;
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
  or die 'the backend did not exit';
cmp_ok(time - $t0, '<', 1, sprintf('a terminated session exits within %.2f s', time - $t0));
eval { $session->quit };

# One row whose single render takes seconds: the render itself checks for
# interrupts as it goes.
my $filters = join(' | ', ('plus: 1') x 40);    # about 1.5 s for the loop below
$node->safe_psql('postgres', qq{
	CREATE TABLE one (id int PRIMARY KEY);
	SELECT hyperline.create_model('one', 'one', 'id', \$\$ {"customer_id": "c", "event_type": "e",
	  "timestamp": 0, "record": {"id": "{{ row.id }}",
	  "pad": "{% for i in (1..900000) %}{% assign x = i | $filters %}{% endfor %}"}} \$\$);});
$t0 = time;
($rc, $out, $err) = $node->psql('postgres', "SET statement_timeout = '300ms'; INSERT INTO one VALUES (1)");
$elapsed = time - $t0;
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cancels one long render');
cmp_ok($elapsed, '<', 0.8, sprintf('... %.2f s after it began (timeout 0.3 s)', $elapsed));
is($node->safe_psql('postgres', 'SELECT count(*) FROM one'), '0', 'the row is not written');

is($node->safe_psql('postgres', 'SELECT count(*) FROM heavy'), '1000', 'nothing of the cancelled statements stays');
is($node->safe_psql('postgres', 'SELECT count(*) FROM hyperline.outbox'), '1000', 'nor any of their events');
check_log($node, undef, $pid);
done_testing();
