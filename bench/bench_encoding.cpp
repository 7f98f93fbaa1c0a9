// Number encodings: binary <-> one-hot conversions, forward and backward, batch 32.
// Run: build/release/bench/bench_encoding
#include <benchmark/benchmark.h>

#include <ncl/core/rng.hpp>
#include <ncl/encoding/binary.hpp>

using ncl::matrix;
namespace enc = ncl::encoding;

namespace {

constexpr ncl::index batch = 32;

matrix<float> random_bits(int bits) {
  ncl::rng random(1);
  matrix<float> b(batch, bits);
  random.fill_uniform(std::span<float>(b.data(), static_cast<std::size_t>(b.size())));
  return b;
}

void BM_binary_to_one_hot(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  const std::int64_t n = std::int64_t{1} << bits;
  const matrix<float> b = random_bits(bits);
  matrix<float> p;
  for (auto _ : state) {
    enc::binary_to_one_hot_forward(p, b, n);
    benchmark::DoNotOptimize(p.data());
  }
  state.SetItemsProcessed(state.iterations() * batch * n);
}

void BM_binary_to_one_hot_backward(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  const std::int64_t n = std::int64_t{1} << bits;
  const matrix<float> b = random_bits(bits);
  const matrix<float> dp = matrix<float>::Ones(batch, n);
  matrix<float> db = matrix<float>::Zero(batch, bits);
  for (auto _ : state) {
    enc::binary_to_one_hot_backward(db, dp, b);
    benchmark::DoNotOptimize(db.data());
  }
  state.SetItemsProcessed(state.iterations() * batch * n);
}

void BM_one_hot_to_binary(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  const std::int64_t n = std::int64_t{1} << bits;
  matrix<float> p;
  enc::binary_to_one_hot_forward(p, random_bits(bits), n);
  matrix<float> b;
  for (auto _ : state) {
    enc::one_hot_to_binary_forward(b, p, bits);
    benchmark::DoNotOptimize(b.data());
  }
  state.SetItemsProcessed(state.iterations() * batch * n);
}

}  // namespace

BENCHMARK(BM_binary_to_one_hot)->DenseRange(4, 10, 2);
BENCHMARK(BM_binary_to_one_hot_backward)->DenseRange(4, 10, 2);
BENCHMARK(BM_one_hot_to_binary)->DenseRange(4, 10, 2);
BENCHMARK_MAIN();
