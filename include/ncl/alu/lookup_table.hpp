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

#include <algorithm>
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

/// The structured table: result_index(i, j, k) = op_i(j, k), A n^2 16-bit entries.
///
/// forward/backward are the fast path; forward_reference/backward_reference are the plain
/// loops over (b, i, j, k) they are tested against. The fast path works on chunks of `lanes`
/// batch elements transposed to batch-innermost layout (u^T (n, lanes), ...), so each table
/// entry is one multiply-add over `lanes` contiguous values. It also reads the table as runs:
/// for fixed (i, j), a stretch of k with one result l (EQ, LT, MIN, MAX, DIV, MOD have long
/// ones) adds fu * (sum of v over the stretch), a difference of prefix sums of v, instead of
/// one term per k; the backward adds into dv over the stretch with a difference array.
template <class S>
class lookup_table {
 public:
  static constexpr index lanes = 16;

  /// Throws value_error before allocating if the table would need more than max_bytes.
  explicit lookup_table(std::int64_t n, std::size_t max_bytes = default_dense_max_bytes) : n_(n) {
    detail::check_value_range("lookup_table", n);
    // Per table entry at most: the int32 result while building, the uint16 result kept, and
    // one single (runs are fewer than the singles they replace).
    const double bytes = double(table_op_count) * double(n) * double(n) *
                         double(sizeof(std::int32_t) + sizeof(std::uint16_t) + sizeof(single));
    if (bytes > double(max_bytes)) {
      throw value_error(ncl::detail::concat(
          "lookup_table: n = ", n, " needs up to ", bytes / double(1 << 20),
          " MiB, above the limit of ", double(max_bytes) / double(1 << 20), " MiB"));
    }
    const std::vector<std::int32_t> result = build_result_indices(n);
    result_.assign(result.begin(), result.end());
    single_offsets_.reserve(static_cast<std::size_t>(table_op_columns * n + 1));
    run_offsets_.reserve(static_cast<std::size_t>(table_op_columns * n + 1));
    single_offsets_.push_back(0);
    run_offsets_.push_back(0);
    for (index group = 0; group < table_op_columns * n; ++group) {  // group = (i, j)
      const std::int32_t* row = result.data() + group * n;
      for (std::int32_t k0 = 0; k0 < n;) {
        std::int32_t k1 = k0 + 1;
        while (k1 < n && row[k1] == row[k0]) ++k1;
        if (k1 == k0 + 1) {
          singles_.push_back({static_cast<std::uint16_t>(row[k0]), static_cast<std::uint16_t>(k0)});
        } else {
          runs_.push_back({row[k0], k0, k1});
        }
        k0 = k1;
      }
      single_offsets_.push_back(static_cast<std::int64_t>(singles_.size()));
      run_offsets_.push_back(static_cast<std::int64_t>(runs_.size()));
    }
  }

  std::int64_t n() const { return n_; }
  std::size_t bytes() const {
    return result_.size() * sizeof(std::uint16_t) + singles_.size() * sizeof(single) +
           runs_.size() * sizeof(run) +
           (single_offsets_.size() + run_offsets_.size()) * sizeof(std::int64_t);
  }
  std::int32_t result_index(index i, index j, index k) const {
    return result_[static_cast<std::size_t>((i * n_ + j) * n_ + k)];
  }

  /// o (B, n), resized: o_l = sum_i f_i sum_{j,k: op_i(j,k)=l} u_j v_k.
  void forward(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_forward_args("lookup_table::forward", f, u, v, n_);
    o.resize(f.rows(), n_);
    const index chunks = (f.rows() + lanes - 1) / lanes;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (chunks > 1)
#endif
    for (index c = 0; c < chunks; ++c) forward_chunk(o, f, u, v, c * lanes);
  }

  /// df (B, A), du (B, n), dv (B, n) += gradients of sum(o * dout).
  void backward(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_backward_args("lookup_table::backward", df, du, dv, dout, f, u, v, n_);
    const index chunks = (f.rows() + lanes - 1) / lanes;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (chunks > 1)
#endif
    for (index c = 0; c < chunks; ++c) backward_chunk(df, du, dv, dout, f, u, v, c * lanes);
  }

  /// The plain loops forward is tested against.
  void forward_reference(matrix<S>& o, const matrix<S>& f, const matrix<S>& u,
                         const matrix<S>& v) const {
    detail::check_forward_args("lookup_table::forward_reference", f, u, v, n_);
    const index n = n_;
    o.setZero(f.rows(), n);
    for (index b = 0; b < f.rows(); ++b) {
      for (index i = 0; i < table_op_columns; ++i) {
        for (index j = 0; j < n; ++j) {
          const S fu = f(b, i) * u(b, j);
          for (index k = 0; k < n; ++k) o(b, result_index(i, j, k)) += fu * v(b, k);
        }
      }
    }
  }

  /// The plain loops backward is tested against.
  void backward_reference(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                          const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_backward_args("lookup_table::backward_reference", df, du, dv, dout, f, u, v,
                                n_);
    const index n = n_;
    for (index b = 0; b < f.rows(); ++b) {
      for (index i = 0; i < table_op_columns; ++i) {
        for (index j = 0; j < n; ++j) {
          const S fu = f(b, i) * u(b, j);
          S g_v = 0;  // sum_k dout_{op(j,k)} v_k
          for (index k = 0; k < n; ++k) {
            const S g = dout(b, result_index(i, j, k));
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
  struct single {  // op(j, k) = result for this k alone
    std::uint16_t result, k;
  };
  struct run {  // op(j, k) = result for every k in [begin, end), end - begin >= 2
    std::int32_t result, begin, end;
  };
  static constexpr index W = lanes;

  /// dst (rows, W) = columns [b0, b0 + W) of src (B, rows) transposed, zero past the batch.
  static void gather(S* dst, const matrix<S>& src, index b0) {
    const index count = std::min(W, src.rows() - b0);
    for (index r = 0; r < src.cols(); ++r) {
      for (index w = 0; w < count; ++w) dst[r * W + w] = src(b0 + w, r);
      for (index w = count; w < W; ++w) dst[r * W + w] = S(0);
    }
  }
  /// prefix (n + 1, W): prefix[k] = sum_{k' < k} x[k'].
  static void prefix_sums(S* prefix, const S* x, index n) {
    for (index w = 0; w < W; ++w) prefix[w] = S(0);
    for (index k = 0; k < n; ++k) {
      for (index w = 0; w < W; ++w) prefix[(k + 1) * W + w] = prefix[k * W + w] + x[k * W + w];
    }
  }

  void forward_chunk(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v,
                     index b0) const {
    const index n = n_;
    std::vector<S> ft(static_cast<std::size_t>(table_op_columns * W)),
        ut(static_cast<std::size_t>(n * W)), vt(static_cast<std::size_t>(n * W)),
        v_prefix(static_cast<std::size_t>((n + 1) * W)), ot(static_cast<std::size_t>(n * W), S(0));
    gather(ft.data(), f, b0);
    gather(ut.data(), u, b0);
    gather(vt.data(), v, b0);
    prefix_sums(v_prefix.data(), vt.data(), n);
    for (index i = 0; i < table_op_columns; ++i) {
      const S* fi = ft.data() + i * W;
      bool any = false;  // an op no lane uses adds nothing: skip its table
      for (index w = 0; w < W; ++w) any = any || fi[w] != S(0);
      if (!any) continue;
      for (index j = 0; j < n; ++j) {
        const auto group = static_cast<std::size_t>(i * n + j);
        alignas(64) S fu[W];
        for (index w = 0; w < W; ++w) fu[w] = fi[w] * ut[static_cast<std::size_t>(j * W + w)];
        for (auto s = single_offsets_[group]; s < single_offsets_[group + 1]; ++s) {
          const single e = singles_[static_cast<std::size_t>(s)];
          S* out = ot.data() + index{e.result} * W;
          const S* vk = vt.data() + index{e.k} * W;
          for (index w = 0; w < W; ++w) out[w] += fu[w] * vk[w];
        }
        for (auto r = run_offsets_[group]; r < run_offsets_[group + 1]; ++r) {
          const run e = runs_[static_cast<std::size_t>(r)];
          S* out = ot.data() + index{e.result} * W;
          const S* hi = v_prefix.data() + index{e.end} * W;
          const S* lo = v_prefix.data() + index{e.begin} * W;
          for (index w = 0; w < W; ++w) out[w] += fu[w] * (hi[w] - lo[w]);
        }
      }
    }
    const index count = std::min(W, f.rows() - b0);
    for (index w = 0; w < count; ++w) {
      for (index l = 0; l < n; ++l) o(b0 + w, l) = ot[static_cast<std::size_t>(l * W + w)];
    }
  }

  void backward_chunk(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                      const matrix<S>& f, const matrix<S>& u, const matrix<S>& v,
                      index b0) const {
    const index n = n_;
    const auto size = [](index rows) { return static_cast<std::size_t>(rows * W); };
    std::vector<S> ft(size(table_op_columns)), ut(size(n)), vt(size(n)), gt(size(n)),
        v_prefix(size(n + 1)), dft(size(table_op_columns), S(0)), dut(size(n), S(0)),
        dvt(size(n), S(0)), dv_steps(size(n + 1), S(0));
    gather(ft.data(), f, b0);
    gather(ut.data(), u, b0);
    gather(vt.data(), v, b0);
    gather(gt.data(), dout, b0);
    prefix_sums(v_prefix.data(), vt.data(), n);
    for (index i = 0; i < table_op_columns; ++i) {
      const S* fi = ft.data() + i * W;
      for (index j = 0; j < n; ++j) {
        const auto group = static_cast<std::size_t>(i * n + j);
        const S* uj = ut.data() + j * W;
        alignas(64) S fu[W];
        alignas(64) S acc[W] = {};  // sum_k dout_{op(j,k)} v_k
        for (index w = 0; w < W; ++w) fu[w] = fi[w] * uj[w];
        for (auto s = single_offsets_[group]; s < single_offsets_[group + 1]; ++s) {
          const single e = singles_[static_cast<std::size_t>(s)];
          const S* g = gt.data() + index{e.result} * W;
          const S* vk = vt.data() + index{e.k} * W;
          S* dvk = dvt.data() + index{e.k} * W;
          for (index w = 0; w < W; ++w) {
            acc[w] += g[w] * vk[w];
            dvk[w] += g[w] * fu[w];
          }
        }
        for (auto r = run_offsets_[group]; r < run_offsets_[group + 1]; ++r) {
          const run e = runs_[static_cast<std::size_t>(r)];
          const S* g = gt.data() + index{e.result} * W;
          const S* hi = v_prefix.data() + index{e.end} * W;
          const S* lo = v_prefix.data() + index{e.begin} * W;
          S* step_up = dv_steps.data() + index{e.begin} * W;
          S* step_down = dv_steps.data() + index{e.end} * W;
          for (index w = 0; w < W; ++w) {
            acc[w] += g[w] * (hi[w] - lo[w]);
            step_up[w] += g[w] * fu[w];
            step_down[w] -= g[w] * fu[w];
          }
        }
        S* duj = dut.data() + j * W;
        S* dfi = dft.data() + i * W;
        for (index w = 0; w < W; ++w) {
          duj[w] += fi[w] * acc[w];
          dfi[w] += uj[w] * acc[w];
        }
      }
    }
    // dv over the runs: the running sum of the difference array.
    alignas(64) S running[W] = {};
    for (index k = 0; k < n; ++k) {
      for (index w = 0; w < W; ++w) {
        running[w] += dv_steps[static_cast<std::size_t>(k * W + w)];
        dvt[static_cast<std::size_t>(k * W + w)] += running[w];
      }
    }
    const index count = std::min(W, f.rows() - b0);
    for (index w = 0; w < count; ++w) {
      for (index i = 0; i < table_op_columns; ++i) df(b0 + w, i) += dft[static_cast<std::size_t>(i * W + w)];
      for (index l = 0; l < n; ++l) {
        du(b0 + w, l) += dut[static_cast<std::size_t>(l * W + w)];
        dv(b0 + w, l) += dvt[static_cast<std::size_t>(l * W + w)];
      }
    }
  }

  std::int64_t n_;
  std::vector<std::uint16_t> result_;         // (A, n, n)
  std::vector<single> singles_;               // by group (i, j), then k
  std::vector<run> runs_;                     // by group (i, j), then k
  std::vector<std::int64_t> single_offsets_;  // (A n + 1): group g's singles are [g, g + 1)
  std::vector<std::int64_t> run_offsets_;     // (A n + 1)
};

}  // namespace ncl::alu
