#!/usr/bin/env bash
# Installs the Debian packages creatord needs to build, run and test, when missing.
set -euo pipefail
pkgs=(
  g++ cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libpq-dev libcurl4-openssl-dev libssl-dev libcairo2-dev libpng-dev libjpeg-dev libwebp-dev
  libspdlog-dev libfmt-dev libcli11-dev libgtest-dev libtomlplusplus-dev libhowardhinnant-date-dev tzdata
)
# npm (with Node.js) installs Swagger UI, which the build compiles into the binary (/docs), and the
# OpenAPI validator the tests run, both pinned by web/package-lock.json. A Node.js from elsewhere
# (e.g. NodeSource, whose nodejs includes npm) counts: Debian's npm package conflicts with it.
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
# `install-deps.sh test` adds what the tests use: a real SMTP server (aiosmtpd), jsonschema (the
# contract check of answers against the OpenAPI document), openssl for
# its test certificate and the TLS cluster's, PostgreSQL and PgBouncer (scripts/test-pooler.sh),
# curl for the README's examples (tests/readme/run_readme.py), and prometheus for promtool
# (checks /metrics, the alert rules in deploy/), and chromium for the dashboard's browser tests
# (driven by playwright-core from npm; Playwright's own browser downloads are not used).
# `install-deps.sh package` adds what `make package` uses: dpkg-shlibdeps (dpkg-dev), help2man
# (the man page), and systemd's systemd-analyze (the package test checks the unit); the test group
# includes them, since `make test` builds and installs the package.
# `install-deps.sh bench` adds wrk, nginx and ss (iproute2); `install-deps.sh fuzz` clang 14 and libFuzzer.
case "${1:-}" in
  test) pkgs+=(python3 python3-aiosmtpd python3-jsonschema openssl postgresql pgbouncer curl prometheus chromium
               dpkg-dev help2man systemd man-db) ;;
  package) pkgs+=(dpkg-dev help2man systemd) ;;
  bench) pkgs+=(wrk nginx-light python3 curl python3-aiosmtpd iproute2) ;;
  fuzz) pkgs+=(clang-14 libfuzzer-14-dev) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
