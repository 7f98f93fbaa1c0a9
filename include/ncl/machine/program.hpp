// Compiler and decompiler between assembled programs and soft programs (ISA.md, "State and
// program"), the soft machine's initial state, and a file format for soft programs.
//
// compile: every field one-hot (unused fields on index 0, lines past the end HALT).
// compile_logits: sharpness * one-hot, for softmax_program (ncl-run --sharpness B).
// decompile: argmax of every field back to assembly text, with a confidence per line and
// regenerated labels L<k> for jump targets, so decompile(compile(p)) reassembles to p.
//
// File format (JSON, version 1), written to a temporary name and renamed into place:
//   {"format": "ncl-soft-program", "version": 1,
//    "shape": {"n": .., "registers": .., "memory": .., "lines": .., "steps": ..},
//    "entry": line, "opcodes": ["HALT", ...],          (the opcode order of the op columns)
//    "op": [[23 probabilities] x L], "dst": [[R] x L], "a": [[R] x L], "b": [[R] x L],
//    "imm": [[n] x L]}
// Loading checks everything (format, shape, sizes, every entry a probability, every row
// summing to 1) and throws io_error naming the file on any fault.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/file.hpp"
#include "ncl/core/softmax.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/machine/assembler.hpp"
#include "ncl/machine/shape.hpp"

namespace ncl::machine {

/// Which fields an opcode reads from its line (the others compile to index 0).
struct field_use {
  bool dst = false, a = false, b = false, imm = false;
};

constexpr field_use fields_used(opcode op) {
  switch (op) {
    case opcode::HALT:
    case opcode::NOP: return {};
    case opcode::SET: return {true, false, false, true};
    case opcode::MOV:
    case opcode::INC:
    case opcode::DEC:
    case opcode::READ: return {true, true, false, false};
    case opcode::STORE: return {true, false, false, false};
    case opcode::WRITE: return {false, true, true, false};
    case opcode::JMP: return {false, false, false, true};
    case opcode::CALL: return {true, false, false, true};
    case opcode::JZ:
    case opcode::JNZ: return {false, true, false, true};
    case opcode::JR: return {false, true, false, false};
    default: return {true, true, true, false};  // the table ops
  }
}

/// Jumps whose immediate is a line (JMP, JZ, JNZ, CALL).
constexpr bool jumps_to_immediate(opcode op) {
  return op == opcode::JMP || op == opcode::JZ || op == opcode::JNZ || op == opcode::CALL;
}

namespace detail {

inline void check_program_fits(const assembled_program& p, const machine_shape& shape) {
  shape.validate();
  if (static_cast<std::int64_t>(p.lines.size()) > shape.lines) {
    throw value_error(ncl::detail::concat("compile: the program has ", p.lines.size(),
                                          " lines, more than L = ", shape.lines));
  }
  for (std::size_t l = 0; l < p.lines.size(); ++l) {
    const instruction& i = p.lines[l];
    for (const int r : {i.dst, i.a, i.b}) {
      if (r < 0 || r >= shape.registers) {
        throw value_error(ncl::detail::concat("compile: line ", l, " uses register ", r,
                                              ", outside [0, R = ", shape.registers, ")"));
      }
    }
    if (i.imm < 0 || i.imm >= shape.n) {
      throw value_error(ncl::detail::concat("compile: line ", l, " has immediate ", i.imm,
                                            ", outside [0, n = ", shape.n, ")"));
    }
  }
}

template <class S>
void check_program_shape(std::string_view op, const soft_program<S>& p, const machine_shape& shape) {
  const index L = shape.lines;
  check_shape(op, "program.op", p.op, L, static_cast<index>(alu::opcode_count));
  check_shape(op, "program.dst", p.dst, L, shape.registers);
  check_shape(op, "program.a", p.a, L, shape.registers);
  check_shape(op, "program.b", p.b, L, shape.registers);
  check_shape(op, "program.imm", p.imm, L, shape.n);
}

/// The argmax of row l of m (lowest index on ties) and its probability.
template <class S>
std::pair<int, S> row_argmax(const matrix<S>& m, index l) {
  index best = 0;
  for (index j = 1; j < m.cols(); ++j) {
    if (m(l, j) > m(l, best)) best = j;
  }
  return {static_cast<int>(best), m(l, best)};
}

}  // namespace detail

/// The exact one-hot soft program of `p` on `shape`: (L, 23) op, (L, R) dst/a/b, (L, n) imm.
template <class S>
soft_program<S> compile(const assembled_program& p, const machine_shape& shape) {
  detail::check_program_fits(p, shape);
  const index L = shape.lines;
  soft_program<S> out;
  out.op.setZero(L, static_cast<index>(alu::opcode_count));
  out.dst.setZero(L, shape.registers);
  out.a.setZero(L, shape.registers);
  out.b.setZero(L, shape.registers);
  out.imm.setZero(L, shape.n);
  for (index l = 0; l < L; ++l) {
    const instruction inst =
        l < static_cast<index>(p.lines.size()) ? p.lines[static_cast<std::size_t>(l)] : instruction{};
    out.op(l, static_cast<index>(alu::index_of(inst.op))) = S(1);
    out.dst(l, inst.dst) = S(1);
    out.a(l, inst.a) = S(1);
    out.b(l, inst.b) = S(1);
    out.imm(l, inst.imm) = S(1);
  }
  return out;
}

/// Logits `sharpness * one-hot` of every field; softmax_program turns them into a program.
template <class S>
soft_program<S> compile_logits(const assembled_program& p, const machine_shape& shape,
                               S sharpness) {
  if (!std::isfinite(static_cast<double>(sharpness)) || sharpness < S(0)) {
    throw value_error(ncl::detail::concat("compile_logits: sharpness = ", sharpness,
                                          " must be finite and >= 0"));
  }
  soft_program<S> out = compile<S>(p, shape);
  out.op *= sharpness;
  out.dst *= sharpness;
  out.a *= sharpness;
  out.b *= sharpness;
  out.imm *= sharpness;
  return out;
}

/// Row-wise softmax of every field of a program of logits.
template <class S>
soft_program<S> softmax_program(const soft_program<S>& logits) {
  soft_program<S> out;
  softmax_forward(out.op, logits.op);
  softmax_forward(out.dst, logits.dst);
  softmax_forward(out.a, logits.a);
  softmax_forward(out.b, logits.b);
  softmax_forward(out.imm, logits.imm);
  return out;
}

/// The most likely instruction of line l, and its confidence: the product of the max
/// probabilities of the op and of the fields that op uses. Unused fields decode to 0, except
/// CALL's dst, which decodes to its argmax (the assembler always writes ra there).
struct decoded_line {
  instruction inst;
  double confidence = 1;
};

template <class S>
decoded_line decode_line(const soft_program<S>& p, index l) {
  decoded_line out;
  const auto [op, p_op] = detail::row_argmax(p.op, l);
  out.inst.op = static_cast<opcode>(op);
  out.confidence = static_cast<double>(p_op);
  const field_use use = fields_used(out.inst.op);
  auto take = [&](bool used, const matrix<S>& field, auto& slot) {
    if (!used) return;
    const auto [k, pk] = detail::row_argmax(field, l);
    slot = k;
    out.confidence *= static_cast<double>(pk);
  };
  take(use.dst, p.dst, out.inst.dst);
  take(use.a, p.a, out.inst.a);
  take(use.b, p.b, out.inst.b);
  take(use.imm, p.imm, out.inst.imm);
  return out;
}

/// Assembly text for a soft program: the most likely instruction of every line with its
/// confidence as a comment (`; p=0.970`), labels `L<k>:` on every line a jump or call
/// targets, trailing HALT lines that nothing targets left out (lines past the end are HALT).
template <class S>
std::string decompile(const soft_program<S>& p, const machine_shape& shape) {
  shape.validate();
  detail::check_program_shape("decompile", p, shape);
  const index L = shape.lines;
  std::vector<decoded_line> lines;
  std::set<std::int64_t> targets;
  index count = 0;
  for (index l = 0; l < L; ++l) {
    lines.push_back(decode_line(p, l));
    const instruction& inst = lines.back().inst;
    if (inst.op != opcode::HALT) count = l + 1;
    if (jumps_to_immediate(inst.op) && inst.imm < L) targets.insert(inst.imm);
  }
  if (!targets.empty()) count = std::max<index>(count, static_cast<index>(*targets.rbegin()) + 1);
  std::ostringstream out;
  out << "; decompiled by ncl: n = " << shape.n << ", R = " << shape.registers
      << ", L = " << L << "; lines past the end are HALT\n";
  for (index l = 0; l < count; ++l) {
    const decoded_line& d = lines[static_cast<std::size_t>(l)];
    // Appended piece by piece: GCC 12 warns, wrongly, about "L" + std::to_string(x) (-Wrestrict).
    std::string label, target;
    if (targets.count(l)) label.append("L").append(std::to_string(l)).append(":");
    if (jumps_to_immediate(d.inst.op) && d.inst.imm < L) target.append("L").append(std::to_string(d.inst.imm));
    std::string text = format_instruction(d.inst, shape, target);
    char confidence[64];
    std::snprintf(confidence, sizeof confidence, "; p=%.3f", d.confidence);
    out << std::left << std::setw(8) << label << std::setw(28) << text << confidence;
    if (d.inst.op == opcode::CALL && d.inst.dst != shape.ra()) {
      out << " (CALL writes " << register_name(d.inst.dst, shape) << ", not ra)";
    }
    out << "\n";
  }
  return out.str();
}

/// A soft program as stored in a file, with the shape and entry line it runs with.
template <class S>
struct stored_program {
  machine_shape shape;
  int entry = 0;
  soft_program<S> program;
};

namespace detail {

template <class S>
nlohmann::json matrix_to_json(const matrix<S>& m) {
  nlohmann::json rows = nlohmann::json::array();
  for (index r = 0; r < m.rows(); ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (index c = 0; c < m.cols(); ++c) row.push_back(static_cast<double>(m(r, c)));
    rows.push_back(std::move(row));
  }
  return rows;
}

template <class S>
matrix<S> matrix_from_json(const nlohmann::json& j, const std::string& path, const char* field,
                           index rows, index cols) {
  auto bad = [&](const auto&... why) {
    throw io_error(ncl::detail::concat(path, ": field '", field, "' ", why...));
  };
  if (!j.is_array() || static_cast<index>(j.size()) != rows) bad("must be an array of ", rows, " rows");
  // Every row's length first: the matrix is allocated only once the file holds all its
  // numbers, so a small file naming a huge shape costs no memory.
  for (index r = 0; r < rows; ++r) {
    const auto& row = j[static_cast<std::size_t>(r)];
    if (!row.is_array() || static_cast<index>(row.size()) != cols) {
      bad("row ", r, " must be an array of ", cols, " numbers");
    }
  }
  matrix<S> m(rows, cols);
  for (index r = 0; r < rows; ++r) {
    const auto& row = j[static_cast<std::size_t>(r)];
    double total = 0;
    for (index c = 0; c < cols; ++c) {
      const auto& x = row[static_cast<std::size_t>(c)];
      if (!x.is_number()) bad("row ", r, " column ", c, " is not a number");
      const double v = x.get<double>();
      if (!(v >= -1e-6 && v <= 1 + 1e-6)) bad("row ", r, " column ", c, " = ", v, " is not a probability");
      m(r, c) = static_cast<S>(v);
      total += v;
    }
    if (std::abs(total - 1) > 1e-4) bad("row ", r, " sums to ", total, ", not 1");
  }
  return m;
}

}  // namespace detail

/// Writes a soft program to `path` (format above), through a temporary file renamed into place.
template <class S>
void save_program(const std::string& path, const soft_program<S>& p, const machine_shape& shape,
                  int entry = 0) {
  shape.validate();
  detail::check_program_shape("save_program", p, shape);
  if (entry < 0 || entry >= shape.lines) {
    throw value_error(ncl::detail::concat("save_program: entry line ", entry, " is outside [0, L = ",
                                          shape.lines, ")"));
  }
  nlohmann::json j;
  j["format"] = "ncl-soft-program";
  j["version"] = 1;
  j["shape"] = {{"n", shape.n},           {"registers", shape.registers},
                {"memory", shape.memory}, {"lines", shape.lines},
                {"steps", shape.steps}};
  j["entry"] = entry;
  j["opcodes"] = nlohmann::json::array();
  for (const auto name : alu::opcode_names) j["opcodes"].push_back(std::string(name));
  j["op"] = detail::matrix_to_json(p.op);
  j["dst"] = detail::matrix_to_json(p.dst);
  j["a"] = detail::matrix_to_json(p.a);
  j["b"] = detail::matrix_to_json(p.b);
  j["imm"] = detail::matrix_to_json(p.imm);
  write_file_atomic(path, j.dump() + "\n");
}

/// Parses the text of a soft program file (format above); `path` names it in messages.
/// Throws io_error on any fault.
template <class S>
stored_program<S> parse_program(std::string_view text, const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw io_error(ncl::detail::concat(path, ": not a valid JSON soft program: ", e.what()));
  }
  auto bad = [&](const auto&... why) { throw io_error(ncl::detail::concat(path, ": ", why...)); };
  if (!j.is_object() || j.value("format", nlohmann::json()) != "ncl-soft-program") {
    bad("not an ncl soft program (field 'format' must be \"ncl-soft-program\")");
  }
  if (j.value("version", nlohmann::json()) != 1) bad("unsupported version (expected 1)");
  stored_program<S> out;
  try {
    const auto& s = j.at("shape");
    auto dim = [&](const char* key) {
      const auto& v = s.at(key);
      if (!v.is_number_integer()) bad("shape field '", key, "' must be an integer");
      return v.get<std::int64_t>();
    };
    out.shape.n = dim("n");
    out.shape.registers = dim("registers");
    out.shape.memory = dim("memory");
    out.shape.lines = dim("lines");
    out.shape.steps = dim("steps");
    out.shape.validate();
    const auto& e = j.at("entry");
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() >= out.shape.lines) {
      bad("field 'entry' must be a line in [0, ", out.shape.lines, ")");
    }
    out.entry = e.get<int>();
    const auto& names = j.at("opcodes");
    if (!names.is_array() || names.size() != alu::opcode_count) bad("field 'opcodes' must list 23 opcodes");
    for (std::size_t i = 0; i < alu::opcode_count; ++i) {
      if (!names[i].is_string() || names[i].get<std::string>() != alu::opcode_names[i]) {
        bad("field 'opcodes' differs from this ncl's opcode order at index ", i);
      }
    }
    const index L = out.shape.lines;
    out.program.op = detail::matrix_from_json<S>(j.at("op"), path, "op", L,
                                                 static_cast<index>(alu::opcode_count));
    out.program.dst = detail::matrix_from_json<S>(j.at("dst"), path, "dst", L, out.shape.registers);
    out.program.a = detail::matrix_from_json<S>(j.at("a"), path, "a", L, out.shape.registers);
    out.program.b = detail::matrix_from_json<S>(j.at("b"), path, "b", L, out.shape.registers);
    out.program.imm = detail::matrix_from_json<S>(j.at("imm"), path, "imm", L, out.shape.n);
  } catch (const nlohmann::json::exception& e) {
    bad("missing or malformed field: ", e.what());
  } catch (const value_error& e) {
    bad("bad shape: ", e.what());
  }
  return out;
}

/// Reads a soft program written by save_program. Throws io_error on any fault.
template <class S>
stored_program<S> load_program(const std::string& path) {
  return parse_program<S>(read_file(path), path);
}

/// f_HALT = sum_l c_l op[l][HALT] for each batch element: the probability that the next
/// step fetches HALT (ISA.md step 6; halt_step is the first step where it is >= 0.5).
template <class S>
std::vector<S> fetch_halt_probability(const soft_state<S>& s, const soft_program<S>& p) {
  std::vector<S> out(static_cast<std::size_t>(s.batch()), S(0));
  for (index b = 0; b < s.batch(); ++b) {
    S total = 0;
    for (index l = 0; l < p.lines(); ++l) total += s.counter(b, l) * p.op(l, 0);
    out[static_cast<std::size_t>(b)] = total;
  }
  return out;
}

}  // namespace ncl::machine
