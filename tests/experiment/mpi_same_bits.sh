#!/usr/bin/env bash
# mpi_same_bits.sh MPIEXEC BINARY MODEL [ARGS...]: trains MODEL with BINARY --quick as one
# process and as two MPI ranks (mpirun -np 2, the same global batch) and checks that the saved
# weights are the same bytes and the losses and accuracies in curves.csv the same numbers.
set -euo pipefail
mpiexec="$1" binary="$2" model="$3"
shift 3
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
# Under the sanitizer preset: Open MPI's own allocations alive at exit are not ncl's leaks.
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan_openmpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
flags=()
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)  # CI runs as root; Open MPI refuses without it
common=(--quick --epochs 1 --seed 7 --model "$model" --threads 1 "$@")
"$binary" "${common[@]}" --out "$dir/one" --save "$dir/one/m-" > "$dir/one.log" 2>&1 ||
  { cat "$dir/one.log"; echo "FAIL: the one-process run failed"; exit 1; }
"$mpiexec" "${flags[@]}" --oversubscribe -np 2 "$binary" "${common[@]}" --out "$dir/two" --save "$dir/two/m-" \
  > "$dir/two.log" 2>&1 || { cat "$dir/two.log"; echo "FAIL: the two-rank run failed"; exit 1; }
grep -q "x 2 processes" "$dir/two.log" || { cat "$dir/two.log"; echo "FAIL: the run did not see two MPI ranks"; exit 1; }
cmp "$dir/one/m-$model.safetensors" "$dir/two/m-$model.safetensors" ||
  { echo "FAIL: the weights differ"; exit 1; }
diff <(cut -d, -f1-6 "$dir/one/curves.csv") <(cut -d, -f1-6 "$dir/two/curves.csv") ||
  { echo "FAIL: the losses or accuracies differ"; exit 1; }
[ "$(ls "$dir/two" | grep -c '\.tmp\.' || true)" = 0 ] || { echo "FAIL: temporary files left"; exit 1; }
echo "PASS: $model, 1 process and 2 MPI ranks: the same weights ($(stat -c %s "$dir/one/m-$model.safetensors") bytes) and curves"
