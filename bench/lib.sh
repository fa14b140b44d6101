# Shared by the benchmark scripts: starting creatord on a free port and reading wrk's output.

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
