#!/usr/bin/env bash
# The runs behind the README's ncl-circuits tables: the default run (all three learning runs,
# table, circuit and circuit-8, then the bootstrap) for seeds 1, 2 and 3, with Adam (the
# default) and with plain SGD (the ablation, --optimizer sgd --lr 0.5), one after another,
# then the tables and the figure. A run whose summary.json is already there is kept (delete
# the folder to run it again).
#   bash scripts/circuits/run_seeds.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build/release}"
out="${2:-results/circuits-seeds}"
bin="$build/examples/ncl-circuits/ncl-circuits"
[ -x "$bin" ] || { echo "run_seeds.sh: no $bin: build the release preset first" >&2; exit 1; }
for optimizer in adam sgd; do
  extra=()
  [ "$optimizer" = sgd ] && extra=(--optimizer sgd --lr 0.5)
  for seed in 1 2 3; do
    dir="$out/$optimizer-seed$seed"
    if [ -f "$dir/summary.json" ]; then
      echo "== ncl-circuits --seed $seed ${extra[*]}: $dir/summary.json exists, kept"
      continue
    fi
    echo "== ncl-circuits --seed $seed ${extra[*]}"
    "$bin" --seed "$seed" "${extra[@]}" --out "$dir"
  done
done
/usr/bin/python3 scripts/circuits/table.py "$out"
