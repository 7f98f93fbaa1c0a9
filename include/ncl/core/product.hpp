// dst = lhs * rhs or dst += lhs * rhs, with the same bits for any number of threads.
//
// Eigen splits a large product over OpenMP's threads, and the sums it forms then depend on
// the split (core/parallel.hpp). product() cuts dst into tiles along its longer side, the
// tile size a function of the shape alone, and computes each tile as one single-threaded
// Eigen product over the whole inner dimension; the tiles run on the threads. A tile packs
// the other operand once, so tiles of at least 32 rows or columns keep that overhead at a
// few per cent of the multiply-adds.
#pragma once

#include <algorithm>

#include <Eigen/Core>

#include "ncl/core/parallel.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::detail {

/// The tile size along a side of `extent` entries: about an eighth of it, a multiple of 16,
/// at least 32 (or the whole side when shorter).
inline index product_tile(index extent) {
  const index eighth = (extent + 7) / 8;
  return std::min(extent, std::max<index>(32, (eighth + 15) / 16 * 16));
}

/// Products with fewer multiply-adds than this stay on one thread.
inline constexpr double product_parallel_work = double(1 << 18);

/// dst (M, N) = lhs (M, K) * rhs (K, N), or += when `accumulate`. dst, lhs and rhs are
/// Eigen matrix expressions with direct access (maps, blocks, transposes of them); dst must
/// not alias lhs or rhs.
template <class Dst, class Lhs, class Rhs>
void product(Dst&& dst, const Lhs& lhs, const Rhs& rhs, bool accumulate) {
  const index M = dst.rows(), N = dst.cols(), K = lhs.cols();
  const bool by_rows = M >= N;
  const index extent = by_rows ? M : N, tile = product_tile(extent);
  const index tiles = extent == 0 ? 0 : (extent + tile - 1) / tile;
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  parallel_for(tiles, tiles > 1 && work >= product_parallel_work, [&](index t) {
    const index first = t * tile, size = std::min(tile, extent - first);
    if (by_rows) {
      auto d = dst.middleRows(first, size);
      if (accumulate) {
        d.noalias() += lhs.middleRows(first, size) * rhs;
      } else {
        d.noalias() = lhs.middleRows(first, size) * rhs;
      }
    } else {
      auto d = dst.middleCols(first, size);
      if (accumulate) {
        d.noalias() += lhs * rhs.middleCols(first, size);
      } else {
        d.noalias() = lhs * rhs.middleCols(first, size);
      }
    }
  });
}

}  // namespace ncl::detail
