// One-hot number encoding (paper appendix C): value v in 0..n-1 is the n-vector e_v.
// A distribution over values decodes to its argmax with the argmax's probability as the
// confidence; its expected value is the differentiable read-out.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ncl/core/tensor.hpp"

namespace ncl::encoding {

/// Decoded values with the probability the encoding gives each.
template <class S>
struct decoded {
  std::vector<std::int64_t> values;
  std::vector<S> confidence;
};

namespace detail {

inline void check_value_range(std::string_view op, std::int64_t n) {
  if (n <= 0) {
    throw value_error(ncl::detail::concat(op, ": value range n = ", n, " must be at least 1"));
  }
}

}  // namespace detail

/// out (B, n): row b is e_{values[b]}. Every value must lie in [0, n). out is resized.
template <class S>
void one_hot_encode(matrix<S>& out, std::span<const std::int64_t> values, std::int64_t n) {
  detail::check_value_range("one_hot_encode", n);
  for (std::size_t b = 0; b < values.size(); ++b) {
    if (values[b] < 0 || values[b] >= n) {
      throw value_error(ncl::detail::concat("one_hot_encode: values[", b, "] = ", values[b],
                                            " is outside [0, ", n, ")"));
    }
  }
  out.setZero(static_cast<index>(values.size()), n);
  for (std::size_t b = 0; b < values.size(); ++b) out(static_cast<index>(b), values[b]) = S(1);
}

/// Argmax of each row of probs (B, n) (the lowest value on ties) and its probability.
template <class S>
decoded<S> one_hot_decode(const matrix<S>& probs) {
  if (probs.cols() == 0) throw shape_error("one_hot_decode: probs has 0 columns");
  decoded<S> result;
  result.values.resize(static_cast<std::size_t>(probs.rows()));
  result.confidence.resize(static_cast<std::size_t>(probs.rows()));
  for (index b = 0; b < probs.rows(); ++b) {
    index best = 0;
    for (index v = 1; v < probs.cols(); ++v) {
      if (probs(b, v) > probs(b, best)) best = v;
    }
    result.values[static_cast<std::size_t>(b)] = best;
    result.confidence[static_cast<std::size_t>(b)] = probs(b, best);
  }
  return result;
}

/// dprobs (B, n) += dconfidence[b] at each row's argmax: the gradient of the confidence
/// output of one_hot_decode (a subgradient where the argmax ties).
template <class S>
void one_hot_confidence_backward(matrix<S>& dprobs, std::span<const S> dconfidence,
                                 const decoded<S>& forward) {
  check_shape("one_hot_confidence_backward", "dprobs", dprobs,
              static_cast<index>(forward.values.size()), dprobs.cols());
  if (dconfidence.size() != forward.values.size()) {
    throw shape_error(ncl::detail::concat("one_hot_confidence_backward: dconfidence has ",
                                          dconfidence.size(), " entries, expected ",
                                          forward.values.size()));
  }
  for (std::size_t b = 0; b < dconfidence.size(); ++b) {
    dprobs(static_cast<index>(b), forward.values[b]) += dconfidence[b];
  }
}

/// mean (B, 1) = sum_v v p(v): the differentiable read-out of a distribution over values.
template <class S>
void expected_value_forward(matrix<S>& mean, const matrix<S>& probs) {
  mean.resize(probs.rows(), 1);
  for (index b = 0; b < probs.rows(); ++b) {
    S total = 0;
    for (index v = 0; v < probs.cols(); ++v) total += S(v) * probs(b, v);
    mean(b, 0) = total;
  }
}

/// dprobs (B, n) += dmean[b] * v.
template <class S>
void expected_value_backward(matrix<S>& dprobs, const matrix<S>& dmean) {
  check_shape("expected_value_backward", "dmean", dmean, dprobs.rows(), 1);
  for (index b = 0; b < dprobs.rows(); ++b) {
    for (index v = 0; v < dprobs.cols(); ++v) dprobs(b, v) += dmean(b, 0) * S(v);
  }
}

}  // namespace ncl::encoding
