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
#include "ncl/alu/table_kernels.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/parallel.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::alu {

/// A: the number of ops an ALU's op distribution f ranges over.
inline constexpr index table_op_columns = static_cast<index>(table_op_count);

/// Default size limit of a table: 1 GiB.
inline constexpr std::size_t default_table_max_bytes = std::size_t{1} << 30;

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
  explicit dense_lookup_table(std::int64_t n, std::size_t max_bytes = default_table_max_bytes)
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

  /// o_l = sum_ijk T_ijkl f_i u_j v_k (paper eq. 7), contracted over k first: for each
  /// (i, j), y = v T[i][j] (B, n) is one matrix product, and o += diag(f_i u_j) y.
  void forward(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_forward_args("dense_lookup_table::forward", f, u, v, n_);
    const index n = n_;
    o.setZero(f.rows(), n);
    for_each_block(f.rows(), [&](index b0, index rows) {
      matrix<S> y(rows, n);
      for (index i = 0; i < table_op_columns; ++i) {
        for (index j = 0; j < n; ++j) {
          y.noalias() = v.middleRows(b0, rows) * slice(i, j);
          const vector<S> fu = f.col(i).segment(b0, rows).cwiseProduct(u.col(j).segment(b0, rows));
          o.middleRows(b0, rows).noalias() += fu.asDiagonal() * y;
        }
      }
    });
  }

  /// df, du, dv += gradients of sum(o * dout): for each (i, j), d = dout T[i][j]^T (B, n)
  /// holds d o / d(f_i u_j v_k) over k, so dv += diag(f_i u_j) d, and with
  /// g_v = sum_k d_k v_k, df_i += g_v u_j and du_j += g_v f_i.
  void backward(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_backward_args("dense_lookup_table::backward", df, du, dv, dout, f, u, v, n_);
    const index n = n_;
    for_each_block(f.rows(), [&](index b0, index rows) {
      matrix<S> d(rows, n);
      for (index i = 0; i < table_op_columns; ++i) {
        const auto fi = f.col(i).segment(b0, rows);
        for (index j = 0; j < n; ++j) {
          const auto uj = u.col(j).segment(b0, rows);
          d.noalias() = dout.middleRows(b0, rows) * slice(i, j).transpose();
          const vector<S> fu = fi.cwiseProduct(uj);
          dv.middleRows(b0, rows).noalias() += fu.asDiagonal() * d;
          const vector<S> g_v = d.cwiseProduct(v.middleRows(b0, rows)).rowwise().sum();
          df.col(i).segment(b0, rows) += g_v.cwiseProduct(uj);
          du.col(j).segment(b0, rows) += g_v.cwiseProduct(fi);
        }
      }
    });
  }

 private:
  /// T[i][j] (n, n): rows k, columns l.
  auto slice(index i, index j) const { return tensor_.middleRows((i * n_ + j) * n_, n_); }

  /// Runs body(b0, rows) over blocks of 16 batch rows, the blocks in parallel. Inside the
  /// parallel loop Eigen's products stay single-threaded, which for these small products is
  /// faster than Eigen splitting each one over the threads.
  template <class Body>
  static void for_each_block(index batch, Body&& body) {
    constexpr index block = 16;
    const index blocks = (batch + block - 1) / block;
    ncl::detail::parallel_for(blocks, blocks > 1,
                              [&](index c) { body(c * block, std::min(block, batch - c * block)); });
  }

  std::int64_t n_;
  matrix<S> tensor_;  // (A n^2, n)
};

/// The structured table: result_index(i, j, k) = op_i(j, k), A n^2 16-bit entries.
///
/// forward/backward are the fast path; forward_reference/backward_reference are the plain
/// loops over (b, i, j, k) it is tested against. The fast path works on chunks of `lanes`
/// batch elements transposed to batch-innermost layout (u^T (n, lanes), ...), so every term
/// is one multiply-add over `lanes` contiguous values of data that fits in L1, and it gathers
/// into register accumulators instead of scattering:
///   forward      o_l  = sum_i f_i sum_{(j, k): op_i(j,k) = l} u_j v_k      (groups (i, l))
///   backward     du_j += f_i sum_k dout_{op_i(j,k)} v_k, df_i likewise     (groups (i, j))
///                dv_k += f_i sum_j dout_{op_i(j,k)} u_j                     (groups (i, k))
/// Each op takes the cheapest exact route (kernel_for):
///   MUL, DIV, MOD  contraction lists read off the table; a stretch of k (or j) with one
///                  result is one term, a difference of prefix sums
///   ADD, SUB       circulant tables: cyclic convolutions, blocked over 8 outputs
///   MIN, MAX, EQ, LT  closed forms in prefix sums, O(n) per example (prefix_op_forward)
/// An op with f_i = 0 in every lane of a chunk is skipped in forward and in du, dv.
template <class S>
class lookup_table {
 public:
  static constexpr index lanes = 16;
  /// Below this n a chunk is a few microseconds of work, less than waking a second thread.
  static constexpr std::int64_t parallel_min_n = 32;

  /// Throws value_error before allocating if the table would need more than max_bytes.
  explicit lookup_table(std::int64_t n, std::size_t max_bytes = default_table_max_bytes) : n_(n) {
    detail::check_value_range("lookup_table", n);
    // Per table entry at most: the int32 result while building, the uint16 result kept, and
    // one single in each of the three lists (runs are fewer than the singles they replace).
    const double bytes = double(table_op_count) * double(n) * double(n) *
                         double(sizeof(std::int32_t) + sizeof(std::uint16_t) +
                                3 * sizeof(detail::contraction_list::single));
    if (bytes > double(max_bytes)) {
      throw value_error(ncl::detail::concat(
          "lookup_table: n = ", n, " needs up to ", bytes / double(1 << 20),
          " MiB, above the limit of ", double(max_bytes) / double(1 << 20), " MiB"));
    }
    {
      const std::vector<std::int32_t> result = build_result_indices(n);
      result_.assign(result.begin(), result.end());
    }
    const auto size = static_cast<std::int32_t>(n);
    for (index i = 0; i < table_op_columns; ++i) {
      const bool listed = kernel_for(i) == kernel::listed;  // the others need no lists
      for (std::int32_t j = 0; j < size; ++j) {  // by_j_: x = dout by l, y = v by k
        if (listed) by_j_.add_sequence(size, [&](std::int32_t k) { return result_index(i, j, k); });
        by_j_.close_group();
      }
      for (std::int32_t k = 0; k < size; ++k) {  // by_k_: x = dout by l, y = u by j
        if (listed) by_k_.add_sequence(size, [&](std::int32_t j) { return result_index(i, j, k); });
        by_k_.close_group();
      }
    }
    build_by_result();
  }

  std::int64_t n() const { return n_; }
  std::size_t bytes() const {
    return result_.size() * sizeof(std::uint16_t) + by_result_.bytes() + by_j_.bytes() +
           by_k_.bytes();
  }
  std::int32_t result_index(index i, index j, index k) const {
    return result_[static_cast<std::size_t>((i * n_ + j) * n_ + k)];
  }

  /// o (B, n), resized: o_l = sum_i f_i sum_{j,k: op_i(j,k)=l} u_j v_k.
  void forward(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_forward_args("lookup_table::forward", f, u, v, n_);
    o.resize(f.rows(), n_);
    const index chunks = (f.rows() + lanes - 1) / lanes;
    ncl::detail::parallel_for(chunks, chunks > 1 && n_ >= parallel_min_n,
                              [&](index c) { forward_chunk(o, f, u, v, c * lanes); });
  }

  /// df (B, A), du (B, n), dv (B, n) += gradients of sum(o * dout).
  void backward(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    detail::check_backward_args("lookup_table::backward", df, du, dv, dout, f, u, v, n_);
    const index chunks = (f.rows() + lanes - 1) / lanes;
    ncl::detail::parallel_for(chunks, chunks > 1 && n_ >= parallel_min_n, [&](index c) {
      backward_chunk(df, du, dv, dout, f, u, v, c * lanes);
    });
  }

  /// The fast path on one chunk of `lanes` batch elements already in batch-innermost layout
  /// (row r of a buffer holds value r of the 16 elements; the soft machine's lane path):
  /// ot (n, lanes) = o for ft (9, lanes), ut, vt (n, lanes). Not thread-safe within a thread:
  /// it uses the calling thread's scratch.
  void forward_lanes(S* ot_data, const S* ft_data, const S* ut_data, const S* vt_data) const {
    arena scratch(forward_scratch_rows());
    forward_lanes(ot_data, ft_data, ut_data, vt_data, scratch);
  }
  /// dft (9, lanes), dut, dvt (n, lanes) += the gradients of sum(o * gt), in the same layout.
  void backward_lanes(S* dft, S* dut, S* dvt, const S* gt, const S* ft, const S* ut,
                      const S* vt) const {
    arena scratch(backward_scratch_rows());
    backward_lanes(dft, dut, dvt, gt, ft, ut, vt, scratch);
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
  static constexpr index W = lanes;
  using kernels = detail::lane_kernels<S, lanes>;
  using lane_values = typename kernels::lane_values;
  using lanes_view = typename kernels::lanes_view;
  using lanes_ref = typename kernels::lanes_ref;
  using arena = typename kernels::arena;
  using rows_view = typename kernels::rows_view;
  using kernel = detail::table_kernel;

  /// by_result_ from by_j_ by a counting sort per op: by_j_'s term (l, k) of group (i, j) is
  /// by_result_'s term (j, k) of group (i, l), and likewise for runs.
  void build_by_result() {
    using list = detail::contraction_list;
    const index n = n_;
    by_result_.singles.resize(by_j_.singles.size());
    by_result_.runs.resize(by_j_.runs.size());
    by_result_.single_starts.assign(static_cast<std::size_t>(table_op_columns * n + 1), 0);
    by_result_.run_starts.assign(static_cast<std::size_t>(table_op_columns * n + 1), 0);
    auto& singles_at = by_result_.single_starts;
    auto& runs_at = by_result_.run_starts;
    for (index i = 0; i < table_op_columns; ++i) {  // count each group's terms
      for (auto s = by_j_.single_starts[static_cast<std::size_t>(i * n)];
           s < by_j_.single_starts[static_cast<std::size_t>((i + 1) * n)]; ++s) {
        ++singles_at[static_cast<std::size_t>(i * n + by_j_.singles[static_cast<std::size_t>(s)].a + 1)];
      }
      for (auto r = by_j_.run_starts[static_cast<std::size_t>(i * n)];
           r < by_j_.run_starts[static_cast<std::size_t>((i + 1) * n)]; ++r) {
        ++runs_at[static_cast<std::size_t>(i * n + by_j_.runs[static_cast<std::size_t>(r)].a + 1)];
      }
    }
    for (std::size_t g = 1; g < singles_at.size(); ++g) {
      singles_at[g] += singles_at[g - 1];
      runs_at[g] += runs_at[g - 1];
    }
    std::vector<std::int64_t> next_single(singles_at.begin(), singles_at.end() - 1),
        next_run(runs_at.begin(), runs_at.end() - 1);
    for (index i = 0; i < table_op_columns; ++i) {
      for (index j = 0; j < n; ++j) {
        const auto group = static_cast<std::size_t>(i * n + j);
        for (auto s = by_j_.single_starts[group]; s < by_j_.single_starts[group + 1]; ++s) {
          const list::single t = by_j_.singles[static_cast<std::size_t>(s)];
          const auto to = static_cast<std::size_t>(next_single[static_cast<std::size_t>(i * n + t.a)]++);
          by_result_.singles[to] = {static_cast<std::uint16_t>(j), t.b};
        }
        for (auto r = by_j_.run_starts[group]; r < by_j_.run_starts[group + 1]; ++r) {
          const list::run t = by_j_.runs[static_cast<std::size_t>(r)];
          const auto to = static_cast<std::size_t>(next_run[static_cast<std::size_t>(i * n + t.a)]++);
          by_result_.runs[to] = {static_cast<std::int32_t>(j), t.b0, t.b1};
        }
      }
    }
  }

  /// +1 for ADD (op(j, k) = j + k), -1 for SUB (j - k), 0 for the other ops.
  static int cyclic_sign(index i) {
    const opcode op = table_ops[static_cast<std::size_t>(i)];
    return op == opcode::ADD ? 1 : op == opcode::SUB ? -1 : 0;
  }

  /// How the fast path computes op i: MUL, DIV and MOD from the lists; ADD and SUB as cyclic
  /// convolutions; MIN, MAX, EQ and LT in closed form from prefix sums, O(n) per example.
  static kernel kernel_for(index i) {
    switch (table_ops[static_cast<std::size_t>(i)]) {
      case opcode::ADD:
      case opcode::SUB: return kernel::cyclic;
      case opcode::MIN: return kernel::min;
      case opcode::MAX: return kernel::max;
      case opcode::EQ: return kernel::eq;
      case opcode::LT: return kernel::lt;
      default: return kernel::listed;
    }
  }

  index forward_scratch_rows() const { return 5 * n_ + 2; }
  void forward_lanes(S* ot_data, const S* ft_data, const S* ut_data, const S* vt_data,
                     arena& scratch) const {
    const index n = n_;
    const rows_view ft{const_cast<S*>(ft_data)}, ut{const_cast<S*>(ut_data)},
        vt{const_cast<S*>(vt_data)}, ot{ot_data};
    std::fill(ot_data, ot_data + n * W, S(0));
    const auto v_prefix = scratch.take(n + 1);
    kernels::prefix_sums(v_prefix.row(0), vt.row(0), n);
    const auto v2 = scratch.take(2 * n), u_prefix = scratch.take(n + 1), op_out = scratch.take(n);
    kernels::repeat_twice(v2.row(0), vt.row(0), n);
    kernels::prefix_sums(u_prefix.row(0), ut.row(0), n);
    for (index i = 0; i < table_op_columns; ++i) {
      const lanes_view fi(ft.row(i));
      if ((fi == S(0)).all()) continue;  // an op no lane uses adds nothing: skip its table
      const kernel op = kernel_for(i);
      if (op == kernel::cyclic && cyclic_sign(i) > 0) {  // o_l += f_i sum_j u_j v_{l - j}
        kernels::template cyclic_contract<1>(ot.row(0), ft.row(i), ut.row(0), v2.row(0), n, -1);
        continue;
      }
      if (op == kernel::cyclic) {  // o_l += f_i sum_j u_j v_{j - l}
        kernels::template cyclic_contract<-1>(ot.row(0), ft.row(i), ut.row(0), v2.row(0), n, 1);
        continue;
      }
      if (op != kernel::listed) {
        kernels::prefix_op_forward(op, op_out.row(0), ut.row(0), vt.row(0), u_prefix.row(0),
                          v_prefix.row(0), n);
        for (index l = 0; l < n; ++l) lanes_ref(ot.row(l)) += fi * lanes_view(op_out.row(l));
        continue;
      }
      for (index l = 0; l < n; ++l) {
        const auto group = static_cast<std::size_t>(i * n + l);
        lanes_ref(ot.row(l)) += fi * kernels::contract(by_result_, group, ut.row(0), vt.row(0), v_prefix.row(0));
      }
    }
  }

  void forward_chunk(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v,
                     index b0) const {
    const index n = n_;
    arena scratch(table_op_columns + 3 * n + forward_scratch_rows());
    const auto ft = scratch.take(table_op_columns), ut = scratch.take(n), vt = scratch.take(n),
               ot = scratch.take(n);
    kernels::gather(ft.row(0), f, b0);
    kernels::gather(ut.row(0), u, b0);
    kernels::gather(vt.row(0), v, b0);
    forward_lanes(ot.row(0), ft.row(0), ut.row(0), vt.row(0), scratch);
    kernels::template scatter<false>(o, ot.row(0), b0);
  }

  index backward_scratch_rows() const { return 8 * n_ + 2; }
  void backward_lanes(S* dft_data, S* dut_data, S* dvt_data, const S* gt_data, const S* ft_data,
                      const S* ut_data, const S* vt_data, arena& scratch) const {
    const index n = n_;
    const rows_view dft{dft_data}, dut{dut_data}, dvt{dvt_data}, gt{const_cast<S*>(gt_data)},
        ft{const_cast<S*>(ft_data)}, ut{const_cast<S*>(ut_data)}, vt{const_cast<S*>(vt_data)};
    const auto u_prefix = scratch.take(n + 1), v_prefix = scratch.take(n + 1);
    kernels::prefix_sums(u_prefix.row(0), ut.row(0), n);
    kernels::prefix_sums(v_prefix.row(0), vt.row(0), n);
    const auto g2 = scratch.take(2 * n), g_v = scratch.take(n), op_out = scratch.take(n),
               op_du = scratch.take(n), op_dv = scratch.take(n);
    kernels::repeat_twice(g2.row(0), gt.row(0), n);
    for (index i = 0; i < table_op_columns; ++i) {
      const lanes_view fi(ft.row(i));
      const kernel op = kernel_for(i);
      if (op != kernel::listed && op != kernel::cyclic) {
        kernels::prefix_op_backward(op, op_du.row(0), op_dv.row(0), gt.row(0), ut.row(0), vt.row(0),
                           u_prefix.row(0), v_prefix.row(0), n);
        kernels::prefix_op_forward(op, op_out.row(0), ut.row(0), vt.row(0), u_prefix.row(0),
                          v_prefix.row(0), n);
        lane_values dfi = lane_values::Zero();  // sum_l g_l o_l
        for (index l = 0; l < n; ++l) {
          dfi += lanes_view(gt.row(l)) * lanes_view(op_out.row(l));
          lanes_ref(dut.row(l)) += fi * lanes_view(op_du.row(l));
          lanes_ref(dvt.row(l)) += fi * lanes_view(op_dv.row(l));
        }
        lanes_ref(dft.row(i)) += dfi;
        continue;
      }
      const int sign = cyclic_sign(i);
      if (sign > 0) {  // g_v_j = sum_k dout_{j + k} v_k
        kernels::template cyclic_contract<1>(g_v.row(0), nullptr, vt.row(0), g2.row(0), n, 1);
      } else if (sign < 0) {  // g_v_j = sum_k dout_{j - k} v_k
        kernels::template cyclic_contract<1>(g_v.row(0), nullptr, vt.row(0), g2.row(0), n, -1);
      } else {  // g_v_j = sum_k dout_{op(j,k)} v_k
        for (index j = 0; j < n; ++j) {
          lanes_ref(g_v.row(j)) = kernels::contract(by_j_, static_cast<std::size_t>(i * n + j), gt.row(0),
                                           vt.row(0), v_prefix.row(0));
        }
      }
      lane_values dfi = lane_values::Zero();
      for (index j = 0; j < n; ++j) {
        lanes_ref(dut.row(j)) += fi * lanes_view(g_v.row(j));
        dfi += lanes_view(ut.row(j)) * lanes_view(g_v.row(j));
      }
      lanes_ref(dft.row(i)) += dfi;
      if ((fi == S(0)).all()) continue;  // dv gets f_i times the sums below: nothing
      if (sign > 0) {  // dv_k += f_i sum_j dout_{j + k} u_j
        kernels::template cyclic_contract<1>(dvt.row(0), ft.row(i), ut.row(0), g2.row(0), n, 1);
        continue;
      }
      if (sign < 0) {  // dv_k += f_i sum_j dout_{j - k} u_j
        kernels::template cyclic_contract<-1>(dvt.row(0), ft.row(i), ut.row(0), g2.row(0), n, 1);
        continue;
      }
      for (index k = 0; k < n; ++k) {  // sum_j dout_{op(j,k)} u_j
        const lane_values g_u =
            kernels::contract(by_k_, static_cast<std::size_t>(i * n + k), gt.row(0), ut.row(0), u_prefix.row(0));
        lanes_ref(dvt.row(k)) += fi * g_u;
      }
    }
  }

  void backward_chunk(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                      const matrix<S>& f, const matrix<S>& u, const matrix<S>& v,
                      index b0) const {
    const index n = n_;
    arena scratch(2 * table_op_columns + 6 * n + backward_scratch_rows());
    const auto ft = scratch.take(table_op_columns), ut = scratch.take(n), vt = scratch.take(n),
               gt = scratch.take(n), dft = scratch.take(table_op_columns, true),
               dut = scratch.take(n, true), dvt = scratch.take(n, true);
    kernels::gather(ft.row(0), f, b0);
    kernels::gather(ut.row(0), u, b0);
    kernels::gather(vt.row(0), v, b0);
    kernels::gather(gt.row(0), dout, b0);
    backward_lanes(dft.row(0), dut.row(0), dvt.row(0), gt.row(0), ft.row(0), ut.row(0),
                   vt.row(0), scratch);
    kernels::template scatter<true>(df, dft.row(0), b0);
    kernels::template scatter<true>(du, dut.row(0), b0);
    kernels::template scatter<true>(dv, dvt.row(0), b0);
  }

  std::int64_t n_;
  std::vector<std::uint16_t> result_;     // (A, n, n)
  detail::contraction_list by_result_;   // groups (i, l): terms u_j v_k with op_i(j,k) = l
  detail::contraction_list by_j_;        // groups (i, j): terms dout_{op_i(j,k)} v_k
  detail::contraction_list by_k_;        // groups (i, k): terms dout_{op_i(j,k)} u_j
};

}  // namespace ncl::alu
