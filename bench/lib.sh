# Shared by the benchmark scripts: starting creatord on a free port, nginx as the reference that
# serves the same bytes, running wrk and reading its output, the temporary folder.

# start_creatord LOG ARGS...: runs `creatord serve` on 127.0.0.1:0 with ARGS; sets cpid and port.
start_creatord() {
  local log=$1
  shift
  "$BIN" serve --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  cpid=$!
  port=""
  for _ in $(seq 200); do
    port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  cat "$log"
  exit 1
}

# wait_port_file FILE: waits for a helper server to write its port there, prints it.
wait_port_file() {
  for _ in $(seq 200); do
    [ -s "$1" ] && break
    sleep 0.05
  done
  cat "$1"
}

# p99 and rps read wrk --latency output on stdin; p99 in milliseconds.
p99() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'; }
rps() { awk '/Requests\/sec/ {print $2}'; }

# http_bench_defaults: the settings of list_bench.sh and mix_bench.sh where the environment does
# not set them: DURATION 5s, ROUNDS 3, CONNECTIONS 64, THREADS 2, CREATORS 1000.
http_bench_defaults() {
  DURATION=${DURATION:-5s}
  ROUNDS=${ROUNDS:-3}
  CONNECTIONS=${CONNECTIONS:-64}
  THREADS=${THREADS:-2}
  CREATORS=${CREATORS:-1000}
}

# need TOOL...: stops the benchmark, naming the tool, when one is missing.
need() {
  for tool; do
    command -v "$tool" >/dev/null || { echo "bench needs $tool (bash scripts/install-deps.sh bench)"; exit 1; }
  done
}

# make_work: a temporary folder, $work, removed on exit after the creatord of start_creatord and
# the nginx of start_nginx are stopped.
make_work() {
  work=$(mktemp -d)
  trap remove_work EXIT
}
remove_work() {
  [ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true
  stop_nginx
  sleep 0.2
  rm -rf "$work"
}

# settle PORT: waits (up to 2 s) until the server on PORT holds no connection of the wrk run before:
# creatord counts a connection until its session ends, and a run right after another opens its
# connections while the old ones are still counted; with -c64 against --max-connections-per-ip
# 64, some would get 503.
settle() {
  for _ in $(seq 40); do
    [ "$(ss -Htn state established state close-wait "( sport = :$1 )" | wc -l)" = 0 ] && return 0
    sleep 0.05
  done
}

# stop_creatord: stops the server start_creatord started and waits for it.
stop_creatord() {
  kill "$cpid"
  wait "$cpid" 2>/dev/null || true
  cpid=""
}

# start_nginx FILE PATH: the reference of the HTTP benchmarks, nginx (2 workers, access log off,
# no limit on keep-alive requests) serving FILE as the static file /PATH on a free port of
# 127.0.0.1; sets nport. Its files go in $work; stop_nginx stops it. Started as root, nginx's
# workers run as nobody: $work (mktemp -d, mode 700) must let them in, or every answer is a
# 403 of 153 bytes (a much faster reference than the file). Checks that the bytes are served.
start_nginx() {
  mkdir -p "$(dirname "$work/www/$2")"
  cp "$1" "$work/www/$2"
  chmod go+x "$work"
  chmod -R go+rX "$work/www"
  nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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
  curl -fsS "http://127.0.0.1:$nport/$2" | cmp -s - "$1" || { echo "nginx does not serve $1 as /$2"; exit 1; }
}
# serve_reference URL_PATH [CURL_ARGS...]: takes the answer to URL_PATH from the running creatord,
# stops it, and has nginx serve those bytes at the path (start_nginx); sets ref_bytes, their size.
serve_reference() {
  curl -fsS "${@:2}" "http://127.0.0.1:$port$1" -o "$work/reference.body"
  ref_bytes=$(stat -c %s "$work/reference.body")
  stop_creatord
  local file=${1%%\?*}
  start_nginx "$work/reference.body" "${file#/}"
}
stop_nginx() { [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; }

# wrk_measure OUT WRK_ARGS...: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency WRK_ARGS, its
# output kept in OUT; prints "requests/s p99_ms". Stops the benchmark when wrk saw an answer that
# is not 2xx or 3xx: the figure would measure errors.
wrk_measure() {
  local out=$1
  shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" >"$out"
  if grep -q 'Non-2xx or 3xx' "$out"; then
    echo "wrk $* got answers other than 2xx/3xx:" >&2
    cat "$out" >&2
    exit 1
  fi
  echo "$(rps <"$out") $(p99 <"$out")"
}

# median: the median of the numbers on stdin, one a line (the middle one, or the lower middle).
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
