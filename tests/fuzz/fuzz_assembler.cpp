// libFuzzer target for the assembler, and for the two machines behind it.
//
// Input: five header bytes choose the machine shape (n in [2, 32], R in [2, 8], M, L, T <= 8),
// the ALU backend and the control mode; the rest is assembly text, split into files at form
// feeds ('\f'). Any input either assembles or throws ncl::parse_error "FILE:LINE:COL: error:"
// naming one of the files. An assembled program must
//   - fit the shape (at most L lines, every field in range, labels and entry on a line),
//   - assemble again from its own disassembly (format_instruction) to the same lines,
//   - start at a label when that label is named as the entry, and refuse an unknown entry,
//   - run for T steps on the reference interpreter and, compiled one-hot, on the soft
//     interpreter, from the same random registers and memory, with the two states equal
//     bit for bit after every step.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/alu/alu.hpp"
#include "ncl/machine/assembler.hpp"
#include "ncl/machine/interpreter.hpp"
#include "ncl/machine/program.hpp"
#include "ncl/machine/reference.hpp"

namespace {

using ncl::machine::assembled_program;
using ncl::machine::machine_shape;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_assembler: %s\n", what.c_str());
  std::abort();
}

std::vector<ncl::machine::source_file> split_files(std::string_view text) {
  std::vector<ncl::machine::source_file> files;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find('\f', start);
    files.push_back({"f" + std::to_string(files.size()) + ".s",
                     std::string(text.substr(start, end == std::string_view::npos ? end : end - start))});
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return files;
}

void check_fits(const assembled_program& p, const machine_shape& shape) {
  if (static_cast<std::int64_t>(p.lines.size()) > shape.lines) fail("more lines than L");
  if (p.source.size() != p.lines.size()) fail("source locations and lines differ in number");
  for (const auto& in : p.lines) {
    if (in.dst < 0 || in.dst >= shape.registers || in.a < 0 || in.a >= shape.registers ||
        in.b < 0 || in.b >= shape.registers || in.imm < 0 || in.imm >= shape.n) {
      fail("a field is out of range");
    }
  }
  for (const auto& [name, line] : p.labels) {
    if (line < 0 || line >= shape.lines) fail("label " + name + " is off the program");
  }
  if (p.entry < 0 || p.entry >= shape.lines) fail("entry is off the program");
}

/// The first difference between the soft state's element b and the reference state, or "".
std::string difference(const ncl::machine::soft_state<double>& s, const machine_shape& shape,
                       ncl::index b, const ncl::machine::reference_state& ref) {
  const std::int64_t n = shape.n;
  auto one_hot = [&](const auto& m, std::int64_t row, std::int64_t value, std::int64_t cells) {
    for (std::int64_t v = 0; v < cells; ++v) {
      if (m(b, row * cells + v) != (v == value ? 1.0 : 0.0)) return false;
    }
    return true;
  };
  for (std::int64_t r = 0; r < shape.registers; ++r) {
    if (!one_hot(s.registers, r, ref.registers[static_cast<std::size_t>(r)], n)) return "register " + std::to_string(r);
  }
  for (std::int64_t c = 0; c < shape.memory; ++c) {
    if (!one_hot(s.memory, c, ref.memory[static_cast<std::size_t>(c)], n)) return "memory " + std::to_string(c);
  }
  if (!one_hot(s.counter, 0, ref.pc, shape.lines)) return "counter";
  if (s.halted[static_cast<std::size_t>(b)] != (ref.halted ? 1.0 : 0.0)) return "halted";
  return {};
}

void run_both(const assembled_program& program, const machine_shape& shape, ncl::alu::backend alu,
              ncl::machine::control_mode control, std::uint64_t seed) {
  const ncl::machine::reference_machine reference(program, shape);
  const ncl::machine::soft_interpreter<double> machine(shape, alu, control);
  const auto soft = ncl::machine::compile<double>(program, shape);
  ncl::rng random(seed);
  constexpr ncl::index batch = 2;
  auto state = ncl::machine::initial_state<double>(shape, batch, program.entry);
  std::vector<ncl::machine::reference_state> refs;
  for (ncl::index b = 0; b < batch; ++b) {
    ncl::machine::machine_inputs inputs;
    for (std::int64_t r = 0; r < shape.registers; ++r) inputs.registers.push_back(random.integer(0, shape.n));
    for (std::int64_t c = 0; c < shape.memory; ++c) inputs.memory.push_back(random.integer(0, shape.n));
    refs.push_back(reference.initial_state(inputs));
    for (std::int64_t r = 0; r < shape.registers; ++r) {
      ncl::machine::set_register(state, shape, b, r, inputs.registers[static_cast<std::size_t>(r)]);
    }
    for (std::int64_t c = 0; c < shape.memory; ++c) {
      ncl::machine::set_memory(state, shape, b, c, inputs.memory[static_cast<std::size_t>(c)]);
    }
  }
  for (std::int64_t t = 0; t < shape.steps; ++t) {
    machine.step(state, soft);
    for (ncl::index b = 0; b < batch; ++b) {
      reference.step(refs[static_cast<std::size_t>(b)]);
      const std::string diff = difference(state, shape, b, refs[static_cast<std::size_t>(b)]);
      if (!diff.empty()) {
        fail("soft and reference machines differ at step " + std::to_string(t + 1) + ", element " +
             std::to_string(b) + ": " + diff);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  machine_shape shape;
  shape.n = 2 + data[0] % 31;
  shape.registers = 2 + data[1] % 7;
  shape.memory = 1 + data[2] % shape.n;
  shape.lines = 1 + data[3] % shape.n;
  shape.steps = data[4] % 9;
  const auto alu = static_cast<ncl::alu::backend>((data[4] >> 4) % 3);
  const auto control = (data[4] & 0x80) ? ncl::machine::control_mode::mean_field
                                         : ncl::machine::control_mode::per_line;
  const std::string_view text(reinterpret_cast<const char*>(data) + 5, size - 5);
  const auto files = split_files(text);

  assembled_program program;
  try {
    program = ncl::machine::assemble(files, shape);
  } catch (const ncl::parse_error& e) {
    bool named = false;
    for (const auto& f : files) named = named || e.file() == f.name;
    if (!named || e.line() < 1 || e.column() < 1) fail(std::string("error without a location: ") + e.what());
    return 0;
  }
  check_fits(program, shape);

  // Disassembly round trip: one line per instruction, numbers for targets.
  std::string listing;
  for (const auto& in : program.lines) listing += ncl::machine::format_instruction(in, shape) + "\n";
  try {
    const auto again = ncl::machine::assemble(listing, shape, "listing.s");
    if (again.lines != program.lines) fail("the disassembly assembles to other lines:\n" + listing);
  } catch (const ncl::parse_error& e) {
    fail(std::string("the disassembly does not assemble: ") + e.what() + "\n" + listing);
  }

  // Entry labels.
  if (!program.labels.empty()) {
    const auto& [name, line] = *program.labels.begin();
    const auto from_label = ncl::machine::assemble(files, shape, name);
    if (from_label.entry != line || from_label.lines != program.lines) fail("entry label " + name + " not honoured");
  }
  try {
    (void)ncl::machine::assemble(files, shape, "no_such_entry_label_");
    if (!program.labels.contains("no_such_entry_label_")) fail("an undefined entry label was accepted");
  } catch (const ncl::parse_error&) {
  }

  const bool power_of_two = (shape.n & (shape.n - 1)) == 0;
  run_both(program, shape, alu == ncl::alu::backend::circuit && !power_of_two ? ncl::alu::backend::table : alu,
           control, size * 1000003u + data[size - 1]);
  return 0;
}
