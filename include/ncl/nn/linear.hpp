// A linear layer without bias, y = x W^T, with W stored (out, in) as in PyTorch's nn.Linear
// and Hugging Face checkpoints. Both passes are Eigen GEMMs over row-major maps of the
// caller's buffers, tiled by their shape so that the bits do not depend on the thread count
// (ncl/core/product.hpp).
#pragma once

#include <Eigen/Core>

#include "ncl/core/product.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::nn {

/// out (N, OC) = inp (N, C) weight^T, weight (OC, C).
template <class S>
void linear_forward(S* out, const S* inp, const S* weight, index N, index C, index OC) {
  const_matrix_map<S> x(inp, N, C);
  const_matrix_map<S> w(weight, OC, C);
  matrix_map<S> y(out, N, OC);
  ncl::detail::product(y, x, w.transpose(), false);
}

/// dinp (N, C) += dout weight; dweight (OC, C) += dout^T inp. dinp may be null (input needs
/// no gradient).
template <class S>
void linear_backward(S* dinp, S* dweight, const S* dout, const S* inp, const S* weight, index N,
                     index C, index OC) {
  const_matrix_map<S> dy(dout, N, OC);
  if (dinp != nullptr) {
    matrix_map<S> dx(dinp, N, C);
    ncl::detail::product(dx, dy, const_matrix_map<S>(weight, OC, C), true);
  }
  matrix_map<S> dw(dweight, OC, C);
  ncl::detail::product(dw, dy.transpose(), const_matrix_map<S>(inp, N, C), true);
}

}  // namespace ncl::nn
