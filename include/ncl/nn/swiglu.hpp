// The SwiGLU gate of LLaMA's feed-forward (Shazeer 2020): h = silu(gate) * up. The two
// projections are packed per row as [gate (F) | up (F)], the output of one GEMM with the
// gate and up weights stacked.
#pragma once

#include <cmath>

#include "ncl/core/tensor.hpp"

namespace ncl::nn {

/// out (N, F) = silu(gate_up[:, :F]) * gate_up[:, F:], gate_up (N, 2F).
template <class S>
void swiglu_forward(S* out, const S* gate_up, index N, index F) {
  for (index n = 0; n < N; ++n) {
    const S* a = gate_up + n * 2 * F;
    const S* u = a + F;
    S* h = out + n * F;
    for (index f = 0; f < F; ++f) h[f] = a[f] / (S(1) + std::exp(-a[f])) * u[f];
  }
}

/// dgate += dout up silu'(gate), dup += dout silu(gate); silu'(a) = s (1 + a (1 - s)), s = sigmoid(a).
template <class S>
void swiglu_backward(S* dgate_up, const S* dout, const S* gate_up, index N, index F) {
  for (index n = 0; n < N; ++n) {
    const S* a = gate_up + n * 2 * F;
    const S* u = a + F;
    const S* dh = dout + n * F;
    S* da = dgate_up + n * 2 * F;
    S* du = da + F;
    for (index f = 0; f < F; ++f) {
      const S s = S(1) / (S(1) + std::exp(-a[f]));
      da[f] += dh[f] * u[f] * s * (S(1) + a[f] * (S(1) - s));
      du[f] += dh[f] * a[f] * s;
    }
  }
}

}  // namespace ncl::nn
