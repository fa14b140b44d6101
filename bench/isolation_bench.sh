#!/usr/bin/env bash
# The mission's failure, measured: p99 of GET /api/creators with the server idle, then while two
# generate jobs keep every core rendering. Same wrk settings, same run; prints both and the ratio.
# SERVER_ARGS passes flags to creatord (e.g. "--render-idle=false" to compare priorities).
#   bash bench/isolation_bench.sh      (after `make build`)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
. bench/lib.sh
DURATION=${DURATION:-8s}
work=$(mktemp -d)
cleanup() { [ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true; sleep 0.3; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck disable=SC2086
start_creatord "$work/log" --data-dir "$work/data" --access-log=false --demo \
  --max-unfinished-jobs-per-token 0 --max-unfinished-jobs-per-creator 0 --enqueue-rate 0 ${SERVER_ARGS:-}
sleep 0.5
url="http://127.0.0.1:$port/api/creators"
ROUNDS=${ROUNDS:-3}
# Two generate jobs at full size, with enough variants to outlast every busy round. Rounds
# alternate idle and busy (jobs paused by cancel, resumed by retry) so that machine noise hits
# both alike; the median ratio is the result.
start_jobs() {
  for c in 1 2; do
    curl -s -X POST "http://127.0.0.1:$port/api/creators/$c/generate" -H 'Content-Type: application/json' \
      -d '{"params":{"variants":16}}' -o /dev/null
  done
  sleep 1
}
stop_jobs() {
  for id in $(curl -s "http://127.0.0.1:$port/api/jobs?state=running" | grep -o '"id":[0-9]*,"kind"' | grep -o '[0-9]*'); do
    curl -s -X POST "http://127.0.0.1:$port/api/jobs/$id/cancel" -o /dev/null
  done
  sleep 1
}
echo "GET /api/creators, wrk -t2 -c16 -d$DURATION --latency, $(nproc) cores, $ROUNDS rounds"
printf '%-6s %-6s %12s %10s %8s\n' round state "requests/s" "p99 ms" "jobs"
ratios=()
for r in $(seq "$ROUNDS"); do
  wrk -t2 -c16 -d"$DURATION" --latency "$url" >"$work/idle.txt"
  start_jobs
  wrk -t2 -c16 -d"$DURATION" --latency "$url" >"$work/busy.txt"
  running=$(curl -s "http://127.0.0.1:$port/api/jobs?state=running" | grep -o '"kind"' | wc -l)
  stop_jobs
  idle_p99=$(p99 <"$work/idle.txt"); busy_p99=$(p99 <"$work/busy.txt")
  printf '%-6s %-6s %12.0f %10.2f %8s\n' "$r" idle "$(rps <"$work/idle.txt")" "$idle_p99" 0
  printf '%-6s %-6s %12.0f %10.2f %8s\n' "$r" busy "$(rps <"$work/busy.txt")" "$busy_p99" "$running"
  ratios+=("$(awk -v b="$busy_p99" -v i="$idle_p99" 'BEGIN { printf "%.2f", b/i }')")
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "p99 busy/idle per round: ${ratios[*]}; median $median (target <= 3)"
