// Shared helpers of the soft-interpreter tests: random instruction tuples, their one-hot soft
// programs, and a small private integer simulator written from ISA.md (independent of the
// interpreter and of the reference interpreter in ncl/machine/reference.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/machine/interpreter.hpp"

namespace soft_test {

using ncl::alu::opcode;
using ncl::machine::machine_shape;

struct instruction {
  opcode op = opcode::HALT;
  std::int64_t dst = 0, a = 0, b = 0, imm = 0;
};

/// One-hot soft program of L lines; lines past the end are HALT; unused fields stay on 0.
template <class S>
ncl::machine::soft_program<S> one_hot_program(const std::vector<instruction>& lines,
                                              const machine_shape& shape) {
  ncl::machine::soft_program<S> p;
  p.op.setZero(shape.lines, 23);
  p.dst.setZero(shape.lines, shape.registers);
  p.a.setZero(shape.lines, shape.registers);
  p.b.setZero(shape.lines, shape.registers);
  p.imm.setZero(shape.lines, shape.n);
  for (std::int64_t l = 0; l < shape.lines; ++l) {
    const instruction in = l < static_cast<std::int64_t>(lines.size())
                               ? lines[static_cast<std::size_t>(l)]
                               : instruction{};
    p.op(l, static_cast<ncl::index>(in.op)) = S(1);
    p.dst(l, in.dst) = S(1);
    p.a(l, in.a) = S(1);
    p.b(l, in.b) = S(1);
    p.imm(l, in.imm) = S(1);
  }
  return p;
}

/// A random instruction. Straight-line programs draw only value ops, WRITE and NOP;
/// looping ones also draw jumps, calls and HALT.
inline instruction random_instruction(ncl::rng& random, const machine_shape& shape,
                                      bool with_control) {
  static constexpr opcode straight[] = {
      opcode::NOP, opcode::SET, opcode::MOV, opcode::INC, opcode::DEC, opcode::ADD,
      opcode::SUB, opcode::MUL, opcode::DIV, opcode::MOD, opcode::MIN, opcode::MAX,
      opcode::EQ,  opcode::LT,  opcode::READ, opcode::STORE, opcode::WRITE};
  static constexpr opcode control[] = {opcode::JMP, opcode::JZ,   opcode::JNZ,
                                       opcode::JR,  opcode::CALL, opcode::HALT};
  instruction in;
  const auto n_straight = static_cast<std::int64_t>(std::size(straight));
  const auto n_control = static_cast<std::int64_t>(std::size(control));
  const std::int64_t pick = random.integer(0, with_control ? n_straight + 2 * n_control : n_straight);
  in.op = pick < n_straight ? straight[pick] : control[(pick - n_straight) % n_control];
  in.dst = random.integer(0, shape.registers);
  in.a = random.integer(0, shape.registers);
  in.b = random.integer(0, shape.registers);
  in.imm = random.integer(0, shape.n);
  if (in.op == opcode::CALL) in.dst = shape.ra();
  return in;
}

inline std::vector<instruction> random_program(ncl::rng& random, const machine_shape& shape,
                                               bool with_control) {
  const std::int64_t length = random.integer(1, shape.lines + 1);
  std::vector<instruction> lines;
  for (std::int64_t l = 0; l < length; ++l) {
    lines.push_back(random_instruction(random, shape, with_control));
  }
  return lines;
}

/// The discrete machine of ISA.md, for one element.
struct machine {
  std::vector<std::int64_t> regs, mem;
  std::int64_t pc = 0;
  bool halted = false;

  void step(const std::vector<instruction>& program, const machine_shape& shape) {
    const std::int64_t n = shape.n, L = shape.lines, M = shape.memory;
    const instruction in = pc < static_cast<std::int64_t>(program.size())
                               ? program[static_cast<std::size_t>(pc)]
                               : instruction{};
    const std::int64_t x = regs[static_cast<std::size_t>(in.a)];
    const std::int64_t y = regs[static_cast<std::size_t>(in.b)];
    auto& d = regs[static_cast<std::size_t>(in.dst)];
    const std::int64_t next = (pc + 1) % L;
    halted = in.op == opcode::HALT;
    switch (in.op) {
      case opcode::HALT: return;
      case opcode::NOP: break;
      case opcode::SET: d = in.imm; break;
      case opcode::MOV: d = x; break;
      case opcode::INC: d = (x + 1) % n; break;
      case opcode::DEC: d = (x + n - 1) % n; break;
      case opcode::READ: d = mem[static_cast<std::size_t>(x % M)]; break;
      case opcode::STORE: d = pc; break;
      case opcode::WRITE: mem[static_cast<std::size_t>(x % M)] = y; break;
      case opcode::JMP: pc = in.imm % L; return;
      case opcode::JZ: pc = x == 0 ? in.imm % L : next; return;
      case opcode::JNZ: pc = x != 0 ? in.imm % L : next; return;
      case opcode::JR: pc = x % L; return;
      case opcode::CALL: d = next; pc = in.imm % L; return;
      default: d = ncl::alu::apply(in.op, x, y, n); break;
    }
    pc = next;
  }
};

inline machine random_machine(ncl::rng& random, const machine_shape& shape) {
  machine m;
  for (std::int64_t r = 0; r < shape.registers; ++r) m.regs.push_back(random.integer(0, shape.n));
  for (std::int64_t c = 0; c < shape.memory; ++c) m.mem.push_back(random.integer(0, shape.n));
  return m;
}

/// Writes element b's registers and memory into a one-hot soft state.
template <class S>
void load(ncl::machine::soft_state<S>& state, const machine_shape& shape, ncl::index b,
          const machine& m) {
  for (std::int64_t r = 0; r < shape.registers; ++r) {
    ncl::machine::set_register(state, shape, b, r, m.regs[static_cast<std::size_t>(r)]);
  }
  for (std::int64_t c = 0; c < shape.memory; ++c) {
    ncl::machine::set_memory(state, shape, b, c, m.mem[static_cast<std::size_t>(c)]);
  }
}

/// Empty when element b of the soft state is exactly (bit for bit) the one-hot image of m;
/// otherwise the first difference.
template <class S>
std::string difference(const ncl::machine::soft_state<S>& state, const machine_shape& shape,
                       ncl::index b, const machine& m) {
  const std::int64_t n = shape.n;
  for (std::int64_t r = 0; r < shape.registers; ++r) {
    for (std::int64_t v = 0; v < n; ++v) {
      const S want = v == m.regs[static_cast<std::size_t>(r)] ? S(1) : S(0);
      if (state.registers(b, r * n + v) != want) {
        return ncl::detail::concat("register ", r, " value ", v, ": ", state.registers(b, r * n + v),
                                   " (reference value ", m.regs[static_cast<std::size_t>(r)], ")");
      }
    }
  }
  for (std::int64_t c = 0; c < shape.memory; ++c) {
    for (std::int64_t v = 0; v < n; ++v) {
      const S want = v == m.mem[static_cast<std::size_t>(c)] ? S(1) : S(0);
      if (state.memory(b, c * n + v) != want) {
        return ncl::detail::concat("memory ", c, " value ", v, ": ", state.memory(b, c * n + v),
                                   " (reference value ", m.mem[static_cast<std::size_t>(c)], ")");
      }
    }
  }
  for (std::int64_t l = 0; l < shape.lines; ++l) {
    const S want = l == m.pc ? S(1) : S(0);
    if (state.counter(b, l) != want) {
      return ncl::detail::concat("counter line ", l, ": ", state.counter(b, l),
                                 " (reference pc ", m.pc, ")");
    }
  }
  const S want_h = m.halted ? S(1) : S(0);
  if (state.halted[static_cast<std::size_t>(b)] != want_h) {
    return ncl::detail::concat("halted: ", state.halted[static_cast<std::size_t>(b)],
                               " (reference ", m.halted, ")");
  }
  return {};
}

}  // namespace soft_test
