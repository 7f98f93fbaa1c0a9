// Causal multi-head attention with grouped-query heads (Ainslie et al. 2023): H query heads
// share KV key/value heads, query head h reading kv head h / (H / KV). Inputs are packed per
// token as [q (H D) | k (KV D) | v (KV D)], the output of one GEMM with the q, k and v
// projection weights stacked; scores are scaled by 1/sqrt(D) (Vaswani et al. 2017, eq. 1).
//
// Only the last `queries` positions of each sequence may be asked for (all T by default): a
// model read out at the last position needs its final layer's output there alone, while keys
// and values still come from every position.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ncl/core/buffer.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/train/parallel.hpp"

namespace ncl::nn {

struct attention_shape {
  index B, T, H, KV, D;
  index queries = 0;  ///< Tq: outputs for the last Tq positions only; 0 means all T
  index qkv_stride() const { return (H + 2 * KV) * D; }
  index Tq() const { return queries == 0 ? T : queries; }
  void validate() const {
    if (B <= 0 || T <= 0 || H <= 0 || KV <= 0 || D <= 0 || H % KV != 0 || queries < 0 ||
        queries > T) {
      throw value_error(ncl::detail::concat("attention: need positive sizes, n_kv_heads dividing n_heads and 0 <= queries <= T, got B ",
                                            B, ", T ", T, ", H ", H, ", KV ", KV, ", D ", D,
                                            ", queries ", queries));
    }
  }
};

/// out (B, Tq, H D), att (B, H, Tq, T) = causal softmax(q k^T / sqrt(D)) (zero above the
/// diagonal) for the last Tq positions, from qkv (B, T, (H + 2 KV) D).
template <class S>
void attention_forward(S* out, S* att, const S* qkv, const attention_shape& sh) {
  sh.validate();
  const index B = sh.B, T = sh.T, H = sh.H, D = sh.D, stride = sh.qkv_stride(), Tq = sh.Tq();
  const index group = H / sh.KV;
  const S scale = S(1) / std::sqrt(static_cast<S>(D));
  ncl::detail::parallel_for<index>(B, B * H * Tq * T * D > 200000, [&](index b) {
    for (index h = 0; h < H; ++h) {
      const index kv = h / group;
      for (index i = 0; i < Tq; ++i) {
        const index t = T - Tq + i;  // position of query i
        const S* q = qkv + (b * T + t) * stride + h * D;
        S* a = att + ((b * H + h) * Tq + i) * T;
        S max_score = -std::numeric_limits<S>::infinity();
        for (index s = 0; s <= t; ++s) {
          const S* k = qkv + (b * T + s) * stride + (H + kv) * D;
          S dot = 0;
          for (index d = 0; d < D; ++d) dot += q[d] * k[d];
          a[s] = dot * scale;
          max_score = std::max(max_score, a[s]);
        }
        S total = 0;
        for (index s = 0; s <= t; ++s) {
          a[s] = std::exp(a[s] - max_score);
          total += a[s];
        }
        const S inv = S(1) / total;
        for (index s = 0; s <= t; ++s) a[s] *= inv;
        for (index s = t + 1; s < T; ++s) a[s] = 0;
        S* y = out + (b * Tq + i) * H * D + h * D;
        for (index d = 0; d < D; ++d) y[d] = 0;
        for (index s = 0; s <= t; ++s) {
          const S* v = qkv + (b * T + s) * stride + (H + sh.KV + kv) * D;
          const S w = a[s];
          for (index d = 0; d < D; ++d) y[d] += w * v[d];
        }
      }
    }
  }, ncl::detail::grain_for(B));
}

/// dqkv (B, T, (H + 2 KV) D) += the gradient through attention, given dout (B, Tq, H D) and the
/// forward's qkv and att.
template <class S>
void attention_backward(S* dqkv, const S* dout, const S* qkv, const S* att,
                        const attention_shape& sh) {
  sh.validate();
  const index B = sh.B, T = sh.T, H = sh.H, D = sh.D, stride = sh.qkv_stride(), Tq = sh.Tq();
  const index group = H / sh.KV;
  const S scale = S(1) / std::sqrt(static_cast<S>(D));
  // Parallel over the batch only: the query heads of a group add into the same dk and dv.
  ncl::detail::parallel_for<index>(B, B * H * Tq * T * D > 200000, [&](index b) {
    buffer<S> datt(static_cast<std::size_t>(T));
    for (index h = 0; h < H; ++h) {
      const index kv = h / group;
      for (index i = 0; i < Tq; ++i) {
        const index t = T - Tq + i;
        const S* a = att + ((b * H + h) * Tq + i) * T;
        const S* dy = dout + (b * Tq + i) * H * D + h * D;
        // datt[s] = dy . v_s and dv_s += att[t, s] dy
        S dot_all = 0;
        for (index s = 0; s <= t; ++s) {
          const S* v = qkv + (b * T + s) * stride + (H + sh.KV + kv) * D;
          S* dv = dqkv + (b * T + s) * stride + (H + sh.KV + kv) * D;
          S dot = 0;
          for (index d = 0; d < D; ++d) {
            dot += dy[d] * v[d];
            dv[d] += a[s] * dy[d];
          }
          datt[static_cast<std::size_t>(s)] = dot;
          dot_all += dot * a[s];
        }
        // softmax backward, then through the scaled dot products
        const S* q = qkv + (b * T + t) * stride + h * D;
        S* dq = dqkv + (b * T + t) * stride + h * D;
        for (index s = 0; s <= t; ++s) {
          const S dscore = a[s] * (datt[static_cast<std::size_t>(s)] - dot_all) * scale;
          const S* k = qkv + (b * T + s) * stride + (H + kv) * D;
          S* dk = dqkv + (b * T + s) * stride + (H + kv) * D;
          for (index d = 0; d < D; ++d) {
            dq[d] += dscore * k[d];
            dk[d] += dscore * q[d];
          }
        }
      }
    }
  });
}

}  // namespace ncl::nn
