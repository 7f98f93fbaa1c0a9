// Token embedding: a table lookup forward, a scatter-add backward. The backward touches only
// the rows of tokens in the batch, so a vocabulary-sized table costs O(tokens), not O(vocab).
#pragma once

#include <cstdint>
#include <cstring>

#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::nn {

/// Throws value_error unless every token is in [0, V), naming the first bad position.
inline void check_tokens(const char* op, const std::int32_t* tokens, index N, index V) {
  for (index n = 0; n < N; ++n) {
    if (tokens[n] < 0 || tokens[n] >= V) {
      throw value_error(ncl::detail::concat(op, ": token ", tokens[n], " at position ", n,
                                            " is not in the vocabulary [0, ", V, ")"));
    }
  }
}

/// out (N, C) = weight[tokens] with weight (V, C), tokens (N).
template <class S>
void embedding_forward(S* out, const std::int32_t* tokens, const S* weight, index N, index C,
                       index V) {
  check_tokens("embedding_forward", tokens, N, V);
  for (index n = 0; n < N; ++n) {
    std::memcpy(out + n * C, weight + static_cast<index>(tokens[n]) * C, sizeof(S) * C);
  }
}

/// dweight[tokens[n]] += dout[n]: only rows of tokens present are written.
template <class S>
void embedding_backward(S* dweight, const S* dout, const std::int32_t* tokens, index N, index C) {
  for (index n = 0; n < N; ++n) {
    S* row = dweight + static_cast<index>(tokens[n]) * C;
    const S* d = dout + n * C;
    for (index c = 0; c < C; ++c) row[c] += d[c];
  }
}

}  // namespace ncl::nn
