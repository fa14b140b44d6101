#!/usr/bin/env bash
# A realistic mix of requests (bench/mix.lua under wrk) on creatord, against nginx serving one
# of the list bodies as a static file with the same wrk settings, measured in the same run:
# creatord in its default configuration, and with the list cache off (--list-cache-entries 0).
# The mix, per mille: list pages with varied limits 150, pages at real next_cursor values 200,
# `q` searches (and their next pages) 100, single creators 150, image lists of many creators 150,
# image content 100, image content with the ETag in If-None-Match (304) 100, POST /api/creators 25
# and PATCH /api/creators/{id} 25: 5% writes. Seeded through the API first (bench/seed.py):
# CREATORS creators, IMAGES_PER_CREATOR images (96×96 PNGs, every one different) for each of
# IMAGE_CREATORS of them; the client's cursors, q texts and ETags are collected then.
# The three servers are measured in turn, ROUNDS times; each figure is the median of its rounds.
# Every answer is counted per kind of request; any status but the kind's own (200, 201 for a
# create, 304 for a conditional read) fails the run after the table: a mix of 404s measures
# nothing. The creators a round created are deleted after it, so every round sees the same store.
#   bash bench/mix_bench.sh             (after `make build`; `make bench` runs it)
# Env: DURATION (5s), ROUNDS (3), CONNECTIONS (64), THREADS (2), CREATORS (1000),
# IMAGE_CREATORS (300), IMAGES_PER_CREATOR (3), BIN, SERVER_ARGS (e.g. "--database-url
# postgres://…/emptydb"), TOKEN (start creatord with --api-tokens TOKEN and send it),
# PER_KIND=1 (then each kind alone too, and the mix without its writes, and without its
# searches: PER_KIND_DURATION (3s) each, one round).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
. bench/lib.sh
http_bench_defaults
IMAGE_CREATORS=${IMAGE_CREATORS:-300}
IMAGES_PER_CREATOR=${IMAGES_PER_CREATOR:-3}
PER_KIND=${PER_KIND:-0}
PER_KIND_DURATION=${PER_KIND_DURATION:-3s}
export TOKEN=${TOKEN:-}
need wrk nginx python3 /usr/bin/python3 curl ss
make_work

auth=() bearer=()
[ -n "$TOKEN" ] && auth=(--api-tokens "$TOKEN") bearer=(-H "Authorization: Bearer $TOKEN")
# shellcheck disable=SC2086
start_creatord "$work/seed.log" --data-dir "$work/data" --access-log=false "${auth[@]}" ${SERVER_ARGS:-}
t0=$(date +%s.%N)
max_id=$(/usr/bin/python3 bench/seed.py "$port" --creators "$CREATORS" --image-creators "$IMAGE_CREATORS" \
  --images-per-creator "$IMAGES_PER_CREATOR" --lua-data "$work/mix_data.lua")
seed_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
path="/api/creators?limit=50"
serve_reference "$path" "${bearer[@]}"
declare -A args=(
  [default]=""
  [cache_off]="--list-cache-entries 0"
)
configs=(default cache_off)
kinds=(list list_cursor search creator images content content_304 create patch)
# PER_KIND: each kind alone, then two parts of the mix: without its writes (what the list cache
# gives when nothing invalidates it) and without its searches.
reads=list,list_cursor,search,creator,images,content,content_304
parts=("${kinds[@]}" "$reads" "list,list_cursor,creator,images,content,content_304,create,patch")
part_labels=("${kinds[@]}" "mix without writes" "mix without search")

# mix OUT NONCE [KINDS]: the mix (or some kinds of it) on the running creatord -> "rps p99"
mix() {
  settle "$port"
  wrk_measure "$1" -s bench/mix.lua "http://127.0.0.1:$port" -- "$work/mix_data.lua" "$2" "${3:-}" "$TOKEN"
}
start() {  # config
  # shellcheck disable=SC2086
  start_creatord "$work/$1.log" --data-dir "$work/data" ${args[$1]} "${auth[@]}" ${SERVER_ARGS:-}
}
reset_store() { /usr/bin/python3 bench/seed.py "$port" --reset-above "$max_id"; }
# keep OUT CONFIG: files the answer counts of a wrk run under its configuration; also counts the
# socket errors wrk saw (connect, read, write, timeout) as kind "socket".
keep() {
  grep '^mixstat ' "$1" | sed "s/^mixstat /$2 /" >>"$work/stats" || true
  awk -v c="$2" '/Socket errors/ { gsub(/,/, ""); print c, "socket", "error", $4 + $6 + $8 + $10, "UNEXPECTED" }' "$1" >>"$work/stats"
}
bytes_per_answer() {  # wrk output -> mean KiB per answer
  awk '/requests in/ { n = $1; v = $5; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+,?$/, "", v)
         m = (u ~ /^GB/) ? 1048576 : (u ~ /^MB/) ? 1024 : (u ~ /^KB/) ? 1 : 1 / 1024
         printf "%.1f", v * m / n }' "$1"
}

measure() {  # config round -> "rps p99"
  start "$1"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d1s -s bench/mix.lua "http://127.0.0.1:$port" -- \
    "$work/mix_data.lua" "w$2$1" "" "$TOKEN" >/dev/null
  mix "$work/$1-$2.txt" "r$2$1"
  keep "$work/$1-$2.txt" "$1"
  reset_store
  stop_creatord
}

for r in $(seq "$ROUNDS"); do
  wrk_measure "$work/nginx.txt" "http://127.0.0.1:$nport$path" >>"$work/nginx.res"
  for c in "${configs[@]}"; do measure "$c" "$r" >>"$work/$c.res"; done
done

n_rps=$(cut -d' ' -f1 "$work/nginx.res" | median)
n_p99=$(cut -d' ' -f2 "$work/nginx.res" | median)
echo "Mix (bench/mix.lua, 5% writes): $CREATORS creators, $IMAGE_CREATORS with $IMAGES_PER_CREATOR images (seeded in ${seed_s} s)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS rounds ($(nproc) cores); nginx serves GET $path (${ref_bytes} B)"
printf '%-40s %12s %10s %10s %12s\n' server "requests/s" "p99 ms" "vs nginx" "KiB/answer"
printf '%-40s %12.0f %10.2f %10s %12s\n' "nginx (static list body)" "$n_rps" "$n_p99" "1.00" "$(bytes_per_answer "$work/nginx.txt")"
for c in "${configs[@]}"; do
  c_rps=$(cut -d' ' -f1 "$work/$c.res" | median)
  c_p99=$(cut -d' ' -f2 "$work/$c.res" | median)
  label="creatord mix, default config"
  [ -n "${args[$c]}" ] && label="creatord mix, ${args[$c]}"
  printf '%-40s %12.0f %10.2f %10.2f %12s\n' "$label" "$c_rps" "$c_p99" "$(echo "$c_rps / $n_rps" | bc -l)" \
    "$(bytes_per_answer "$work/$c-$ROUNDS.txt")"
done

if [ "$PER_KIND" = 1 ]; then
  echo
  echo "Parts of the mix alone: wrk -t$THREADS -c$CONNECTIONS -d$PER_KIND_DURATION, one round"
  printf '%-20s' kind
  for c in "${configs[@]}"; do printf ' %24s' "$c: rps / p99 ms"; done
  echo
  for c in "${configs[@]}"; do
    start "$c"
    for i in "${!parts[@]}"; do
      DURATION=$PER_KIND_DURATION mix "$work/alone.txt" "a${c}p$i" "${parts[$i]}" >>"$work/alone-$c.res"
      keep "$work/alone.txt" "$c"
      case ",${parts[$i]}," in *,create,*) reset_store ;; esac
    done
    stop_creatord
  done
  for i in "${!parts[@]}"; do
    printf '%-20s' "${part_labels[$i]}"
    for c in "${configs[@]}"; do
      read -r k_rps k_p99 < <(sed -n "$((i + 1))p" "$work/alone-$c.res")
      printf ' %15.0f / %6.2f' "$k_rps" "$k_p99"
    done
    echo
  done
fi

echo
echo "Answers per kind of request, all runs (configuration status×count):"
awk '{ n[$2 " " $1 " " $3] += $4 } END { for (k in n) print k, n[k] }' "$work/stats" | sort -k1,1 -k2,2 -k3,3n |
  awk '$1 != kind { if (kind != "") print line; kind = $1; line = sprintf("%-14s", kind) }
       { line = line sprintf("  %s %s×%d", $2, $3, $4) } END { print line }'
if grep -q 'UNEXPECTED$' "$work/stats"; then
  echo "FAILED: answers other than the expected status (above); the figures do not measure the mix"
  awk '$5 != "ok" { n[$1 " " $2 " " $3] += $4 } END { for (k in n) print "  " k " ×" n[k] }' "$work/stats" | sort
  exit 1
fi
