#!/usr/bin/env bash
# GET /api/creators?limit=50 on creatord vs nginx serving the identical bytes as a static file,
# measured in the same run with the same wrk settings. Prints requests/s, p99 and the ratios.
#   bash bench/list_bench.sh            (after `make build`; `make bench` does both)
# Env: DURATION (default 10s), CONNECTIONS (64), THREADS (2), CREATORS (1000), BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
. bench/lib.sh
DURATION=${DURATION:-10s}
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

# SERVER_ARGS passes flags to creatord, e.g. "--database-url postgres://…/emptydb" for PostgreSQL.
# shellcheck disable=SC2086
start_creatord "$work/creatord.log" --data-dir "$work/data" --access-log=false ${SERVER_ARGS:-}

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

read -r n_rps n_p99 < <(run "http://127.0.0.1:$nport$path")
read -r c_rps c_p99 < <(run "http://127.0.0.1:$port$path")
echo "GET $path  body=${bytes}B  wrk -t$THREADS -c$CONNECTIONS -d$DURATION  ($(nproc) cores)"
printf '%-10s %12s %10s\n' server "requests/s" "p99 ms"
printf '%-10s %12.0f %10.2f\n' nginx "$n_rps" "$n_p99"
printf '%-10s %12.0f %10.2f\n' creatord "$c_rps" "$c_p99"
awk -v c="$c_rps" -v n="$n_rps" -v cp="$c_p99" -v np="$n_p99" \
  'BEGIN { printf "ratio creatord/nginx: throughput %.2f, p99 %.2f\n", c/n, cp/np }'
