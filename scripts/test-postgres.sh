#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `start` (idempotent) prints nothing but the URL
# to use; `stop` removes it; `down`/`up` stop and start it keeping its data. Runs as the postgres
# user when started as root. CREATORD_TEST_PG_DIR and CREATORD_TEST_PG_PORT pick another cluster;
# CREATORD_TEST_PG_OPTS adds server settings (-c ssl=on ..., see scripts/test-pooler.sh).
#   export CREATORD_TEST_POSTGRES_URL=$(bash scripts/test-postgres.sh start)
set -euo pipefail
# The servers started here outlive this script: they must not inherit the caller's descriptors
# (a lock held through flock(1) would stay held by them for as long as they run).
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
DIR=${CREATORD_TEST_PG_DIR:-/tmp/creatord-test-pg}
PORT=${CREATORD_TEST_PG_PORT:-15432}  # below the ephemeral port range
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$BIN" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
url="postgresql://postgres@127.0.0.1:$PORT/postgres"
case "${1:-start}" in
  start)
    if as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then echo "$url"; exit 0; fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
    as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 ${CREATORD_TEST_PG_OPTS:-}" start >/dev/null \
      || { cat "$DIR/server.log" >&2; exit 1; }
    echo "$url"
    ;;
  stop)
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
    ;;
  down)  # stop the server, keep its data (for outage tests)
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
    ;;
  up)
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 ${CREATORD_TEST_PG_OPTS:-}" start >/dev/null
    ;;
  *) echo "usage: $0 start|stop|down|up" >&2; exit 2 ;;
esac
