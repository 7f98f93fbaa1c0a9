#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed time from its seed corpus; fails on any finding.
#   run_fuzzer.sh BINARY SEED_CORPUS WORK_DIR SECONDS [DICT [FOUND.tar.gz]]
# The seed corpus (in the repository) is only read, as is FOUND.tar.gz, the inputs earlier
# long runs found (tests/fuzz/found/, minimised with -merge=1), unpacked into
# WORK_DIR/found; every one of them runs first, then the mutations; inputs the run finds go to
# WORK_DIR/corpus, and an input that crashes, leaks, times out or runs out of memory is kept
# as WORK_DIR/crash-*, leak-*, timeout-* or oom-* (rerun it with: BINARY FILE).
# NCL_FUZZ_SEED (default 1) seeds libFuzzer's mutations, so a run is repeatable up to timing.
set -euo pipefail
binary="$1" seeds="$2" work="$3" seconds="$4" dict="${5:-}" found="${6:-}"
[ -x "$binary" ] || { echo "run_fuzzer.sh: no fuzz target at $binary" >&2; exit 1; }
[ -d "$seeds" ] || { echo "run_fuzzer.sh: no seed corpus at $seeds" >&2; exit 1; }
mkdir -p "$work/corpus"
dirs=("$work/corpus" "$seeds")
if [ -n "$found" ]; then
  rm -rf "$work/found" && mkdir -p "$work/found"
  tar -xzf "$found" -C "$work/found"
  dirs+=("$work/found")
fi
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048
      -seed="${NCL_FUZZ_SEED:-1}" -print_final_stats=1 -artifact_prefix="$work/")
[ -n "$dict" ] && args+=(-dict="$dict")
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
"$binary" "${args[@]}" "${dirs[@]}" >"$work/log" 2>&1 || status=$?
seeds_count=$(find "$seeds" -type f | wc -l)
found_in=$([ -n "$found" ] && find "$work/found" -type f | wc -l || echo 0)
found_count=$(find "$work/corpus" -type f | wc -l)
if [ "$status" -ne 0 ]; then
  tail -n 60 "$work/log"
  echo "run_fuzzer.sh: $(basename "$binary") FAILED (status $status); the input is in $work/ (log: $work/log)"
  exit 1
fi
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$' || echo "?")
echo "$(basename "$binary"): ${seconds} s, ${runs} inputs run, seed corpus ${seeds_count} files + ${found_in} found earlier, ${found_count} new this far, no findings"
