#!/usr/bin/env bash
# Runs libFuzzer targets built by `make fuzz`: run.sh BUILD_DIR SECONDS TARGET... Each starts from
# the checked-in seeds (fuzz/corpus/<target>) plus what earlier runs found (BUILD_DIR/corpus/<target>,
# where new inputs go). A crash, leak, sanitizer report or timeout fails the run; the input is
# saved under BUILD_DIR/artifacts/. Prints one line per target: executions, coverage, corpus.
set -uo pipefail
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/artifacts"
export TMPDIR=${TMPDIR:-/tmp}
failed=()
for t in "$@"; do
  work="$build/corpus/$t"
  mkdir -p "$work"
  log="$build/fuzz-$t.log"
  # -rss_limit_mb: the request target runs a whole server in the process.
  "$build/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=65536 \
    -artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 "$work" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  size=$(ls "$work" | wc -l)
  printf '%-10s rc=%d  %s executions in %ss, coverage %s edges, corpus %s inputs\n' "$t" "$rc" "${execs:-?}" "$seconds" "${cov:-?}" "$size"
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    grep -E 'ERROR|SUMMARY|==[0-9]+==|Test unit written' "$log" | head -20
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzzing failed: ${failed[*]} (logs: $build/fuzz-<target>.log)"
  exit 1
fi
