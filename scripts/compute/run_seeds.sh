#!/usr/bin/env bash
# The runs behind the README's ncl-compute table: the default run (13 epochs, the four models
# on the same batches) on the range split for seeds 1, 2 and 3 and on the operand split for
# seed 1, two at a time with one thread each (the numbers are the same for any thread count),
# then the table. A run whose summary.json is already there is kept.
#   bash scripts/compute/run_seeds.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build/release}"
out="${2:-results/compute-seeds}"
bin="$build/examples/ncl-compute/ncl-compute"
[ -x "$bin" ] || { echo "run_seeds.sh: no $bin: build the release preset first" >&2; exit 1; }
mkdir -p "$out"
run() {
  local dir="$out/$1-seed$2"
  if [ -f "$dir/summary.json" ]; then echo "== $dir/summary.json exists, kept"; return; fi
  echo "== ncl-compute --split $1 --seed $2 --threads 1 (log: $dir.log)"
  "$bin" --split "$1" --seed "$2" --threads 1 --out "$dir" > "$dir.log" 2>&1 || { tail -5 "$dir.log"; return 1; }
}
run range 1 & run range 2 & wait
run range 3 & run operand 1 & wait
/usr/bin/python3 scripts/compute/table.py "$out"
