// The differentiable register file (paper eq. 2-3, ISA.md steps 2-3) for one batch element:
// R registers, each a distribution over the n values, stored row after row (R, n).
//
// Read:  u = sum_r alpha_r regs[r]                    (a soft register selection)
// Write: regs'[r] = (1 - w d_r) regs[r] + d_r o       (d the soft destination, w the write mass)
//
// Plain loops over contiguous rows of n values, which the compiler vectorises; the batched
// interpreter calls them once per element. Backward adds into its gradient buffers.
#pragma once

#include "ncl/core/tensor.hpp"

namespace ncl::machine {

/// u (n) = sum_r alpha[r] regs[r]; regs (R, n), alpha (R).
template <class S>
void register_read_forward(S* u, const S* regs, const S* alpha, index R, index n) {
  for (index j = 0; j < n; ++j) u[j] = S(0);
  for (index r = 0; r < R; ++r) {
    const S weight = alpha[r];
    if (weight == S(0)) continue;  // exact: the row would add weight * x = 0
    const S* row = regs + r * n;
    for (index j = 0; j < n; ++j) u[j] += weight * row[j];
  }
}

/// dregs (R, n) += alpha (x) du; dalpha (R) += regs du.
template <class S>
void register_read_backward(S* dregs, S* dalpha, const S* du, const S* regs, const S* alpha,
                            index R, index n) {
  for (index r = 0; r < R; ++r) {
    const S* row = regs + r * n;
    S* drow = dregs + r * n;
    const S weight = alpha[r];
    S dot = S(0);
    for (index j = 0; j < n; ++j) {
      dot += row[j] * du[j];
      drow[j] += weight * du[j];
    }
    dalpha[r] += dot;
  }
}

/// next (R, n) = (1 - w d_r) regs[r] + d_r o. next may alias regs (row r reads only row r).
template <class S>
void register_write_forward(S* next, const S* regs, const S* d, S w, const S* o, index R,
                            index n) {
  for (index r = 0; r < R; ++r) {
    const S keep = S(1) - w * d[r];
    const S put = d[r];
    const S* row = regs + r * n;
    S* out = next + r * n;
    for (index j = 0; j < n; ++j) out[j] = keep * row[j] + put * o[j];
  }
}

/// Gradients of register_write_forward: dregs (R, n), dd (R), dw (1), dout (n) add.
template <class S>
void register_write_backward(S* dregs, S* dd, S* dw, S* dout, const S* dnext, const S* regs,
                             const S* d, S w, const S* o, index R, index n) {
  S dw_sum = S(0);
  for (index r = 0; r < R; ++r) {
    const S keep = S(1) - w * d[r];
    const S put = d[r];
    const S* row = regs + r * n;
    const S* g = dnext + r * n;
    S* drow = dregs + r * n;
    S old_dot = S(0), new_dot = S(0);
    for (index j = 0; j < n; ++j) {
      old_dot += row[j] * g[j];
      new_dot += o[j] * g[j];
      drow[j] += keep * g[j];
      dout[j] += put * g[j];
    }
    dd[r] += new_dot - w * old_dot;
    dw_sum -= put * old_dot;
  }
  *dw += dw_sum;
}

}  // namespace ncl::machine
