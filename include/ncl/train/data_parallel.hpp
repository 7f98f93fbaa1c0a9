// Data-parallel training that gives the same bits for any number of processes.
//
// A global batch is computed in `shards` equal parts (a power of two). Each shard's gradient
// is computed alone, from zero, and scaled by its share of the batch; the shards' gradients
// are then summed along a fixed balanced binary tree: ((g0 + g1) + (g2 + g3)) for four. With
// R processes (R a power of two dividing the shard count) rank r computes the contiguous
// shards [r S/R, (r+1) S/R), sums them along their subtree, and the ranks exchange those
// partial sums and add them along the rest of the tree, so every rank holds, bit for bit, the
// gradient one process computes alone: the additions are the same, in the same order. The
// optimizer then steps identically on every rank.
//
//   communicator     the processes (MPI's world when ncl is built with the ncl::mpi target,
//                    else one process); allgather of byte strings
//   gradient_copy    one partial sum of a parameter set's gradient: its dense tensors whole,
//                    its sparse_rows tensors (embeddings) as sorted rows
//   shard_sum        the tree above, fed one shard's gradient at a time
//
// Everything here is deterministic by construction; nothing depends on timing or on which
// rank answers first.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "ncl/core/buffer.hpp"
#include "ncl/core/error.hpp"
#include "ncl/train/parameters.hpp"

#if defined(NCL_WITH_MPI)
#include <mpi.h>
#endif

namespace ncl::train {

/// The processes a training run is spread over.
class communicator {
 public:
  /// Every process of the job: MPI's world (initialised on first use, finalised at exit)
  /// when built with MPI, else this process alone.
  static communicator& world() {
    static communicator c;
    return c;
  }
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }

  /// Every rank's `local`, in rank order, on every rank.
  std::vector<std::string> allgather(const std::string& local) const {
    if (size_ == 1) return {local};
#if defined(NCL_WITH_MPI)
    const long long mine = static_cast<long long>(local.size());
    std::vector<long long> sizes(static_cast<std::size_t>(size_));
    check(MPI_Allgather(&mine, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, MPI_COMM_WORLD), "MPI_Allgather");
    std::vector<int> counts(sizes.size()), displs(sizes.size());
    long long total = 0;
    for (std::size_t r = 0; r < sizes.size(); ++r) {
      if (sizes[r] > (1ll << 30) || total > (1ll << 30)) throw value_error("communicator::allgather: more than 1 GiB");
      counts[r] = static_cast<int>(sizes[r]);
      displs[r] = static_cast<int>(total);
      total += sizes[r];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    check(MPI_Allgatherv(local.data(), static_cast<int>(local.size()), MPI_BYTE, all.data(), counts.data(),
                         displs.data(), MPI_BYTE, MPI_COMM_WORLD),
          "MPI_Allgatherv");
    std::vector<std::string> out;
    for (std::size_t r = 0; r < sizes.size(); ++r) out.push_back(all.substr(static_cast<std::size_t>(displs[r]), static_cast<std::size_t>(counts[r])));
    return out;
#else
    return {local};
#endif
  }

  /// Rank 0's `value` on every rank.
  std::string broadcast(std::string value) const {
    if (size_ == 1) return value;
    return allgather(rank_ == 0 ? value : std::string{}).front();
  }

  communicator(const communicator&) = delete;
  communicator& operator=(const communicator&) = delete;

 private:
  communicator() {
#if defined(NCL_WITH_MPI)
    // Started by mpirun (Open MPI, or a PMI/PMIx launcher such as srun)? A binary started
    // on its own is one process and never initialises MPI (no singleton start-up cost).
    if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMIX_RANK") && !std::getenv("PMI_SIZE")) return;
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
#endif
  }
  ~communicator() {
#if defined(NCL_WITH_MPI)
    int done = 0;
    MPI_Finalized(&done);
    if (owns_ && !done) MPI_Finalize();
#endif
  }
#if defined(NCL_WITH_MPI)
  static void check(int code, const char* what) {
    if (code != MPI_SUCCESS) throw io_error(ncl::detail::concat("communicator: ", what, " failed (MPI error ", code, ")"));
  }
  bool owns_ = false;
#endif
  int rank_ = 0, size_ = 1;
};

/// The shards rank `rank` of `ranks` computes: [first, last).
inline std::pair<int, int> owned_shards(int shards, int rank, int ranks) {
  return {rank * shards / ranks, (rank + 1) * shards / ranks};
}

/// Throws value_error unless `shards` is a power of two and `ranks` a power of two dividing it.
inline void check_sharding(int shards, int ranks) {
  const auto pow2 = [](int x) { return x > 0 && std::has_single_bit(static_cast<unsigned>(x)); };
  if (!pow2(shards)) throw value_error(ncl::detail::concat("data parallel: the shard count ", shards, " is not a power of two"));
  if (!pow2(ranks) || ranks > shards) {
    throw value_error(ncl::detail::concat("data parallel: ", ranks, " processes: the count must be a power of two and at most the ",
                                          shards, " shards of a batch (raise the shard count)"));
  }
}

/// One partial sum of a parameter set's gradient.
template <class S>
class gradient_copy {
 public:
  /// Copies params' gradient: dense tensors whole, sparse_rows tensors' touched rows, sorted.
  void capture(const parameter_set<S>& params) {
    dense_.clear();
    rows_.assign(params.count(), {});
    sparse_.assign(params.count(), {});
    const auto g = params.grads();
    for (std::size_t p = 0; p < params.count(); ++p) {
      const auto& in = params.info(p);
      if (!in.options.sparse_rows) {
        dense_.insert(dense_.end(), g.begin() + static_cast<std::ptrdiff_t>(in.offset),
                      g.begin() + static_cast<std::ptrdiff_t>(in.offset + in.size));
        continue;
      }
      const std::size_t w = in.row_size();
      auto& rows = rows_[p];
      const auto touched = params.touched_rows(p);
      rows.assign(touched.begin(), touched.end());
      std::sort(rows.begin(), rows.end());
      auto& data = sparse_[p];
      data.resize(rows.size() * w);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        std::copy_n(g.begin() + static_cast<std::ptrdiff_t>(in.offset + rows[i] * w), w, data.begin() + static_cast<std::ptrdiff_t>(i * w));
      }
    }
  }

  /// this *= factor (a shard's share of the batch).
  void scale(S factor) {
    for (auto& x : dense_) x *= factor;
    for (auto& rows : sparse_) {
      for (auto& x : rows) x *= factor;
    }
  }

  /// this += other (the same parameter layout). Rows only one side has are copied.
  void add(const gradient_copy& other) {
    if (other.dense_.size() != dense_.size() || other.rows_.size() != rows_.size()) {
      throw shape_error("gradient_copy::add: the two gradients have different layouts");
    }
    for (std::size_t i = 0; i < dense_.size(); ++i) dense_[i] += other.dense_[i];
    for (std::size_t p = 0; p < rows_.size(); ++p) {
      if (other.rows_[p].empty()) continue;
      const std::size_t w = rows_[p].empty() ? other.sparse_[p].size() / other.rows_[p].size() : sparse_[p].size() / rows_[p].size();
      std::vector<std::size_t> rows;
      buffer<S> data;
      rows.reserve(rows_[p].size() + other.rows_[p].size());
      data.reserve((rows_[p].size() + other.rows_[p].size()) * w);
      std::size_t i = 0, j = 0;
      const auto& a = rows_[p];
      const auto& b = other.rows_[p];
      while (i < a.size() || j < b.size()) {
        const bool take_a = j == b.size() || (i < a.size() && a[i] <= b[j]);
        const bool take_b = i == a.size() || (j < b.size() && b[j] <= a[i]);
        const std::size_t row = take_a ? a[i] : b[j];
        const std::size_t at = data.size();
        data.resize(at + w, S(0));
        if (take_a && take_b) {
          for (std::size_t k = 0; k < w; ++k) data[at + k] = sparse_[p][i * w + k] + other.sparse_[p][j * w + k];
        } else if (take_a) {
          std::copy_n(sparse_[p].begin() + static_cast<std::ptrdiff_t>(i * w), w, data.begin() + static_cast<std::ptrdiff_t>(at));
        } else {
          std::copy_n(other.sparse_[p].begin() + static_cast<std::ptrdiff_t>(j * w), w, data.begin() + static_cast<std::ptrdiff_t>(at));
        }
        rows.push_back(row);
        i += take_a;
        j += take_b;
      }
      rows_[p] = std::move(rows);
      sparse_[p] = std::move(data);
    }
  }

  /// Replaces params' gradient by this one (sparse rows touched in ascending order). Throws
  /// shape_error, naming the parameter, if this gradient was not captured from params' layout
  /// (a corrupt message from another process), before anything is written.
  void store(parameter_set<S>& params) const {
    check_layout(params);
    params.zero_grad();
    auto g = params.grads();
    std::size_t at = 0;
    for (std::size_t p = 0; p < params.count(); ++p) {
      const auto& in = params.info(p);
      if (!in.options.sparse_rows) {
        std::copy_n(dense_.begin() + static_cast<std::ptrdiff_t>(at), in.size, g.begin() + static_cast<std::ptrdiff_t>(in.offset));
        at += in.size;
        continue;
      }
      const std::size_t w = in.row_size();
      for (std::size_t i = 0; i < rows_[p].size(); ++i) {
        params.touch_row(p, rows_[p][i]);
        std::copy_n(sparse_[p].begin() + static_cast<std::ptrdiff_t>(i * w), w, g.begin() + static_cast<std::ptrdiff_t>(in.offset + rows_[p][i] * w));
      }
    }
  }

  /// The bytes another process's deserialize reads back (the same build on the same
  /// architecture: native byte order).
  std::string serialize() const {
    std::string out;
    auto put = [&](const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); };
    const std::uint64_t dense = dense_.size(), params = rows_.size();
    put(&dense, 8);
    put(&params, 8);
    put(dense_.data(), dense_.size() * sizeof(S));
    for (std::size_t p = 0; p < rows_.size(); ++p) {
      const std::uint64_t rows = rows_[p].size(), values = sparse_[p].size();
      put(&rows, 8);
      put(&values, 8);
      for (std::size_t r : rows_[p]) {
        const std::uint64_t r64 = r;
        put(&r64, 8);
      }
      put(sparse_[p].data(), sparse_[p].size() * sizeof(S));
    }
    return out;
  }

  void deserialize(const std::string& bytes) {
    std::size_t at = 0;
    auto get = [&](void* p, std::size_t n) {
      if (n > bytes.size() - at) throw io_error("gradient_copy: a truncated gradient from another process");
      if (n == 0) return;  // p may be an empty vector's null data(): memcpy's arguments must not be null
      std::memcpy(p, bytes.data() + at, n);
      at += n;
    };
    std::uint64_t dense = 0, params = 0;
    get(&dense, 8);
    get(&params, 8);
    if (dense > bytes.size() || params > bytes.size()) throw io_error("gradient_copy: a corrupt gradient from another process");
    dense_.resize(dense);
    get(dense_.data(), dense * sizeof(S));
    rows_.assign(params, {});
    sparse_.assign(params, {});
    for (std::size_t p = 0; p < params; ++p) {
      std::uint64_t rows = 0, values = 0;
      get(&rows, 8);
      get(&values, 8);
      if (rows > bytes.size() || values > bytes.size()) throw io_error("gradient_copy: a corrupt gradient from another process");
      rows_[p].resize(rows);
      for (auto& r : rows_[p]) {
        std::uint64_t r64 = 0;
        get(&r64, 8);
        r = static_cast<std::size_t>(r64);
      }
      sparse_[p].resize(values);
      get(sparse_[p].data(), values * sizeof(S));
    }
    if (at != bytes.size()) throw io_error("gradient_copy: trailing bytes in a gradient from another process");
  }

 private:
  void check_layout(const parameter_set<S>& params) const {
    const auto fail = [](const auto&... what) { throw shape_error(ncl::detail::concat("gradient_copy::store: ", what...)); };
    if (rows_.size() != params.count() || sparse_.size() != params.count()) {
      fail("a gradient of ", rows_.size(), " parameters for a set of ", params.count());
    }
    std::size_t dense = 0;
    for (std::size_t p = 0; p < params.count(); ++p) {
      const auto& in = params.info(p);
      if (!in.options.sparse_rows) {
        dense += in.size;
        if (!rows_[p].empty() || !sparse_[p].empty()) fail("sparse rows for the dense parameter '", in.name, "'");
        continue;
      }
      if (sparse_[p].size() != rows_[p].size() * in.row_size()) {
        fail(sparse_[p].size(), " values for ", rows_[p].size(), " rows of '", in.name, "' (rows of ", in.row_size(), ")");
      }
      for (std::size_t i = 0; i < rows_[p].size(); ++i) {
        if (rows_[p][i] >= in.rows() || (i > 0 && rows_[p][i] <= rows_[p][i - 1])) {
          fail("row ", rows_[p][i], " of '", in.name, "' is out of order or not in [0, ", in.rows(), ")");
        }
      }
    }
    if (dense != dense_.size()) fail(dense_.size(), " dense values for a set with ", dense);
  }

  buffer<S> dense_;                            // the dense tensors, back to back
  std::vector<std::vector<std::size_t>> rows_;  // per parameter: sorted touched rows (sparse ones)
  std::vector<buffer<S>> sparse_;               // per parameter: those rows' values
};

/// Sums gradients along a balanced binary tree, fed left to right: push() the leaves in order
/// (each an aligned subtree of `size` leaves), then result(). With a power-of-two number of
/// leaves of size one, that is ((g0 + g1) + (g2 + g3)) ...; a rank's partial sum over its
/// shards, pushed with size S/R, slots into the same tree.
template <class S>
class tree_sum {
 public:
  void push(gradient_copy<S> g, std::size_t size = 1) {
    while (!stack_.empty() && stack_.back().second == size) {
      auto left = std::move(stack_.back().first);
      stack_.pop_back();
      left.add(g);
      g = std::move(left);
      size *= 2;
    }
    stack_.emplace_back(std::move(g), size);
  }
  /// The sum (the stack must have collapsed to one subtree: a power-of-two count of leaves).
  const gradient_copy<S>& result() const {
    if (stack_.size() != 1) throw value_error("tree_sum: the leaves do not form one balanced tree");
    return stack_.front().first;
  }
  void clear() { stack_.clear(); }

 private:
  std::vector<std::pair<gradient_copy<S>, std::size_t>> stack_;
};


/// The end of a step computed in `shards` parts: `tree` holds this rank's shards' gradients
/// (each scaled by its share of the batch), `stats` this rank's numbers per shard (the same
/// count for every shard, in shard order). Stores the whole batch's gradient in `params`, the
/// same bits on every rank, and returns every rank's stats in rank order (so in shard order).
template <class S>
std::vector<double> finish_sharded_step(const tree_sum<S>& tree, const std::vector<double>& stats, int shards,
                                        const communicator& comm, parameter_set<S>& params) {
  if (comm.size() == 1) {
    tree.result().store(params);
    return stats;
  }
  const auto grads = comm.allgather(tree.result().serialize());
  const auto all = comm.allgather(std::string(reinterpret_cast<const char*>(stats.data()), stats.size() * sizeof(double)));
  tree_sum<S> across;
  std::vector<double> out;
  for (std::size_t r = 0; r < grads.size(); ++r) {
    gradient_copy<S> g;
    g.deserialize(grads[r]);
    across.push(std::move(g), static_cast<std::size_t>(shards / comm.size()));
    if (all[r].size() % sizeof(double) != 0) {
      throw value_error(ncl::detail::concat("finish_sharded_step: rank ", r, " sent ", all[r].size(),
                                            " bytes of stats, not a whole number of doubles"));
    }
    const std::size_t at = out.size();
    out.resize(at + all[r].size() / sizeof(double));
    if (!all[r].empty()) std::memcpy(out.data() + at, all[r].data(), all[r].size());
  }
  across.result().store(params);
  return out;
}

}  // namespace ncl::train
