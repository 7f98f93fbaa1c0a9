#!/usr/bin/env bash
# threads_same_bits.sh BINARY MODEL [ARGS...]: trains MODEL with BINARY --quick on 1 thread and
# on 2 and checks that the saved weights are the same bytes and the losses and accuracies in
# curves.csv the same numbers (the result of a seed does not depend on the thread count).
set -euo pipefail
binary="$1" model="$2"
shift 2
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
common=(--quick --epochs 1 --seed 5 --model "$model" "$@")
for t in 1 2; do
  "$binary" "${common[@]}" --threads "$t" --out "$dir/t$t" --save "$dir/t$t/m-" > "$dir/t$t.log" 2>&1 ||
    { cat "$dir/t$t.log"; echo "FAIL: the run with $t threads failed"; exit 1; }
done
cmp "$dir/t1/m-$model.safetensors" "$dir/t2/m-$model.safetensors" || { echo "FAIL: the weights differ"; exit 1; }
# every column but the clocks (*seconds)
untimed() { awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) keep[i] = $i !~ /seconds/ }
                     { line = ""; for (i = 1; i <= NF; ++i) if (keep[i]) line = line $i ","; print line }' "$1"; }
diff <(untimed "$dir/t1/curves.csv") <(untimed "$dir/t2/curves.csv") ||
  { echo "FAIL: the losses or accuracies differ"; exit 1; }
echo "PASS: $model, 1 thread and 2: the same weights ($(stat -c %s "$dir/t1/m-$model.safetensors") bytes) and curves"
