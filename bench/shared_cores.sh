#!/usr/bin/env bash
# shared_cores.sh [BUILD] [ROUNDS]: the default thread count against one thread, on a quiet
# machine and beside a competing busy process that this script starts (one shell busy loop,
# killed when the script ends and bounded by `timeout` in any case), for the ALU, the
# machine and the LLaMA training step. Each round runs every (load, threads) case once, in
# turn, so the cases see the same machine; the table gives the median real time per case
# and the ratio default / one thread (target: <= 1.2 under load, ~0.5-0.7 when quiet).
#   bash bench/shared_cores.sh build/release 5
set -euo pipefail
build="${1:-build/release}"
rounds="${2:-5}"
[ -x "$build/bench/bench_alu" ] || { echo "shared_cores.sh: no $build/bench/bench_alu (build the release preset)" >&2; exit 2; }
cases=(
  "bench_alu ^BM_alu_table/128$"
  "bench_machine ^BM_machine_run16_backward/32$"
  "bench_llama ^BM_llama_train_step/128/real_time$"
)
out="$(mktemp -d)"
busy=""
stop_busy() {
  if [ -n "$busy" ]; then
    kill "$busy" 2>/dev/null || true
    wait "$busy" 2>/dev/null || true
  fi
  busy=""
}
trap 'stop_busy; rm -rf "$out"' EXIT

one() {  # one <load> <threads> <binary> <filter>: appends "load threads name real_ms"
  local env=()
  [ "$2" = one ] && env=(OMP_NUM_THREADS=1)
  local line
  line="$(env "${env[@]}" "$build/bench/$3" --benchmark_filter="$4" --benchmark_min_time=0.5 \
          --benchmark_format=csv 2>/dev/null | grep '^"BM_' | head -1)"
  # name,iterations,real_time,cpu_time,time_unit,...
  awk -F, -v load="$1" -v th="$2" '{
    gsub(/"/, "", $1); t = $3; u = $5;
    if (u == "ns") t /= 1e6; else if (u == "us") t /= 1e3; else if (u == "s") t *= 1e3;
    printf "%s %s %s %.6f\n", load, th, $1, t }' <<< "$line" >> "$out/times"
}

for ((r = 1; r <= rounds; ++r)); do
  for load in quiet busy; do
    if [ "$load" = busy ]; then
      timeout 600 bash -c 'while :; do :; done' &
      busy=$!
      sleep 0.5
    fi
    for c in "${cases[@]}"; do
      read -r bin filter <<< "$c"
      one "$load" default "$bin" "$filter"
      one "$load" one "$bin" "$filter"
    done
    stop_busy
  done
  echo "round $r of $rounds done" >&2
done

/usr/bin/python3 - "$out/times" "$rounds" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
t = {}
for load, th, name, ms in rows:
    t.setdefault((name, load, th), []).append(float(ms))
names = list(dict.fromkeys(r[2] for r in rows))
print(f"median real time over {sys.argv[2]} interleaved rounds (ms); default = OpenMP's thread count, one = OMP_NUM_THREADS=1")
print(f"{'benchmark':34} {'load':6} {'default':>9} {'one':>9} {'default/one':>12}")
worst = 0.0
for n in names:
    for load in ("quiet", "busy"):
        d, o = statistics.median(t[(n, load, "default")]), statistics.median(t[(n, load, "one")])
        if load == "busy":
            worst = max(worst, d / o)
        print(f"{n:34} {load:6} {d:9.3f} {o:9.3f} {d / o:12.2f}")
print(f"worst default/one beside the busy loop: {worst:.2f} (target <= 1.2): {'met' if worst <= 1.2 else 'MISSED'}")
EOF
