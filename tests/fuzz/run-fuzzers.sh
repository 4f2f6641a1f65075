#!/usr/bin/env bash
# Runs each libFuzzer harness of tests/fuzz/harnesses.txt (built in BUILD_DIR, the fuzz preset)
# for FUZZ_SECONDS, one after the other; `make fuzz` calls it.
#
#   tests/fuzz/run-fuzzers.sh [BUILD_DIR]      (default build/fuzz)
#
# Environment:
#   FUZZ_SECONDS  seconds per harness (default 600)
#   FUZZERS       the harnesses to run, space separated (default: all)
#   FUZZ_MERGE=1  afterwards, merge the inputs that found new coverage into the harness's
#                 checked-in corpus, and copy any crashing input there too (a crash input stays
#                 in the corpus for good, as a regression test); otherwise the repository is
#                 not written to
#   FUZZ_ARGS     further libFuzzer flags
#
# New inputs go to BUILD_DIR/fuzz-work/NAME/corpus, crashes, leaks, timeouts and out-of-memory
# inputs to BUILD_DIR/fuzz-work/NAME/ (crash-*, leak-*, timeout-*, oom-*). Exits non-zero if
# any harness failed; the summary names the input that made it fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/fuzz}
seconds=${FUZZ_SECONDS:-600}
merge=${FUZZ_MERGE:-0}
only=${FUZZERS:-}
read -r -a extra <<<"${FUZZ_ARGS:-}"

# Leaks fail a fuzzer too; the harnesses reach no third-party library that keeps memory.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=()
summary=()
while read -r name max_len dict corpus seeds; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [[ -n "$only" && " $only " != *" $name "* ]]; then continue; fi
  binary="$build/bin/$name"
  if [[ ! -x "$binary" ]]; then
    echo "run-fuzzers: $binary is missing; build the fuzz preset (make fuzz)" >&2
    exit 2
  fi
  work="$build/fuzz-work/$name"
  mkdir -p "$work/corpus"
  # libFuzzer takes folders: seed files are copied into the work corpus.
  dirs=("$corpus")
  for seed in $seeds; do
    if [[ -d "$seed" ]]; then dirs+=("$seed"); else cp "$seed" "$work/corpus/"; fi
  done
  echo "== $name: $seconds s"
  log="$work/fuzz.log"
  status=0
  "$binary" -max_total_time="$seconds" -max_len="$max_len" -dict="$dict" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" "${extra[@]}" \
    "$work/corpus" "${dirs[@]}" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  if [[ $status -ne 0 ]]; then
    failed+=("$name")
    grep -E 'ERROR: |SUMMARY: |Test unit written to' "$log" || tail -n 30 "$log"
    summary+=("$name: FAILED (status $status), log $log")
    if [[ "$merge" == 1 ]]; then
      for artifact in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
        [[ -e "$artifact" ]] && cp "$artifact" "$corpus/" && echo "kept $artifact in $corpus"
      done
    fi
  else
    summary+=("$name: ok, ${runs:-?} inputs, ${speed:-?} exec/s")
  fi
  if [[ "$merge" == 1 && $status -eq 0 ]]; then
    before=$(find "$corpus" -type f | wc -l)
    "$binary" -merge=1 -max_len="$max_len" -timeout=10 "$corpus" "$work/corpus" \
      >"$work/merge.log" 2>&1
    after=$(find "$corpus" -type f | wc -l)
    echo "merged $((after - before)) new inputs into $corpus"
  fi
done <tests/fuzz/harnesses.txt

printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run-fuzzers: failed: ${failed[*]}" >&2
  exit 1
fi
