// The SwiGLU gate of LLaMA's feed-forward (Shazeer 2020): h = silu(gate) * up. The two
// projections are packed per row as [gate (F) | up (F)], the output of one GEMM with the
// gate and up weights stacked. Rows are Eigen arrays so exp is vectorised.
#pragma once

#include <Eigen/Core>

#include "ncl/core/tensor.hpp"
#include "ncl/train/parallel.hpp"

namespace ncl::nn {

/// out (N, F) = silu(gate_up[:, :F]) * gate_up[:, F:], gate_up (N, 2F).
template <class S>
void swiglu_forward(S* out, const S* gate_up, index N, index F) {
  using row = Eigen::Array<S, Eigen::Dynamic, 1>;
  ncl::detail::parallel_for<index>(N, N * F >= ncl::train::detail::parallel_threshold, [&](index n) {
    Eigen::Map<const row> a(gate_up + n * 2 * F, F), u(gate_up + n * 2 * F + F, F);
    Eigen::Map<row>(out + n * F, F) = a / (S(1) + (-a).exp()) * u;
  }, ncl::detail::grain_for(N));
}

/// dgate += dout up silu'(gate), dup += dout silu(gate); silu'(a) = s (1 + a (1 - s)), s = sigmoid(a).
template <class S>
void swiglu_backward(S* dgate_up, const S* dout, const S* gate_up, index N, index F) {
  using row = Eigen::Array<S, Eigen::Dynamic, 1>;
  ncl::detail::parallel_for<index>(N, N * F >= ncl::train::detail::parallel_threshold, [&](index n) {
    Eigen::Map<const row> a(gate_up + n * 2 * F, F), u(gate_up + n * 2 * F + F, F);
    Eigen::Map<const row> dh(dout + n * F, F);
    Eigen::Map<row> da(dgate_up + n * 2 * F, F), du(dgate_up + n * 2 * F + F, F);
    const row s = S(1) / (S(1) + (-a).exp());
    da += dh * u * s * (S(1) + a * (S(1) - s));
    du += dh * a * s;
  }, ncl::detail::grain_for(N));
}

}  // namespace ncl::nn
