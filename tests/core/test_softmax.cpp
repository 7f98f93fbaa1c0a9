#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "ncl/core/gradcheck.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/core/softmax.hpp"

using ncl::matrix;

namespace {

matrix<double> random_logits(ncl::index rows, ncl::index cols, double scale, std::uint64_t seed) {
  ncl::rng random(seed);
  matrix<double> x(rows, cols);
  random.fill_normal(std::span<double>(x.data(), static_cast<std::size_t>(x.size())), 0.0, scale);
  return x;
}

std::vector<double> flat(const matrix<double>& m) { return {m.data(), m.data() + m.size()}; }

}  // namespace

TEST_CASE("softmax rows are distributions and match the plain formula", "[core][softmax]") {
  const matrix<double> x = random_logits(5, 7, 3.0, 1);
  matrix<double> y;
  ncl::softmax_forward(y, x);
  for (ncl::index b = 0; b < x.rows(); ++b) {
    double total = 0;
    for (ncl::index i = 0; i < x.cols(); ++i) total += std::exp(x(b, i));
    for (ncl::index i = 0; i < x.cols(); ++i) {
      CHECK(y(b, i) == Approx(std::exp(x(b, i)) / total).epsilon(1e-12));
    }
    CHECK(y.row(b).sum() == Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("softmax and log-softmax are stable for huge logits", "[core][softmax]") {
  matrix<float> x(2, 3);
  x << 1000.0f, 1001.0f, 999.0f, -1e30f, 0.0f, -1e30f;
  matrix<float> y, logy;
  ncl::softmax_forward(y, x);
  ncl::log_softmax_forward(logy, x);
  REQUIRE(y.allFinite());
  REQUIRE(logy.row(0).allFinite());
  CHECK(y(0, 1) == Approx(1.0 / (1.0 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-6));
  CHECK(y(1, 1) == Approx(1.0f));
  CHECK(logy(1, 1) == Approx(0.0f).margin(1e-6));
  CHECK(logy(0, 1) == Approx(-std::log(1.0 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-6));
}

TEST_CASE("softmax backward matches finite differences", "[core][softmax][gradcheck]") {
  matrix<double> x = random_logits(4, 6, 2.0, 2);
  matrix<double> y;
  auto result = ncl::gradcheck(
      {{"logits", {x.data(), static_cast<std::size_t>(x.size())}}},
      [&] {
        ncl::softmax_forward(y, x);
        return flat(y);
      },
      [&](std::span<const double> dout) {
        ncl::softmax_forward(y, x);
        const matrix<double> dy = ncl::const_matrix_map<double>(dout.data(), y.rows(), y.cols());
        matrix<double> dx = matrix<double>::Zero(x.rows(), x.cols());
        ncl::softmax_backward(dx, dy, y);
        return std::vector<std::vector<double>>{flat(dx)};
      });
  INFO(result.report());
  REQUIRE(result.ok);
  CHECK(result.checked == 24);
}

TEST_CASE("log-softmax backward matches finite differences", "[core][softmax][gradcheck]") {
  matrix<double> x = random_logits(3, 5, 4.0, 3);
  matrix<double> y;
  auto result = ncl::gradcheck(
      {{"logits", {x.data(), static_cast<std::size_t>(x.size())}}},
      [&] {
        ncl::log_softmax_forward(y, x);
        return flat(y);
      },
      [&](std::span<const double> dout) {
        ncl::log_softmax_forward(y, x);
        const matrix<double> dy = ncl::const_matrix_map<double>(dout.data(), y.rows(), y.cols());
        matrix<double> dx = matrix<double>::Zero(x.rows(), x.cols());
        ncl::log_softmax_backward(dx, dy, y);
        return std::vector<std::vector<double>>{flat(dx)};
      });
  INFO(result.report());
  REQUIRE(result.ok);
}

TEST_CASE("softmax backward accumulates and checks shapes", "[core][softmax]") {
  matrix<double> x = random_logits(2, 3, 1.0, 4);
  matrix<double> y;
  ncl::softmax_forward(y, x);
  matrix<double> dy = matrix<double>::Ones(2, 3);
  matrix<double> dx = matrix<double>::Constant(2, 3, 5.0);
  ncl::softmax_backward(dx, dy, y);  // a constant dout has zero gradient: dx stays 5
  CHECK((dx.array() - 5.0).abs().maxCoeff() < 1e-12);
  matrix<double> wrong(3, 2);
  CHECK_THROWS_AS(ncl::softmax_backward(wrong, dy, y), ncl::shape_error);
  CHECK_THROWS_WITH(ncl::softmax_backward(dx, wrong, y),
                    Catch::Contains("dprobs has shape (3, 2), expected (2, 3)"));
  matrix<double> empty(2, 0);
  CHECK_THROWS_AS(ncl::softmax_forward(y, empty), ncl::shape_error);
}
