#!/usr/bin/env bash
# builds_side_by_side.sh BUILD_A BUILD_B [ROUNDS] [FILTER]: the same Google Benchmark cases
# from two builds (say, a commit before a change and after it: `git worktree add /tmp/old REV`,
# then configure and build its release preset there), run in turn, ROUNDS times, so both see
# the same machine; prints the median real time per case and build and the ratio B / A.
# Default threads; run it on an otherwise quiet machine.
#   bash bench/builds_side_by_side.sh /tmp/old/build/release build/release 5 '^BM_llama_train_step/128/real_time$'
set -euo pipefail
a="${1:?usage: builds_side_by_side.sh BUILD_A BUILD_B [ROUNDS] [FILTER]}"
b="${2:?usage: builds_side_by_side.sh BUILD_A BUILD_B [ROUNDS] [FILTER]}"
rounds="${3:-5}"
filter="${4:-^BM_llama_train_step/128/real_time$}"
bench="${BENCH:-bench_llama}"
for d in "$a" "$b"; do
  [ -x "$d/bench/$bench" ] || { echo "builds_side_by_side.sh: no $d/bench/$bench (build its release preset)" >&2; exit 2; }
done
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= rounds; ++r)); do
  for side in A B; do
    dir="$a"; [ "$side" = B ] && dir="$b"
    "$dir/bench/$bench" --benchmark_filter="$filter" --benchmark_min_time=1 --benchmark_format=csv 2>/dev/null |
      grep '^"BM_' | awk -F, -v side="$side" '{
        gsub(/"/, "", $1); t = $3; u = $5;
        if (u == "ns") t /= 1e6; else if (u == "us") t /= 1e3; else if (u == "s") t *= 1e3;
        printf "%s %s %.6f\n", side, $1, t }' >> "$out"
  done
  echo "round $r of $rounds done" >&2
done
/usr/bin/python3 - "$out" "$rounds" "$a" "$b" <<'PY'
import statistics, sys
t = {}
for side, name, ms in (l.split() for l in open(sys.argv[1])):
    t.setdefault((name, side), []).append(float(ms))
print(f"median real time over {sys.argv[2]} interleaved rounds (ms); A = {sys.argv[3]}, B = {sys.argv[4]}")
print(f"{'benchmark':40} {'A':>9} {'B':>9} {'B/A':>6}  (A range; B range)")
for name in dict.fromkeys(n for n, _ in t):
    A, B = t[(name, "A")], t[(name, "B")]
    ma, mb = statistics.median(A), statistics.median(B)
    print(f"{name:40} {ma:9.3f} {mb:9.3f} {mb / ma:6.2f}  ({min(A):.3f}-{max(A):.3f}; {min(B):.3f}-{max(B):.3f})")
PY
