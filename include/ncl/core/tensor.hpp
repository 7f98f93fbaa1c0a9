// The tensor types ncl's batched 2-D ops use, and the shape checks that turn a wrong shape
// into an ncl::shape_error naming the argument and both shapes.
//
// Batched 2-D data (B rows, one per batch element) is a row-major Eigen matrix, so a row is
// contiguous and Eigen::Map views existing buffers without copies. Higher-rank tensors use
// xtensor (ncl/core/ndarray.hpp), kept out of this header to keep compile times down.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "ncl/core/error.hpp"

namespace ncl {

using index = Eigen::Index;

/// (rows, cols), row-major: the batch is the leading dimension.
template <class S>
using matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class S>
using vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;
template <class S>
using matrix_map = Eigen::Map<matrix<S>>;
template <class S>
using const_matrix_map = Eigen::Map<const matrix<S>>;

namespace detail {

inline std::string shape_string(index rows, index cols) {
  return concat("(", rows, ", ", cols, ")");
}

}  // namespace detail

/// Throws shape_error unless `m` is rows x cols: "<op>: <name> has shape (a, b), expected (c, d)".
template <class Derived>
void check_shape(std::string_view op, std::string_view name, const Eigen::EigenBase<Derived>& m,
                 index rows, index cols) {
  if (m.rows() != rows || m.cols() != cols) {
    throw shape_error(detail::concat(op, ": ", name, " has shape ",
                                     detail::shape_string(m.rows(), m.cols()), ", expected ",
                                     detail::shape_string(rows, cols)));
  }
}

/// Throws shape_error unless `m` has `cols` columns (any number of rows).
template <class Derived>
void check_cols(std::string_view op, std::string_view name, const Eigen::EigenBase<Derived>& m,
                index cols) {
  if (m.cols() != cols) {
    throw shape_error(detail::concat(op, ": ", name, " has shape ",
                                     detail::shape_string(m.rows(), m.cols()), ", expected (B, ",
                                     cols, ")"));
  }
}

/// Throws value_error unless every entry is a probability in [0, 1] (NaN fails), naming the
/// first offending coordinate. `slack` admits rounding just outside the interval.
template <class Derived>
void check_probabilities(std::string_view op, std::string_view name,
                         const Eigen::DenseBase<Derived>& m, double slack = 1e-6) {
  for (index r = 0; r < m.rows(); ++r) {
    for (index c = 0; c < m.cols(); ++c) {
      const double x = static_cast<double>(m(r, c));
      if (!(x >= -slack && x <= 1.0 + slack)) {
        throw value_error(detail::concat(op, ": ", name, "(", r, ", ", c, ") = ", x,
                                         " is not a probability in [0, 1]"));
      }
    }
  }
}

}  // namespace ncl
