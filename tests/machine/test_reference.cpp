// The soft interpreter against the discrete reference, after every step, on every example
// program with one-hot fields: ISA.md requires them to agree bit for bit.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "ncl/machine/interpreter.hpp"
#include "ncl/machine/program.hpp"
#include "ncl/machine/reference.hpp"

using namespace ncl::machine;

namespace {

struct run_case {
  std::string file;
  std::vector<std::pair<int, std::int64_t>> registers;
  std::vector<std::int64_t> memory;
  std::int64_t steps;
};

}  // namespace

TEST_CASE("reference and soft interpreter agree after every step on every example",
          "[machine][reference][soft]") {
  const std::string dir = NCL_SOURCE_DIR "/examples/programs/";
  const std::vector<run_case> cases{
      {"factorial.s", {{0, 4}}, {}, 19},
      {"gcd.s", {{0, 24}, {1, 18}}, {}, 12},
      {"fibonacci.s", {{0, 7}}, {}, 46},
      {"fibonacci_recursive.s", {{0, 4}}, {}, 400},
      {"sum_list.s", {{1, 5}}, {3, 1, 4, 1, 5}, 33},
      {"bubble_sort.s", {{0, 5}}, {5, 3, 4, 1, 2}, 127},
      {"every_opcode.s", {}, {}, 28},
  };
  const machine_shape shape;
  for (const control_mode control : {control_mode::per_line, control_mode::mean_field}) {
    const soft_interpreter<double> soft(shape, ncl::alu::backend::table, control);
    for (const auto& c : cases) {
      INFO(c.file << " " << control_mode_name(control));
      const auto program = assemble_files({dir + c.file}, shape);
      const reference_machine reference(program, shape);
      machine_inputs inputs{std::vector<std::int64_t>(8, 0), std::vector<std::int64_t>(32, 0)};
      for (auto [r, v] : c.registers) inputs.registers[static_cast<std::size_t>(r)] = v;
      for (std::size_t m = 0; m < c.memory.size(); ++m) inputs.memory[m] = c.memory[m];
      reference_state expected = reference.initial_state(inputs);
      soft_state<double> state = initial_soft_state<double>(shape, program.entry, inputs);
      const soft_program<double> compiled = compile<double>(program, shape);
      std::int64_t mismatches = 0;
      for (std::int64_t t = 1; t <= c.steps && !expected.halted; ++t) {
        reference.step(expected);
        soft.step(state, compiled);
        const soft_state<double> want = to_soft_state<double>(expected, shape);
        const bool same = state.registers == want.registers && state.memory == want.memory &&
                          state.counter == want.counter && state.halted == want.halted;
        if (!same && mismatches++ == 0) FAIL_CHECK("first mismatch after step " << t);
      }
      CHECK(mismatches == 0);
      CHECK(expected.halted);
    }
  }
}

TEST_CASE("to_soft_state and bad reference states", "[machine][reference]") {
  machine_shape shape;
  shape.n = 8;
  shape.registers = 2;
  shape.memory = 3;
  shape.lines = 4;
  const reference_machine m(assemble("  INC r0, r0\n", shape), shape);
  reference_state s = m.initial_state({{5, 1}, {0, 7, 0}});
  m.step(s);
  const auto soft = to_soft_state<float>(s, shape);
  CHECK(soft.registers(0, 6) == 1.0f);
  CHECK(soft.registers(0, 8 + 1) == 1.0f);
  CHECK(soft.memory(0, 8 + 7) == 1.0f);
  CHECK(soft.counter(0, 1) == 1.0f);
  CHECK(soft.halted[0] == 0.0f);
  s.registers[0] = 8;
  CHECK_THROWS_AS(m.step(s), ncl::value_error);
  s.registers[0] = 0;
  s.memory.pop_back();
  CHECK_THROWS_AS(m.step(s), ncl::value_error);
}
