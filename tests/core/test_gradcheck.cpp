#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "ncl/core/gradcheck.hpp"

TEST_CASE("gradcheck passes a correct gradient and fails a wrong one", "[core][gradcheck]") {
  std::vector<double> x{0.3, -1.2, 2.0, 0.7};
  auto forward = [&] {
    std::vector<double> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = std::sin(x[i]) * x[i];
    return out;
  };
  auto good = [&](std::span<const double> dout) {
    std::vector<double> dx(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) dx[i] = dout[i] * (std::cos(x[i]) * x[i] + std::sin(x[i]));
    return std::vector<std::vector<double>>{dx};
  };
  auto bad = [&](std::span<const double> dout) {
    auto g = good(dout);
    g[0][2] *= 1.01;  // a 1% error in one coordinate
    return g;
  };
  const auto ok = ncl::gradcheck({{"x", x}}, forward, good);
  INFO(ok.report());
  CHECK(ok.ok);
  CHECK(ok.checked == 4);
  const auto wrong = ncl::gradcheck({{"x", x}}, forward, bad);
  CHECK_FALSE(wrong.ok);
  REQUIRE(wrong.mismatches.size() == 1);
  CHECK(wrong.mismatches[0].coordinate == 2);
  CHECK(x == std::vector<double>{0.3, -1.2, 2.0, 0.7});  // inputs are restored
}

TEST_CASE("gradcheck skips kinks and fails when nothing is left to compare", "[core][gradcheck]") {
  std::vector<double> x{0.0, 0.0};  // |x| has a kink at 0
  auto forward = [&] { return std::vector<double>{std::abs(x[0]), std::abs(x[1])}; };
  auto backward = [&](std::span<const double> dout) {
    return std::vector<std::vector<double>>{{dout[0], dout[1]}};
  };
  const auto at_kink = ncl::gradcheck({{"x", x}}, forward, backward);
  CHECK(at_kink.skipped_kinks == 2);
  CHECK_FALSE(at_kink.ok);  // zero coordinates compared is a failure, not a pass

  const std::vector<double> kinks{0.0};
  ncl::keep_away_from_kinks(x, kinks, 0.1);
  CHECK(std::abs(x[0]) >= 0.1);
  const auto away = ncl::gradcheck({{"x", x}}, forward, backward);
  INFO(away.report());
  CHECK(away.ok);
  CHECK(away.checked == 2);
}

TEST_CASE("gradcheck samples large inputs and reports wrong gradient sizes", "[core][gradcheck]") {
  std::vector<double> x(1000, 0.5);
  auto forward = [&] { return x; };
  auto backward = [&](std::span<const double> dout) {
    return std::vector<std::vector<double>>{{dout.begin(), dout.end()}};
  };
  ncl::gradcheck_options options;
  options.samples_per_input = 50;
  const auto sampled = ncl::gradcheck({{"x", x}}, forward, backward, options);
  CHECK(sampled.ok);
  CHECK(sampled.checked == 50);
  auto short_backward = [&](std::span<const double>) {
    return std::vector<std::vector<double>>{std::vector<double>(3)};
  };
  const auto wrong_size = ncl::gradcheck({{"x", x}}, forward, short_backward);
  CHECK_FALSE(wrong_size.ok);
  CHECK_THAT(wrong_size.failure, Catch::Contains("gradient of x has 3 entries"));
}
