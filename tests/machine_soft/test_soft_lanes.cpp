// The machine's 16-lane path (interpreter_lanes.hpp) against its per-element step: the same
// states after run, on dense random soft programs and states, in double and float, for
// batches that fill chunks, leave partial chunks and split into threaded slices, and for
// shapes with M < n, M = n, L < n; and the same bits for any thread count.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "../test_threads.hpp"
#include "soft_test_util.hpp"

namespace {

using ncl::machine::machine_shape;
using ncl::machine::soft_program;
using ncl::machine::soft_state;

template <class S>
void random_rows(ncl::matrix<S>& m, ncl::index rows, ncl::index cols, ncl::rng& random) {
  m.resize(rows, cols);
  for (ncl::index r = 0; r < rows; ++r) {
    S total = 0;
    for (ncl::index c = 0; c < cols; ++c) total += m(r, c) = S(std::exp(1.5 * random.normal()));
    m.row(r) /= total;
  }
}

template <class S>
soft_program<S> random_soft_program(const machine_shape& shape, ncl::rng& random) {
  soft_program<S> p;
  random_rows(p.op, shape.lines, 23, random);
  random_rows(p.dst, shape.lines, shape.registers, random);
  random_rows(p.a, shape.lines, shape.registers, random);
  random_rows(p.b, shape.lines, shape.registers, random);
  random_rows(p.imm, shape.lines, shape.n, random);
  return p;
}

template <class S>
soft_state<S> random_soft_state(const machine_shape& shape, ncl::index batch, ncl::rng& random) {
  auto s = ncl::machine::initial_state<S>(shape, batch);
  ncl::matrix<S> rows;
  random_rows(rows, batch * shape.registers, shape.n, random);
  s.registers = Eigen::Map<ncl::matrix<S>>(rows.data(), batch, shape.registers * shape.n);
  random_rows(rows, batch * shape.memory, shape.n, random);
  s.memory = Eigen::Map<ncl::matrix<S>>(rows.data(), batch, shape.memory * shape.n);
  random_rows(s.counter, batch, shape.lines, random);
  for (auto& h : s.halted) h = S(random.uniform());
  return s;
}

template <class S>
double max_difference(const soft_state<S>& x, const soft_state<S>& y) {
  double worst = (x.registers - y.registers).cwiseAbs().maxCoeff();
  worst = std::max<double>(worst, (x.memory - y.memory).cwiseAbs().maxCoeff());
  worst = std::max<double>(worst, (x.counter - y.counter).cwiseAbs().maxCoeff());
  for (std::size_t b = 0; b < x.halted.size(); ++b) {
    worst = std::max<double>(worst, std::abs(x.halted[b] - y.halted[b]));
  }
  return worst;
}

machine_shape shape_of(std::int64_t n, std::int64_t R, std::int64_t M, std::int64_t L) {
  machine_shape s;
  s.n = n;
  s.registers = R;
  s.memory = M;
  s.lines = L;
  return s;
}

template <class S>
void check_run(const machine_shape& shape, ncl::index batch, std::int64_t steps, ncl::index slices,
               double tolerance, std::uint64_t seed) {
  ncl::rng random(seed);
  const auto program = random_soft_program<S>(shape, random);
  const auto initial = random_soft_state<S>(shape, batch, random);
  ncl::machine::soft_interpreter<S> lanes(shape), elements(shape);
  elements.set_lane_path(false);
  lanes.set_slices(slices);
  auto x = initial, y = initial;
  const auto ran_lanes = lanes.run(x, program, steps);
  const auto ran_elements = elements.run(y, program, steps);
  CHECK(ran_lanes == ran_elements);
  CHECK(max_difference(x, y) < tolerance);
}

/// A count-down loop (DEC r0; JNZ r0 -> 0; HALT) from r0 = b % period + 1 for element b: the
/// longest count, period, halts after 2 period + 1 steps.
template <class S>
std::pair<soft_program<S>, soft_state<S>> count_down(const machine_shape& shape, ncl::index batch,
                                                     ncl::index period) {
  using soft_test::instruction;
  using ncl::alu::opcode;
  const std::vector<instruction> lines = {{opcode::DEC, 0, 0, 0, 0},
                                          {opcode::JNZ, 0, 0, 0, 0},
                                          {opcode::HALT, 0, 0, 0, 0}};
  auto initial = ncl::machine::initial_state<S>(shape, batch);
  for (ncl::index b = 0; b < batch; ++b) {
    ncl::machine::set_register(initial, shape, b, 0, b % period + 1);
  }
  return {soft_test::one_hot_program<S>(lines, shape), initial};
}

}  // namespace

TEST_CASE("lane path: run equals the per-element step on random soft programs (double)",
          "[machine_soft][lanes]") {
  std::uint64_t seed = 1;
  for (const auto& shape : {shape_of(8, 4, 8, 8), shape_of(16, 8, 16, 16), shape_of(16, 3, 5, 7),
                            shape_of(32, 8, 32, 32), shape_of(24, 6, 7, 24)}) {
    for (ncl::index batch : {1, 5, 16, 17, 40}) {
      for (ncl::index slices : {1, 2, 3}) {
        INFO("n " << shape.n << " R " << shape.registers << " M " << shape.memory << " L "
                  << shape.lines << " B " << batch << " slices " << slices);
        check_run<double>(shape, batch, 2, slices, 1e-13, seed++);
        check_run<double>(shape, batch, 9, slices, 1e-12, seed++);
      }
    }
  }
}

TEST_CASE("lane path: run equals the per-element step in float", "[machine_soft][lanes]") {
  std::uint64_t seed = 100;
  for (const auto& shape : {shape_of(16, 8, 16, 16), shape_of(64, 8, 32, 64)}) {
    for (ncl::index batch : {3, 32}) {
      INFO("n " << shape.n << " B " << batch);
      check_run<float>(shape, batch, 16, 2, 2e-5, seed++);
    }
  }
}

TEST_CASE("lane path: one-hot programs run exactly, and halt early as the per-element step",
          "[machine_soft][lanes]") {
  const auto shape = shape_of(16, 4, 8, 8);
  const auto [program, initial] = count_down<float>(shape, 21, 7);
  ncl::machine::soft_interpreter<float> lanes(shape), elements(shape);
  elements.set_lane_path(false);
  for (ncl::index slices : {1, 2}) {
    lanes.set_slices(slices);
    auto x = initial, y = initial;
    const auto ran = lanes.run(x, program, 40);
    CHECK(ran == elements.run(y, program, 40));
    CHECK(ran == 2 * 7 + 1);  // the longest count (7) halts after 15 steps
    CHECK(max_difference(x, y) == 0.0);
    CHECK(ncl::machine::all_halted(x));
    // No step: the state stays as it is.
    auto z = initial;
    CHECK(lanes.run(z, program, 0) == 0);
    CHECK(max_difference(z, initial) == 0.0);
  }
}

namespace {

template <class S>
soft_state<S> random_gradient(const machine_shape& shape, ncl::index batch, ncl::rng& random) {
  auto d = ncl::machine::zero_state<S>(shape, batch);
  for (auto* m : {&d.registers, &d.memory, &d.counter}) {
    for (ncl::index i = 0; i < m->size(); ++i) m->data()[i] = S(random.normal());
  }
  for (auto& h : d.halted) h = S(random.normal());
  return d;
}

template <class M>
double relative_difference(const M& x, const M& y) {
  const double scale = std::max(1.0, double(y.cwiseAbs().maxCoeff()));
  return double((x - y).cwiseAbs().maxCoeff()) / scale;
}

/// unroll_forward + unroll_backward on the lane path against the per-element step: the
/// final state, the program's gradient (or none: frozen) and the initial state's gradient.
template <class S>
void check_unroll(const machine_shape& shape, ncl::index batch, std::int64_t steps,
                  ncl::index slices, bool frozen, double tolerance, std::uint64_t seed) {
  ncl::rng random(seed);
  const auto program = random_soft_program<S>(shape, random);
  const auto initial = random_soft_state<S>(shape, batch, random);
  const auto dfinal = random_gradient<S>(shape, batch, random);
  ncl::machine::soft_interpreter<S> lanes(shape), elements(shape);
  elements.set_lane_path(false);
  lanes.set_slices(slices);
  ncl::machine::machine_tape<S> lane_tape, element_tape;
  lanes.unroll_forward(lane_tape, initial, program, steps);
  elements.unroll_forward(element_tape, initial, program, steps);
  REQUIRE(lane_tape.steps == element_tape.steps);
  CHECK(max_difference(lane_tape.final_state(), element_tape.final_state()) <= tolerance);
  CHECK(max_difference(lane_tape.initial_state(), initial) == 0.0);
  const ncl::index programs = frozen ? 0 : 1;
  auto g_lanes = ncl::machine::machine_gradients<S>::zeros(shape, batch, programs);
  auto g_elements = ncl::machine::machine_gradients<S>::zeros(shape, batch, programs);
  lanes.unroll_backward(g_lanes, lane_tape, dfinal);
  elements.unroll_backward(g_elements, element_tape, dfinal);
  CHECK(relative_difference(g_lanes.initial.registers, g_elements.initial.registers) <= tolerance);
  CHECK(relative_difference(g_lanes.initial.memory, g_elements.initial.memory) <= tolerance);
  CHECK(relative_difference(g_lanes.initial.counter, g_elements.initial.counter) <= tolerance);
  if (frozen) return;
  const auto& a = g_lanes.programs[0];
  const auto& b = g_elements.programs[0];
  CHECK(relative_difference(a.op, b.op) <= tolerance);
  CHECK(relative_difference(a.dst, b.dst) <= tolerance);
  CHECK(relative_difference(a.a, b.a) <= tolerance);
  CHECK(relative_difference(a.b, b.b) <= tolerance);
  CHECK(relative_difference(a.imm, b.imm) <= tolerance);
  CHECK(a.op.cwiseAbs().maxCoeff() > 0);
}

}  // namespace

TEST_CASE("lane path: unroll_backward equals the per-element step's (double)",
          "[machine_soft][lanes]") {
  std::uint64_t seed = 200;
  for (const auto& shape : {shape_of(8, 4, 8, 8), shape_of(16, 3, 5, 7), shape_of(24, 6, 7, 24)}) {
    for (ncl::index batch : {1, 16, 17, 40}) {
      for (ncl::index slices : {1, 3}) {
        for (bool frozen : {false, true}) {
          INFO("n " << shape.n << " R " << shape.registers << " M " << shape.memory << " L "
                    << shape.lines << " B " << batch << " slices " << slices << " frozen "
                    << frozen);
          check_unroll<double>(shape, batch, 7, slices, frozen, 1e-11, seed++);
        }
      }
    }
  }
  // More chunk steps than one flush of the program-gradient buffers holds (32).
  check_unroll<double>(shape_of(8, 4, 8, 8), 40, 20, 1, false, 1e-11, seed++);
  // No steps (the per-element path): the gradient passes through.
  check_unroll<double>(shape_of(8, 4, 8, 8), 5, 0, 1, true, 0.0, seed++);
}

TEST_CASE("lane path: unroll_backward in float, as the benchmark runs it", "[machine_soft][lanes]") {
  check_unroll<float>(shape_of(32, 8, 32, 32), 32, 16, 2, false, 2e-4, 300);
}

TEST_CASE("lane path: backward after an early stop is backward over the steps run",
          "[machine_soft][lanes]") {
  const auto shape = shape_of(16, 4, 8, 8);
  const ncl::index batch = 18;
  const auto [program, initial] = count_down<double>(shape, batch, 5);
  ncl::rng random(5);
  const auto dfinal = random_gradient<double>(shape, batch, random);
  ncl::machine::soft_interpreter<double> lanes(shape), elements(shape);
  elements.set_lane_path(false);
  ncl::machine::machine_tape<double> lane_tape, element_tape;
  lanes.unroll_forward(lane_tape, initial, program, 100);
  elements.unroll_forward(element_tape, initial, program, 100);
  REQUIRE(lane_tape.steps == 11);  // the longest count (5) halts after 11 steps
  REQUIRE(element_tape.steps == 11);
  CHECK(max_difference(lane_tape.final_state(), element_tape.final_state()) == 0.0);
  auto g_lanes = ncl::machine::machine_gradients<double>::zeros(shape, batch, 1);
  auto g_elements = ncl::machine::machine_gradients<double>::zeros(shape, batch, 1);
  lanes.unroll_backward(g_lanes, lane_tape, dfinal);
  elements.unroll_backward(g_elements, element_tape, dfinal);
  CHECK(relative_difference(g_lanes.programs[0].op, g_elements.programs[0].op) < 1e-12);
  CHECK(relative_difference(g_lanes.programs[0].imm, g_elements.programs[0].imm) < 1e-12);
  CHECK(relative_difference(g_lanes.initial.registers, g_elements.initial.registers) < 1e-12);
}

TEST_CASE("lane path: backward on a machine that cannot read the lane tape is a clear error",
          "[machine_soft][lanes]") {
  const auto shape = shape_of(8, 4, 8, 8);
  ncl::rng random(9);
  const auto program = random_soft_program<double>(shape, random);
  const auto initial = random_soft_state<double>(shape, 3, random);
  ncl::machine::soft_interpreter<double> lanes(shape);
  ncl::machine::machine_tape<double> tape;
  lanes.unroll_forward(tape, initial, program, 4);
  const auto dfinal = random_gradient<double>(shape, 3, random);
  auto grads = ncl::machine::machine_gradients<double>::zeros(shape, 3, 1);
  const ncl::machine::soft_interpreter<double> dense(shape, ncl::alu::backend::dense_table);
  CHECK_THROWS_WITH(dense.unroll_backward(grads, tape, dfinal),
                    Catch::Contains("recorded on the lane path") && Catch::Contains("dense"));
  const ncl::machine::soft_interpreter<double> mean_field(
      shape, ncl::alu::backend::table, ncl::machine::control_mode::mean_field);
  CHECK_THROWS_WITH(mean_field.unroll_backward(grads, tape, dfinal),
                    Catch::Contains("mean_field control"));
  CHECK_NOTHROW(lanes.unroll_backward(grads, tape, dfinal));
}

namespace {

template <class M>
bool same_bits(const M& x, const M& y) {
  return x.rows() == y.rows() && x.cols() == y.cols() &&
         std::memcmp(x.data(), y.data(), sizeof(typename M::Scalar) * static_cast<std::size_t>(x.size())) == 0;
}

}  // namespace

TEST_CASE("the machine's run and unroll give the same bits for 1, 2 and 3 threads",
          "[machine_soft][lanes][determinism]") {
  // B = 70 in the default slicing (one slice per 16 elements once the work pays for
  // threads: five slices here), with program gradients summed over the slices; on the lane
  // path and element by element.
  const auto shape = shape_of(32, 6, 8, 24);
  const ncl::index batch = 70;
  const std::int64_t steps = 9;
  ncl::rng random(77);
  const auto program = random_soft_program<float>(shape, random);
  const auto initial = random_soft_state<float>(shape, batch, random);
  const auto dfinal = random_gradient<float>(shape, batch, random);
  for (bool lane_path : {true, false}) {
    struct result {
      soft_state<float> run;
      ncl::machine::machine_gradients<float> grads;
    };
    std::vector<result> results;
    for (int threads : {1, 2, 3}) {
      ncl_test::with_threads(threads, [&] {
        ncl::machine::soft_interpreter<float> machine(shape);
        machine.set_lane_path(lane_path);
        result r{initial, ncl::machine::machine_gradients<float>::zeros(shape, batch, 1)};
        machine.run(r.run, program, steps);
        ncl::machine::machine_tape<float> tape;
        machine.unroll_forward(tape, initial, program, steps);
        machine.unroll_backward(r.grads, tape, dfinal);
        results.push_back(std::move(r));
      });
    }
    for (std::size_t k = 1; k < results.size(); ++k) {
      INFO("lane path " << lane_path << ", " << k + 1 << " threads against 1");
      const auto &x = results[k], &y = results[0];
      CHECK(same_bits(x.run.registers, y.run.registers));
      CHECK(same_bits(x.run.memory, y.run.memory));
      CHECK(same_bits(x.run.counter, y.run.counter));
      CHECK(x.run.halted == y.run.halted);
      CHECK(same_bits(x.grads.initial.registers, y.grads.initial.registers));
      CHECK(same_bits(x.grads.initial.memory, y.grads.initial.memory));
      CHECK(same_bits(x.grads.initial.counter, y.grads.initial.counter));
      const auto &a = x.grads.programs[0], &b = y.grads.programs[0];
      CHECK(same_bits(a.op, b.op));
      CHECK(same_bits(a.dst, b.dst));
      CHECK(same_bits(a.a, b.a));
      CHECK(same_bits(a.b, b.b));
      CHECK(same_bits(a.imm, b.imm));
    }
  }
}
