// The kernels of the structured lookup table's fast path (lookup_table.hpp). They work on
// batch-innermost buffers: row r of a buffer (rows, W) holds one value for W batch elements,
// so every term below is a multiply-add over W contiguous lanes.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "ncl/core/buffer.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::alu::detail {

/// The structured table read as sums: for each group g, a list of terms x[a] * y[b] (a
/// "single") and x[a] * (y[b0] + ... + y[b1 - 1]) (a "run", b1 - b0 >= 2, summed as a
/// difference of prefix sums of y). Each of the three passes of the fast path sums one such
/// list per group into a register accumulator, so the inner loops only load and multiply-add.
struct contraction_list {
  struct single {
    std::uint16_t a, b;
  };
  struct run {
    std::int32_t a, b0, b1;
  };
  std::vector<single> singles;             // by group
  std::vector<run> runs;                   // by group
  std::vector<std::int64_t> single_starts{0};  // (groups + 1)
  std::vector<std::int64_t> run_starts{0};     // (groups + 1)

  /// Appends the terms of one sequence of length `size`: term b has x index a_of(b); equal
  /// neighbours merge into a run. The caller closes the group.
  void add_sequence(std::int32_t size, auto&& a_of) {
    for (std::int32_t b0 = 0; b0 < size;) {
      std::int32_t b1 = b0 + 1;
      while (b1 < size && a_of(b1) == a_of(b0)) ++b1;
      if (b1 == b0 + 1) {
        singles.push_back({static_cast<std::uint16_t>(a_of(b0)), static_cast<std::uint16_t>(b0)});
      } else {
        runs.push_back({a_of(b0), b0, b1});
      }
      b0 = b1;
    }
  }
  void close_group() {
    single_starts.push_back(static_cast<std::int64_t>(singles.size()));
    run_starts.push_back(static_cast<std::int64_t>(runs.size()));
  }
  std::size_t bytes() const {
    return singles.size() * sizeof(single) + runs.size() * sizeof(run) +
           (single_starts.size() + run_starts.size()) * sizeof(std::int64_t);
  }
};

/// How the fast path computes an op: from contraction lists, as a cyclic convolution, or in
/// closed form from prefix sums.
enum class table_kernel { listed, cyclic, min, max, eq, lt };

template <class S, index W>
struct lane_kernels {
  // One row of a batch-innermost buffer: W lanes, as Eigen fixed-size arrays so every
  // multiply-add below is a few vector instructions.
  using lane_values = Eigen::Array<S, W, 1>;
  using lanes_view = Eigen::Map<const lane_values>;
  using lanes_ref = Eigen::Map<lane_values>;

  /// A buffer (rows, W) inside an arena.
  struct rows_view {
    S* data;
    S* row(index r) const { return data + r * W; }
  };

  /// A chunk's buffers carved from one per-thread block kept between calls, so the machine's
  /// steps allocate nothing here. One arena per thread at a time (the kernels do not nest).
  class arena {
   public:
    explicit arena(index rows) : base_(storage(rows)), capacity_(rows) {}
    /// The next `rows` rows, zeroed when the caller accumulates into them.
    rows_view take(index rows, bool zero = false) {
      S* p = base_ + used_ * W;
      used_ += rows;
      if (used_ > capacity_) throw std::logic_error("lane_kernels::arena: out of rows");
      if (zero) std::fill(p, p + rows * W, S(0));
      return {p};
    }

   private:
    static S* storage(index rows) {
      thread_local buffer<S> block;  // aligned: sums over its rows must not depend on the heap
      const auto size = static_cast<std::size_t>(rows * W);
      if (block.size() < size) block.resize(size);
      return block.data();
    }
    S* base_;
    index capacity_;
    index used_ = 0;
  };

  /// dst (rows, W) = columns [b0, b0 + W) of src (B, rows) transposed, zero past the batch.
  static void gather(S* dst, const matrix<S>& src, index b0) {
    const index count = std::min(W, src.rows() - b0);
    for (index r = 0; r < src.cols(); ++r) {
      for (index w = 0; w < count; ++w) dst[r * W + w] = src(b0 + w, r);
      for (index w = count; w < W; ++w) dst[r * W + w] = S(0);
    }
  }
  /// dst (B, cols) (+)= columns [b0, b0 + W) of src (cols, W) transposed, for the real lanes.
  template <bool add>
  static void scatter(matrix<S>& dst, const S* src, index b0) {
    const index count = std::min(W, dst.rows() - b0);
    for (index w = 0; w < count; ++w) {
      for (index c = 0; c < dst.cols(); ++c) {
        if constexpr (add) {
          dst(b0 + w, c) += src[c * W + w];
        } else {
          dst(b0 + w, c) = src[c * W + w];
        }
      }
    }
  }
  /// prefix (n + 1, W): prefix[k] = sum_{k' < k} x[k'].
  static void prefix_sums(S* prefix, const S* x, index n) {
    lanes_ref(prefix).setZero();
    for (index k = 0; k < n; ++k) {
      lanes_ref(prefix + (k + 1) * W) = lanes_view(prefix + k * W) + lanes_view(x + k * W);
    }
  }

  /// sum over the terms of `group`: x[a] * y[b] and x[a] * (y_prefix[b1] - y_prefix[b0]).
  /// Four accumulators hide the multiply-add latency.
  static lane_values contract(const contraction_list& list, std::size_t group,
                              const S* x, const S* y, const S* y_prefix) {
    lane_values acc0 = lane_values::Zero(), acc1 = lane_values::Zero(),
                acc2 = lane_values::Zero(), acc3 = lane_values::Zero();
    const auto* term = list.singles.data() + list.single_starts[group];
    const auto* end = list.singles.data() + list.single_starts[group + 1];
    auto product = [&](const contraction_list::single& t) {
      return lanes_view(x + index{t.a} * W) * lanes_view(y + index{t.b} * W);
    };
    for (; end - term >= 4; term += 4) {
      acc0 += product(term[0]);
      acc1 += product(term[1]);
      acc2 += product(term[2]);
      acc3 += product(term[3]);
    }
    for (; term != end; ++term) acc0 += product(*term);
    const auto* run = list.runs.data() + list.run_starts[group];
    const auto* run_end = list.runs.data() + list.run_starts[group + 1];
    for (; run != run_end; ++run) {
      acc1 += lanes_view(x + index{run->a} * W) *
              (lanes_view(y_prefix + index{run->b1} * W) - lanes_view(y_prefix + index{run->b0} * W));
    }
    return (acc0 + acc1) + (acc2 + acc3);
  }

  /// ADD (op(j, k) = j + k) and SUB (j - k) mod n have circulant tables: their sums are
  /// cyclic convolutions, computed without lists and `cyclic_block` outputs at a time, so
  /// each x[q] loaded serves cyclic_block multiply-adds.
  static constexpr index cyclic_block = 8;

  /// For p in [0, n): out[p] += coef * c_p, or out[p] = c_p without coef, where
  /// c_p = sum_q x[q] y[(sp p + sq q) mod n] and y2 (2n, W) holds y twice, so the rows for
  /// p0 .. p0 + cyclic_block - 1 are contiguous (ascending for sp = 1, descending for -1).
  template <int sp>
  static void cyclic_contract(S* out, const S* coef, const S* x, const S* y2, index n, int sq) {
    constexpr index R = cyclic_block;
    for (index p0 = 0; p0 < n; p0 += R) {
      const index rows = std::min(R, n - p0);
      lane_values acc[R];
      for (index r = 0; r < R; ++r) acc[r].setZero();
      index s = ((sp * p0) % n + n) % n;  // (sp p0 + sq q) mod n, for q = 0
      for (index q = 0; q < n; ++q) {
        const lanes_view xq(x + q * W);
        const S* base = y2 + (sp > 0 ? s : s + n) * W;
        if (rows == R) {
          for (index r = 0; r < R; ++r) acc[r] += xq * lanes_view(base + sp * r * W);
        } else {
          for (index r = 0; r < rows; ++r) acc[r] += xq * lanes_view(base + sp * r * W);
        }
        s += sq;
        if (s == n) s = 0;
        if (s < 0) s = n - 1;
      }
      for (index r = 0; r < rows; ++r) {
        if (coef != nullptr) {
          lanes_ref(out + (p0 + r) * W) += lanes_view(coef) * acc[r];
        } else {
          lanes_ref(out + (p0 + r) * W) = acc[r];
        }
      }
    }
  }

  /// The pairs (j, k) with op(j, k) = l, summed over prefix sums pu, pv (n + 1, W) of u, v
  /// (U = pu[n], V = pv[n] the totals):
  ///   MIN  o_l = u_l (V - pv[l]) + v_l (U - pu[l + 1])    (l, k >= l) and (j > l, l)
  ///   MAX  o_l = u_l pv[l + 1] + v_l pu[l]                 (l, k <= l) and (j < l, l)
  ///   EQ   o_1 = sum_j u_j v_j,      o_0 = U V - o_1
  ///   LT   o_1 = sum_k pu[k] v_k,    o_0 = U V - o_1
  /// out (n, W) = o, the op's result before the factor f_i.
  static void prefix_op_forward(table_kernel op, S* out, const S* u, const S* v, const S* pu,
                                const S* pv, index n) {
    auto at = [](const S* x, index r) { return lanes_view(x + r * W); };
    auto set = [](S* x, index r) { return lanes_ref(x + r * W); };
    const lane_values total_u = at(pu, n), total_v = at(pv, n);
    if (op == table_kernel::min || op == table_kernel::max) {
      for (index l = 0; l < n; ++l) {
        if (op == table_kernel::min) {
          set(out, l) = at(u, l) * (total_v - at(pv, l)) + at(v, l) * (total_u - at(pu, l + 1));
        } else {
          set(out, l) = at(u, l) * at(pv, l + 1) + at(v, l) * at(pu, l);
        }
      }
      return;
    }
    lane_values one = lane_values::Zero();
    for (index k = 0; k < n; ++k) one += (op == table_kernel::eq ? at(u, k) : at(pu, k)) * at(v, k);
    std::fill(out, out + n * W, S(0));
    set(out, 0) = total_u * total_v - one;
    set(out, 1) = one;
  }

  /// The gradients of sum_l g_l o_l for prefix_op_forward's o: du (n, W) = d/du, dv = d/dv.
  ///   MIN  du_j = g_j (V - pv[j]) + sum_{l<j} g_l v_l,   dv_k = g_k (U - pu[k+1]) + sum_{l<=k} g_l u_l
  ///   MAX  du_j = g_j pv[j+1] + sum_{l>j} g_l v_l,       dv_k = g_k pu[k] + sum_{l>=k} g_l u_l
  ///   EQ   du_j = g_1 v_j + g_0 (V - v_j),              dv_k = g_1 u_k + g_0 (U - u_k)
  ///   LT   du_j = g_0 V + (g_1 - g_0) (V - pv[j+1]),    dv_k = g_0 U + (g_1 - g_0) pu[k]
  static void prefix_op_backward(table_kernel op, S* du, S* dv, const S* g, const S* u, const S* v,
                                 const S* pu, const S* pv, index n) {
    auto at = [](const S* x, index r) { return lanes_view(x + r * W); };
    auto set = [](S* x, index r) { return lanes_ref(x + r * W); };
    const lane_values total_u = at(pu, n), total_v = at(pv, n);
    switch (op) {
      case table_kernel::min: {
        lane_values gv = lane_values::Zero(), gu = lane_values::Zero();
        for (index l = 0; l < n; ++l) {
          set(du, l) = at(g, l) * (total_v - at(pv, l)) + gv;
          gv += at(g, l) * at(v, l);
          gu += at(g, l) * at(u, l);
          set(dv, l) = at(g, l) * (total_u - at(pu, l + 1)) + gu;
        }
        return;
      }
      case table_kernel::max: {
        lane_values gv = lane_values::Zero(), gu = lane_values::Zero();
        for (index l = n; l-- > 0;) {
          set(du, l) = at(g, l) * at(pv, l + 1) + gv;
          gv += at(g, l) * at(v, l);
          gu += at(g, l) * at(u, l);
          set(dv, l) = at(g, l) * at(pu, l) + gu;
        }
        return;
      }
      case table_kernel::eq:
        for (index l = 0; l < n; ++l) {
          set(du, l) = at(g, 1) * at(v, l) + at(g, 0) * (total_v - at(v, l));
          set(dv, l) = at(g, 1) * at(u, l) + at(g, 0) * (total_u - at(u, l));
        }
        return;
      case table_kernel::lt:
        for (index l = 0; l < n; ++l) {
          set(du, l) = at(g, 0) * total_v + (at(g, 1) - at(g, 0)) * (total_v - at(pv, l + 1));
          set(dv, l) = at(g, 0) * total_u + (at(g, 1) - at(g, 0)) * at(pu, l);
        }
        return;
      default: return;
    }
  }

  /// y2 (2n, W): y (n, W) twice.
  static void repeat_twice(S* y2, const S* y, index n) {
    std::copy(y, y + n * W, y2);
    std::copy(y, y + n * W, y2 + n * W);
  }

};

}  // namespace ncl::alu::detail
