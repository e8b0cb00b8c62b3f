#!/usr/bin/env bash
# The Debian packages and META.json, built and tested as a user would use them
# (run as root; scripts/test.sh calls it, so CI does):
#   1. META.json checked against PGXN's Meta spec v1 rules and against
#      pg_hyperline.control and debian/changelog (same version);
#   2. the build-dependencies of debian/control installed (apt-get build-dep),
#      then `dpkg-buildpackage -us -uc -b` in a copy of the tree (its build-time
#      check runs the pg_regress suite against the built files);
#   3. the .debs' contents printed and checked (library, control file, every
#      sql/pg_hyperline--*.sql; no headers, no LLVM bitcode);
#   4. the files of an earlier `make install` removed, the .debs installed with
#      apt-get, and every pg_hyperline file in PostgreSQL's directories checked
#      to come from the package;
#   5. the pg_regress suite against the installed package (debian/tests/
#      installcheck: a throwaway pg_virtualenv cluster, library preloaded, no
#      `make install`), then the installed library delivering rows to the
#      installed hyperline-mock.
# The packages stay installed: they hold the files `make install` installs
# (without the internal headers), and a later `make install` overwrites them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PGV=15
export PATH=/usr/lib/postgresql/$PGV/bin:$PATH
export DEBIAN_FRONTEND=noninteractive
section() { printf '\n=== %s ===\n' "$*"; }
fail() { echo "package-test: $*" >&2; exit 1; }
VERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" pg_hyperline.control)
PKG=postgresql-$PGV-hyperline

section "package: META.json (PGXN Meta spec v1)"
perl - META.json "$VERSION" "$(dpkg-parsechangelog -S Version)" <<'PERL'
use strict; use warnings; use JSON::PP;
my ($file, $control_version, $deb_version) = @ARGV;
open my $fh, '<:raw', $file or die "$file: $!\n";
my $m = eval { JSON::PP->new->utf8->decode(do { local $/; <$fh> }) }
  or die "$file is not valid JSON: $@";
my @err;
my $semver = qr/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
my $term = qr{^[^/\\\s[:cntrl:]]{2,}$};
my $uri = qr{^[a-z][a-z0-9+.-]*://\S+$}i;
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2
  bsd freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0
  mozilla_1_1 openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source
  restricted unrestricted unknown);
sub str { defined $_[0] && !ref $_[0] && length $_[0] }
sub keys_ok {   # only the spec's keys, or custom x_ keys
  my ($where, $h, @allowed) = @_;
  my %ok = map { $_ => 1 } @_[2 .. $#_];
  push @err, "$where: unknown key '$_'" for grep { !$ok{$_} && !/^x_./i } sort keys %$h;
}
ref $m eq 'HASH' or die "$file: not an object\n";
for (qw(name version abstract maintainer license provides meta-spec)) {
  push @err, "missing required key '$_'" unless exists $m->{$_};
}
keys_ok('top level', $m, qw(name version abstract maintainer license provides meta-spec
  description generated_by tags no_index prereqs release_status resources));
push @err, "name must be a term" unless str($m->{name}) && $m->{name} =~ $term;
push @err, "version must be a SemVer" unless str($m->{version}) && $m->{version} =~ $semver;
push @err, "abstract must be a non-empty string" unless str($m->{abstract});
push @err, "description must be a non-empty string"
  if exists $m->{description} && !str($m->{description});
my $mt = $m->{maintainer};
push @err, "maintainer must be a string or a list of strings"
  unless str($mt) || (ref $mt eq 'ARRAY' && @$mt && !grep { !str($_) } @$mt);
my $lic = $m->{license};
push @err, "license must be one of the spec's names, a list of them, or {name: uri}"
  unless (str($lic) && $licenses{$lic})
      || (ref $lic eq 'ARRAY' && @$lic && !grep { !str($_) || !$licenses{$_} } @$lic)
      || (ref $lic eq 'HASH' && %$lic && !grep { !str($_) || !/$uri/ } values %$lic);
my $spec = $m->{'meta-spec'};
push @err, "meta-spec.version must be 1.0.x"
  unless ref $spec eq 'HASH' && str($spec->{version}) && $spec->{version} =~ /^1\.0\.\d+$/;
keys_ok('meta-spec', $spec, qw(version url)) if ref $spec eq 'HASH';
if (ref $m->{provides} eq 'HASH' && %{$m->{provides}}) {
  while (my ($ext, $p) = each %{$m->{provides}}) {
    push @err, "provides: '$ext' is not a term" unless $ext =~ $term;
    if (ref $p ne 'HASH') { push @err, "provides.$ext must be an object"; next }
    keys_ok("provides.$ext", $p, qw(file version abstract docfile docpath));
    push @err, "provides.$ext.version must be a SemVer"
      unless str($p->{version}) && $p->{version} =~ $semver;
    for my $k (qw(file docfile)) {
      next if $k eq 'docfile' && !exists $p->{$k};
      push @err, "provides.$ext.$k must be a relative path to a file of the tree"
        unless str($p->{$k}) && $p->{$k} !~ m{^/} && -f $p->{$k};
    }
  }
} else { push @err, "provides must be a non-empty object" }
if (exists $m->{prereqs}) {
  my $range = qr/^(?:0|(?:(?:[=!]=|[<>]=?)\s*)?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?
                   (?:,\s*(?:(?:[=!]=|[<>]=?)\s*)?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)*)$/x;
  my %phases = map { $_ => 1 } qw(configure build test runtime develop);
  my %rels = map { $_ => 1 } qw(requires recommends suggests conflicts);
  while (my ($ph, $rel) = each %{$m->{prereqs}}) {
    if (!$phases{$ph} && $ph !~ /^x_./i) { push @err, "prereqs: unknown phase '$ph'"; next }
    while (my ($r, $deps) = each %$rel) {
      if (!$rels{$r} && $r !~ /^x_./i) { push @err, "prereqs.$ph: unknown relationship '$r'"; next }
      while (my ($name, $v) = each %$deps) {
        push @err, "prereqs.$ph.$r.$name: '$v' is not a version range"
          unless defined $v && "$v" =~ $range;
      }
    }
  }
}
if (exists $m->{resources}) {
  my $r = $m->{resources};
  keys_ok('resources', $r, qw(homepage bugtracker repository));
  push @err, "resources.homepage must be a URI"
    if exists $r->{homepage} && !(str($r->{homepage}) && $r->{homepage} =~ $uri);
  if (my $b = $r->{bugtracker}) {
    keys_ok('resources.bugtracker', $b, qw(web mailto));
    push @err, "resources.bugtracker.web must be a URI" if exists $b->{web} && $b->{web} !~ $uri;
  }
  if (my $repo = $r->{repository}) {
    keys_ok('resources.repository', $repo, qw(url web type));
    push @err, "resources.repository needs url and type, or web"
      unless ($repo->{url} && $repo->{type}) || $repo->{web};
    push @err, "resources.repository.type must be lowercase"
      if exists $repo->{type} && $repo->{type} !~ /^[a-z]+$/;
  }
}
push @err, "release_status must be stable, testing or unstable"
  if exists $m->{release_status} && $m->{release_status} !~ /^(stable|testing|unstable)$/;
# This distribution: one extension, at the control file's default_version.
my $p = $m->{provides}{pg_hyperline};
push @err, "META.json version $m->{version} != control default_version $control_version"
  unless ($m->{version} // '') eq $control_version;
push @err, "provides.pg_hyperline must be at $control_version in sql/pg_hyperline--$control_version.sql"
  unless $p && ($p->{version} // '') eq $control_version
      && ($p->{file} // '') eq "sql/pg_hyperline--$control_version.sql";
push @err, "debian/changelog version $deb_version is not $control_version-<revision>"
  unless $deb_version =~ /^\Q$control_version\E-[^-]+$/;
die map { "META.json: $_\n" } @err if @err;
print "META.json: valid (pg_hyperline $m->{version}, license $lic; debian $deb_version)\n";
PERL

W=$(mktemp -d /tmp/pg_hyperline_pkg.XXXXXX)
chmod 755 "$W"   # the build-time check's server (user postgres) reads debian/<package>
SRC=$W/pg-hyperline-$VERSION
mkdir "$SRC"
rsync -a --filter=':- .gitignore' --exclude=/.git "$ROOT"/ "$SRC"/

section "package: build-dependencies"
if ! (cd "$SRC" && dpkg-checkbuilddeps 2>/dev/null); then
  apt-get update -qq
  (cd "$SRC" && apt-get build-dep -y -qq ./ >/dev/null)
fi
(cd "$SRC" && dpkg-checkbuilddeps && echo "Build-Depends of debian/control satisfied")

section "package: dpkg-buildpackage -us -uc -b"
start=$SECONDS
if ! (cd "$SRC" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
     >"$W/build.log" 2>&1; then
  tail -n 200 "$W/build.log"
  fail "dpkg-buildpackage failed (tree kept in $W)"
fi
echo "--- build-time pg_regress run (against debian/$PKG) ---"
grep -E '^(test |ok |not ok |#* *All [0-9]+ tests passed| *[0-9]+ of [0-9]+ tests failed)' "$W/build.log" || true
echo "--- dpkg-buildpackage output (tail) ---"
tail -n 25 "$W/build.log"
echo "built in $((SECONDS - start)) s"

section "package: contents"
deb=$(ls "$W"/${PKG}_"$VERSION"-*_*.deb)
mockdeb=$(ls "$W"/hyperline-mock_"$VERSION"-*_*.deb)
for d in "$deb" "$mockdeb"; do
  echo "--- dpkg -c $(basename "$d") ---"
  dpkg -c "$d"
done
files=$(dpkg -c "$deb" | awk '{print $6}')
want=(./usr/lib/postgresql/$PGV/lib/pg_hyperline.so ./usr/share/postgresql/$PGV/extension/pg_hyperline.control)
for s in sql/pg_hyperline--*.sql; do want+=(./usr/share/postgresql/$PGV/extension/$(basename "$s")); done
for f in "${want[@]}"; do
  grep -qxF "$f" <<<"$files" || fail "$(basename "$deb") lacks $f"
done
if grep -E '/include/|\.(h|hpp|bc)$|/bitcode/' <<<"$files"; then
  fail "$(basename "$deb") ships headers or LLVM bitcode (above)"
fi
dpkg -c "$mockdeb" | awk '{print $6}' | grep -qxF ./usr/bin/hyperline-mock \
  || fail "$(basename "$mockdeb") lacks /usr/bin/hyperline-mock"
echo "contents as expected: pg_hyperline.so, pg_hyperline.control, $((${#want[@]} - 2)) SQL scripts; no headers, no bitcode"

section "package: install"
for p in "$PKG" hyperline-mock; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    dpkg --purge "$p" >/dev/null
  fi
done
# Remove what an earlier `make install` left (of this or another version), so
# that only packaged files remain.
make -C "$SRC" -s uninstall USE_PGXS=1 >/dev/null
for f in /usr/lib/postgresql/$PGV/lib/pg_hyperline* /usr/share/postgresql/$PGV/extension/pg_hyperline* \
         /usr/include/postgresql/$PGV/server/extension/pg_hyperline/*; do
  if [ -e "$f" ]; then echo "removing $f (left by a make install)"; rm -rf "$f"; fi
done
rmdir /usr/include/postgresql/$PGV/server/extension/pg_hyperline 2>/dev/null || true
apt-get install -y -qq "$deb" "$mockdeb" >/dev/null
dpkg-query -W "$PKG" hyperline-mock
dpkg --verify "$PKG" hyperline-mock || fail "installed files differ from the packages"
stray=()
for f in /usr/lib/postgresql/$PGV/lib/pg_hyperline* /usr/share/postgresql/$PGV/extension/pg_hyperline* \
         /usr/include/postgresql/$PGV/server/extension/pg_hyperline/*; do
  [ -e "$f" ] || continue
  dpkg -S "$f" >/dev/null 2>&1 || stray+=("$f")
done
[ ${#stray[@]} -eq 0 ] || fail "files no package owns: ${stray[*]}"
echo "every pg_hyperline file under PostgreSQL $PGV's directories comes from $PKG"

section "package: pg_regress against the installed package"
(cd "$SRC" && debian/tests/installcheck)

section "package: installed library delivers to the installed hyperline-mock"
cat >"$W/deliver.sh" <<'SH'
# Run inside pg_virtualenv (PGHOST, PGPORT, PGUSER set); $W and $VERSION exported.
set -euo pipefail
hyperline-mock --port 0 --port-file "$W/mock.port" --api-key sk_pkg_test --quiet >"$W/mock.log" 2>&1 &
mock_pid=$!
trap 'kill $mock_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$W/mock.port" ] && break; sleep 0.05; done
mock=http://127.0.0.1:$(cat "$W/mock.port")
q() { psql -X -v ON_ERROR_STOP=1 -qAt "$@"; }
q -v mock="$mock" >/dev/null <<'SQL'
CREATE EXTENSION pg_hyperline;
SELECT hyperline.create_destination(name => 'hyperline', api_key => 'sk_pkg_test', base_url => :'mock');
CREATE TABLE meter (id int PRIMARY KEY, customer text NOT NULL);
SELECT hyperline.create_model(name => 'meter', source => 'public.meter', primary_key => 'id',
  payload => $$ {"customer_id": "{{ row.customer }}", "event_type": "package_test",
                 "timestamp": "2026-01-01T00:00:00Z", "record": {"id": "{{ row.id }}"}} $$);
INSERT INTO meter SELECT g, 'cus_' || g % 3 FROM generate_series(1, 50) g;
SQL
v=$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_hyperline'")
[ "$v" = "$VERSION" ] || { echo "extension version $v, expected $VERSION"; exit 1; }
delivered=0
for _ in $(seq 300); do
  delivered=$(q -c "SELECT count(*) FROM hyperline.outbox WHERE status = 'delivered'")
  [ "$delivered" = 50 ] && break
  sleep 0.1
done
stats=$(curl -s "$mock/_mock/stats")
echo "extension $v; delivered: $delivered of 50 events; mock stats: $stats"
if [ "$delivered" != 50 ]; then
  q -c "SELECT status, count(*), max(last_error) FROM hyperline.outbox GROUP BY 1"
  exit 1
fi
grep -Eq '"events_unique": *50[,}]' <<<"$stats" || { echo "the mock did not store the 50 events"; exit 1; }
SH
export VERSION W
NONROOT=1 pg_virtualenv -v $PGV -o shared_preload_libraries=pg_hyperline \
  -o hyperline.database=postgres -o hyperline.poll_interval_ms=200 bash "$W/deliver.sh"

rm -rf "$W"
echo
echo "package tests passed"
