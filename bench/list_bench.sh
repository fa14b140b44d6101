#!/usr/bin/env bash
# GET /api/creators?limit=50 on creatord vs nginx serving the identical bytes as a static file,
# measured in the same run with the same wrk settings: creatord in its default configuration
# (access log on, written to a file), with --access-log=false, and with the list cache off
# (--list-cache-entries 0: every request reads the store and writes the JSON). The four are
# measured in turn, ROUNDS times, and each figure is the median of its rounds, so a neighbour's
# burst on a shared machine moves one round, not the result.
#   bash bench/list_bench.sh            (after `make build`; `make bench` does both)
# Env: DURATION (default 5s), ROUNDS (3), CONNECTIONS (64), THREADS (2), CREATORS (1000), BIN,
# SERVER_ARGS (e.g. "--database-url postgres://…/emptydb" for PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
. bench/lib.sh
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
CREATORS=${CREATORS:-1000}
for tool in wrk nginx python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install wrk nginx-light python3 curl)"; exit 1; }
done

work=$(mktemp -d)
cleanup() {
  [ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086
start_creatord "$work/seed.log" --data-dir "$work/data" --access-log=false ${SERVER_ARGS:-}

python3 - "$port" "$CREATORS" <<'PY'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
tags = ["portrait", "landscape", "ink", "neon", "retro", "pixel"]
for i in range(n):
    body = json.dumps({"name": f"Creator Number {i}", "handle": f"creator{i}",
                       "email": f"creator{i}@example.com",
                       "bio": "Makes pictures of quiet places and loud colours.",
                       "tags": tags[: 1 + i % len(tags)]})
    c.request("POST", "/api/creators", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
PY

path="/api/creators?limit=50"
curl -s "http://127.0.0.1:$port$path" -o "$work/creators.json"
bytes=$(stat -c %s "$work/creators.json")
kill "$cpid"
wait "$cpid" 2>/dev/null || true
cpid=""

nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/www/api"
cp "$work/creators.json" "$work/www/api/creators"
cat >"$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    root $work/www;
    location / { default_type application/json; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"
sleep 0.3

run() {  # url -> "rps p99_ms"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" >"$work/wrk.txt"
  echo "$(rps <"$work/wrk.txt") $(p99 <"$work/wrk.txt")"
}

# One round of a creatord configuration: start it on the seeded data, warm up, measure, stop.
declare -A args=(
  [default]=""
  [no_access_log]="--access-log=false"
  [cache_off]="--access-log=false --list-cache-entries 0"
)
configs=(default no_access_log cache_off)
measure() {  # config -> "rps p99"
  # shellcheck disable=SC2086
  start_creatord "$work/$1.log" --data-dir "$work/data" ${args[$1]} ${SERVER_ARGS:-}
  wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "http://127.0.0.1:$port$path" >/dev/null
  run "http://127.0.0.1:$port$path"
  kill "$cpid"
  wait "$cpid" 2>/dev/null || true
  cpid=""
}

for r in $(seq "$ROUNDS"); do
  run "http://127.0.0.1:$nport$path" >>"$work/nginx.res"
  for c in "${configs[@]}"; do measure "$c" >>"$work/$c.res"; done
done

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
n_rps=$(cut -d' ' -f1 "$work/nginx.res" | median)
n_p99=$(cut -d' ' -f2 "$work/nginx.res" | median)
echo "GET $path  body=${bytes}B  $CREATORS creators  wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds ($(nproc) cores)"
printf '%-34s %12s %10s %14s\n' server "requests/s" "p99 ms" "vs nginx"
printf '%-34s %12.0f %10.2f %14s\n' nginx "$n_rps" "$n_p99" "1.00"
for c in "${configs[@]}"; do
  c_rps=$(cut -d' ' -f1 "$work/$c.res" | median)
  c_p99=$(cut -d' ' -f2 "$work/$c.res" | median)
  label="creatord $c"
  [ -n "${args[$c]}" ] && label="creatord ${args[$c]}"
  [ "$c" = default ] && label="creatord (default: access log on)"
  printf '%-34s %12.0f %10.2f %14.2f\n' "$label" "$c_rps" "$c_p99" "$(echo "$c_rps / $n_rps" | bc -l)"
done
