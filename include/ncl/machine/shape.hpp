// The machine's shape (ISA.md, "Machine shape") and the plain data the soft machine works
// on: a soft program (five field distributions per line) and a batch of soft states.
#pragma once

#include <cstdint>
#include <vector>

#include "ncl/alu/opcode.hpp"
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

}  // namespace ncl::machine
