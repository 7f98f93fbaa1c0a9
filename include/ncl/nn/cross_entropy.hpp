// Mean cross-entropy of logits against integer targets, with its backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::nn {

/// probs (B, V) = softmax(logits (B, V)); returns mean_b (logsumexp(logits_b) - logits_b[target_b]).
template <class S>
S cross_entropy_forward(S* probs, const S* logits, const std::int32_t* targets, index B, index V) {
  double total = 0;
  for (index b = 0; b < B; ++b) {
    if (targets[b] < 0 || targets[b] >= V) {
      throw value_error(ncl::detail::concat("cross_entropy_forward: target ", targets[b], " of row ", b,
                                            " is not in [0, ", V, ")"));
    }
    const S* x = logits + b * V;
    S* p = probs + b * V;
    const S max_logit = *std::max_element(x, x + V);
    S sum = 0;
    for (index v = 0; v < V; ++v) {
      p[v] = std::exp(x[v] - max_logit);
      sum += p[v];
    }
    for (index v = 0; v < V; ++v) p[v] /= sum;
    total += static_cast<double>(std::log(sum) - (x[targets[b]] - max_logit));
  }
  return static_cast<S>(total / static_cast<double>(B));
}

/// dlogits (B, V) += dloss (probs - onehot(targets)) / B.
template <class S>
void cross_entropy_backward(S* dlogits, const S* probs, const std::int32_t* targets, index B,
                            index V, S dloss = S(1)) {
  const S k = dloss / static_cast<S>(B);
  for (index b = 0; b < B; ++b) {
    for (index v = 0; v < V; ++v) {
      dlogits[b * V + v] += k * (probs[b * V + v] - (v == targets[b] ? S(1) : S(0)));
    }
  }
}

}  // namespace ncl::nn
