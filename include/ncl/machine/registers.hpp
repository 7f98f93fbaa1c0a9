// The differentiable register file (paper eq. 2-3, ISA.md steps 2-3) for one batch element:
// R registers, each a distribution over the n values, stored row after row (R, n).
//
// Read:  u = sum_r alpha_r regs[r]                    (a soft register selection)
// Write: regs'[r] = (1 - w d_r) regs[r] + d_r o       (d the soft destination, w the write mass)
//
// Plain loops over contiguous rows of n values, which the compiler vectorises; the batched
// interpreter calls them once per element. Backward adds into its gradient buffers.
#pragma once

#include <Eigen/Core>

#include <algorithm>

#include "ncl/core/tensor.hpp"

namespace ncl::machine {

namespace detail {

/// Lanes of the partial sums in dot products: one 512-bit vector. Summing lane by lane
/// lets the compiler vectorise a reduction it must otherwise keep in source order.
template <class S>
inline constexpr index lanes = 64 / static_cast<index>(sizeof(S));

/// K lanes of partial sums, a fixed-size Eigen array the compiler keeps in vector registers.
template <class S>
using lane_sums = Eigen::Array<S, lanes<S>, 1>;

/// The sum of the first N lanes of x, folded in halves (N/2 vector adds of shrinking width,
/// not N scalar ones). Not Eigen's `.sum()`: GCC 12 warns, wrongly, that a value is used
/// uninitialized inside its AVX-512 horizontal sum.
template <index N, class S, class Lanes>
S fold_lanes(const Lanes& x) {
  if constexpr (N == 1) {
    return x[0];
  } else {
    const Eigen::Array<S, N / 2, 1> half =
        x.template head<N / 2>() + x.template segment<N / 2>(N / 2);
    return fold_lanes<N / 2, S>(half);
  }
}

/// The sum of the lanes.
template <class S>
S lane_total(const lane_sums<S>& x) {
  return fold_lanes<lanes<S>, S>(x);
}

/// The K values at x as lanes (unaligned).
template <class S>
Eigen::Map<const lane_sums<S>> lanes_at(const S* x) {
  return Eigen::Map<const lane_sums<S>>(x);
}

/// sum_j a[j] b[j].
template <class S>
S dot(const S* a, const S* b, index n) {
  constexpr index K = lanes<S>;
  lane_sums<S> acc = lane_sums<S>::Zero();
  index j = 0;
  for (; j + K <= n; j += K) acc += lanes_at(a + j) * lanes_at(b + j);
  S total = S(0);
  for (; j < n; ++j) total += a[j] * b[j];
  return total + lane_total(acc);
}

/// out (period) += weight * the fold of x (n): value v goes to v mod period (ISA.md's addr
/// and lines maps), a block of `period` values at a time, no division per value.
template <class S>
void add_folded(S* out, const S* x, S weight, index period, index n) {
  for (index v0 = 0; v0 < n; v0 += period) {
    const index count = std::min(period, n - v0);
    for (index i = 0; i < count; ++i) out[i] += weight * x[v0 + i];
  }
}

/// The fold's transpose: out (n) = y[v mod period], or += with `add`.
template <bool add, class S>
void unfold(S* out, const S* y, index period, index n) {
  for (index v0 = 0; v0 < n; v0 += period) {
    const index count = std::min(period, n - v0);
    for (index i = 0; i < count; ++i) out[v0 + i] = (add ? out[v0 + i] : S(0)) + y[i];
  }
}

/// out[0, tiles K) (+)= sum_i weights[i] rows[i][0, tiles K), rows `stride` apart (K =
/// lanes<S>), with the accumulators in vector registers: two sets, for the even and the odd
/// rows, so consecutive multiply-adds do not wait on each other.
template <index tiles, bool add, class S>
void mix_rows_tile(S* out, const S* rows, index stride, const S* weights, index count) {
  constexpr index K = lanes<S>;
  using lane = lane_sums<S>;
  lane even[tiles], odd[tiles];
  for (index t = 0; t < tiles; ++t) {
    even[t].setZero();
    odd[t].setZero();
  }
  index i = 0;
  for (; i + 2 <= count; i += 2) {
    const S w0 = weights[i], w1 = weights[i + 1];
    const S* row0 = rows + i * stride;
    const S* row1 = row0 + stride;
    for (index t = 0; t < tiles; ++t) {
      even[t] += w0 * lanes_at(row0 + t * K);
      odd[t] += w1 * lanes_at(row1 + t * K);
    }
  }
  if (i < count) {
    const S w = weights[i];
    const S* row = rows + i * stride;
    for (index t = 0; t < tiles; ++t) even[t] += w * lanes_at(row + t * K);
  }
  for (index t = 0; t < tiles; ++t) {
    Eigen::Map<lane> target(out + t * K);
    if constexpr (add) {
      target += even[t] + odd[t];
    } else {
      target = even[t] + odd[t];
    }
  }
}

template <bool add, class S>
void mix_rows_into(S* out, const S* rows, index stride, const S* weights, index count, index n) {
  constexpr index K = lanes<S>;
  index j = 0;
  for (; j + 4 * K <= n; j += 4 * K) {
    mix_rows_tile<4, add>(out + j, rows + j, stride, weights, count);
  }
  if (j + 2 * K <= n) {
    mix_rows_tile<2, add>(out + j, rows + j, stride, weights, count);
    j += 2 * K;
  }
  if (j + K <= n) {
    mix_rows_tile<1, add>(out + j, rows + j, stride, weights, count);
    j += K;
  }
  if (j < n) {
    // Fewer than K columns left: rows outer, columns inner, so the inner loop is a short
    // vector operation (not `rest` horizontal sums down strided columns).
    const index rest = n - j;
    S acc[K] = {};
    for (index i = 0; i < count; ++i) {
      const S w = weights[i];
      const S* row = rows + i * stride + j;
      for (index t = 0; t < rest; ++t) acc[t] += w * row[t];
    }
    for (index t = 0; t < rest; ++t) out[j + t] = add ? out[j + t] + acc[t] : acc[t];
  }
}

}  // namespace detail

/// out (n) = sum_i weights[i] rows[i] for rows (count, n): the soft selection of a row.
/// Exact on one-hot weights (every other term adds 0 * x = 0).
template <class S>
void mix_rows(S* out, const S* rows, const S* weights, index count, index n) {
  detail::mix_rows_into<false>(out, rows, n, weights, count, n);
}

/// out (width) = sum_i weights[i] rows[i][0, width) for rows `stride` apart: the soft
/// selection of a row of columns [0, width) of a wider matrix.
template <class S>
void mix_rows_strided(S* out, const S* rows, index stride, const S* weights, index count,
                      index width) {
  detail::mix_rows_into<false>(out, rows, stride, weights, count, width);
}

/// out (n) += sum_i weights[i] rows[i].
template <class S>
void mix_rows_add(S* out, const S* rows, const S* weights, index count, index n) {
  detail::mix_rows_into<true>(out, rows, n, weights, count, n);
}

/// u (n) = sum_r alpha[r] regs[r]; regs (R, n), alpha (R).
template <class S>
void register_read_forward(S* u, const S* regs, const S* alpha, index R, index n) {
  mix_rows(u, regs, alpha, R, n);
}

/// dregs (R, n) += alpha (x) du; dalpha (R) += regs du.
template <class S>
void register_read_backward(S* dregs, S* dalpha, const S* du, const S* regs, const S* alpha,
                            index R, index n) {
  for (index r = 0; r < R; ++r) {
    const S* row = regs + r * n;
    S* drow = dregs + r * n;
    const S weight = alpha[r];
    for (index j = 0; j < n; ++j) drow[j] += weight * du[j];
    dalpha[r] += detail::dot(row, du, n);
  }
}

/// register_read_backward of two reads of the same registers (u with alpha, v with beta)
/// in one pass over them: dregs (R, n) += alpha (x) du + beta (x) dv, dalpha (R) += regs du,
/// dbeta (R) += regs dv.
template <class S>
void register_reads_backward(S* dregs, S* dalpha, S* dbeta, const S* du, const S* dv,
                             const S* regs, const S* alpha, const S* beta, index R, index n) {
  constexpr index K = detail::lanes<S>;
  using lane = detail::lane_sums<S>;
  for (index r = 0; r < R; ++r) {
    const S* row = regs + r * n;
    S* drow = dregs + r * n;
    const S a = alpha[r], b = beta[r];
    lane row_du = lane::Zero(), row_dv = lane::Zero();
    index j = 0;
    for (; j + K <= n; j += K) {
      const auto rj = detail::lanes_at(row + j);
      const auto duj = detail::lanes_at(du + j), dvj = detail::lanes_at(dv + j);
      row_du += rj * duj;
      row_dv += rj * dvj;
      Eigen::Map<lane>(drow + j) += a * duj + b * dvj;
    }
    S tail_u = S(0), tail_v = S(0);
    for (; j < n; ++j) {
      tail_u += row[j] * du[j];
      tail_v += row[j] * dv[j];
      drow[j] += a * du[j] + b * dv[j];
    }
    dalpha[r] += tail_u + detail::lane_total(row_du);
    dbeta[r] += tail_v + detail::lane_total(row_dv);
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

/// Gradients of register_write_forward: dregs (R, n), dd (R), dw (1), dout (n) add. One
/// pass over the rows: dout (n) += sum_r d_r dnext[r] accumulates beside the row products.
template <class S>
void register_write_backward(S* dregs, S* dd, S* dw, S* dout, const S* dnext, const S* regs,
                             const S* d, S w, const S* o, index R, index n) {
  constexpr index K = detail::lanes<S>;
  using lane = detail::lane_sums<S>;
  S dw_sum = S(0);
  for (index r = 0; r < R; ++r) {
    const S keep = S(1) - w * d[r];
    const S put = d[r];
    const S* row = regs + r * n;
    const S* g = dnext + r * n;
    S* drow = dregs + r * n;
    lane old_lanes = lane::Zero(), new_lanes = lane::Zero();
    index j = 0;
    for (; j + K <= n; j += K) {
      const auto gj = detail::lanes_at(g + j);
      old_lanes += detail::lanes_at(row + j) * gj;
      new_lanes += detail::lanes_at(o + j) * gj;
      Eigen::Map<lane>(drow + j) += keep * gj;
      Eigen::Map<lane>(dout + j) += put * gj;
    }
    S old_dot = S(0), new_dot = S(0);
    for (; j < n; ++j) {
      old_dot += row[j] * g[j];
      new_dot += o[j] * g[j];
      drow[j] += keep * g[j];
      dout[j] += put * g[j];
    }
    old_dot += detail::lane_total(old_lanes);
    new_dot += detail::lane_total(new_lanes);
    dd[r] += new_dot - w * old_dot;
    dw_sum -= d[r] * old_dot;
  }
  *dw += dw_sum;
}

}  // namespace ncl::machine
