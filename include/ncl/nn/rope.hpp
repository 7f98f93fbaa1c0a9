// Rotary position embeddings (Su et al. 2021, "RoFormer", eq. 34) in the rotate-half layout of
// Hugging Face's LLaMA: within each head of size D the pair rotated together is (i, i + D/2),
// by the angle t * theta^(-2i/D) at position t. LLaMA 3 uses theta = 500000.
#pragma once

#include <cmath>
#include <vector>

#include "ncl/core/buffer.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/train/parallel.hpp"

namespace ncl::nn {

/// cos and sin of every (position, pair) angle, each (T, D/2).
template <class S>
struct rope_table {
  index head_dim = 0;
  index max_positions = 0;
  buffer<S> cos;
  buffer<S> sin;

  rope_table() = default;
  rope_table(index head_dim_, index max_positions_, double theta = 500000.0)
      : head_dim(head_dim_), max_positions(max_positions_) {
    if (head_dim <= 0 || head_dim % 2 != 0) {
      throw value_error(ncl::detail::concat("rope_table: head_dim ", head_dim, " must be even and > 0"));
    }
    if (!(theta > 0)) throw value_error(ncl::detail::concat("rope_table: theta ", theta, " must be > 0"));
    const index half = head_dim / 2;
    cos.resize(static_cast<std::size_t>(max_positions * half));
    sin.resize(cos.size());
    for (index t = 0; t < max_positions; ++t) {
      for (index i = 0; i < half; ++i) {
        const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
        const double angle = static_cast<double>(t) * inv_freq;
        cos[static_cast<std::size_t>(t * half + i)] = static_cast<S>(std::cos(angle));
        sin[static_cast<std::size_t>(t * half + i)] = static_cast<S>(std::sin(angle));
      }
    }
  }
};

/// Rotates n_heads heads of size D in each of N rows (row n at position n % T; consecutive
/// rows of `stride` elements). out may equal inp (in place).
template <class S>
void rope_forward(S* out, const S* inp, const rope_table<S>& table, index N, index T,
                  index n_heads, index stride) {
  const index D = table.head_dim, half = D / 2;
  if (T > table.max_positions) {
    throw value_error(ncl::detail::concat("rope_forward: sequence length ", T,
                                          " exceeds the table's ", table.max_positions, " positions"));
  }
  ncl::detail::parallel_for<index>(N, N * n_heads * D >= ncl::train::detail::parallel_threshold, [&](index n) {
    const S* c = table.cos.data() + (n % T) * half;
    const S* s = table.sin.data() + (n % T) * half;
    for (index h = 0; h < n_heads; ++h) {
      const S* x = inp + n * stride + h * D;
      S* y = out + n * stride + h * D;
      for (index i = 0; i < half; ++i) {
        const S x1 = x[i], x2 = x[i + half];
        y[i] = x1 * c[i] - x2 * s[i];
        y[i + half] = x2 * c[i] + x1 * s[i];
      }
    }
  }, ncl::detail::grain_for(N));
}

/// dinp += R^T dout (the rotation by minus the angle). dinp must not alias dout.
template <class S>
void rope_backward(S* dinp, const S* dout, const rope_table<S>& table, index N, index T,
                   index n_heads, index stride) {
  const index D = table.head_dim, half = D / 2;
  ncl::detail::parallel_for<index>(N, N * n_heads * D >= ncl::train::detail::parallel_threshold, [&](index n) {
    const S* c = table.cos.data() + (n % T) * half;
    const S* s = table.sin.data() + (n % T) * half;
    for (index h = 0; h < n_heads; ++h) {
      const S* dy = dout + n * stride + h * D;
      S* dx = dinp + n * stride + h * D;
      for (index i = 0; i < half; ++i) {
        dx[i] += dy[i] * c[i] + dy[i + half] * s[i];
        dx[i + half] += dy[i + half] * c[i] - dy[i] * s[i];
      }
    }
  }, ncl::detail::grain_for(N));
}

}  // namespace ncl::nn
