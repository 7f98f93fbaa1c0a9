// The differentiable memory (paper eq. 4-5, ISA.md steps 3-4) for one batch element: M cells,
// each a distribution over the n values, stored row after row (M, n).
//
// Address: e = addr(x), e_m = sum over values v with v mod M = m of x_v (ISA.md "Maps").
// Read:    out = sum_m e_m mem[m]                          (the READ op's o)
// Write:   mem'[m] = (1 - p e_m) mem[m] + p e_m v          (p = f_WRITE, v the value operand)
// Backward adds into its gradient buffers.
#pragma once

#include <algorithm>

#include "ncl/core/tensor.hpp"
#include "ncl/machine/registers.hpp"

namespace ncl::machine {

/// e (M) = addr(x) for x (n): value v addresses cell v mod M.
template <class S>
void address_forward(S* e, const S* x, index n, index M) {
  for (index m = 0; m < M; ++m) e[m] = S(0);
  detail::add_folded(e, x, S(1), M, n);
}

/// dx (n) += de[v mod M].
template <class S>
void address_backward(S* dx, const S* de, index n, index M) {
  detail::unfold<true>(dx, de, M, n);
}

/// out (n) = sum_m e[m] mem[m]; mem (M, n), e (M).
template <class S>
void memory_read_forward(S* out, const S* mem, const S* e, index M, index n) {
  mix_rows(out, mem, e, M, n);
}

/// Gradients of weight * memory_read_forward: dmem (M, n) += weight e (x) dout,
/// de (M) += weight mem dout.
template <class S>
void memory_read_backward(S* dmem, S* de, const S* dout, S weight, const S* mem, const S* e,
                          index M, index n) {
  if (weight == S(0)) return;
  for (index m = 0; m < M; ++m) {
    const S* row = mem + m * n;
    S* drow = dmem + m * n;
    const S put = weight * e[m];
    for (index j = 0; j < n; ++j) drow[j] += put * dout[j];
    de[m] += weight * detail::dot(row, dout, n);
  }
}

/// next (M, n) = (1 - p e_m) mem[m] + p e_m v. next may alias mem.
template <class S>
void memory_write_forward(S* next, const S* mem, const S* e, S p, const S* v, index M,
                          index n) {
  for (index m = 0; m < M; ++m) {
    const S put = p * e[m];
    const S keep = S(1) - put;
    const S* row = mem + m * n;
    S* out = next + m * n;
    if (put == S(0)) {  // exact: keep = 1 and put * v = 0
      if (out != row) {
        for (index j = 0; j < n; ++j) out[j] = row[j];
      }
      continue;
    }
    for (index j = 0; j < n; ++j) out[j] = keep * row[j] + put * v[j];
  }
}

namespace detail {

/// memory_forward on columns [0, tiles K) of every cell (K = lanes<S>): the read's
/// accumulators and v stay in vector registers while each cell's tile is loaded once.
template <index tiles, class S>
void memory_forward_tile(S* read, S* next, const S* mem, const S* e, S p, const S* v, index M,
                         index n) {
  constexpr index K = lanes<S>;
  using lane = lane_sums<S>;
  lane acc[tiles], value[tiles];
  for (index t = 0; t < tiles; ++t) {
    acc[t].setZero();
    value[t] = lanes_at(v + t * K);
  }
  for (index m = 0; m < M; ++m) {
    const S weight = e[m], put = p * e[m];
    const S keep = S(1) - put;
    const S* row = mem + m * n;
    S* out = next + m * n;
    for (index t = 0; t < tiles; ++t) {
      const lane cell = lanes_at(row + t * K);
      acc[t] += weight * cell;
      Eigen::Map<lane>(out + t * K) = keep * cell + put * value[t];
    }
  }
  for (index t = 0; t < tiles; ++t) Eigen::Map<lane>(read + t * K) = acc[t];
}

/// dv += sum_m p e_m dnext[m]: the written value's gradient, shared by both backward passes.
template <class S>
void add_written_value_grad(S* dv, const S* dnext, const S* e, S p, index M, index n) {
  if (p == S(0)) return;
  constexpr index chunk = 64;
  S put[chunk];
  for (index m0 = 0; m0 < M; m0 += chunk) {
    const index count = std::min(chunk, M - m0);
    for (index m = 0; m < count; ++m) put[m] = p * e[m0 + m];
    mix_rows_add(dv, dnext + m0 * n, put, count, n);
  }
}

}  // namespace detail

/// memory_read_forward and memory_write_forward in one pass over the cells (the fast path
/// the interpreter uses): read (n) = sum_m e_m mem[m], next (M, n) = (1 - p e_m) mem[m] +
/// p e_m v, the same sums in the same order as the two. next may not alias mem.
template <class S>
void memory_forward(S* read, S* next, const S* mem, const S* e, S p, const S* v, index M,
                    index n) {
  constexpr index K = detail::lanes<S>;
  index j = 0;
  for (; j + 4 * K <= n; j += 4 * K) {
    detail::memory_forward_tile<4>(read + j, next + j, mem + j, e, p, v + j, M, n);
  }
  if (j + 2 * K <= n) {
    detail::memory_forward_tile<2>(read + j, next + j, mem + j, e, p, v + j, M, n);
    j += 2 * K;
  }
  if (j + K <= n) {
    detail::memory_forward_tile<1>(read + j, next + j, mem + j, e, p, v + j, M, n);
    j += K;
  }
  for (; j < n; ++j) {  // the last n mod K columns
    S acc = S(0);
    for (index m = 0; m < M; ++m) {
      const S put = p * e[m];
      acc += e[m] * mem[m * n + j];
      next[m * n + j] = (S(1) - put) * mem[m * n + j] + put * v[j];
    }
    read[j] = acc;
  }
}

/// Gradients of memory_write_forward: dmem (M, n), de (M), dp (1), dv (n) add.
template <class S>
void memory_write_backward(S* dmem, S* de, S* dp, S* dv, const S* dnext, const S* mem,
                           const S* e, S p, const S* v, index M, index n) {
  S dp_sum = S(0);
  for (index m = 0; m < M; ++m) {
    const S keep = S(1) - p * e[m];
    const S* row = mem + m * n;
    const S* g = dnext + m * n;
    S* drow = dmem + m * n;
    for (index j = 0; j < n; ++j) drow[j] += keep * g[j];
    const S change = detail::dot(g, v, n) - detail::dot(g, row, n);  // d loss / d (p e_m)
    dp_sum += e[m] * change;
    de[m] += p * change;
  }
  *dp += dp_sum;
  detail::add_written_value_grad(dv, dnext, e, p, M, n);
}

namespace detail {

/// memory_backward's pass; with `add` false it writes dmem instead of adding into it (the
/// interpreter's path: no zero-fill of the largest gradient buffer every step).
template <bool add, class S>
void memory_backward_pass(S* dmem, S* de, S* dp, S* dv, const S* dnext, const S* d_read,
                          S read_weight, const S* mem, const S* e, S p, const S* v, index M,
                          index n) {
  constexpr index K = detail::lanes<S>;
  using lane = detail::lane_sums<S>;
  // Per cell: change_m = dnext[m] . (v - mem[m]) = d loss / d (p e_m), and
  // de_m += p change_m + read_weight mem[m] . d_read: one horizontal sum per cell (de_m);
  // dp = sum_m e_m change_m stays in lanes until the end.
  lane dp_lanes = lane::Zero();
  S dp_sum = S(0);
  for (index m = 0; m < M; ++m) {
    const S keep = S(1) - p * e[m];
    const S put_read = read_weight * e[m];
    const S* row = mem + m * n;
    const S* g = dnext + m * n;
    S* drow = dmem + m * n;
    lane change_lanes = lane::Zero(), de_lanes = lane::Zero();
    index j = 0;
    for (; j + K <= n; j += K) {
      const auto gj = detail::lanes_at(g + j);
      const auto rj = detail::lanes_at(row + j);
      const auto dj = detail::lanes_at(d_read + j);
      const lane change = gj * (detail::lanes_at(v + j) - rj);
      change_lanes += change;
      de_lanes += p * change + read_weight * (rj * dj);
      if constexpr (add) {
        Eigen::Map<lane>(drow + j) += keep * gj + put_read * dj;
      } else {
        Eigen::Map<lane>(drow + j) = keep * gj + put_read * dj;
      }
    }
    S change = S(0), read_dot = S(0);
    for (; j < n; ++j) {
      change += g[j] * (v[j] - row[j]);
      read_dot += row[j] * d_read[j];
      drow[j] = (add ? drow[j] : S(0)) + keep * g[j] + put_read * d_read[j];
    }
    dp_lanes += e[m] * change_lanes;
    dp_sum += e[m] * change;
    de[m] += p * change + read_weight * read_dot + detail::lane_total(de_lanes);
  }
  dp_sum += detail::lane_total(dp_lanes);
  *dp += dp_sum;
  add_written_value_grad(dv, dnext, e, p, M, n);
}

}  // namespace detail

/// memory_write_backward and memory_read_backward (with weight read_weight and output
/// gradient d_read) in one pass over the cells: dmem (M, n), de (M), dp (1), dv (n) add.
template <class S>
void memory_backward(S* dmem, S* de, S* dp, S* dv, const S* dnext, const S* d_read,
                     S read_weight, const S* mem, const S* e, S p, const S* v, index M,
                     index n) {
  detail::memory_backward_pass<true>(dmem, de, dp, dv, dnext, d_read, read_weight, mem, e, p, v,
                                     M, n);
}

/// memory_backward that writes dmem (M, n) instead of adding into it; de, dp, dv add.
template <class S>
void memory_backward_assign(S* dmem, S* de, S* dp, S* dv, const S* dnext, const S* d_read,
                            S read_weight, const S* mem, const S* e, S p, const S* v, index M,
                            index n) {
  detail::memory_backward_pass<false>(dmem, de, dp, dv, dnext, d_read, read_weight, mem, e, p, v,
                                      M, n);
}

}  // namespace ncl::machine
