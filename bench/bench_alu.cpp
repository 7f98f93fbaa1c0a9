// The arithmetic unit, forward plus backward, batch 32, the 9 table ops, random soft
// distributions (ISSUE 3 item 6): BM_alu_dense/<n>, BM_alu_table/<n>, BM_alu_circuit/<n>,
// and the structured table's plain loops beside its fast path (BM_alu_table_reference/<n>).
// *_forward variants time the forward pass alone. BM_alu_circuit/65536 is the 16-bit circuit
// ALU that ncl-circuits swaps in (#15).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "ncl/alu/alu.hpp"
#include "ncl/core/rng.hpp"

namespace {

using ncl::index;
using ncl::matrix;
using ncl::alu::arithmetic_unit;
using ncl::alu::backend;

constexpr index batch = 32;

matrix<float> random_distributions(ncl::rng& random, index rows, index cols) {
  matrix<float> m(rows, cols);
  for (index r = 0; r < rows; ++r) {
    float total = 0;
    for (index c = 0; c < cols; ++c) total += m(r, c) = float(0.05 + random.uniform());
    m.row(r) /= total;
  }
  return m;
}

struct alu_inputs {
  matrix<float> f, u, v, dout, o, df, du, dv;
  explicit alu_inputs(index n) {
    ncl::rng random(42);
    f = random_distributions(random, batch, 9);
    u = random_distributions(random, batch, n);
    v = random_distributions(random, batch, n);
    dout = random_distributions(random, batch, n);
    df = matrix<float>::Zero(batch, 9);
    du = matrix<float>::Zero(batch, n);
    dv = matrix<float>::Zero(batch, n);
  }
};

template <class Forward, class Backward>
void run(benchmark::State& state, Forward&& forward, Backward&& backward, bool with_backward) {
  alu_inputs in(state.range(0));
  for (auto _ : state) {
    forward(in);
    if (with_backward) backward(in);
    benchmark::DoNotOptimize(in.o.data());
    benchmark::DoNotOptimize(in.dv.data());
    benchmark::ClobberMemory();
  }
  state.counters["B"] = double(batch);
}

void alu_bench(benchmark::State& state, backend kind, bool with_backward) {
  const arithmetic_unit<float> alu(state.range(0), kind);
  run(
      state, [&](alu_inputs& in) { alu.forward(in.o, in.f, in.u, in.v); },
      [&](alu_inputs& in) { alu.backward(in.df, in.du, in.dv, in.dout, in.f, in.u, in.v); },
      with_backward);
}

void BM_alu_dense(benchmark::State& state) { alu_bench(state, backend::dense_table, true); }
void BM_alu_table(benchmark::State& state) { alu_bench(state, backend::table, true); }
void BM_alu_circuit(benchmark::State& state) { alu_bench(state, backend::circuit, true); }
void BM_alu_dense_forward(benchmark::State& state) { alu_bench(state, backend::dense_table, false); }
void BM_alu_table_forward(benchmark::State& state) { alu_bench(state, backend::table, false); }
void BM_alu_circuit_forward(benchmark::State& state) { alu_bench(state, backend::circuit, false); }

void BM_alu_table_reference(benchmark::State& state) {
  const ncl::alu::lookup_table<float> table(state.range(0));
  run(
      state, [&](alu_inputs& in) { table.forward_reference(in.o, in.f, in.u, in.v); },
      [&](alu_inputs& in) {
        table.backward_reference(in.df, in.du, in.dv, in.dout, in.f, in.u, in.v);
      },
      true);
}

}  // namespace

BENCHMARK(BM_alu_dense)->Arg(16)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_alu_table)->Arg(16)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_alu_circuit)->Arg(16)->Arg(32)->Arg(64)->Arg(128)->Arg(256)->Arg(4096)->Arg(65536)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_alu_table_reference)->Arg(16)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_alu_dense_forward)->Arg(16)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_alu_table_forward)->Arg(16)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_alu_circuit_forward)->Arg(16)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
