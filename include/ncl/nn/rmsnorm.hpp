// RMSNorm (Zhang & Sennrich 2019), as in LLaMA: y = x / sqrt(mean(x^2) + eps) * w.
#pragma once

#include <cmath>

#include "ncl/core/tensor.hpp"
#include "ncl/train/parallel.hpp"

namespace ncl::nn {

/// out (N, C) = inp * rstd * weight, rstd (N) = 1 / sqrt(mean(inp^2) + eps), kept for backward.
template <class S>
void rmsnorm_forward(S* out, S* rstd, const S* inp, const S* weight, index N, index C, S eps) {
  ncl::detail::parallel_for<index>(N, N * C >= ncl::train::detail::parallel_threshold, [&](index n) {
    const S* x = inp + n * C;
    S* y = out + n * C;
    S sum = 0;
    for (index c = 0; c < C; ++c) sum += x[c] * x[c];
    const S r = S(1) / std::sqrt(sum / static_cast<S>(C) + eps);
    rstd[n] = r;
    for (index c = 0; c < C; ++c) y[c] = x[c] * r * weight[c];
  }, ncl::detail::grain_for(N));
}

/// With g = dout * weight: dinp += rstd g - inp rstd^3 mean(g inp); dweight += sum_n dout inp rstd.
template <class S>
void rmsnorm_backward(S* dinp, S* dweight, const S* dout, const S* inp, const S* weight,
                      const S* rstd, index N, index C) {
  ncl::detail::parallel_for<index>(N, N * C >= ncl::train::detail::parallel_threshold, [&](index n) {
    const S* x = inp + n * C;
    const S* dy = dout + n * C;
    S* dx = dinp + n * C;
    const S r = rstd[n];
    S dot = 0;
    for (index c = 0; c < C; ++c) dot += dy[c] * weight[c] * x[c];
    const S k = dot * r * r * r / static_cast<S>(C);
    for (index c = 0; c < C; ++c) dx[c] += r * dy[c] * weight[c] - k * x[c];
  }, ncl::detail::grain_for(N));
  // rows add into the same dweight: a separate serial sweep
  for (index n = 0; n < N; ++n) {
    const S* x = inp + n * C;
    const S* dy = dout + n * C;
    const S r = rstd[n];
    for (index c = 0; c < C; ++c) dweight[c] += dy[c] * x[c] * r;
  }
}

}  // namespace ncl::nn
