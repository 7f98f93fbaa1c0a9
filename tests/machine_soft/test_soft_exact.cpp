// On one-hot programs and inputs the soft machine is the discrete machine, bit for bit,
// after every step (ISA.md "One step"): random straight-line and looping programs over many
// seeds, float and double, both control modes, every ALU backend, shared and per-element
// programs.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "soft_test_util.hpp"

namespace {

using ncl::alu::backend;
using ncl::machine::control_mode;
using ncl::machine::machine_shape;
using namespace soft_test;

struct exact_case {
  machine_shape shape;
  backend alu = backend::table;
  control_mode control = control_mode::per_line;
  bool with_control = true;
  bool per_element_programs = false;
  int seeds = 20;
  int steps = 24;
  ncl::index batch = 4;
  ncl::index slices = 0;  // 0: the interpreter's choice
  bool threads = true;    // step the slices on threads (slow on a loaded machine)
  // Steps per call: 1 (step) runs element by element; 2 (run) takes the 16-lane path for
  // per-line control, the table ALU and a shared program (compared every 2 steps then).
  int stride = 1;
};

/// Runs `seeds` random programs step by step beside the private simulator; returns the first
/// mismatch ("" when none).
template <class S>
std::string compare_runs(const exact_case& c) {
  ncl::machine::soft_interpreter<S> interpreter(c.shape, c.alu, c.control);
  interpreter.set_slices(c.slices, c.threads);
  for (int seed = 0; seed < c.seeds; ++seed) {
    ncl::rng random(static_cast<std::uint64_t>(seed) * 7919 + 17);
    const ncl::index programs_count = c.per_element_programs ? c.batch : 1;
    std::vector<std::vector<instruction>> programs;
    std::vector<ncl::machine::soft_program<S>> soft;
    for (ncl::index p = 0; p < programs_count; ++p) {
      programs.push_back(random_program(random, c.shape, c.with_control));
      soft.push_back(one_hot_program<S>(programs.back(), c.shape));
    }
    std::vector<machine> machines;
    auto state = ncl::machine::initial_state<S>(c.shape, c.batch);
    for (ncl::index b = 0; b < c.batch; ++b) {
      machines.push_back(random_machine(random, c.shape));
      load(state, c.shape, b, machines.back());
    }
    for (int t = 0; t < c.steps; t += c.stride) {
      // A run that stops early (every element halted) leaves a state HALT keeps as it is.
      interpreter.run(state, std::span<const ncl::machine::soft_program<S>>(soft), c.stride);
      for (ncl::index b = 0; b < c.batch; ++b) {
        auto& m = machines[static_cast<std::size_t>(b)];
        for (int k = 0; k < c.stride; ++k) {
          m.step(programs[static_cast<std::size_t>(c.per_element_programs ? b : 0)], c.shape);
        }
        const std::string diff = difference(state, c.shape, b, m);
        if (!diff.empty()) {
          return ncl::detail::concat("seed ", seed, ", step ", t + c.stride, ", element ", b, ": ",
                                     diff);
        }
      }
    }
  }
  return {};
}

template <class S>
void check_exact(exact_case c) {
  for (control_mode mode : {control_mode::per_line, control_mode::mean_field}) {
    c.control = mode;
    INFO("control " << ncl::machine::control_mode_name(mode) << ", ALU "
                    << ncl::alu::backend_name(c.alu) << ", n " << c.shape.n << ", L "
                    << c.shape.lines << ", M " << c.shape.memory);
    CHECK(compare_runs<S>(c) == "");
  }
}

machine_shape small_shape(std::int64_t n, std::int64_t R, std::int64_t M, std::int64_t L) {
  machine_shape s;
  s.n = n;
  s.registers = R;
  s.memory = M;
  s.lines = L;
  s.steps = 32;
  return s;
}

}  // namespace

TEST_CASE("soft machine equals the discrete machine on straight-line programs",
          "[machine_soft][exact]") {
  exact_case c;
  c.shape = small_shape(12, 5, 7, 10);  // n, M, L not powers of two; L < n wraps lines()
  c.with_control = false;
  c.seeds = 40;
  c.steps = 12;
  check_exact<float>(c);
  check_exact<double>(c);
}

TEST_CASE("soft machine equals the discrete machine on looping programs", "[machine_soft][exact]") {
  exact_case c;
  c.shape = small_shape(12, 5, 7, 10);
  c.seeds = 60;
  c.steps = 30;
  check_exact<float>(c);
  check_exact<double>(c);
  c.shape = small_shape(16, 4, 16, 16);  // L = n, M = n
  c.seeds = 30;
  check_exact<float>(c);
}

TEST_CASE("soft machine is exact with one program per batch element", "[machine_soft][exact]") {
  exact_case c;
  c.shape = small_shape(10, 4, 5, 9);
  c.per_element_programs = true;
  c.batch = 5;
  c.seeds = 25;
  check_exact<float>(c);
  check_exact<double>(c);
}

TEST_CASE("soft machine is exact with the batch split into thread slices", "[machine_soft][exact]") {
  exact_case c;
  c.shape = small_shape(12, 5, 7, 10);
  c.batch = 7;
  c.slices = 3;
  c.threads = false;
  c.seeds = 20;
  check_exact<float>(c);
  c.per_element_programs = true;
  check_exact<double>(c);
  c.threads = true;  // and once on real threads
  c.seeds = 2;
  c.steps = 10;
  check_exact<float>(c);
}

TEST_CASE("soft machine is exact with every ALU backend", "[machine_soft][exact]") {
  for (backend alu : {backend::dense_table, backend::circuit}) {
    exact_case c;
    c.shape = small_shape(8, 4, 8, 8);  // the circuit backend needs n a power of two
    c.alu = alu;
    c.seeds = 12;
    c.steps = 20;
    check_exact<float>(c);
    check_exact<double>(c);
  }
}

TEST_CASE("soft machine is exact on its 16-lane path", "[machine_soft][exact][lanes]") {
  exact_case c;
  c.stride = 2;
  c.shape = small_shape(12, 5, 7, 10);
  c.seeds = 40;
  c.steps = 30;
  check_exact<float>(c);
  check_exact<double>(c);
  c.with_control = false;
  check_exact<float>(c);
  c.with_control = true;
  c.shape = small_shape(16, 4, 16, 16);
  c.batch = 21;  // a full chunk and a partial one
  c.seeds = 15;
  check_exact<float>(c);
  c.slices = 2;  // one chunk per thread
  check_exact<double>(c);
}
