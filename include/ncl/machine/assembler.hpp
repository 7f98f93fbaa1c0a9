// The assembler: ISA.md's assembly text -> a discrete program of instructions.
//
// One instruction per line, `;` comments, `name:` labels (global across all files, which are
// laid out in order), case-insensitive mnemonics and registers (`sp` = r(R-2), `ra` = r(R-1)),
// aliases STOP (HALT) and JEZ (JZ), macros ZERO, PUSH, POP and RET. Every error is an
// ncl::parse_error "FILE:LINE:COL: error: message" and no program is produced.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/file.hpp"
#include "ncl/machine/shape.hpp"

namespace ncl::machine {

using alu::opcode;

/// One discrete instruction. Fields the opcode does not use are 0 (ISA.md: compiled one-hot
/// on index 0). CALL has dst = ra; RET is JR with a = ra.
struct instruction {
  opcode op = opcode::HALT;
  int dst = 0;
  int a = 0;
  int b = 0;
  std::int64_t imm = 0;

  friend bool operator==(const instruction&, const instruction&) = default;
};

/// Where an instruction came from (a macro's lines share its location).
struct source_location {
  std::string file;
  int line = 0;
  int column = 0;
  std::string text;  // the source line without its comment, trimmed
};

/// An assembled program: lines[l] is program line l; lines past lines.size() are HALT.
struct assembled_program {
  std::vector<instruction> lines;
  std::map<std::string, int> labels;  // label -> line
  int entry = 0;
  machine_shape shape;
  std::vector<source_location> source;  // one per line
};

/// One assembly source: a name for messages and its text.
struct source_file {
  std::string name;
  std::string text;
};

/// Which operands an opcode (or macro) takes, in source order.
enum class operand_kind : std::uint8_t {
  dst,     // a register written
  reg,     // a register read (a or b)
  imm,     // an immediate or a label (its line)
  target,  // a jump target: a label or an immediate line
};

namespace detail {

inline std::string upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

inline bool is_label_start(char ch) {
  return std::isalpha(static_cast<unsigned char>(ch)) || ch == '_';
}

inline bool is_label_char(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.';
}

inline bool is_identifier(std::string_view s) {
  return !s.empty() && is_label_start(s[0]) && std::all_of(s.begin(), s.end(), is_label_char);
}

/// The register a name denotes (r<k>, sp, ra, any case), or nullopt if it is no register
/// name at all. A register name beyond the machine's registers gives -1.
inline std::optional<int> register_index(std::string_view name, std::int64_t registers) {
  const std::string u = upper(name);
  if (u == "SP") return static_cast<int>(registers - 2);
  if (u == "RA") return static_cast<int>(registers - 1);
  if (u.size() < 2 || u[0] != 'R') return std::nullopt;
  if (!std::all_of(u.begin() + 1, u.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return std::nullopt;
  }
  if (u.size() > 8) return -1;  // far beyond any machine's 4096 registers
  const long k = std::stol(u.substr(1));
  return k < registers ? static_cast<int>(k) : -1;
}

/// A mnemonic's operands and the instruction(s) it stands for.
struct mnemonic_info {
  std::string_view name;
  std::vector<operand_kind> operands;
  std::string_view operand_names;  // for messages: "dst, a, b"
};

inline std::optional<mnemonic_info> lookup_mnemonic(const std::string& u) {
  using K = operand_kind;
  std::string name = u;
  if (name == "STOP") name = "HALT";
  if (name == "JEZ") name = "JZ";
  if (name == "ZERO") return mnemonic_info{"ZERO", {K::dst}, "dst"};
  if (name == "PUSH") return mnemonic_info{"PUSH", {K::reg}, "a"};
  if (name == "POP") return mnemonic_info{"POP", {K::dst}, "dst"};
  if (name == "RET") return mnemonic_info{"RET", {}, "no operands"};
  const auto op = alu::opcode_from_name(name);
  if (!op) return std::nullopt;
  const std::string_view canonical = alu::name(*op);
  switch (*op) {
    case opcode::HALT:
    case opcode::NOP: return mnemonic_info{canonical, {}, "no operands"};
    case opcode::SET: return mnemonic_info{canonical, {K::dst, K::imm}, "dst, imm"};
    case opcode::MOV:
    case opcode::INC:
    case opcode::DEC:
    case opcode::READ: return mnemonic_info{canonical, {K::dst, K::reg}, "dst, a"};
    case opcode::STORE: return mnemonic_info{canonical, {K::dst}, "dst"};
    case opcode::WRITE: return mnemonic_info{canonical, {K::reg, K::reg}, "a, b"};
    case opcode::JMP:
    case opcode::CALL: return mnemonic_info{canonical, {K::target}, "label"};
    case opcode::JZ:
    case opcode::JNZ: return mnemonic_info{canonical, {K::reg, K::target}, "a, label"};
    case opcode::JR: return mnemonic_info{canonical, {K::reg}, "a"};
    default: return mnemonic_info{canonical, {K::dst, K::reg, K::reg}, "dst, a, b"};
  }
}

inline std::string_view kind_name(operand_kind k) {
  switch (k) {
    case operand_kind::dst:
    case operand_kind::reg: return "a register";
    case operand_kind::imm: return "an immediate or a label";
    case operand_kind::target: return "a label or a line number";
  }
  return "?";
}

/// An operand as written, after classification.
struct operand {
  enum class form { reg, number, label } kind = form::number;
  int reg = 0;
  std::int64_t number = 0;
  std::string label;
  int column = 0;  // 1-based
};

/// An instruction whose label operands are not resolved yet.
struct pending_instruction {
  instruction inst;
  std::string label;  // the label whose line goes into imm, or empty
  int label_column = 0;
  source_location where;
};

class assembler {
 public:
  explicit assembler(const machine_shape& shape) : shape_(shape) {}

  void add(const source_file& file) {
    std::istringstream in(file.text);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      parse_line(file.name, number, line);
    }
  }

  assembled_program finish(const std::string& entry, const std::string& first_file) {
    const auto size = static_cast<std::int64_t>(pending_.size()) + beyond_;
    if (size > shape_.lines) {
      const auto& where = *first_beyond_;
      throw parse_error(where.file, where.line, where.column,
                        concat("program is ", size, " lines long, more than L = ", shape_.lines,
                               " lines (this instruction would be line ", shape_.lines, ")"));
    }
    for (const auto& [name, def] : label_defs_) {
      if (def.line >= shape_.lines) {
        throw parse_error(def.where.file, def.where.line, def.where.column,
                          concat("label '", name, "' points to line ", def.line,
                                 ", past the last line L - 1 = ", shape_.lines - 1));
      }
    }
    assembled_program out;
    out.shape = shape_;
    for (auto& p : pending_) {
      if (!p.label.empty()) {
        const auto it = label_defs_.find(p.label);
        if (it == label_defs_.end()) {
          throw parse_error(p.where.file, p.where.line, p.label_column,
                            concat("undefined label '", p.label, "'"));
        }
        p.inst.imm = it->second.line;
      }
      out.lines.push_back(p.inst);
      out.source.push_back(p.where);
    }
    for (const auto& [name, def] : label_defs_) out.labels[name] = def.line;
    if (!entry.empty()) {
      const auto it = out.labels.find(entry);
      if (it == out.labels.end()) {
        throw parse_error(first_file, 1, 1, concat("entry label '", entry, "' is not defined"));
      }
      out.entry = it->second;
    }
    return out;
  }

 private:
  struct label_definition {
    int line;
    source_location where;
  };

  template <class... Args>
  static std::string concat(const Args&... args) {
    return ncl::detail::concat(args...);
  }

  [[noreturn]] void fail(const source_location& where, int column, const std::string& msg) const {
    throw parse_error(where.file, where.line, column, msg);
  }

  void parse_line(const std::string& file, int number, const std::string& raw) {
    const std::string text = raw.substr(0, raw.find(';'));
    source_location where{file, number, 1, {}};
    {
      const auto first = text.find_first_not_of(" \t");
      const auto last = text.find_last_not_of(" \t");
      where.text = first == std::string::npos ? "" : text.substr(first, last - first + 1);
    }
    std::size_t pos = 0;
    auto skip_space = [&] {
      while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
    };
    auto column = [](std::size_t p) { return static_cast<int>(p) + 1; };
    // Labels: identifier ':' (any number of them before the instruction).
    while (true) {
      skip_space();
      if (pos >= text.size()) return;
      std::size_t end = pos;
      while (end < text.size() && is_label_char(text[end])) ++end;
      std::size_t colon = end;
      while (colon < text.size() && (text[colon] == ' ' || text[colon] == '\t')) ++colon;
      if (colon >= text.size() || text[colon] != ':') break;
      const std::string name = text.substr(pos, end - pos);
      where.column = column(pos);
      if (!is_identifier(name)) {
        fail(where, column(pos),
             concat("malformed label '", name, "' (labels match [A-Za-z_][A-Za-z0-9_.]*)"));
      }
      if (register_index(name, shape_.registers)) {
        fail(where, column(pos), concat("label '", name, "' is a register name"));
      }
      if (const auto it = label_defs_.find(name); it != label_defs_.end()) {
        const auto& prev = it->second.where;
        fail(where, column(pos),
             concat("duplicate label '", name, "' (first defined at ", prev.file, ":", prev.line,
                    ":", prev.column, ")"));
      }
      label_defs_[name] = {static_cast<int>(pending_.size()), where};
      pos = colon + 1;
    }
    // Mnemonic.
    const std::size_t mstart = pos;
    while (pos < text.size() && !std::isspace(static_cast<unsigned char>(text[pos])) &&
           text[pos] != ',')
      ++pos;
    const std::string mnemonic = text.substr(mstart, pos - mstart);
    where.column = column(mstart);
    const auto info = lookup_mnemonic(upper(mnemonic));
    if (!info) fail(where, column(mstart), concat("unknown mnemonic '", mnemonic, "'"));
    // Operands: comma-separated.
    std::vector<operand> operands;
    skip_space();
    if (pos < text.size()) {
      while (true) {
        std::size_t end = text.find(',', pos);
        if (end == std::string::npos) end = text.size();
        std::string token = text.substr(pos, end - pos);
        std::size_t lead = token.find_first_not_of(" \t");
        const int col = column(lead == std::string::npos ? pos : pos + lead);
        if (lead == std::string::npos) fail(where, col, "empty operand");
        token = token.substr(lead, token.find_last_not_of(" \t") - lead + 1);
        operands.push_back(classify(token, col, where));
        if (end == text.size()) break;
        pos = end + 1;
      }
    }
    if (operands.size() != info->operands.size()) {
      fail(where, where.column,
           concat(info->name, " takes ", info->operands.size(), " operand",
                  info->operands.size() == 1 ? "" : "s", " (", info->operand_names, "), got ",
                  operands.size()));
    }
    emit(*info, operands, where);
  }

  operand classify(const std::string& token, int col, const source_location& where) const {
    operand out;
    out.column = col;
    const bool digits_only =
        std::all_of(token.begin() + (token[0] == '-' || token[0] == '+' ? 1 : 0), token.end(),
                    [](char ch) { return ch >= '0' && ch <= '9'; });
    if (digits_only && token.size() > (token[0] == '-' || token[0] == '+' ? 1u : 0u)) {
      out.kind = operand::form::number;
      const bool negative = token[0] == '-';
      const std::string body = token.substr(token[0] == '-' || token[0] == '+' ? 1 : 0);
      if (negative || body.size() > 18 || std::stoll(body) >= shape_.n) {
        fail(where, col,
             concat("immediate ", token, " is out of range: immediates are 0 <= v < n = ",
                    shape_.n));
      }
      out.number = std::stoll(body);
      return out;
    }
    if (const auto r = register_index(token, shape_.registers)) {
      if (*r < 0) {
        fail(where, col,
             concat("unknown register '", token, "' (the machine has r0..r",
                    shape_.registers - 1, ", sp = r", shape_.sp(), ", ra = r", shape_.ra(), ")"));
      }
      out.kind = operand::form::reg;
      out.reg = *r;
      return out;
    }
    if (is_identifier(token)) {
      out.kind = operand::form::label;
      out.label = token;
      return out;
    }
    if (token.find_first_of(" \t") != std::string::npos) {
      fail(where, col, concat("missing ',' between operands in '", token, "'"));
    }
    fail(where, col, concat("malformed operand '", token, "'"));
  }

  void emit(const mnemonic_info& info, const std::vector<operand>& ops,
            const source_location& where) {
    pending_instruction p;
    p.where = where;
    int regs[3] = {0, 0, 0};
    int nregs = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const operand& o = ops[i];
      const operand_kind want = info.operands[i];
      const bool want_reg = want == operand_kind::dst || want == operand_kind::reg;
      const bool is_reg = o.kind == operand::form::reg;
      if (want_reg != is_reg) {
        const std::string got = o.kind == operand::form::reg      ? "a register"
                                : o.kind == operand::form::number ? "an immediate"
                                                                  : "a label";
        fail(where, o.column,
             concat("operand ", i + 1, " of ", info.name, " must be ", kind_name(want), ", got ",
                    got, " '", token_text(o), "'"));
      }
      if (is_reg) {
        regs[nregs++] = o.reg;
      } else if (o.kind == operand::form::number) {
        p.inst.imm = o.number;
      } else {
        p.label = o.label;
        p.label_column = o.column;
      }
    }
    const int sp = static_cast<int>(shape_.sp());
    const int ra = static_cast<int>(shape_.ra());
    auto push = [&](opcode op, int dst, int a, int b) {
      pending_instruction q = p;
      q.inst.op = op;
      q.inst.dst = dst;
      q.inst.a = a;
      q.inst.b = b;
      // Past line L - 1 the program is an error (finish reports its length); count the
      // lines but keep none, so a million-line file costs no memory.
      if (static_cast<std::int64_t>(pending_.size()) >= shape_.lines) {
        if (beyond_++ == 0) first_beyond_ = q.where;
        return;
      }
      pending_.push_back(q);
    };
    const std::string_view n = info.name;
    if (n == "ZERO") return push(opcode::SET, regs[0], 0, 0);
    if (n == "PUSH") {
      push(opcode::WRITE, 0, sp, regs[0]);
      return push(opcode::INC, sp, sp, 0);
    }
    if (n == "POP") {
      push(opcode::DEC, sp, sp, 0);
      return push(opcode::READ, regs[0], sp, 0);
    }
    if (n == "RET") return push(opcode::JR, 0, ra, 0);
    const opcode op = *alu::opcode_from_name(n);
    switch (op) {
      case opcode::HALT:
      case opcode::NOP:
      case opcode::JMP: return push(op, 0, 0, 0);
      case opcode::CALL: return push(op, ra, 0, 0);
      case opcode::SET:
      case opcode::STORE: return push(op, regs[0], 0, 0);
      case opcode::MOV:
      case opcode::INC:
      case opcode::DEC:
      case opcode::READ: return push(op, regs[0], regs[1], 0);
      case opcode::WRITE: return push(op, 0, regs[0], regs[1]);
      case opcode::JZ:
      case opcode::JNZ:
      case opcode::JR: return push(op, 0, regs[0], 0);
      default: return push(op, regs[0], regs[1], regs[2]);
    }
  }

  static std::string token_text(const operand& o) {
    if (o.kind == operand::form::reg) return concat("r", o.reg);
    if (o.kind == operand::form::number) return std::to_string(o.number);
    return o.label;
  }

  machine_shape shape_;
  std::vector<pending_instruction> pending_;  // at most L
  std::int64_t beyond_ = 0;                    // instructions past line L - 1
  std::optional<source_location> first_beyond_;
  std::map<std::string, label_definition> label_defs_;
};

}  // namespace detail

/// Assembles `files`, laid out in order with global labels, for `shape`. `entry` names the
/// label to start at (empty: line 0). Throws parse_error "FILE:LINE:COL: error: ...".
inline assembled_program assemble(const std::vector<source_file>& files, const machine_shape& shape,
                                  const std::string& entry = "") {
  const std::string first = files.empty() ? std::string("<no input>") : files.front().name;
  try {
    shape.validate();
  } catch (const value_error& e) {
    throw parse_error(first, 1, 1, e.what());
  }
  detail::assembler as(shape);
  for (const auto& f : files) as.add(f);
  return as.finish(entry, first);
}

/// Assembles one text; `name` is the file name used in messages.
inline assembled_program assemble(std::string_view text, const machine_shape& shape,
                                  const std::string& name = "<input>",
                                  const std::string& entry = "") {
  return assemble(std::vector<source_file>{{name, std::string(text)}}, shape, entry);
}

/// Reads an assembly file (at most 256 MiB: a program of L <= 2^24 lines needs far less).
/// Throws io_error naming the path if it cannot be read.
inline source_file read_source(const std::string& path) {
  return {path, read_file(path, std::uintmax_t{1} << 28)};
}

/// Reads and assembles the files at `paths`, in order.
inline assembled_program assemble_files(const std::vector<std::string>& paths,
                                        const machine_shape& shape, const std::string& entry = "") {
  std::vector<source_file> files;
  for (const auto& p : paths) files.push_back(read_source(p));
  return assemble(files, shape, entry);
}

/// The register's assembly name: sp and ra by their aliases, the others r<k>.
inline std::string register_name(int r, const machine_shape& shape) {
  if (r == shape.sp()) return "sp";
  if (r == shape.ra()) return "ra";
  std::string name = std::to_string(r);
  name.insert(name.begin(), 'r');  // not "r" + ...: GCC 12 warns falsely (-Wrestrict) on that at -O3
  return name;
}

/// One instruction as assembly text. `target` renders a jump target or label immediate
/// (default: the number).
inline std::string format_instruction(const instruction& inst, const machine_shape& shape,
                                      const std::string& target = "") {
  const auto reg = [&](int r) { return register_name(r, shape); };
  const std::string imm = target.empty() ? std::to_string(inst.imm) : target;
  const std::string name(alu::name(inst.op));
  switch (inst.op) {
    case opcode::HALT:
    case opcode::NOP: return name;
    case opcode::SET: return name + " " + reg(inst.dst) + ", " + imm;
    case opcode::MOV:
    case opcode::INC:
    case opcode::DEC:
    case opcode::READ: return name + " " + reg(inst.dst) + ", " + reg(inst.a);
    case opcode::STORE: return name + " " + reg(inst.dst);
    case opcode::WRITE: return name + " " + reg(inst.a) + ", " + reg(inst.b);
    case opcode::JMP:
    case opcode::CALL: return name + " " + imm;
    case opcode::JZ:
    case opcode::JNZ: return name + " " + reg(inst.a) + ", " + imm;
    case opcode::JR: return name + " " + reg(inst.a);
    default: return name + " " + reg(inst.dst) + ", " + reg(inst.a) + ", " + reg(inst.b);
  }
}

}  // namespace ncl::machine
