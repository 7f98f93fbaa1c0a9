// The arithmetic unit's binary ops as lookup tables (paper eq. 7 and 11, ISA.md "Opcodes"):
//   o_l = sum_i f_i sum_{j,k: op_i(j,k) = l} u_j v_k
// for f (B, A) a distribution over alu::table_ops and u, v (B, n) distributions over values.
//
// Two stores of the same function:
//   dense_lookup_table  the paper's tensor T[i][j][k][l] (A x n x n x n), contracted with
//                       general matrix products; the faithful reference, O(A n^3) memory, so
//                       it checks its size against a byte limit before allocating.
//   lookup_table        one n x n table of result indices per op, O(A n^2) work per example
//                       and O(A n^2) memory; the default.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::alu {

/// A: the number of ops an ALU's op distribution f ranges over.
inline constexpr index table_op_columns = static_cast<index>(table_op_count);

/// Default size limit of a dense table: 1 GiB.
inline constexpr std::size_t default_dense_max_bytes = std::size_t{1} << 30;

namespace detail {

inline void check_value_range(std::string_view op, std::int64_t n) {
  // The result index of every op fits an int32 and n * n fits an index for n <= 2^16.
  if (n < 2 || n > (std::int64_t{1} << 16)) {
    throw value_error(ncl::detail::concat(op, ": value range n = ", n,
                                          " must be in [2, 65536]"));
  }
}

/// Shape checks shared by every backend's forward: f (B, A), u (B, n), v (B, n).
template <class S>
void check_forward_args(std::string_view op, const matrix<S>& f, const matrix<S>& u,
                        const matrix<S>& v, index n) {
  const index batch = f.rows();
  check_shape(op, "f", f, batch, table_op_columns);
  check_shape(op, "u", u, batch, n);
  check_shape(op, "v", v, batch, n);
}

/// Shape checks shared by every backend's backward.
template <class S>
void check_backward_args(std::string_view op, const matrix<S>& df, const matrix<S>& du,
                         const matrix<S>& dv, const matrix<S>& dout, const matrix<S>& f,
                         const matrix<S>& u, const matrix<S>& v, index n) {
  check_forward_args(op, f, u, v, n);
  const index batch = f.rows();
  check_shape(op, "dout", dout, batch, n);
  check_shape(op, "df", df, batch, table_op_columns);
  check_shape(op, "du", du, batch, n);
  check_shape(op, "dv", dv, batch, n);
}

}  // namespace detail

/// result_index[i][j * n + k] = table_ops[i](j, k) mod n: the structured table, A n^2 int32.
inline std::vector<std::int32_t> build_result_indices(std::int64_t n) {
  detail::check_value_range("build_result_indices", n);
  std::vector<std::int32_t> result(table_op_count * static_cast<std::size_t>(n * n));
  std::size_t at = 0;
  for (opcode op : table_ops) {
    for (std::int64_t j = 0; j < n; ++j) {
      for (std::int64_t k = 0; k < n; ++k) result[at++] = static_cast<std::int32_t>(apply(op, j, k, n));
    }
  }
  return result;
}

/// The paper's dense tensor T (A, n, n, n) with T[i][j][k][l] = [op_i(j, k) = l], stored as
/// a row-major (A n^2, n) matrix so the contraction is two matrix products.
template <class S>
class dense_lookup_table {
 public:
  /// Throws value_error before allocating if A n^3 sizeof(S) bytes exceed max_bytes.
  explicit dense_lookup_table(std::int64_t n, std::size_t max_bytes = default_dense_max_bytes)
      : n_(n) {
    detail::check_value_range("dense_lookup_table", n);
    const double bytes = double(table_op_count) * double(n) * double(n) * double(n) * sizeof(S);
    if (bytes > double(max_bytes)) {
      throw value_error(ncl::detail::concat(
          "dense_lookup_table: n = ", n, " needs ", table_op_count, " x ", n, "^3 x ", sizeof(S),
          " = ", bytes / double(1 << 20), " MiB, above the limit of ",
          double(max_bytes) / double(1 << 20),
          " MiB; use the structured table (backend 'table') or raise the limit"));
    }
    tensor_.setZero(table_op_columns * n * n, n);
    const std::vector<std::int32_t> result = build_result_indices(n);
    for (index row = 0; row < tensor_.rows(); ++row) {
      tensor_(row, result[static_cast<std::size_t>(row)]) = S(1);
    }
  }

  std::int64_t n() const { return n_; }
  std::size_t bytes() const { return static_cast<std::size_t>(tensor_.size()) * sizeof(S); }
  /// T[i][j][k][l].
  S at(index i, index j, index k, index l) const { return tensor_((i * n_ + j) * n_ + k, l); }

  /// o (B, n) = x T with x (B, A n^2) the outer product x[i][j][k] = f_i u_j v_k (paper eq. 7).
  void forward(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_forward_args("dense_lookup_table::forward", f, u, v, n_);
    const matrix<S> x = outer(f, u, v);
    o.noalias() = x * tensor_;
  }

  /// df, du, dv += gradients of sum(o * dout): dx = dout T^T, then the outer product's
  /// backward, df_i = sum_jk dx_ijk u_j v_k and likewise for u and v.
  void backward(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_backward_args("dense_lookup_table::backward", df, du, dv, dout, f, u, v, n_);
    const matrix<S> dx = dout * tensor_.transpose();  // (B, A n^2)
    const index n = n_;
    for (index b = 0; b < f.rows(); ++b) {
      for (index i = 0; i < table_op_columns; ++i) {
        for (index j = 0; j < n; ++j) {
          const S* g = dx.row(b).data() + (i * n + j) * n;
          S g_v = 0;  // sum_k dx_ijk v_k
          for (index k = 0; k < n; ++k) {
            g_v += g[k] * v(b, k);
            dv(b, k) += g[k] * f(b, i) * u(b, j);
          }
          df(b, i) += g_v * u(b, j);
          du(b, j) += g_v * f(b, i);
        }
      }
    }
  }

 private:
  matrix<S> outer(const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    const index n = n_;
    matrix<S> x(f.rows(), table_op_columns * n * n);
    for (index b = 0; b < f.rows(); ++b) {
      S* row = x.row(b).data();
      for (index i = 0; i < table_op_columns; ++i) {
        for (index j = 0; j < n; ++j) {
          const S fu = f(b, i) * u(b, j);
          for (index k = 0; k < n; ++k) row[(i * n + j) * n + k] = fu * v(b, k);
        }
      }
    }
    return x;
  }

  std::int64_t n_;
  matrix<S> tensor_;  // (A n^2, n)
};

/// The structured table: result_index(i, j, k) = op_i(j, k), A n^2 int32 entries.
template <class S>
class lookup_table {
 public:
  explicit lookup_table(std::int64_t n) : n_(n), result_(build_result_indices(n)) {}

  std::int64_t n() const { return n_; }
  std::size_t bytes() const { return result_.size() * sizeof(std::int32_t); }
  std::int32_t result_index(index i, index j, index k) const {
    return result_[static_cast<std::size_t>((i * n_ + j) * n_ + k)];
  }

  /// o (B, n), resized: o_l = sum_i f_i sum_{j,k: op_i(j,k)=l} u_j v_k. Plain loops.
  void forward(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_forward_args("lookup_table::forward", f, u, v, n_);
    const index n = n_;
    o.setZero(f.rows(), n);
    for (index b = 0; b < f.rows(); ++b) {
      for (index i = 0; i < table_op_columns; ++i) {
        const std::int32_t* result = result_.data() + i * n * n;
        for (index j = 0; j < n; ++j) {
          const S fu = f(b, i) * u(b, j);
          for (index k = 0; k < n; ++k) o(b, result[j * n + k]) += fu * v(b, k);
        }
      }
    }
  }

  /// df (B, A), du (B, n), dv (B, n) += gradients of sum(o * dout). Plain loops.
  void backward(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_backward_args("lookup_table::backward", df, du, dv, dout, f, u, v, n_);
    const index n = n_;
    for (index b = 0; b < f.rows(); ++b) {
      for (index i = 0; i < table_op_columns; ++i) {
        const std::int32_t* result = result_.data() + i * n * n;
        for (index j = 0; j < n; ++j) {
          const S fu = f(b, i) * u(b, j);
          S g_v = 0;  // sum_k dout_{op(j,k)} v_k
          for (index k = 0; k < n; ++k) {
            const S g = dout(b, result[j * n + k]);
            g_v += g * v(b, k);
            dv(b, k) += g * fu;
          }
          df(b, i) += g_v * u(b, j);
          du(b, j) += g_v * f(b, i);
        }
      }
    }
  }

 private:
  std::int64_t n_;
  std::vector<std::int32_t> result_;  // (A, n, n)
};

}  // namespace ncl::alu
