// libFuzzer target for soft program files (ncl::machine::parse_program, which load_program
// reads files with). Any byte string either parses or throws ncl::io_error naming the file; a
// parsed program has a valid shape, an entry on a line and five matrices of probability rows,
// and, when small, runs a few soft steps with every state row still a distribution.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ncl/machine/interpreter.hpp"
#include "ncl/machine/program.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_program: %s\n", what.c_str());
  std::abort();
}

void check_rows(const ncl::matrix<double>& m, ncl::index rows, ncl::index cols, const char* name) {
  if (m.rows() != rows || m.cols() != cols) fail(std::string("matrix '") + name + "' has the wrong shape");
  for (ncl::index r = 0; r < rows; ++r) {
    double total = 0;
    for (ncl::index c = 0; c < cols; ++c) {
      if (!(m(r, c) >= -1e-6 && m(r, c) <= 1 + 1e-6)) fail(std::string("matrix '") + name + "' holds a non-probability");
      total += m(r, c);
    }
    if (std::abs(total - 1) > 1e-3) fail(std::string("a row of '") + name + "' does not sum to 1");
  }
}

void check_distributions(const ncl::matrix<double>& m, ncl::index width, const char* name) {
  for (ncl::index r = 0; r < m.rows(); ++r) {
    for (ncl::index start = 0; start < m.cols(); start += width) {
      double total = 0;
      for (ncl::index c = start; c < start + width; ++c) {
        if (!std::isfinite(m(r, c))) fail(std::string("state '") + name + "' is not finite");
        total += m(r, c);
      }
      if (std::abs(total - 1) > 1e-2) fail(std::string("state '") + name + "' is no longer a distribution");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ncl::machine::stored_program<double> stored;
  try {
    stored = ncl::machine::parse_program<double>(text, "fuzz.json");
  } catch (const ncl::io_error& e) {
    if (std::string_view(e.what()).substr(0, 10) != "fuzz.json:") fail(std::string("error without the file name: ") + e.what());
    return 0;
  }
  const auto& shape = stored.shape;
  try {
    shape.validate();
  } catch (const ncl::value_error& e) {
    fail(std::string("a parsed program has an invalid shape: ") + e.what());
  }
  if (stored.entry < 0 || stored.entry >= shape.lines) fail("entry off the program");
  const auto& p = stored.program;
  check_rows(p.op, shape.lines, static_cast<ncl::index>(ncl::alu::opcode_count), "op");
  check_rows(p.dst, shape.lines, shape.registers, "dst");
  check_rows(p.a, shape.lines, shape.registers, "a");
  check_rows(p.b, shape.lines, shape.registers, "b");
  check_rows(p.imm, shape.lines, shape.n, "imm");
  if (shape.n > 64 || shape.registers > 16) return 0;  // keep each run fast
  const ncl::machine::soft_interpreter<double> machine(shape);
  auto state = ncl::machine::initial_state<double>(shape, 1, stored.entry);
  for (std::int64_t t = 0; t < std::min<std::int64_t>(shape.steps, 4); ++t) machine.step(state, p);
  check_distributions(state.registers, shape.n, "registers");
  check_distributions(state.memory, shape.n, "memory");
  check_distributions(state.counter, shape.lines, "counter");
  return 0;
}
