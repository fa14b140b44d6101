#!/usr/bin/env bash
# Generates a TypeScript client from the OpenAPI document, compiles it with tsc (strict) and runs
# it against a real creatord on a free port: it must create and list creators.
#   bash tests/client/run.sh build/creatord web/openapi.json build/client
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "$1") doc=$(realpath "$2") out=$3
[ -d "$here/node_modules" ] || (cd "$here" && npm ci --no-audit --no-fund)
rm -rf "$out" && mkdir -p "$out/src" && out=$(realpath "$out")
"$here/node_modules/.bin/openapi-typescript" "$doc" -o "$out/src/api.d.ts"
cp "$here/list_creators.ts" "$out/src/"
cp "$here/tsconfig.json" "$out/"
echo '{"type":"module"}' >"$out/package.json"
ln -s "$here/node_modules" "$out/node_modules"
"$here/node_modules/.bin/tsc" -p "$out"

"$bin" serve --listen 127.0.0.1:0 --data-dir "$out/data" >"$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
port=
for _ in $(seq 200); do
  port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$out/server.log" | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$out/server.log"; echo "creatord did not start"; exit 1; }
node "$out/dist/list_creators.js" "http://127.0.0.1:$port"
