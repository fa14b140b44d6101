#!/usr/bin/env bash
# Email outbox: accept rate (POST /api/send-email under wrk, deliveries running meanwhile) and
# delivery rate to a local SMTP server (aiosmtpd, the tests' server) while the backlog drains.
# Reference in the same run: wrk on GET /healthz (the server's floor for one request).
#   bash bench/email_bench.sh        (after `make build`; needs wrk, python3-aiosmtpd)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
. bench/lib.sh
DURATION=${DURATION:-5s}
TOKEN=bench-token-0123456789abcdef
work=$(mktemp -d)
cleanup() {
  [ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true
  [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null || true
  sleep 0.3; rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 tests/smtp/smtp_server.py --port-file "$work/smtp.port" --outdir "$work/mail" &
spid=$!
sport=$(wait_port_file "$work/smtp.port")
# shellcheck disable=SC2086
CREATORD_API_TOKENS=$TOKEN start_creatord "$work/log" --data-dir "$work/data" --access-log=false \
  --smtp-url "smtp://127.0.0.1:$sport" --mail-rate 100000000 --mail-burst 100000000 ${SERVER_ARGS:-}
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"to":["Bench <bench@example.com>"],"subject":"Benchmark ✓","text":"hello from the outbox","html":"<p>hello</p>"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
wrk -t2 -c16 -d"$DURATION" --latency "http://127.0.0.1:$port/healthz" >"$work/ref.txt"
wrk -t2 -c16 -d"$DURATION" --latency -s "$work/post.lua" "http://127.0.0.1:$port/api/send-email" >"$work/accept.txt"
t_end=$(date +%s.%N)
accepted=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/api/emails?limit=1" | grep -o '"id":[0-9]*' | head -1 | grep -o '[0-9]*')
delivered_at_end=$(ls "$work/mail" | grep -c json || true)
while [ "$(ls "$work/mail" | grep -c json || true)" -lt "$accepted" ]; do
  sleep 0.1
  if awk -v a="$t_end" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a > 300) }'; then
    echo "delivery did not finish in 300 s"; break
  fi
done
t_done=$(date +%s.%N)
delivered=$(ls "$work/mail" | grep -c json || true)
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/accept.txt"); non2xx=${non2xx:-0}
echo "wrk -t2 -c16 -d$DURATION, $(nproc) cores, SMTP: aiosmtpd on loopback"
printf '%-28s %12s %10s\n' "" "per second" "p99 ms"
printf '%-28s %12.0f %10.2f\n' "GET /healthz (reference)" "$(rps <"$work/ref.txt")" "$(p99 <"$work/ref.txt")"
printf '%-28s %12.0f %10.2f\n' "POST /api/send-email" "$(rps <"$work/accept.txt")" "$(p99 <"$work/accept.txt")"
echo "accepted $accepted (non-2xx: $non2xx); delivered $delivered; $delivered_at_end of them during the accept phase"
awk -v n="$((delivered - delivered_at_end))" -v a="$t_end" -v b="$t_done" 'BEGIN { printf "delivery while draining the backlog: %.0f emails/s\n", n/(b-a) }'
awk -v e="$(rps <"$work/accept.txt")" -v r="$(rps <"$work/ref.txt")" 'BEGIN { printf "accept / healthz: %.2f\n", e/r }'
