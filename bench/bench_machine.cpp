// The soft machine's speed (issue 4, item 8): one step and a 16-step unroll, forward and
// forward+backward, B = 32, R = 8, L = n, M = min(n, 32) (ncl-run's default M = 32, M <= n),
// a dense random soft program (every op and field has mass). Compare with
// ../shared/bench/torch_interp.py's torch-scatter rows (which have no memory at all).
//
//   BM_machine_step/<n>            one step forward
//   BM_machine_step_backward/<n>   one step forward + backward
//   BM_machine_run16/<n>           16 steps forward (run, no tape)
//   BM_machine_run16_backward/<n>  16 steps forward with tape + backward through time
//   ..._per_element/<n>            the same with one program per batch element
//   ..._dense_alu/<n>              the dense-tensor ALU backend (the paper's form), for reference
//   ..._mean_field/<n>             mean-field control (paper eq. 6)
//   ..._memory_n/<n>               M = n memory cells (the memory's bandwidth then dominates)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/machine/interpreter.hpp"

namespace {

using ncl::index;
using ncl::machine::control_mode;
using ncl::machine::machine_shape;
using ncl::machine::soft_program;
using ncl::machine::soft_state;

constexpr index batch = 32;

machine_shape bench_shape(std::int64_t n, bool memory_n) {
  machine_shape s;
  s.n = n;
  s.registers = 8;
  s.memory = memory_n ? n : std::min<std::int64_t>(n, 32);
  s.lines = n;
  return s;
}

void random_rows(ncl::matrix<float>& m, index rows, index cols, ncl::rng& random) {
  m.resize(rows, cols);
  for (index r = 0; r < rows; ++r) {
    float total = 0;
    for (index c = 0; c < cols; ++c) total += m(r, c) = std::exp(1.5f * float(random.normal()));
    m.row(r) /= total;
  }
}

soft_program<float> random_program(const machine_shape& shape, ncl::rng& random) {
  soft_program<float> p;
  random_rows(p.op, shape.lines, 23, random);
  random_rows(p.dst, shape.lines, shape.registers, random);
  random_rows(p.a, shape.lines, shape.registers, random);
  random_rows(p.b, shape.lines, shape.registers, random);
  random_rows(p.imm, shape.lines, shape.n, random);
  return p;
}

/// One-hot random registers and memory (as the torch T16 reference starts), counter on line 0.
soft_state<float> random_inputs(const machine_shape& shape, ncl::rng& random) {
  auto s = ncl::machine::initial_state<float>(shape, batch);
  for (index b = 0; b < batch; ++b) {
    for (index r = 0; r < shape.registers; ++r) {
      ncl::machine::set_register(s, shape, b, r, random.integer(0, shape.n));
    }
    for (index m = 0; m < shape.memory; ++m) {
      ncl::machine::set_memory(s, shape, b, m, random.integer(0, shape.n));
    }
  }
  return s;
}

struct setup {
  machine_shape shape;
  std::vector<soft_program<float>> programs;
  soft_state<float> state;
  ncl::machine::soft_interpreter<float> machine;

  setup(std::int64_t n, bool per_element, ncl::alu::backend alu, control_mode control,
        bool memory_n)
      : shape(bench_shape(n, memory_n)), machine(shape, alu, control) {
    ncl::rng random(42);
    for (index p = 0; p < (per_element ? batch : 1); ++p) {
      programs.push_back(random_program(shape, random));
    }
    state = random_inputs(shape, random);
  }
  std::span<const soft_program<float>> span() const { return programs; }
};

/// d loss / d final state of -sum_b log R[b, r_b, t_b] at random (r_b, t_b), as torch's loss.
soft_state<float> loss_gradient(const setup& s, const soft_state<float>& final_state) {
  auto d = ncl::machine::zero_state<float>(s.shape, batch);
  ncl::rng random(7);
  for (index b = 0; b < batch; ++b) {
    const index col = random.integer(0, s.shape.registers) * s.shape.n + random.integer(0, s.shape.n);
    d.registers(b, col) = -1.0f / (final_state.registers(b, col) + 1e-9f);
  }
  return d;
}

void run_bench(benchmark::State& bench, std::int64_t steps, bool backward, bool per_element,
               ncl::alu::backend alu = ncl::alu::backend::table,
               control_mode control = control_mode::per_line, bool memory_n = false) {
  setup s(bench.range(0), per_element, alu, control, memory_n);
  if (const char* e = std::getenv("SLICES")) s.machine.set_slices(std::atoi(e), std::getenv("SERIAL") == nullptr);
  ncl::machine::machine_tape<float> tape;
  auto grads = ncl::machine::machine_gradients<float>::zeros(s.shape, batch,
                                                            static_cast<index>(s.programs.size()));
  soft_state<float> dfinal;
  if (backward) {
    s.machine.unroll_forward(tape, s.state, s.span(), steps);
    dfinal = loss_gradient(s, tape.final_state());
  }
  soft_state<float> state = s.state;
  for (auto _ : bench) {
    if (backward) {
      s.machine.unroll_forward(tape, s.state, s.span(), steps);
      s.machine.unroll_backward(grads, tape, dfinal);
      benchmark::DoNotOptimize(grads.programs[0].op.data());
    } else if (steps == 1) {
      s.machine.unroll_forward(tape, s.state, s.span(), 1);  // one step into reused buffers
      benchmark::DoNotOptimize(tape.final_state().registers.data());
    } else {
      state = s.state;
      s.machine.run(state, s.span(), steps);
      benchmark::DoNotOptimize(state.registers.data());
    }
  }
  bench.counters["steps"] = double(steps);
  bench.counters["B"] = double(batch);
}

void BM_machine_step(benchmark::State& b) { run_bench(b, 1, false, false); }
void BM_machine_step_backward(benchmark::State& b) { run_bench(b, 1, true, false); }
void BM_machine_run16(benchmark::State& b) { run_bench(b, 16, false, false); }
void BM_machine_run16_backward(benchmark::State& b) { run_bench(b, 16, true, false); }
void BM_machine_run16_per_element(benchmark::State& b) { run_bench(b, 16, false, true); }
void BM_machine_run16_backward_per_element(benchmark::State& b) { run_bench(b, 16, true, true); }
void BM_machine_run16_mean_field(benchmark::State& b) {
  run_bench(b, 16, false, false, ncl::alu::backend::table, control_mode::mean_field);
}
void BM_machine_run16_backward_mean_field(benchmark::State& b) {
  run_bench(b, 16, true, false, ncl::alu::backend::table, control_mode::mean_field);
}
void BM_machine_run16_memory_n(benchmark::State& b) {
  run_bench(b, 16, false, false, ncl::alu::backend::table, control_mode::per_line, true);
}
void BM_machine_run16_backward_memory_n(benchmark::State& b) {
  run_bench(b, 16, true, false, ncl::alu::backend::table, control_mode::per_line, true);
}
void BM_machine_run16_dense_alu(benchmark::State& b) {
  run_bench(b, 16, false, false, ncl::alu::backend::dense_table);
}
void BM_machine_run16_backward_dense_alu(benchmark::State& b) {
  run_bench(b, 16, true, false, ncl::alu::backend::dense_table);
}

}  // namespace

BENCHMARK(BM_machine_step)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_step_backward)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_per_element)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_per_element)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_mean_field)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_mean_field)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_memory_n)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_memory_n)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_dense_alu)->Arg(16)->Arg(32)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_dense_alu)->Arg(16)->Arg(32)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
