// The program library (paper section 3.1): assembly programs linked once into one program
// tensor with named entry points. Choosing a program is a distribution over entry points that
// becomes the initial instruction counter, and inputs are distributions written into argument
// registers, so both selection and inputs are differentiable:
//   c0 = p_select E,   E (entries, L) the one-hot rows of the entry lines
//   R0[arg_i] = x_i    (every other register one-hot on 0)
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/machine/assembler.hpp"
#include "ncl/machine/program.hpp"
#include "ncl/machine/shape.hpp"

namespace ncl::library {

struct entry_point {
  std::string name;  ///< the program's label
  index line = 0;    ///< its first line in the linked program
};

/// A linked library: the assembled program, its shape and its entry points in selection order.
struct program_library {
  machine::assembled_program program;
  machine::machine_shape shape;
  std::vector<entry_point> entries;

  /// Index of the entry point named `name`; value_error naming the choices if there is none.
  std::size_t entry_index(std::string_view name) const {
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].name == name) return i;
    }
    std::string choices;
    for (const auto& e : entries) choices += (choices.empty() ? "" : ", ") + e.name;
    throw value_error(ncl::detail::concat("program_library: no entry point '", name,
                                          "'; entry points: ", choices));
  }

  /// The exact (one-hot) program tensor.
  template <class S>
  machine::soft_program<S> compile() const {
    return machine::compile<S>(program, shape);
  }
};

/// The directory of the standard library (*.s): $NCL_STDLIB if set, else where the build or
/// the install put share/ncl/stdlib.
inline std::filesystem::path stdlib_directory() {
  if (const char* env = std::getenv("NCL_STDLIB"); env && *env) return env;
#ifdef NCL_STDLIB_DIR
  return NCL_STDLIB_DIR;
#else
  throw io_error("stdlib_directory: set NCL_STDLIB to the folder of ncl's stdlib/*.s");
#endif
}

/// The standard library's files in link order and its entry points in selection order.
inline const std::vector<std::string>& stdlib_files() {
  static const std::vector<std::string> files{"power.s",   "absdiff.s", "factorial.s",
                                              "gcd.s",     "fibonacci.s", "list.s",
                                              "reverse.s", "sort.s",    "search.s"};
  return files;
}
inline const std::vector<std::string>& stdlib_entry_points() {
  static const std::vector<std::string> names{"power",    "absdiff",  "factorial", "gcd",
                                              "fib",      "list_sum", "list_min",  "list_max",
                                              "reverse",  "sort",     "search"};
  return names;
}

/// Links assembly files (in order, labels global) and names `entry_names` as entry points.
inline program_library link_library(const std::vector<machine::source_file>& files,
                                    const machine::machine_shape& shape,
                                    const std::vector<std::string>& entry_names) {
  program_library lib{machine::assemble(files, shape), shape, {}};
  if (entry_names.empty()) throw value_error("link_library: no entry points named");
  for (const auto& name : entry_names) {
    const auto it = lib.program.labels.find(name);
    if (it == lib.program.labels.end()) {
      throw value_error(ncl::detail::concat("link_library: entry point '", name,
                                            "' is not a label of the linked files"));
    }
    lib.entries.push_back({name, it->second});
  }
  return lib;
}

/// The stdlib file that defines each entry point.
inline std::string stdlib_file_of(std::string_view entry) {
  if (entry.starts_with("list_")) return "list.s";
  if (entry == "fib") return "fibonacci.s";
  for (const auto& name : stdlib_entry_points()) {
    if (name == entry) return std::string(entry) + ".s";
  }
  throw value_error(ncl::detail::concat("stdlib: no program named '", entry, "'"));
}

/// The stdlib source files that define `entry_names`, read from `directory`, in
/// stdlib_files() order.
inline std::vector<machine::source_file> stdlib_sources(const std::vector<std::string>& entry_names,
                                                        const std::filesystem::path& directory = stdlib_directory()) {
  std::vector<std::string> needed;
  for (const auto& e : entry_names) needed.push_back(stdlib_file_of(e));
  std::vector<machine::source_file> files;
  for (const auto& f : stdlib_files()) {
    if (std::find(needed.begin(), needed.end(), f) != needed.end()) {
      files.push_back(machine::read_source((directory / f).string()));
    }
  }
  return files;
}

/// Links the standard library from `directory`: the files that define `entry_names` (all of
/// stdlib_entry_points() if empty), in stdlib_files() order, with those entry points.
inline program_library link_stdlib(const machine::machine_shape& shape,
                                   std::vector<std::string> entry_names = {},
                                   const std::filesystem::path& directory = stdlib_directory()) {
  if (entry_names.empty()) entry_names = stdlib_entry_points();
  return link_library(stdlib_sources(entry_names, directory), shape, entry_names);
}

/// The assembly of one-instruction programs, one per binary value opcode of `ops` (the ALU's
/// table ops by default): label "op_add" is `ADD r0, r0, r1` then HALT, and so on. Returns
/// the source and its labels in order; link it alone (opcode_library) or with other files.
inline std::pair<machine::source_file, std::vector<std::string>> opcode_programs(
    std::span<const alu::opcode> ops = alu::table_ops) {
  if (ops.empty()) throw value_error("opcode_programs: no opcodes given");
  machine::source_file file{"<opcode programs>", ""};
  std::vector<std::string> names;
  for (alu::opcode op : ops) {
    if (!alu::table_index(op)) {
      throw value_error(ncl::detail::concat("opcode_programs: ", alu::name(op),
                                            " is not a binary value opcode (",
                                            "ADD SUB MUL DIV MOD MIN MAX EQ LT)"));
    }
    std::string label = "op_";
    for (char ch : alu::name(op)) label += static_cast<char>(ch - 'A' + 'a');
    if (std::find(names.begin(), names.end(), label) != names.end()) {
      throw value_error(ncl::detail::concat("opcode_programs: ", alu::name(op), " is listed twice"));
    }
    file.text += label + ":  " + std::string(alu::name(op)) + " r0, r0, r1\n        HALT\n";
    names.push_back(label);
  }
  return {file, names};
}

/// A library of the one-instruction programs of opcode_programs(ops): a distribution over
/// its entry points is a distribution over opcodes applied to r0 and r1. With
/// `stdlib_entries`, the stdlib programs of those names follow (entry points: op_* in the
/// order of `ops`, then `stdlib_entries`).
inline program_library opcode_library(const machine::machine_shape& shape,
                                      std::span<const alu::opcode> ops = alu::table_ops,
                                      const std::vector<std::string>& stdlib_entries = {},
                                      const std::filesystem::path& directory = stdlib_directory()) {
  auto [file, names] = opcode_programs(ops);
  std::vector<machine::source_file> files{file};
  if (!stdlib_entries.empty()) {
    for (auto& f : stdlib_sources(stdlib_entries, directory)) files.push_back(std::move(f));
    names.insert(names.end(), stdlib_entries.begin(), stdlib_entries.end());
  }
  return link_library(files, shape, names);
}

/// counter (B, L) = select (B, E) times the entry lines' one-hot rows: a distribution over
/// entry points becomes the initial instruction counter. counter is resized.
template <class S>
void select_forward(matrix<S>& counter, const matrix<S>& select, const program_library& lib) {
  check_cols("select_forward", "select", select, static_cast<index>(lib.entries.size()));
  counter.setZero(select.rows(), lib.shape.lines);
  for (index b = 0; b < select.rows(); ++b) {
    for (std::size_t e = 0; e < lib.entries.size(); ++e) {
      counter(b, lib.entries[e].line) += select(b, static_cast<index>(e));
    }
  }
}

/// dselect (B, E) += dcounter at each entry's line.
template <class S>
void select_backward(matrix<S>& dselect, const matrix<S>& dcounter, const program_library& lib) {
  check_shape("select_backward", "dcounter", dcounter, dselect.rows(), lib.shape.lines);
  check_shape("select_backward", "dselect", dselect, dcounter.rows(),
              static_cast<index>(lib.entries.size()));
  for (index b = 0; b < dcounter.rows(); ++b) {
    for (std::size_t e = 0; e < lib.entries.size(); ++e) {
      dselect(b, static_cast<index>(e)) += dcounter(b, lib.entries[e].line);
    }
  }
}

/// Writes argument distributions into registers of a batch of states: registers
/// `argument_registers[i]` of every element get args[i] (B, n). Other registers are untouched.
template <class S>
void write_arguments(machine::soft_state<S>& state, const machine::machine_shape& shape,
                     const std::vector<index>& argument_registers,
                     const std::vector<matrix<S>>& args) {
  if (args.size() != argument_registers.size()) {
    throw shape_error(ncl::detail::concat("write_arguments: ", args.size(), " arguments for ",
                                          argument_registers.size(), " argument registers"));
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const index r = argument_registers[i];
    if (r < 0 || r >= shape.registers) {
      throw value_error(ncl::detail::concat("write_arguments: register ", r, " is outside [0, ",
                                            shape.registers, ")"));
    }
    check_shape("write_arguments", ncl::detail::concat("args[", i, "]"), args[i], state.batch(), shape.n);
    state.registers.block(0, r * shape.n, state.batch(), shape.n) = args[i];
  }
}

/// dargs[i] (B, n) += the gradient of the initial registers at argument register i.
template <class S>
void write_arguments_backward(std::vector<matrix<S>>& dargs, const matrix<S>& dregisters,
                              const machine::machine_shape& shape,
                              const std::vector<index>& argument_registers) {
  if (dargs.size() != argument_registers.size()) {
    throw shape_error(ncl::detail::concat("write_arguments_backward: ", dargs.size(),
                                          " gradients for ", argument_registers.size(), " registers"));
  }
  for (std::size_t i = 0; i < dargs.size(); ++i) {
    check_shape("write_arguments_backward", ncl::detail::concat("dargs[", i, "]"), dargs[i],
                dregisters.rows(), shape.n);
    dargs[i] += dregisters.block(0, argument_registers[i] * shape.n, dregisters.rows(), shape.n);
  }
}

}  // namespace ncl::library
