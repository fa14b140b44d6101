#!/usr/bin/env bash
# Step overhead: a chain of 10 no-op `exec` steps (/bin/echo {}), of 10 no-op `http` steps (GET on a
# local server answering {}), and of 10 built-in no-op steps (the reference), each run as a job
# ROUNDS times; prints the mean wall time per step and the ratio to the built-in no-op.
#   bash bench/steps_bench.sh        (after `make build`)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/creatord}
. bench/lib.sh
ROUNDS=${ROUNDS:-20}
work=$(mktemp -d)
cleanup() {
  [ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true
  [ -n "${apid:-}" ] && kill "$apid" 2>/dev/null || true
  sleep 0.3; rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 tests/http/fake_ai.py --port-file "$work/ai.port" &
apid=$!
ai="http://127.0.0.1:$(wait_port_file "$work/ai.port")"
chain() {  # name type extra
  echo "[[pipeline]]"; echo "name = \"$1\""; echo "max_workers = 1"
  prev=""
  for i in $(seq 10); do
    echo "  [[pipeline.step]]"; echo "  name = \"s$i\""; echo "  type = \"$2\""
    [ -n "$prev" ] && echo "  needs = [\"$prev\"]"
    echo -e "$3"
    prev="s$i"
  done
}
{
  chain noop noop ""
  chain exec exec '  command = ["/bin/echo", "{}"]'
  chain http http "  method = \"GET\"\n  url = \"$ai/status/200\"\n  request_retries = 0"
} >"$work/pipelines.toml"
# A benchmark is one heavy client: quotas off.
start_creatord "$work/log" --data-dir "$work/data" --access-log=false --pipelines "$work/pipelines.toml" \
  --max-unfinished-jobs-per-token 0 --max-unfinished-jobs-per-creator 0 --enqueue-rate 0
/usr/bin/python3 - "$port" "$ROUNDS" <<'PY'
import datetime, http.client, json, statistics, sys
port, rounds = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=None):
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"null")
_, creator = call("POST", "/api/creators", {"name": "Bench", "handle": "bench"})
def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
per_step = {}
for pipeline in ("noop", "exec", "http"):
    samples = []
    for _ in range(rounds):
        status, job = call("POST", "/api/creators/%d/generate?wait=60" % creator["id"], {"pipeline": pipeline})
        assert job["state"] == "succeeded", job
        steps = job["steps"]
        samples.append((ts(steps[-1]["finished_at"]) - ts(steps[0]["started_at"])) / len(steps))
    per_step[pipeline] = statistics.mean(samples)
print("10 chained steps per job, %d jobs each, one at a time" % rounds)
print("%-6s %14s %10s" % ("step", "ms per step", "vs noop"))
for p in ("noop", "exec", "http"):
    print("%-6s %14.3f %10.1f" % (p, per_step[p], per_step[p] / per_step["noop"]))
PY
