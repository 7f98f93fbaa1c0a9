// The soft machine against the discrete reference interpreter (ncl/machine/reference.hpp):
// every example program and standard-library file, compiled one-hot, with random inputs,
// and random programs, compared exactly after every step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "ncl/machine/assembler.hpp"
#include "ncl/machine/program.hpp"
#include "ncl/machine/reference.hpp"
#include "soft_test_util.hpp"

namespace {

using ncl::alu::backend;
using ncl::machine::assembled_program;
using ncl::machine::control_mode;
using ncl::machine::machine_shape;
using ncl::machine::reference_machine;
using ncl::machine::reference_state;

/// Empty when element b of the soft state equals the reference state exactly.
template <class S>
std::string difference(const ncl::machine::soft_state<S>& state, const machine_shape& shape,
                       ncl::index b, const reference_state& ref) {
  soft_test::machine m;
  m.regs = ref.registers;
  m.mem = ref.memory;
  m.pc = ref.pc;
  m.halted = ref.halted;
  return soft_test::difference(state, shape, b, m);
}

/// Runs `program` on `batch` random inputs for `steps` steps in both machines; returns the
/// first mismatch.
template <class S>
std::string compare(const assembled_program& program, const machine_shape& shape, backend alu,
                    control_mode control, ncl::index batch, std::int64_t steps,
                    std::uint64_t seed) {
  const reference_machine reference(program, shape);
  const ncl::machine::soft_interpreter<S> machine(shape, alu, control);
  const auto soft = ncl::machine::compile<S>(program, shape);
  ncl::rng random(seed);
  std::vector<reference_state> refs;
  auto state = ncl::machine::initial_state<S>(shape, batch, program.entry);
  for (ncl::index b = 0; b < batch; ++b) {
    const auto m = soft_test::random_machine(random, shape);
    refs.push_back(reference.initial_state({m.regs, m.mem}));
    soft_test::load(state, shape, b, m);
  }
  for (std::int64_t t = 0; t < steps; ++t) {
    machine.step(state, soft);
    for (ncl::index b = 0; b < batch; ++b) {
      auto& ref = refs[static_cast<std::size_t>(b)];
      reference.step(ref);
      const std::string diff = difference(state, shape, b, ref);
      if (!diff.empty()) {
        return ncl::detail::concat("step ", t + 1, ", element ", b, ": ", diff);
      }
    }
  }
  return {};
}

std::vector<std::filesystem::path> sources_in(const std::filesystem::path& folder) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() == ".s") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void check_folder(const std::filesystem::path& folder, std::int64_t steps) {
  const auto files = sources_in(folder);
  REQUIRE(files.size() >= 5);
  machine_shape shape;  // ncl-run's defaults: n = 32, R = 8, M = 32, L = 32
  std::uint64_t seed = 1;
  for (const auto& file : files) {
    const auto program = ncl::machine::assemble_files({file.string()}, shape);
    for (control_mode control : {control_mode::per_line, control_mode::mean_field}) {
      INFO(file.filename().string() << ", control " << ncl::machine::control_mode_name(control));
      CHECK(compare<float>(program, shape, backend::table, control, 3, steps, ++seed) == "");
      CHECK(compare<double>(program, shape, backend::table, control, 2, steps, ++seed) == "");
    }
  }
}

}  // namespace

TEST_CASE("soft machine equals the reference on every example program",
          "[machine_soft][reference]") {
  check_folder(std::filesystem::path(NCL_SOURCE_DIR) / "examples" / "programs", 80);
}

TEST_CASE("soft machine equals the reference on every standard-library file",
          "[machine_soft][reference]") {
  check_folder(std::filesystem::path(NCL_SOURCE_DIR) / "share" / "ncl" / "stdlib", 80);
}

TEST_CASE("soft machine equals the reference with the circuit and dense ALUs",
          "[machine_soft][reference]") {
  machine_shape shape;
  shape.n = 16;
  shape.memory = 16;
  shape.lines = 16;
  const auto program = ncl::machine::assemble_files(
      {std::string(NCL_SOURCE_DIR) + "/examples/programs/gcd.s"}, shape);
  for (backend alu : {backend::circuit, backend::dense_table}) {
    INFO("ALU " << ncl::alu::backend_name(alu));
    CHECK(compare<float>(program, shape, alu, control_mode::per_line, 3, 40, 7) == "");
    CHECK(compare<double>(program, shape, alu, control_mode::mean_field, 2, 40, 8) == "");
  }
}

TEST_CASE("soft machine equals the reference on random programs", "[machine_soft][reference]") {
  machine_shape shape;
  shape.n = 12;
  shape.registers = 5;
  shape.memory = 7;
  shape.lines = 10;
  for (int seed = 0; seed < 40; ++seed) {
    ncl::rng random(static_cast<std::uint64_t>(seed) + 1000);
    assembled_program program;
    program.shape = shape;
    for (const auto& in : soft_test::random_program(random, shape, seed % 4 != 0)) {
      program.lines.push_back({in.op, static_cast<int>(in.dst), static_cast<int>(in.a),
                               static_cast<int>(in.b), in.imm});
    }
    program.source.resize(program.lines.size());
    const auto control = seed % 2 == 0 ? control_mode::per_line : control_mode::mean_field;
    INFO("seed " << seed);
    CHECK(compare<float>(program, shape, backend::table, control, 3, 30,
                         static_cast<std::uint64_t>(seed)) == "");
  }
}
