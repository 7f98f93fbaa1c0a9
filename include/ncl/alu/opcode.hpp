// The machine's opcodes (ISA.md, "Opcodes"), in the order every tensor and file uses, and
// the integer semantics of the binary table ops, shared by the ALU and the machine.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "ncl/core/error.hpp"

namespace ncl::alu {

/// ISA.md's 23 opcodes, aliases and macros removed, in tensor order.
enum class opcode : std::uint8_t {
  HALT, NOP, SET, MOV, INC, DEC,
  ADD, SUB, MUL, DIV, MOD, MIN, MAX, EQ, LT,
  READ, STORE, WRITE, JMP, JZ, JNZ, JR, CALL,
};

inline constexpr std::size_t opcode_count = 23;

inline constexpr std::array<std::string_view, opcode_count> opcode_names{
    "HALT", "NOP", "SET", "MOV", "INC", "DEC", "ADD", "SUB", "MUL", "DIV", "MOD", "MIN",
    "MAX",  "EQ",  "LT",  "READ", "STORE", "WRITE", "JMP", "JZ", "JNZ", "JR", "CALL"};

static_assert(opcode_names.size() == static_cast<std::size_t>(opcode::CALL) + 1,
              "the name table must cover every opcode");

/// The binary ops the arithmetic unit computes as lookup tables, in opcode order; index i of
/// an ALU's op distribution f is table_ops[i].
inline constexpr std::array<opcode, 9> table_ops{opcode::ADD, opcode::SUB, opcode::MUL,
                                                 opcode::DIV, opcode::MOD, opcode::MIN,
                                                 opcode::MAX, opcode::EQ,  opcode::LT};
inline constexpr std::size_t table_op_count = table_ops.size();

constexpr std::string_view name(opcode op) { return opcode_names[static_cast<std::size_t>(op)]; }

constexpr std::size_t index_of(opcode op) { return static_cast<std::size_t>(op); }

/// The opcode named `mnemonic` (upper case, aliases not included), if any.
constexpr std::optional<opcode> opcode_from_name(std::string_view mnemonic) {
  for (std::size_t i = 0; i < opcode_count; ++i) {
    if (opcode_names[i] == mnemonic) return static_cast<opcode>(i);
  }
  return std::nullopt;
}

/// Position of a table op in table_ops, if it is one.
constexpr std::optional<std::size_t> table_index(opcode op) {
  for (std::size_t i = 0; i < table_ops.size(); ++i) {
    if (table_ops[i] == op) return i;
  }
  return std::nullopt;
}

/// The integer result of a table op on a, b in [0, n), mod n, unsigned; division by zero
/// as in RISC-V: x / 0 = n - 1, x mod 0 = x (ISA.md, "Opcodes").
constexpr std::int64_t apply(opcode op, std::int64_t a, std::int64_t b, std::int64_t n) {
  switch (op) {
    case opcode::ADD: return (a + b) % n;
    case opcode::SUB: return ((a - b) % n + n) % n;
    case opcode::MUL: return (a % n) * (b % n) % n;  // n <= 2^31, so the product fits
    case opcode::DIV: return b == 0 ? n - 1 : a / b;
    case opcode::MOD: return b == 0 ? a : a % b;
    case opcode::MIN: return a < b ? a : b;
    case opcode::MAX: return a > b ? a : b;
    case opcode::EQ: return a == b ? 1 : 0;
    case opcode::LT: return a < b ? 1 : 0;
    default:
      throw value_error(detail::concat("alu::apply: ", name(op), " is not a table op"));
  }
}

}  // namespace ncl::alu
