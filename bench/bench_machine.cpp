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
//
// And the torch reference's own computation with ncl's kernels, for a like-for-like ratio:
//   BM_register_alu_run16/<n>, ..._backward/<n>: 16 steps of u = a1 R, v = a2 R,
//   o = ALU(f, u, v), R' = (1 - ao) R + ao o with a fresh soft instruction per step and
//   element (torch_interp.py's step), the table ALU's 9 ops (torch's has 8), B = 32, R = 8,
//   no fetch, memory or control; the loss and its gradient as torch's.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "ncl/alu/alu.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/machine/interpreter.hpp"
#include "ncl/machine/registers.hpp"

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
               control_mode control = control_mode::per_line, bool memory_n = false,
               bool lanes = true) {
  setup s(bench.range(0), per_element, alu, control, memory_n);
  s.machine.set_lane_path(lanes);
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
void BM_machine_run16_no_lanes(benchmark::State& b) {
  run_bench(b, 16, false, false, ncl::alu::backend::table, control_mode::per_line, false, false);
}
void BM_machine_run16_backward_no_lanes(benchmark::State& b) {
  run_bench(b, 16, true, false, ncl::alu::backend::table, control_mode::per_line, false, false);
}
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

/// torch_interp.py's unrolled step in ncl's kernels: per step t, soft instructions f (B, 9),
/// a1, a2, ao (B, R) per element; registers (B, R n) from one-hot values. The batch runs as
/// two slices on the OpenMP threads (one region per unroll, no synchronisation between
/// steps), as the machine does.
struct register_alu_run {
  static constexpr index R = 8, steps = 16, slices = 2;
  index n;
  ncl::alu::arithmetic_unit<float> alu;
  std::vector<ncl::matrix<float>> f, a1, a2, ao;  // per step
  std::vector<ncl::matrix<float>> regs;            // regs[t]: before step t (B, R n)
  std::vector<ncl::matrix<float>> u, v, o;         // per step (B, n)
  std::vector<index> rows, targets;                // the loss's register and value per element
  // Backward buffers: d regs before and after a step, d of the step's fields, scratch.
  ncl::matrix<float> d_after, d_before;
  std::vector<ncl::matrix<float>> df, da1, da2, dao;
  ncl::matrix<float> d_o, du, dv;
  struct slice_buffers {
    ncl::matrix<float> f, u, v, o, df, du, dv, dout;
  };
  std::vector<slice_buffers> scratch = std::vector<slice_buffers>(slices);

  explicit register_alu_run(index n_) : n(n_), alu(n_, ncl::alu::backend::table) {
    ncl::rng random(42);
    const index ops = static_cast<index>(ncl::alu::table_op_count);
    for (index t = 0; t < steps; ++t) {
      for (auto* field : {&f, &a1, &a2, &ao}) field->emplace_back();
      random_rows(f.back(), batch, ops, random);
      random_rows(a1.back(), batch, R, random);
      random_rows(a2.back(), batch, R, random);
      random_rows(ao.back(), batch, R, random);
      df.push_back(ncl::matrix<float>::Zero(batch, ops));
      for (auto* d : {&da1, &da2, &dao}) d->push_back(ncl::matrix<float>::Zero(batch, R));
    }
    regs.assign(steps + 1, ncl::matrix<float>::Zero(batch, R * n));
    u.assign(steps, ncl::matrix<float>(batch, n));
    v = o = u;
    for (index b = 0; b < batch; ++b) {
      for (index r = 0; r < R; ++r) regs[0](b, r * n + random.integer(0, n)) = 1.0f;
      rows.push_back(random.integer(0, R));
      targets.push_back(random.integer(0, n));
    }
    d_o.resize(batch, n);
    du.resize(batch, n);
    dv.resize(batch, n);
  }

  template <class Fn>
  void for_each_slice(Fn&& fn) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (index k = 0; k < slices; ++k) fn(batch * k / slices, batch * (k + 1) / slices, k);
  }

  void forward() {
    for_each_slice([&](index begin, index end, index k) {
      auto& s = scratch[static_cast<std::size_t>(k)];
      const index rows_in = end - begin;
      for (index t = 0; t < steps; ++t) {
        const auto i = static_cast<std::size_t>(t);
        for (index b = begin; b < end; ++b) {
          const float* r = regs[i].data() + b * R * n;
          ncl::machine::register_read_forward(u[i].data() + b * n, r, a1[i].data() + b * R, R, n);
          ncl::machine::register_read_forward(v[i].data() + b * n, r, a2[i].data() + b * R, R, n);
        }
        s.f = f[i].middleRows(begin, rows_in);
        s.u = u[i].middleRows(begin, rows_in);
        s.v = v[i].middleRows(begin, rows_in);
        alu.forward(s.o, s.f, s.u, s.v);
        o[i].middleRows(begin, rows_in) = s.o;
        for (index b = begin; b < end; ++b) {
          ncl::machine::register_write_forward(regs[i + 1].data() + b * R * n,
                                               regs[i].data() + b * R * n, ao[i].data() + b * R,
                                               1.0f, o[i].data() + b * n, R, n);
        }
      }
    });
  }

  /// Backward of loss = -sum_b log(R_T[b, rows_b, targets_b] + 1e-9) through the 16 steps.
  void backward() {
    d_after.setZero(batch, R * n);
    d_before.resize(batch, R * n);
    for (index b = 0; b < batch; ++b) {
      const index col = rows[static_cast<std::size_t>(b)] * n + targets[static_cast<std::size_t>(b)];
      d_after(b, col) = -1.0f / (regs[steps](b, col) + 1e-9f);
    }
    for_each_slice([&](index begin, index end, index k) {
      auto& s = scratch[static_cast<std::size_t>(k)];
      const index rows_in = end - begin;
      ncl::matrix<float>* after = &d_after;
      ncl::matrix<float>* before = &d_before;
      for (index t = steps - 1; t >= 0; --t) {
        const auto i = static_cast<std::size_t>(t);
        before->middleRows(begin, rows_in).setZero();
        d_o.middleRows(begin, rows_in).setZero();
        for (index b = begin; b < end; ++b) {
          float dw = 0.0f;  // w = 1 is a constant here
          ncl::machine::register_write_backward(
              before->data() + b * R * n, dao[i].data() + b * R, &dw, d_o.data() + b * n,
              after->data() + b * R * n, regs[i].data() + b * R * n, ao[i].data() + b * R, 1.0f,
              o[i].data() + b * n, R, n);
        }
        s.f = f[i].middleRows(begin, rows_in);
        s.u = u[i].middleRows(begin, rows_in);
        s.v = v[i].middleRows(begin, rows_in);
        s.dout = d_o.middleRows(begin, rows_in);
        s.df.setZero(rows_in, f[i].cols());
        s.du.setZero(rows_in, n);
        s.dv.setZero(rows_in, n);
        alu.backward(s.df, s.du, s.dv, s.dout, s.f, s.u, s.v);
        df[i].middleRows(begin, rows_in) += s.df;
        for (index b = begin; b < end; ++b) {
          const index r0 = b - begin;
          ncl::machine::register_reads_backward(
              before->data() + b * R * n, da1[i].data() + b * R, da2[i].data() + b * R,
              s.du.data() + r0 * n, s.dv.data() + r0 * n, regs[i].data() + b * R * n,
              a1[i].data() + b * R, a2[i].data() + b * R, R, n);
        }
        std::swap(after, before);
      }
    });
  }
};

void BM_register_alu_run16(benchmark::State& bench) {
  register_alu_run run(bench.range(0));
  for (auto _ : bench) {
    run.forward();
    benchmark::DoNotOptimize(run.regs.back().data());
  }
  bench.counters["steps"] = double(register_alu_run::steps);
  bench.counters["B"] = double(batch);
}

void BM_register_alu_run16_backward(benchmark::State& bench) {
  register_alu_run run(bench.range(0));
  for (auto _ : bench) {
    run.forward();
    run.backward();
    benchmark::DoNotOptimize(run.df[0].data());
  }
  bench.counters["steps"] = double(register_alu_run::steps);
  bench.counters["B"] = double(batch);
}

}  // namespace

BENCHMARK(BM_register_alu_run16)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_register_alu_run16_backward)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_step)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_step_backward)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_no_lanes)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_no_lanes)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_per_element)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_per_element)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_mean_field)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_mean_field)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_memory_n)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_memory_n)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_dense_alu)->Arg(16)->Arg(32)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_machine_run16_backward_dense_alu)->Arg(16)->Arg(32)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
