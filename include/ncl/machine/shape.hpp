// The machine's shape (ISA.md, "Machine shape") and the plain data the soft machine works
// on: a soft program (five field distributions per line), a batch of soft states, and the
// initial state from integer inputs.
#pragma once

#include <cstdint>
#include <vector>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::machine {

/// n values, R registers (sp = r(R-2), ra = r(R-1)), M memory cells, L program lines,
/// T steps. The defaults are ncl-run's.
struct machine_shape {
  std::int64_t n = 32;
  std::int64_t registers = 8;
  std::int64_t memory = 32;
  std::int64_t lines = 32;
  std::int64_t steps = 256;

  std::int64_t sp() const { return registers - 2; }
  std::int64_t ra() const { return registers - 1; }

  /// Throws value_error for a shape that breaks ISA.md's limits.
  void validate() const {
    auto fail = [](const auto&... parts) { throw value_error(detail::concat(parts...)); };
    if (n < 2 || n > (std::int64_t{1} << 24)) fail("machine shape: n = ", n, " must be in [2, 2^24]");
    if (registers < 2) fail("machine shape: R = ", registers, " registers: at least 2 (sp and ra)");
    if (registers > 4096) fail("machine shape: R = ", registers, " registers is more than 4096");
    if (memory < 1 || memory > n) fail("machine shape: M = ", memory, " must be in [1, n = ", n, "]");
    if (lines < 1 || lines > n) fail("machine shape: L = ", lines, " must be in [1, n = ", n, "]");
    if (steps < 0) fail("machine shape: T = ", steps, " steps must not be negative");
  }
};

/// One program: L lines, each line five distributions (rows sum to 1).
template <class S>
struct soft_program {
  matrix<S> op;   // (L, 23) over alu::opcode
  matrix<S> dst;  // (L, R)
  matrix<S> a;    // (L, R)
  matrix<S> b;    // (L, R)
  matrix<S> imm;  // (L, n)

  std::int64_t lines() const { return op.rows(); }
};

/// A batch of machine states; row b of each matrix is batch element b.
template <class S>
struct soft_state {
  matrix<S> registers;    // (B, R * n): register r of element b is registers(b, r*n .. r*n+n-1)
  matrix<S> memory;       // (B, M * n): cell m likewise
  matrix<S> counter;      // (B, L): instruction counter c, a distribution over lines
  std::vector<S> halted;  // (B): halting probability h

  std::int64_t batch() const { return counter.rows(); }
};

/// Initial register and memory contents: every register and cell 0 unless set.
struct machine_inputs {
  std::vector<std::int64_t> registers;  // (R), or empty for all 0
  std::vector<std::int64_t> memory;     // (M), or empty for all 0
};

namespace detail {

inline std::vector<std::int64_t> checked_values(const std::vector<std::int64_t>& v, std::int64_t size,
                                                std::int64_t n, const char* what) {
  if (v.empty()) return std::vector<std::int64_t>(static_cast<std::size_t>(size), 0);
  if (static_cast<std::int64_t>(v.size()) != size) {
    throw value_error(ncl::detail::concat("machine inputs: ", what, " has ", v.size(),
                                          " values, expected ", size));
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0 || v[i] >= n) {
      throw value_error(ncl::detail::concat("machine inputs: ", what, "[", i, "] = ", v[i],
                                            " is outside [0, n = ", n, ")"));
    }
  }
  return v;
}

}  // namespace detail

/// The soft machine's initial state (ISA.md, "State and program"), the same for all `batch`
/// elements: one-hot registers and memory, c one-hot on the entry line, h = 0.
/// (machine::initial_state(shape, batch, entry) is this with every input 0.)
template <class S>
soft_state<S> initial_soft_state(const machine_shape& shape, std::int64_t entry,
                                 const machine_inputs& inputs, index batch = 1) {
  shape.validate();
  if (batch < 1) throw value_error(ncl::detail::concat("initial_soft_state: batch = ", batch, " < 1"));
  if (entry < 0 || entry >= shape.lines) {
    throw value_error(ncl::detail::concat("initial_soft_state: entry line ", entry,
                                          " is outside [0, L = ", shape.lines, ")"));
  }
  const auto regs = detail::checked_values(inputs.registers, shape.registers, shape.n, "registers");
  const auto mem = detail::checked_values(inputs.memory, shape.memory, shape.n, "memory");
  soft_state<S> s;
  s.registers.setZero(batch, shape.registers * shape.n);
  s.memory.setZero(batch, shape.memory * shape.n);
  s.counter.setZero(batch, shape.lines);
  s.halted.assign(static_cast<std::size_t>(batch), S(0));
  for (index b = 0; b < batch; ++b) {
    for (std::int64_t r = 0; r < shape.registers; ++r) s.registers(b, r * shape.n + regs[r]) = S(1);
    for (std::int64_t m = 0; m < shape.memory; ++m) s.memory(b, m * shape.n + mem[m]) = S(1);
    s.counter(b, entry) = S(1);
  }
  return s;
}

}  // namespace ncl::machine
