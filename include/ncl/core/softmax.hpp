// Numerically stable softmax and log-softmax over the last dimension, forward and backward.
// The forward's output is all the backward needs, so it doubles as the cache.
#pragma once

#include <algorithm>
#include <cmath>

#include "ncl/core/tensor.hpp"

namespace ncl {

/// out[i] = exp(x[i] - max x) / sum_j exp(x[j] - max x), one row of length n.
template <class S>
void softmax_row(S* out, const S* logits, index n) {
  S max_logit = logits[0];
  for (index i = 1; i < n; ++i) max_logit = std::max(max_logit, logits[i]);
  S total = 0;
  for (index i = 0; i < n; ++i) {
    out[i] = std::exp(logits[i] - max_logit);
    total += out[i];
  }
  const S inv = S(1) / total;
  for (index i = 0; i < n; ++i) out[i] *= inv;
}

/// dlogits[i] += y[i] (dy[i] - sum_j dy[j] y[j]) for one row, y the softmax output.
template <class S>
void softmax_row_backward(S* dlogits, const S* dout, const S* out, index n) {
  S dot = 0;
  for (index i = 0; i < n; ++i) dot += dout[i] * out[i];
  for (index i = 0; i < n; ++i) dlogits[i] += out[i] * (dout[i] - dot);
}

/// probs (B, N) = softmax(logits (B, N)) row by row. probs is resized.
template <class S>
void softmax_forward(matrix<S>& probs, const matrix<S>& logits) {
  if (logits.cols() == 0) throw shape_error("softmax_forward: logits has 0 columns");
  probs.resize(logits.rows(), logits.cols());
  for (index b = 0; b < logits.rows(); ++b) {
    softmax_row(probs.row(b).data(), logits.row(b).data(), logits.cols());
  }
}

/// dlogits (B, N) += the gradient through softmax, given dprobs and the forward's probs.
template <class S>
void softmax_backward(matrix<S>& dlogits, const matrix<S>& dprobs, const matrix<S>& probs) {
  check_shape("softmax_backward", "dprobs", dprobs, probs.rows(), probs.cols());
  check_shape("softmax_backward", "dlogits", dlogits, probs.rows(), probs.cols());
  for (index b = 0; b < probs.rows(); ++b) {
    softmax_row_backward(dlogits.row(b).data(), dprobs.row(b).data(), probs.row(b).data(),
                         probs.cols());
  }
}

/// logp (B, N) = log_softmax(logits) = x - max x - log sum exp(x - max x). logp is resized.
template <class S>
void log_softmax_forward(matrix<S>& logp, const matrix<S>& logits) {
  if (logits.cols() == 0) throw shape_error("log_softmax_forward: logits has 0 columns");
  logp.resize(logits.rows(), logits.cols());
  const index n = logits.cols();
  for (index b = 0; b < logits.rows(); ++b) {
    const S* x = logits.row(b).data();
    S* y = logp.row(b).data();
    S max_logit = x[0];
    for (index i = 1; i < n; ++i) max_logit = std::max(max_logit, x[i]);
    S total = 0;
    for (index i = 0; i < n; ++i) total += std::exp(x[i] - max_logit);
    // (x - max) - log(total), not x - (max + log(total)): the latter rounds away the
    // small differences when max is large.
    const S log_total = std::log(total);
    for (index i = 0; i < n; ++i) y[i] = (x[i] - max_logit) - log_total;
  }
}

/// dlogits += dlogp - softmax * sum(dlogp), row by row, given the forward's logp.
template <class S>
void log_softmax_backward(matrix<S>& dlogits, const matrix<S>& dlogp, const matrix<S>& logp) {
  check_shape("log_softmax_backward", "dlogp", dlogp, logp.rows(), logp.cols());
  check_shape("log_softmax_backward", "dlogits", dlogits, logp.rows(), logp.cols());
  const index n = logp.cols();
  for (index b = 0; b < logp.rows(); ++b) {
    const S* dy = dlogp.row(b).data();
    const S* y = logp.row(b).data();
    S* dx = dlogits.row(b).data();
    S total = 0;
    for (index i = 0; i < n; ++i) total += dy[i];
    for (index i = 0; i < n; ++i) dx[i] += dy[i] - std::exp(y[i]) * total;
  }
}

}  // namespace ncl
