#!/usr/bin/env bash
# The queue's figures on both stores (build/queue_bench, see bench/queue_bench.cpp): no-op jobs
# enqueued in batches, executed by the real engine, and enqueue-to-start latency when idle.
# SQLite once; PostgreSQL with one engine and with two engines sharing the queue (each in a fresh
# database), and the ratio of the two. Each figure is the median of ROUNDS runs; every run also
# prints its own reference (one job per transaction on the same store).
#   bash bench/queue_bench.sh            (after `make build`; `make bench` does both)
# Env: JOBS (30000), ROUNDS (3), QUEUE_BENCH (build/queue_bench), CREATORD_BENCH_POSTGRES_URL (an
# admin URL; default: the test cluster of scripts/test-postgres.sh, skipped when there is none).
set -euo pipefail
export PGOPTIONS="-c client_min_messages=warning"
cd "$(dirname "$0")/.."
. bench/lib.sh
JOBS=${JOBS:-30000}
ROUNDS=${ROUNDS:-3}
QUEUE_BENCH=${QUEUE_BENCH:-build/queue_bench}
work=$(mktemp -d)
pg_admin=""
cleanup() {
  [ -n "$pg_admin" ] && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS queue_bench_$$ WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# run NAME ARGS...: ROUNDS runs into $work/NAME.N (a fresh PostgreSQL database for each).
run() {
  local name=$1
  shift
  for r in $(seq "$ROUNDS"); do
    if [ -n "$pg_admin" ] && [[ " $* " == *" --database-url "* ]]; then
      psql "$pg_admin" -qc "DROP DATABASE IF EXISTS queue_bench_$$ WITH (FORCE)" -c "CREATE DATABASE queue_bench_$$" >/dev/null
    fi
    "$QUEUE_BENCH" --jobs "$JOBS" "$@" 2>/dev/null | grep -v '^{' >"$work/$name.$r"
  done
}
# figure NAME PATTERN FIELD: the median over NAME's runs of field FIELD of the line matching PATTERN.
figure() { cat "$work/$1".* | awk -v f="$3" "/$2/ {print \$f}" | median; }

report() {
  local name=$1 label=$2
  printf '%-34s enqueue %7.0f jobs/s   execute %7.0f jobs/s   enqueue-to-start p50 %5.2f ms  p99 %5.2f ms   (reference %5.0f jobs/s)\n' \
    "$label" "$(figure "$name" '^enqueue .batched' 3)" "$(figure "$name" '^execute' 2)" \
    "$(figure "$name" '^enqueue-to-start' 3)" "$(figure "$name" '^enqueue-to-start' 6)" \
    "$(figure "$name" '^reference' 6)"
}

run sqlite
pg_admin=${CREATORD_BENCH_POSTGRES_URL:-$(bash scripts/test-postgres.sh start 2>/dev/null || true)}
if [ -n "$pg_admin" ]; then
  url="${pg_admin%/*}/queue_bench_$$"
  run pg1 --database-url "$url" --instances 1
  run pg2 --database-url "$url" --instances 2
fi

echo "queue_bench: $JOBS no-op jobs, median of $ROUNDS runs, $(nproc) cores (targets of issue 13 in brackets)"
report sqlite "SQLite (synchronous=FULL)"
echo "  [execute >= 25,000 jobs/s, enqueue-to-start p50 <= 0.7 ms]"
if [ -n "$pg_admin" ]; then
  report pg1 "PostgreSQL, 1 engine"
  report pg2 "PostgreSQL, 2 engines"
  printf '  2 engines / 1 engine: %.2fx   [execute >= 10,000 jobs/s, 2 engines >= 1.8x, batched enqueue >= 50,000 jobs/s, p50 <= 1.5 ms]\n' \
    "$(echo "$(figure pg2 '^execute' 2) / $(figure pg1 '^execute' 2)" | bc -l)"
else
  echo "PostgreSQL: skipped (no CREATORD_BENCH_POSTGRES_URL, no test cluster)"
fi
