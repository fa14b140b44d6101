#!/usr/bin/env bash
# What the pooler tests need, like Supabase offers it: a PostgreSQL cluster that serves TLS with a
# certificate made here (its own CA), and Debian's PgBouncer in front of it twice, in session mode
# and in transaction mode, both speaking TLS to clients. `start` (idempotent) prints `export`
# lines for the tests; `stop` removes everything. Runs as the postgres user when started as root.
#   eval "$(bash scripts/test-pooler.sh start)"
# CREATORD_TEST_POOLER_DIR and CREATORD_TEST_POOLER_PORT (the cluster; the poolers use the next
# two ports) pick another set.
set -euo pipefail
# The servers started here outlive this script: they must not inherit the caller's descriptors
# (a lock held through flock(1) would stay held by them for as long as they run).
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${CREATORD_TEST_POOLER_DIR:-/tmp/creatord-test-pooler}
PORT=${CREATORD_TEST_POOLER_PORT:-15433}
SESSION_PORT=$((PORT + 1))
TX_PORT=$((PORT + 2))
TLS="$DIR/tls"
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
urls() {
  local q="sslmode=verify-full&sslrootcert=$TLS/ca.crt"
  echo "export CREATORD_TEST_PG_TLS_URL='postgresql://postgres@127.0.0.1:$PORT/postgres?$q'"
  echo "export CREATORD_TEST_PGBOUNCER_SESSION_URL='postgresql://postgres@127.0.0.1:$SESSION_PORT/postgres?$q'"
  echo "export CREATORD_TEST_PGBOUNCER_TRANSACTION_URL='postgresql://postgres@127.0.0.1:$TX_PORT/postgres?$q'"
  echo "export CREATORD_TEST_PG_CA='$TLS/ca.crt'"
}
make_certs() {
  mkdir -p "$TLS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=creatord test CA" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$TLS/ext.cnf"
  openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -days 30 \
    -extfile "$TLS/ext.cnf" -out "$TLS/server.crt" 2>/dev/null
  chmod 600 "$TLS/server.key"
}
# One PgBouncer: $1 mode, $2 port, $3 server connections per database.
bouncer_ini() {
  cat <<INI
[databases]
* = host=127.0.0.1 port=$PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
pool_mode = $1
default_pool_size = $3
max_client_conn = 1000
max_db_connections = 0
query_wait_timeout = 60
client_tls_sslmode = require
client_tls_key_file = $TLS/server.key
client_tls_cert_file = $TLS/server.crt
server_tls_sslmode = verify-ca
server_tls_ca_file = $TLS/ca.crt
ignore_startup_parameters = extra_float_digits
logfile = $DIR/pgbouncer-$1.log
pidfile = $DIR/pgbouncer-$1.pid
INI
}
running() {
  [ -f "$DIR/pgbouncer-$1.pid" ] && kill -0 "$(cat "$DIR/pgbouncer-$1.pid")" 2>/dev/null
}
case "${1:-start}" in
  start)
    command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { echo "PgBouncer is not installed (apt-get install pgbouncer)" >&2; exit 1; }
    if running session && running transaction; then urls; exit 0; fi
    "$0" stop
    mkdir -p "$DIR"
    make_certs
    echo '"postgres" ""' >"$DIR/userlist.txt"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$DIR"
    CREATORD_TEST_PG_DIR="$DIR/pg" CREATORD_TEST_PG_PORT="$PORT" \
      CREATORD_TEST_PG_OPTS="-c ssl=on -c ssl_cert_file=$TLS/server.crt -c ssl_key_file=$TLS/server.key" \
      bash "$HERE/test-postgres.sh" start >/dev/null
    # Session mode: enough server connections per database for two instances' pools of 4 and
    # their listeners. Transaction mode: 2 server connections per database.
    bouncer_ini session "$SESSION_PORT" 10 >"$DIR/pgbouncer-session.ini"
    bouncer_ini transaction "$TX_PORT" 2 >"$DIR/pgbouncer-transaction.ini"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"/*.ini
    for mode in session transaction; do
      as_pg "$(command -v pgbouncer || echo /usr/sbin/pgbouncer)" -d -q "$DIR/pgbouncer-$mode.ini" \
        || { cat "$DIR/pgbouncer-$mode.log" >&2; exit 1; }
    done
    for _ in $(seq 50); do running session && running transaction && break; sleep 0.1; done
    urls
    ;;
  stop)
    for mode in session transaction; do
      if running "$mode"; then kill "$(cat "$DIR/pgbouncer-$mode.pid")"; fi
    done
    CREATORD_TEST_PG_DIR="$DIR/pg" CREATORD_TEST_PG_PORT="$PORT" bash "$HERE/test-postgres.sh" stop
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
