#!/usr/bin/env bash
# The Debian package, end to end on this machine (ctest `package.deb`; needs root and dpkg, as
# CI has): build it, check the unit (systemd-analyze verify, security), install it (dpkg -i, then
# apt-get -f install), start the installed binary as the creatord user against
# /etc/creatord/creatord.conf on a free port and call it, upgrade over it (a changed conffile
# kept), remove, purge, and check that the machine is as it was before.
#
# This machine is a container where systemd is not PID 1, so the unit cannot be started through
# systemctl: the binary is started the way the unit's User=/ExecStart= would, with setpriv.
# Exit 77: skipped (not root, or no dpkg).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v dpkg >/dev/null || { echo "SKIP: needs dpkg"; exit 77; }
# One package test at a time on this machine (it installs and purges a system package).
exec 9>/tmp/creatord-package-test.lock
flock 9

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# dpkg and apt wait for each other's lock (another agent may be installing packages).
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }
dpkg_locked() {
  for _ in $(seq 1 150); do
    if out=$(dpkg "$@" 2>&1); then echo "$out"; return 0; fi
    if ! grep -q "lock" <<<"$out"; then echo "$out" >&2; return 1; fi
    sleep 2
  done
  echo "$out" >&2; return 1
}

snapshot() {
  {
    getent passwd creatord || echo "no user"
    getent group creatord || echo "no group"
    ls -la /etc/creatord 2>&1 || true
    ls -ld /var/lib/creatord 2>&1 || true
    ls -l /usr/bin/creatord /lib/systemd/system/creatord.service /usr/share/man/man1/creatord.1.gz 2>&1 || true
  } | sed 's/[0-9]\{2\}:[0-9]\{2\}//g'
}

status=$(dpkg-query -W -f='${Status}' creatord 2>/dev/null || true)
if [ -n "$status" ] && [[ "$status" != *not-installed ]]; then
  fail "creatord is already installed here ($status); this test would remove it"
fi
getent passwd creatord >/dev/null && fail "a creatord user exists already; this test would remove it"
before=$(snapshot)

step "build the package"
rm -f "$BUILD"/creatord_*.deb
(cd "$BUILD" && cpack -G DEB >cpack.log 2>&1) || { cat "$BUILD/cpack.log"; fail "cpack"; }
deb=$(ls "$BUILD"/creatord_*.deb)
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
depends=$(dpkg-deb --field "$deb" Depends)
for lib in libsqlite3-0 libpq5 libcurl4 libcairo2 libssl3 libpng16-16 passwd; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
grep -q boost-url <<<"$depends" && fail "Depends names boost-url, which is header-only here: $depends"
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/creatord ./lib/systemd/system/creatord.service ./etc/creatord/creatord.conf \
         ./usr/share/man/man1/creatord.1.gz; do
  grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done

purge() { dpkg_locked --purge creatord >/dev/null 2>&1 || true; }
trap 'purge' EXIT

step "install (dpkg -i, then apt-get -f install)"
dpkg_locked -i "$deb" || true
apt_get -f install -y -qq
dpkg-query -W -f='${Status}' creatord | grep -q "install ok installed" || fail "not installed"
[ "$(dpkg-query -W -f='${Conffiles}' creatord | awk '{print $1}')" = /etc/creatord/creatord.conf ] ||
  fail "creatord.conf is not a conffile"
[ "$(stat -c '%a %U %G' /etc/creatord/tokens)" = "640 root creatord" ] || fail "tokens: $(stat -c '%a %U %G' /etc/creatord/tokens)"
[ "$(stat -c '%a %U %G' /var/lib/creatord)" = "750 creatord creatord" ] || fail "data folder: $(stat -c '%a %U %G' /var/lib/creatord)"
[ "$(getent passwd creatord | cut -d: -f7)" = /usr/sbin/nologin ] || fail "the creatord user can log in"
man -l /usr/share/man/man1/creatord.1.gz 2>/dev/null | grep -q -- "--max-connections" || fail "the man page lacks the options"
# The conffile names every option, each at its default, except what the package sets.
conf=/etc/creatord/creatord.conf
for opt in $(/usr/bin/creatord --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
  case "$opt" in --help|--config|--version) continue ;; esac
  grep -q "^#\? \?${opt#--} = " "$conf" || fail "$conf does not name ${opt#--}"
done
grep -q '^data-dir = "/var/lib/creatord"$' "$conf" || fail "$conf: data-dir"
grep -q '^api-tokens-file = "/etc/creatord/tokens"$' "$conf" || fail "$conf: api-tokens-file"
grep -q '^# listen = "127.0.0.1:8000"$' "$conf" || fail "$conf: listen at its default"

step "the unit"
systemd-analyze verify --man=no /lib/systemd/system/creatord.service
systemd-analyze security --offline=true --threshold=20 /lib/systemd/system/creatord.service | tail -1 | tee "$BUILD/unit-security.txt"
grep -q "Overall exposure level for creatord.service: [0-1]\.[0-9]" "$BUILD/unit-security.txt" ||
  fail "the unit's exposure level is above 2.0"

step "run the installed binary as the creatord user on a free port"
token="package-test-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
echo "$token" >>/etc/creatord/tokens
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
setpriv --reuid creatord --regid creatord --init-groups --inh-caps=-all \
  /usr/bin/creatord serve --config /etc/creatord/creatord.conf --listen "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$log"; fail "creatord exited"; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz"; echo
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"name":"Packaged","handle":"packaged"}' "http://127.0.0.1:$port/api/creators")
[ "$code" = 401 ] || fail "a write without the token from /etc/creatord/tokens got $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"name":"Packaged","handle":"packaged"}' "http://127.0.0.1:$port/api/creators")
[ "$code" = 201 ] || { cat "$log"; fail "a write with the token got $code"; }
curl -fsS "http://127.0.0.1:$port/api/creators?q=packaged" | grep -q '"handle":"packaged"' || fail "the creator is not listed"
[ "$(stat -c %U /var/lib/creatord/creatord.db)" = creatord ] || fail "the database is not the creatord user's"
kill -TERM $pid
wait $pid || fail "creatord did not stop cleanly: $(cat "$log")"
rm -f "$log"

step "upgrade over it: the changed conffile and the data stay"
echo '# changed by the admin' >>"$conf"
dpkg_locked -i --force-confold "$deb"
grep -q '# changed by the admin' "$conf" || fail "the upgrade replaced the admin's creatord.conf"
grep -q "$token" /etc/creatord/tokens || fail "the upgrade replaced the tokens"
[ -f /var/lib/creatord/creatord.db ] || fail "the upgrade lost the data"

step "remove: configuration, data and user stay"
dpkg_locked --remove creatord
[ ! -e /usr/bin/creatord ] || fail "remove left the binary"
[ -f "$conf" ] && [ -f /var/lib/creatord/creatord.db ] && getent passwd creatord >/dev/null || fail "remove took too much"

step "purge: the machine is as before"
dpkg_locked --purge creatord
trap - EXIT
status=$(dpkg-query -W -f='${Status}' creatord 2>/dev/null || true)
[ -z "$status" ] || [[ "$status" == *not-installed ]] || fail "after purge: $status"
after=$(snapshot)
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") || true
  fail "the machine differs after purge"
fi
echo "package test: ok"
