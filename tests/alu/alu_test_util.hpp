// Helpers shared by the ALU tests.
#pragma once

#include "ncl/core/rng.hpp"
#include "ncl/core/tensor.hpp"

namespace alu_test {

/// rows x cols, each row a distribution with every entry >= 0.05 / (cols (1.05)): no exact
/// zeros, so every coordinate is checked by the gradient tests.
template <class S>
ncl::matrix<S> random_distributions(ncl::rng& random, ncl::index rows, ncl::index cols) {
  ncl::matrix<S> m(rows, cols);
  for (ncl::index r = 0; r < rows; ++r) {
    S total = 0;
    for (ncl::index c = 0; c < cols; ++c) total += m(r, c) = S(0.05 + random.uniform());
    m.row(r) /= total;
  }
  return m;
}

}  // namespace alu_test
