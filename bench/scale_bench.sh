#!/usr/bin/env bash
# Latency at scale: a store seeded with SCALE creators (default 1,000,000) against the same store
# with SMALL creators (default 1,000), measured in the same run: the first list page, a deep
# cursor page (the middle of the ids), and `q` searches (three characters or more, which the
# trigram index answers; a rare, a common and a missing text, a handle), plus two-character
# searches, which scan. The list cache is off (--list-cache-entries 0) so the store answers.
# Seeding is bulk SQL into the migrated database before the server starts, not POSTs.
#   bash bench/scale_bench.sh
# Env: SCALE (1000000), SMALL (1000), ROUNDS (200 requests per query), BIN, STORES ("sqlite
# postgres"; postgres needs CREATORD_BENCH_POSTGRES_URL or the test cluster), THREADS/CONNECTIONS/
# DURATION for the wrk list figure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
. bench/lib.sh
SCALE=${SCALE:-1000000}
SMALL=${SMALL:-1000}
ROUNDS=${ROUNDS:-200}
STORES=${STORES:-sqlite postgres}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
for tool in wrk sqlite3 curl /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install wrk sqlite3 curl python3)"; exit 1; }
done

work=$(mktemp -d)
pg_dbs=()
cleanup() {
  [ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true
  for db in "${pg_dbs[@]}"; do psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

# Names from two-letter syllables, so that substrings repeat the way real names do; a few carry
# non-ASCII letters. Handles are unique (c<n>).
SYL="kalomiranetosuvianelorisbadefuze"
sqlite_seed() {  # dir n
  "$BIN" migrate --data-dir "$1" >/dev/null
  sqlite3 "$1/creatord.db" <<SQL
.output /dev/null
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO creators (name, handle, email, bio, tags, created_at, updated_at)
SELECT upper(substr(s, 1, 1)) || substr(s, 2) || CASE WHEN i % 97 = 0 THEN ' Ünal' ELSE '' END,
       'c' || i, 'c' || i || '@example.com', 'Makes pictures of quiet places and loud colours.',
       '["portrait","ink"]', 1700000000000 + i, 1700000000000 + i
FROM (SELECT i, substr('$SYL', 1 + 2 * (abs(random()) % 16), 2) || substr('$SYL', 1 + 2 * (abs(random()) % 16), 2) ||
             substr('$SYL', 1 + 2 * (abs(random()) % 16), 2) || ' ' ||
             substr('$SYL', 1 + 2 * (abs(random()) % 16), 2) || substr('$SYL', 1 + 2 * (abs(random()) % 16), 2) ||
             substr('$SYL', 1 + 2 * (abs(random()) % 16), 2) AS s FROM n);
COMMIT;
SQL
}
pg_seed() {  # url n
  "$BIN" migrate --database-url "$1" >/dev/null
  psql "$1" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO creatord.creators (name, handle, email, bio, tags, created_at, updated_at)
SELECT upper(substr(s, 1, 1)) || substr(s, 2) || CASE WHEN i % 97 = 0 THEN ' Ünal' ELSE '' END,
       'c' || i, 'c' || i || '@example.com', 'Makes pictures of quiet places and loud colours.',
       '["portrait","ink"]', 1700000000000 + i, 1700000000000 + i
FROM (SELECT i, $(for k in 1 2 3; do printf "substr('%s', 1 + 2 * floor(random() * 16)::int, 2) || " "$SYL"; done) ' ' ||
             $(for k in 1 2; do printf "substr('%s', 1 + 2 * floor(random() * 16)::int, 2) || " "$SYL"; done)
             substr('$SYL', 1 + 2 * floor(random() * 16)::int, 2) AS s FROM generate_series(1, $2) AS i) AS g;
VACUUM ANALYZE creatord.creators;
SQL
}

# Sequential keep-alive requests, ROUNDS per path; prints "p50 p99" in ms over all of them.
latency() {  # port path...
  /usr/bin/python3 - "$ROUNDS" "$@" <<'PY'
import http.client, sys, time
rounds, port, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
c = http.client.HTTPConnection("127.0.0.1", port)
times = []
for p in paths:  # one warm-up each
    c.request("GET", p); r = c.getresponse(); r.read(); assert r.status == 200, (p, r.status)
for _ in range(rounds):
    for p in paths:
        t = time.perf_counter()
        c.request("GET", p); r = c.getresponse(); r.read()
        times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.2f} {times[min(len(times) - 1, int(len(times) * 0.99))]:.2f}")
PY
}

cursor_at() {  # id -> the cursor naming it (keyset: ids below it come next)
  printf 'v1:%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='
}

# measure STORE LABEL N ARGS...: starts creatord with ARGS, prints one line per figure into $work/STORE-LABEL.
measure() {
  local store=$1 label=$2 n=$3
  shift 3
  start_creatord "$work/$store-$label.log" --access-log=false --list-cache-entries 0 "$@"
  local out="$work/$store-$label.txt"
  local deep
  deep=$(cursor_at $((n / 2)))
  {
    echo "first $(latency "$port" '/api/creators?limit=50')"
    echo "deep $(latency "$port" "/api/creators?limit=50&cursor=$deep")"
    echo "search $(latency "$port" '/api/creators?q=kalomi' '/api/creators?q=zzq' '/api/creators?q=%C3%9Cnal' \
      '/api/creators?q=c12345' '/api/creators?q=lora%20ne' "/api/creators?q=tosu&cursor=$deep")"
    echo "short $(latency "$port" '/api/creators?q=ka' '/api/creators?q=%C3%9C')"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$port/api/creators?limit=50" >"$work/wrk.txt"
    echo "list_rps $(rps <"$work/wrk.txt") -"
  } >"$out"
  kill "$cpid"
  wait "$cpid" 2>/dev/null || true
  cpid=""
}

report() {  # store
  local s=$1
  echo
  echo "$s: $SCALE vs $SMALL creators, --list-cache-entries 0, $ROUNDS sequential requests per query ($(nproc) cores)"
  printf '%-34s %10s %10s %10s %10s %8s\n' figure "p50 big" "p99 big" "p50 small" "p99 small" "p50 x"
  while read -r name p50 p99; do
    read -r _ sp50 sp99 < <(grep "^$name " "$work/$s-small.txt")
    case $name in
      first) what="first list page (limit 50)" ;;
      deep) what="deep cursor page (middle id)" ;;
      search) what="q, 3+ characters (6 queries)" ;;
      short) what="q, 1-2 characters (scan)" ;;
      list_rps) printf '%-34s %10.0f %10s %10.0f %10s %8.2f\n' "list requests/s (wrk -c$CONNECTIONS)" "$p50" "" "$sp50" "" \
                  "$(echo "$sp50 / $p50" | bc -l)"; continue ;;
    esac
    printf '%-34s %10.2f %10.2f %10.2f %10.2f %8.2f\n' "$what" "$p50" "$p99" "$sp50" "$sp99" "$(echo "$p50 / $sp50" | bc -l)"
  done <"$work/$s-big.txt"
}

for store in $STORES; do
  case $store in
    sqlite)
      for label in big small; do
        n=$([ $label = big ] && echo "$SCALE" || echo "$SMALL")
        start=$(date +%s.%N)
        sqlite_seed "$work/sqlite-$label" "$n"
        echo "sqlite: seeded $n creators in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)") s" >&2
        measure sqlite "$label" "$n" --data-dir "$work/sqlite-$label"
      done
      report sqlite
      ;;
    postgres)
      pg_admin=${CREATORD_BENCH_POSTGRES_URL:-$(bash scripts/test-postgres.sh start 2>/dev/null || true)}
      if [ -z "$pg_admin" ]; then echo "postgres: skipped (no CREATORD_BENCH_POSTGRES_URL, no test cluster)"; continue; fi
      for label in big small; do
        n=$([ $label = big ] && echo "$SCALE" || echo "$SMALL")
        db="scale_bench_${label}_$$"
        pg_dbs+=("$db")
        psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
        url="${pg_admin%/*}/$db"
        start=$(date +%s.%N)
        pg_seed "$url" "$n"
        echo "postgres: seeded $n creators in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)") s" >&2
        measure postgres "$label" "$n" --data-dir "$work/pg-$label" --database-url "$url"
      done
      report postgres
      ;;
  esac
done
