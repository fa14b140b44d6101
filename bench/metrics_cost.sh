#!/usr/bin/env bash
# What recording metrics costs on the hot path: GET /api/creators?limit=50 on two creatord
# processes holding the same 1,000 creators, one with metrics on (the default) and one with
# --metrics=false, measured in alternation (ROUNDS times each, wrk -t2 -c64, the order swapped every round) so that a noisy
# machine hurts both alike. Prints the median requests/s of each and their ratio.
#   bash bench/metrics_cost.sh        (after `make build`; `make bench` runs it)
# Env: DURATION (default 5s), ROUNDS (5), CONNECTIONS (64), CREATORS (1000), BIN, EXTRA_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
. bench/lib.sh
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
CREATORS=${CREATORS:-1000}
for tool in wrk /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install wrk python3)"; exit 1; }
done
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; sleep 0.2; rm -rf "$work"' EXIT

declare -A ports last
for mode in on off; do
  flag=--metrics=true
  [ "$mode" = off ] && flag=--metrics=false
  # shellcheck disable=SC2086
  start_creatord "$work/$mode.log" --data-dir "$work/$mode" --access-log=false "$flag" ${EXTRA_ARGS:-}
  pids+=("$cpid")
  ports[$mode]=$port
  /usr/bin/python3 - "$port" "$CREATORS" <<'PY'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    body = json.dumps({"name": f"Creator Number {i}", "handle": f"creator{i}", "email": f"c{i}@example.com",
                       "bio": "Makes pictures of quiet places and loud colours.", "tags": ["ink", "neon"][: 1 + i % 2]})
    c.request("POST", "/api/creators", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
PY
done

path="/api/creators?limit=50"
for mode in on off; do wrk -t2 -c"$CONNECTIONS" -d1s "http://127.0.0.1:${ports[$mode]}$path" >/dev/null; done  # warm
declare -A results
ratios=""
for round in $(seq "$ROUNDS"); do
  order="on off"
  [ $((round % 2)) = 0 ] && order="off on"  # neither goes first every time
  for mode in $order; do
    r=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:${ports[$mode]}$path" | rps)
    results[$mode]="${results[$mode]:-} $r"
    last[$mode]=$r
  done
  ratios="$ratios $(awk -v a="${last[on]}" -v b="${last[off]}" 'BEGIN { printf "%.3f", a/b }')"
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
on=$(echo "${results[on]}" | median)
off=$(echo "${results[off]}" | median)
ratio=$(echo "$ratios" | median)
echo "GET $path, wrk -t2 -c$CONNECTIONS -d$DURATION, $ROUNDS alternating rounds ($(nproc) cores)"
echo "metrics on : ${results[on]}  median $on requests/s"
echo "metrics off: ${results[off]}  median $off requests/s"
echo "on/off by round:$ratios"
awk -v r="$ratio" 'BEGIN { printf "median ratio on/off: %.3f (recording costs %.1f%%)\n", r, (1-r)*100 }'
