// ncl::detail::product (core/product.hpp): the tiled product against a plain triple loop in
// double, for tiles by rows and by columns, = and +=, transposed operands and empty shapes;
// and the same bits for 1, 2 and 3 threads where Eigen's own threaded product differs.
#include <catch2/catch.hpp>

#include <array>
#include <cstring>
#include <vector>

#include "ncl/core/product.hpp"
#include "ncl/core/rng.hpp"
#include "../test_threads.hpp"

namespace {

using rows_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

rows_matrix random_matrix(ncl::index rows, ncl::index cols, ncl::rng& random) {
  rows_matrix m(rows, cols);
  for (ncl::index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(random.normal());
  return m;
}

// dst (+)= lhs * rhs by the definition, summed in double.
template <class L, class R>
rows_matrix plain_product(const rows_matrix& start, const L& lhs, const R& rhs, bool accumulate) {
  rows_matrix out(lhs.rows(), rhs.cols());
  for (ncl::index i = 0; i < lhs.rows(); ++i) {
    for (ncl::index j = 0; j < rhs.cols(); ++j) {
      double sum = accumulate ? start(i, j) : 0.0;
      for (ncl::index k = 0; k < lhs.cols(); ++k) sum += double(lhs(i, k)) * double(rhs(k, j));
      out(i, j) = static_cast<float>(sum);
    }
  }
  return out;
}

double max_abs(const rows_matrix& m) { return m.size() == 0 ? 0.0 : double(m.cwiseAbs().maxCoeff()); }

bool same_bits(const rows_matrix& x, const rows_matrix& y) {
  return x.rows() == y.rows() && x.cols() == y.cols() &&
         std::memcmp(x.data(), y.data(), sizeof(float) * static_cast<std::size_t>(x.size())) == 0;
}

}  // namespace

TEST_CASE("product equals the plain sum over k, tiled by rows or by columns", "[core][product]") {
  ncl::rng random(3);
  struct shape { ncl::index M, N, K; };
  for (const shape s : {shape{1, 1, 1}, shape{5, 3, 7}, shape{300, 40, 90}, shape{40, 300, 90},
                        shape{129, 130, 600}, shape{64, 64, 0}, shape{0, 8, 8}}) {
    INFO("M " << s.M << " N " << s.N << " K " << s.K);
    const auto a = random_matrix(s.M, s.K, random), b = random_matrix(s.K, s.N, random);
    const auto at = random_matrix(s.K, s.M, random), bt = random_matrix(s.N, s.K, random);
    const auto start = random_matrix(s.M, s.N, random);
    const double tolerance = 1e-5 * double(std::max<ncl::index>(s.K, 1));
    for (bool accumulate : {false, true}) {
      rows_matrix d = start;
      ncl::detail::product(d, a, b, accumulate);
      CHECK(max_abs(d - plain_product(start, a, b, accumulate)) <= tolerance);
      d = start;  // transposed operands, as linear_backward passes them
      ncl::detail::product(d, at.transpose(), bt.transpose(), accumulate);
      CHECK(max_abs(d - plain_product(start, at.transpose(), bt.transpose(), accumulate)) <= tolerance);
      // a block of a larger matrix as the destination
      rows_matrix big = rows_matrix::Zero(s.M + 2, s.N + 3);
      big.block(1, 2, s.M, s.N) = start;
      ncl::detail::product(big.block(1, 2, s.M, s.N), a, b, accumulate);
      CHECK(max_abs(rows_matrix(big.block(1, 2, s.M, s.N)) - plain_product(start, a, b, accumulate)) <= tolerance);
      CHECK(max_abs(big.row(0)) == 0.0);
      CHECK(max_abs(big.col(0)) == 0.0);
    }
  }
}

TEST_CASE("product gives the same bits for 1, 2 and 3 threads", "[core][product][determinism]") {
  // The shapes of a linear layer's weight gradient, dW (OC, C) += dY^T (OC, N) X (N, C), with
  // N = B T large: where Eigen's threaded product changes the sums (measured: 768 x 128 x
  // 256 and 352-wide inner dimensions differ between 1 and 2 threads).
  ncl::rng random(9);
  for (const auto& [OC, C, N] : std::vector<std::array<ncl::index, 3>>{{256, 128, 768}, {128, 352, 768}, {768, 128, 768}}) {
    const auto dy = random_matrix(N, OC, random), x = random_matrix(N, C, random);
    std::vector<rows_matrix> results;
    for (int threads : {1, 2, 3}) {
      ncl_test::with_threads(threads, [&] {
        rows_matrix dw = rows_matrix::Zero(OC, C);
        ncl::detail::product(dw, dy.transpose(), x, true);
        results.push_back(dw);
      });
    }
    INFO("OC " << OC << " C " << C << " N " << N);
    CHECK(same_bits(results[1], results[0]));
    CHECK(same_bits(results[2], results[0]));
  }
}
