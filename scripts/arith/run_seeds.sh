#!/usr/bin/env bash
# The runs behind the README's ncl-arith table: the default run (10 epochs, all four models
# on the same batches) for seeds 1, 2 and 3 on both splits, one after another (their wall
# times are only comparable on an otherwise quiet machine), then the table. A run whose
# summary.json is already there is kept (delete the folder to run it again).
#   bash scripts/arith/run_seeds.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build/release}"
out="${2:-results/arith-seeds}"
bin="$build/examples/ncl-arith/ncl-arith"
[ -x "$bin" ] || { echo "run_seeds.sh: no $bin: build the release preset first" >&2; exit 1; }
for seed in 1 2 3; do
  for split in random range; do
    if [ -f "$out/$split-seed$seed/summary.json" ]; then
      echo "== ncl-arith --split $split --seed $seed: $out/$split-seed$seed/summary.json exists, kept"
      continue
    fi
    echo "== ncl-arith --split $split --seed $seed"
    "$bin" --split "$split" --seed "$seed" --out "$out/$split-seed$seed"
  done
done
/usr/bin/python3 scripts/arith/table.py "$out"
