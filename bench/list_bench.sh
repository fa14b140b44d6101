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
http_bench_defaults
need wrk nginx python3 /usr/bin/python3 curl ss
make_work

# shellcheck disable=SC2086
start_creatord "$work/seed.log" --data-dir "$work/data" --access-log=false ${SERVER_ARGS:-}

/usr/bin/python3 bench/seed.py "$port" --creators "$CREATORS" >/dev/null

path="/api/creators?limit=50"
serve_reference "$path"

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
  settle "$port"
  wrk_measure "$work/wrk.txt" "http://127.0.0.1:$port$path"
  stop_creatord
}

for r in $(seq "$ROUNDS"); do
  wrk_measure "$work/wrk.txt" "http://127.0.0.1:$nport$path" >>"$work/nginx.res"
  for c in "${configs[@]}"; do measure "$c" >>"$work/$c.res"; done
done

n_rps=$(cut -d' ' -f1 "$work/nginx.res" | median)
n_p99=$(cut -d' ' -f2 "$work/nginx.res" | median)
echo "GET $path  body=${ref_bytes}B  $CREATORS creators  wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds ($(nproc) cores)"
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
