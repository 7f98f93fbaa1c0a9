// The discrete reference interpreter: ISA.md's machine on integers, step for step what the
// soft interpreter computes on one-hot programs and inputs.
//
// Readings of ISA.md this interpreter fixes (see the notes in the README):
// - Jump targets are lines(k) = k mod L; JR a jumps to a mod L; READ/WRITE address a mod M.
// - CALL writes val(inc(c)) to dst (= ra): inc moves the counter to the next *line* with
//   line L-1 wrapping to 0, exactly as step 5's e_{l+1}, and val maps line l to value l, so
//   ra = (l + 1) mod L (never L, which would be no line).
// - STORE writes val(c), the current line number.
// - h after a step is f_HALT of the instruction that step fetched; halt_step is the first
//   step (counting from 1) that fetched HALT. HALT leaves pc where it is.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/machine/assembler.hpp"
#include "ncl/machine/program.hpp"
#include "ncl/machine/shape.hpp"

namespace ncl::machine {

/// The discrete machine state.
struct reference_state {
  std::vector<std::int64_t> registers;  // (R), values in [0, n)
  std::vector<std::int64_t> memory;     // (M)
  std::int64_t pc = 0;                  // the line the next step fetches
  bool halted = false;                  // the last step fetched HALT
  std::int64_t steps = 0;               // steps taken
  std::optional<std::int64_t> halt_step;  // first step (from 1) that fetched HALT

  friend bool operator==(const reference_state&, const reference_state&) = default;
};

class reference_machine {
 public:
  /// The program must fit `shape` (checked as by compile).
  reference_machine(const assembled_program& program, const machine_shape& shape)
      : program_(program), shape_(shape) {
    detail::check_program_fits(program_, shape_);
  }

  const machine_shape& shape() const { return shape_; }

  /// The initial state: registers and memory from `inputs` (0 unless set), pc = entry.
  reference_state initial_state(const machine_inputs& inputs = {}) const {
    return initial_state(program_.entry, inputs);
  }

  reference_state initial_state(std::int64_t entry, const machine_inputs& inputs) const {
    if (entry < 0 || entry >= shape_.lines) {
      throw value_error(ncl::detail::concat("reference_machine: entry line ", entry,
                                            " is outside [0, L = ", shape_.lines, ")"));
    }
    reference_state s;
    s.registers = detail::checked_values(inputs.registers, shape_.registers, shape_.n, "registers");
    s.memory = detail::checked_values(inputs.memory, shape_.memory, shape_.n, "memory");
    s.pc = entry;
    return s;
  }

  /// The instruction on line l (HALT past the end of the program).
  instruction fetch(std::int64_t line) const {
    return line < static_cast<std::int64_t>(program_.lines.size())
               ? program_.lines[static_cast<std::size_t>(line)]
               : instruction{};
  }

  /// One step (ISA.md, "One step"), in place.
  void step(reference_state& s) const {
    check_state(s);
    const std::int64_t n = shape_.n, L = shape_.lines, M = shape_.memory;
    const std::int64_t line = s.pc;
    const instruction i = fetch(line);
    auto& R = s.registers;
    const std::int64_t u = R[static_cast<std::size_t>(i.a)];
    const std::int64_t v = R[static_cast<std::size_t>(i.b)];
    std::int64_t& d = R[static_cast<std::size_t>(i.dst)];
    std::int64_t next = (line + 1) % L;
    switch (i.op) {
      case opcode::HALT: next = line; break;
      case opcode::NOP: break;
      case opcode::SET: d = i.imm; break;
      case opcode::MOV: d = u; break;
      case opcode::INC: d = (u + 1) % n; break;
      case opcode::DEC: d = (u + n - 1) % n; break;
      case opcode::READ: d = s.memory[static_cast<std::size_t>(u % M)]; break;
      case opcode::STORE: d = line; break;
      case opcode::WRITE: s.memory[static_cast<std::size_t>(u % M)] = v; break;
      case opcode::JMP: next = i.imm % L; break;
      case opcode::JZ: if (u == 0) next = i.imm % L; break;
      case opcode::JNZ: if (u != 0) next = i.imm % L; break;
      case opcode::JR: next = u % L; break;
      case opcode::CALL:
        d = (line + 1) % L;  // val(inc(c)): the next line, wrapping at L
        next = i.imm % L;
        break;
      default: d = alu::apply(i.op, u, v, n); break;  // the table ops
    }
    s.pc = next;
    s.halted = i.op == opcode::HALT;
    ++s.steps;
    if (s.halted && !s.halt_step) s.halt_step = s.steps;
  }

  /// Up to `steps` steps, stopping after the first step that fetches HALT (the rest would
  /// change nothing). Returns the final state.
  reference_state run(reference_state s, std::int64_t steps) const {
    for (std::int64_t t = 0; t < steps && !s.halted; ++t) step(s);
    return s;
  }

  /// Runs from the program's entry with `inputs` for the shape's T steps.
  reference_state run(const machine_inputs& inputs = {}) const {
    return run(initial_state(inputs), shape_.steps);
  }

 private:
  void check_state(const reference_state& s) const {
    if (static_cast<std::int64_t>(s.registers.size()) != shape_.registers ||
        static_cast<std::int64_t>(s.memory.size()) != shape_.memory || s.pc < 0 ||
        s.pc >= shape_.lines ||
        std::any_of(s.registers.begin(), s.registers.end(), [&](auto v) { return v < 0 || v >= shape_.n; }) ||
        std::any_of(s.memory.begin(), s.memory.end(), [&](auto v) { return v < 0 || v >= shape_.n; })) {
      throw value_error(ncl::detail::concat("reference_machine::step: state does not fit the shape (",
                                            s.registers.size(), " registers, ", s.memory.size(),
                                            " cells, pc ", s.pc, ", or a value outside [0, n))"));
    }
  }

  assembled_program program_;
  machine_shape shape_;
};

/// The one-hot soft state (batch 1) of a discrete state, for comparing the soft interpreter
/// with the reference after every step: registers and memory one-hot, c one-hot on pc,
/// h = 1 if the last step fetched HALT.
template <class S>
soft_state<S> to_soft_state(const reference_state& s, const machine_shape& shape) {
  soft_state<S> out = initial_soft_state<S>(shape, s.pc, machine_inputs{s.registers, s.memory});
  out.halted[0] = s.halted ? S(1) : S(0);
  return out;
}

}  // namespace ncl::machine
