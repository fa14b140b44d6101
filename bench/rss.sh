#!/usr/bin/env bash
# Idle memory of the service as `make run` starts it (serve --demo on the embedded store): the
# resident set after start-up, the demo seed and a few requests, once it has been idle SETTLE
# seconds. Prints VmRSS with its anonymous and file-backed parts (shared libraries and the
# binary's own pages; the compiled-in web assets stay on disk until served).
#   bash bench/rss.sh            (after `make build`; `make bench` does both)
# Env: BIN (build/creatord), SETTLE (5).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
SETTLE=${SETTLE:-5}
. bench/lib.sh
make_work
start_creatord "$work/c.log" --data-dir "$work/data" --demo
for _ in $(seq 100); do grep -q '"demo creators seeded"' "$work/c.log" && break; sleep 0.05; done
for path in /api/creators /api/creators?limit=50 /health /metrics /ui/; do curl -s -o /dev/null "http://127.0.0.1:$port$path"; done
sleep "$SETTLE"
kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$cpid/status"; }
printf 'idle RSS after make run: %.1f MB (anonymous %.1f MB, files %.1f MB), %s threads   [issue 13: <= 20 MB]\n' \
  "$(echo "$(kb VmRSS) / 1024" | bc -l)" "$(echo "$(kb RssAnon) / 1024" | bc -l)" "$(echo "$(kb RssFile) / 1024" | bc -l)" \
  "$(kb Threads)"
