// Binary number encoding (paper appendix C): value v is its little-endian bits, and a soft
// number is b independent bit probabilities. Conversions both ways, exact on hard inputs:
//   binary -> one-hot: p(v) = prod_i (bit_i(v) ? b_i : 1 - b_i)   (needs n = 2^bits)
//   one-hot -> binary: b_i = sum_v p(v) bit_i(v), the product with the table of bit patterns
// A value range that is not a power of two converts one-hot -> binary (values >= n simply
// have no probability) but is rejected for binary -> one-hot, where the 2^bits - n patterns
// past the range would carry probability that no value can hold.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ncl/core/product.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/encoding/one_hot.hpp"

namespace ncl::encoding {

inline constexpr int max_bits = 31;

/// The number of bits that hold values 0..n-1 (at least 1); n must be in [1, 2^31].
inline int bits_for(std::int64_t n) {
  detail::check_value_range("bits_for", n);
  if (n > (std::int64_t{1} << max_bits)) {
    throw value_error(ncl::detail::concat("bits_for: value range n = ", n, " needs more than ",
                                          max_bits, " bits"));
  }
  int bits = 1;
  while ((std::int64_t{1} << bits) < n) ++bits;
  return bits;
}

namespace detail {

inline void check_bits(std::string_view op, int bits) {
  if (bits < 1 || bits > max_bits) {
    throw value_error(ncl::detail::concat(op, ": bits = ", bits, " must be in [1, ", max_bits, "]"));
  }
}

}  // namespace detail

/// patterns (n, bits): patterns(v, i) = bit i of v, the table one-hot -> binary multiplies by.
template <class S>
matrix<S> bit_patterns(std::int64_t n, int bits) {
  detail::check_value_range("bit_patterns", n);
  detail::check_bits("bit_patterns", bits);
  if (n > (std::int64_t{1} << bits)) {
    throw value_error(ncl::detail::concat("bit_patterns: value range n = ", n,
                                          " does not fit in ", bits, " bits"));
  }
  matrix<S> patterns(n, bits);
  for (index v = 0; v < n; ++v) {
    for (int i = 0; i < bits; ++i) patterns(v, i) = S((v >> i) & 1);
  }
  return patterns;
}

/// out (B, bits): out(b, i) = bit i of values[b]. Values must lie in [0, 2^bits). Resized.
template <class S>
void binary_encode(matrix<S>& out, std::span<const std::int64_t> values, int bits) {
  detail::check_bits("binary_encode", bits);
  const std::int64_t limit = std::int64_t{1} << bits;
  for (std::size_t b = 0; b < values.size(); ++b) {
    if (values[b] < 0 || values[b] >= limit) {
      throw value_error(ncl::detail::concat("binary_encode: values[", b, "] = ", values[b],
                                            " does not fit in ", bits, " bits"));
    }
  }
  out.resize(static_cast<index>(values.size()), bits);
  for (std::size_t b = 0; b < values.size(); ++b) {
    for (int i = 0; i < bits; ++i) out(static_cast<index>(b), i) = S((values[b] >> i) & 1);
  }
}

/// Rounds each bit probability at 1/2; the confidence is prod_i max(b_i, 1 - b_i), the
/// probability of the decoded value under the independent-bits distribution.
template <class S>
decoded<S> binary_decode(const matrix<S>& bit_probs) {
  detail::check_bits("binary_decode", static_cast<int>(bit_probs.cols()));
  check_probabilities("binary_decode", "bit_probs", bit_probs);
  decoded<S> result;
  result.values.resize(static_cast<std::size_t>(bit_probs.rows()));
  result.confidence.resize(static_cast<std::size_t>(bit_probs.rows()));
  for (index b = 0; b < bit_probs.rows(); ++b) {
    std::int64_t value = 0;
    S confidence = 1;
    for (index i = 0; i < bit_probs.cols(); ++i) {
      const S p = bit_probs(b, i);
      if (p > S(0.5)) value |= std::int64_t{1} << i;
      confidence *= p > S(0.5) ? p : S(1) - p;
    }
    result.values[static_cast<std::size_t>(b)] = value;
    result.confidence[static_cast<std::size_t>(b)] = confidence;
  }
  return result;
}

/// probs (B, n) from bit_probs (B, bits) with n = 2^bits: p(v) = prod_i (bit_i(v) ? b_i : 1 - b_i).
/// Built by doubling, O(n) per row. probs is resized.
template <class S>
void binary_to_one_hot_forward(matrix<S>& probs, const matrix<S>& bit_probs, std::int64_t n) {
  const int bits = static_cast<int>(bit_probs.cols());
  detail::check_bits("binary_to_one_hot_forward", bits);
  detail::check_value_range("binary_to_one_hot_forward", n);
  if (n != (std::int64_t{1} << bits)) {
    throw value_error(ncl::detail::concat(
        "binary_to_one_hot_forward: value range n = ", n, " is not 2^bits = ",
        std::int64_t{1} << bits, " for bit_probs of shape ",
        ncl::detail::shape_string(bit_probs.rows(), bit_probs.cols()),
        "; the patterns past n would carry probability no value can hold"));
  }
  check_probabilities("binary_to_one_hot_forward", "bit_probs", bit_probs);
  probs.resize(bit_probs.rows(), n);
  for (index b = 0; b < bit_probs.rows(); ++b) {
    S* p = probs.row(b).data();
    p[0] = S(1);
    for (int i = 0; i < bits; ++i) {
      const index half = index{1} << i;
      const S on = bit_probs(b, i);
      for (index v = 0; v < half; ++v) {
        p[v + half] = p[v] * on;
        p[v] *= S(1) - on;
      }
    }
  }
}

/// dbit_probs (B, bits) += d probs / d bit_probs applied to dprobs (B, n):
/// sum_v dprobs(v) (bit_i(v) ? 1 : -1) prod_{j != i} factor_j(v), with the product over the
/// other bits from prefix and suffix products, so hard (0 or 1) bits need no division.
template <class S>
void binary_to_one_hot_backward(matrix<S>& dbit_probs, const matrix<S>& dprobs,
                                const matrix<S>& bit_probs) {
  const index bits = bit_probs.cols();
  check_shape("binary_to_one_hot_backward", "dprobs", dprobs, bit_probs.rows(), index{1} << bits);
  check_shape("binary_to_one_hot_backward", "dbit_probs", dbit_probs, bit_probs.rows(), bits);
  std::vector<S> factor(static_cast<std::size_t>(bits)), prefix(static_cast<std::size_t>(bits) + 1),
      suffix(static_cast<std::size_t>(bits) + 1);
  for (index b = 0; b < bit_probs.rows(); ++b) {
    for (index v = 0; v < dprobs.cols(); ++v) {
      const S g = dprobs(b, v);
      if (g == S(0)) continue;
      for (index i = 0; i < bits; ++i) {
        const S on = bit_probs(b, i);
        factor[static_cast<std::size_t>(i)] = ((v >> i) & 1) ? on : S(1) - on;
      }
      prefix[0] = S(1);
      for (std::size_t i = 0; i < factor.size(); ++i) prefix[i + 1] = prefix[i] * factor[i];
      suffix[factor.size()] = S(1);
      for (std::size_t i = factor.size(); i-- > 0;) suffix[i] = suffix[i + 1] * factor[i];
      for (index i = 0; i < bits; ++i) {
        const auto k = static_cast<std::size_t>(i);
        const S others = prefix[k] * suffix[k + 1];
        dbit_probs(b, i) += ((v >> i) & 1) ? g * others : -g * others;
      }
    }
  }
}

/// bit_probs (B, bits) = probs (B, n) * bit_patterns(n, bits), n <= 2^bits. Resized.
template <class S>
void one_hot_to_binary_forward(matrix<S>& bit_probs, const matrix<S>& probs, int bits) {
  detail::check_bits("one_hot_to_binary_forward", bits);
  if (probs.cols() == 0) throw shape_error("one_hot_to_binary_forward: probs has 0 columns");
  if (probs.cols() > (index{1} << bits)) {
    throw shape_error(ncl::detail::concat("one_hot_to_binary_forward: probs has shape ",
                                          ncl::detail::shape_string(probs.rows(), probs.cols()),
                                          ", more values than ", bits, " bits hold"));
  }
  check_probabilities("one_hot_to_binary_forward", "probs", probs);
  bit_probs.resize(probs.rows(), bits);
  ncl::detail::product(bit_probs, probs, bit_patterns<S>(probs.cols(), bits), false);
}

/// dprobs (B, n) += dbit_probs (B, bits) * bit_patterns(n, bits)^T.
template <class S>
void one_hot_to_binary_backward(matrix<S>& dprobs, const matrix<S>& dbit_probs) {
  check_shape("one_hot_to_binary_backward", "dbit_probs", dbit_probs, dprobs.rows(),
              dbit_probs.cols());
  detail::check_bits("one_hot_to_binary_backward", static_cast<int>(dbit_probs.cols()));
  ncl::detail::product(dprobs, dbit_probs, bit_patterns<S>(dprobs.cols(), static_cast<int>(dbit_probs.cols())).transpose(), true);
}

}  // namespace ncl::encoding
