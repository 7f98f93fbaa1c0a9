#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "ncl/core/gradcheck.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/encoding/binary.hpp"
#include "ncl/encoding/one_hot.hpp"

using ncl::matrix;
namespace enc = ncl::encoding;

namespace {

std::vector<double> flat(const matrix<double>& m) { return {m.data(), m.data() + m.size()}; }
std::span<double> span_of(matrix<double>& m) { return {m.data(), static_cast<std::size_t>(m.size())}; }

std::vector<std::int64_t> all_values(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

// Random soft bits kept away from 0, 1 and the 1/2 decision threshold.
matrix<double> soft_bits(ncl::index rows, int bits, std::uint64_t seed) {
  ncl::rng random(seed);
  matrix<double> b(rows, bits);
  for (ncl::index i = 0; i < b.size(); ++i) b.data()[i] = random.uniform(0.05, 0.95);
  return b;
}

}  // namespace

TEST_CASE("one-hot encode and decode round trip every value", "[encoding][one_hot]") {
  for (std::int64_t n : {1, 2, 7, 16, 100}) {
    const auto values = all_values(n);
    matrix<float> one_hot;
    enc::one_hot_encode(one_hot, values, n);
    REQUIRE(one_hot.rows() == n);
    REQUIRE(one_hot.cols() == n);
    CHECK(one_hot.sum() == Approx(double(n)));
    const auto decoded = enc::one_hot_decode(one_hot);
    CHECK(decoded.values == values);
    for (float c : decoded.confidence) CHECK(c == 1.0f);
  }
}

TEST_CASE("one-hot decode takes the argmax and its probability, lowest on ties", "[encoding][one_hot]") {
  matrix<double> p(2, 4);
  p << 0.1, 0.6, 0.2, 0.1, 0.3, 0.2, 0.3, 0.2;
  const auto d = enc::one_hot_decode(p);
  CHECK(d.values == std::vector<std::int64_t>{1, 0});
  CHECK(d.confidence[0] == 0.6);
  CHECK(d.confidence[1] == 0.3);
  matrix<double> dp = matrix<double>::Zero(2, 4);
  const std::vector<double> dconf{2.0, -1.0};
  enc::one_hot_confidence_backward(dp, std::span<const double>(dconf), d);
  CHECK(dp(0, 1) == 2.0);
  CHECK(dp(1, 0) == -1.0);
  CHECK(dp.cwiseAbs().sum() == 3.0);
}

TEST_CASE("binary encode and decode round trip, little-endian", "[encoding][binary]") {
  matrix<float> bits;
  const std::vector<std::int64_t> six{6};
  enc::binary_encode(bits, six, 4);
  CHECK(bits(0, 0) == 0.0f);
  CHECK(bits(0, 1) == 1.0f);
  CHECK(bits(0, 2) == 1.0f);
  CHECK(bits(0, 3) == 0.0f);
  for (int b : {1, 3, 8}) {
    const auto values = all_values(std::int64_t{1} << b);
    enc::binary_encode(bits, values, b);
    const auto decoded = enc::binary_decode(bits);
    CHECK(decoded.values == values);
    for (float c : decoded.confidence) CHECK(c == 1.0f);
  }
  // The extremes of the widest encoding.
  const std::vector<std::int64_t> wide{0, (std::int64_t{1} << 31) - 1, 123456789};
  matrix<double> wide_bits;
  enc::binary_encode(wide_bits, wide, 31);
  CHECK(enc::binary_decode(wide_bits).values == wide);
}

TEST_CASE("binary <-> one-hot conversions are exact on hard inputs", "[encoding][binary]") {
  for (int b : {1, 2, 4, 6, 10}) {
    const std::int64_t n = std::int64_t{1} << b;
    const auto values = all_values(n);
    matrix<double> bits, one_hot, expected_one_hot, back_bits;
    enc::binary_encode(bits, values, b);
    enc::binary_to_one_hot_forward(one_hot, bits, n);
    enc::one_hot_encode(expected_one_hot, values, n);
    CHECK(one_hot == expected_one_hot);  // bit for bit, not approximately
    enc::one_hot_to_binary_forward(back_bits, one_hot, b);
    CHECK(back_bits == bits);
  }
}

TEST_CASE("soft conversions: a distribution, and marginals recovered", "[encoding][binary]") {
  const matrix<double> b = soft_bits(5, 5, 11);
  matrix<double> p, back;
  enc::binary_to_one_hot_forward(p, b, 32);
  for (ncl::index r = 0; r < p.rows(); ++r) CHECK(p.row(r).sum() == Approx(1.0).epsilon(1e-12));
  // p(v) for one v by the closed form, computed independently.
  const std::int64_t v = 0b10110;
  double expected = 1;
  for (int i = 0; i < 5; ++i) expected *= ((v >> i) & 1) ? b(2, i) : 1 - b(2, i);
  CHECK(p(2, v) == Approx(expected).epsilon(1e-12));
  enc::one_hot_to_binary_forward(back, p, 5);
  CHECK((back - b).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("non-power-of-two value ranges", "[encoding][binary]") {
  CHECK(enc::bits_for(1) == 1);
  CHECK(enc::bits_for(2) == 1);
  CHECK(enc::bits_for(10) == 4);
  CHECK(enc::bits_for(16) == 4);
  CHECK(enc::bits_for(17) == 5);
  CHECK(enc::bits_for(std::int64_t{1} << 31) == 31);
  // one-hot -> binary is well defined for n = 10: the values 10..15 simply have no mass.
  matrix<double> one_hot, bits;
  enc::one_hot_encode(one_hot, all_values(10), 10);
  enc::one_hot_to_binary_forward(bits, one_hot, 4);
  CHECK(enc::binary_decode(bits).values == all_values(10));
  // binary -> one-hot is rejected: patterns 10..15 would carry probability.
  matrix<double> out;
  CHECK_THROWS_WITH(enc::binary_to_one_hot_forward(out, bits, 10),
                    Catch::Contains("value range n = 10 is not 2^bits = 16"));
}

TEST_CASE("binary -> one-hot backward matches finite differences", "[encoding][binary][gradcheck]") {
  for (int b : {1, 3, 5}) {
    matrix<double> bits = soft_bits(3, b, 20 + static_cast<std::uint64_t>(b));
    const std::int64_t n = std::int64_t{1} << b;
    matrix<double> p;
    auto result = ncl::gradcheck(
        {{"bit_probs", span_of(bits)}},
        [&] {
          enc::binary_to_one_hot_forward(p, bits, n);
          return flat(p);
        },
        [&](std::span<const double> dout) {
          const matrix<double> dp = ncl::const_matrix_map<double>(dout.data(), bits.rows(), n);
          matrix<double> dbits = matrix<double>::Zero(bits.rows(), b);
          enc::binary_to_one_hot_backward(dbits, dp, bits);
          return std::vector<std::vector<double>>{flat(dbits)};
        });
    INFO("bits = " << b << ": " << result.report());
    CHECK(result.ok);
  }
}

TEST_CASE("binary -> one-hot backward is exact at hard bits", "[encoding][binary]") {
  // At hard bits the leave-one-out product must not divide by zero: d p(v) / d b_i is the
  // product of the other factors. For bits (1, 0): dp(1)/db_0 = 1, dp(0)/db_0 = -1.
  matrix<double> bits(1, 2);
  bits << 1.0, 0.0;
  matrix<double> dp = matrix<double>::Zero(1, 4);
  dp(0, 1) = 1.0;
  matrix<double> dbits = matrix<double>::Zero(1, 2);
  enc::binary_to_one_hot_backward(dbits, dp, bits);
  CHECK(dbits(0, 0) == 1.0);   // p(1) = b0 (1 - b1)
  CHECK(dbits(0, 1) == -1.0);
  REQUIRE(dbits.allFinite());
}

TEST_CASE("one-hot -> binary backward matches finite differences", "[encoding][binary][gradcheck]") {
  ncl::rng random(5);
  for (std::int64_t n : {8, 10}) {
    matrix<double> p(4, n);
    for (ncl::index r = 0; r < p.rows(); ++r) {
      for (ncl::index v = 0; v < n; ++v) p(r, v) = random.uniform(0.01, 1.0);
      p.row(r) /= p.row(r).sum();
    }
    matrix<double> bits;
    auto result = ncl::gradcheck(
        {{"probs", span_of(p)}},
        [&] {
          enc::one_hot_to_binary_forward(bits, p, 4);
          return flat(bits);
        },
        [&](std::span<const double> dout) {
          const matrix<double> db = ncl::const_matrix_map<double>(dout.data(), p.rows(), 4);
          matrix<double> dp = matrix<double>::Zero(p.rows(), n);
          enc::one_hot_to_binary_backward(dp, db);
          return std::vector<std::vector<double>>{flat(dp)};
        });
    INFO("n = " << n << ": " << result.report());
    CHECK(result.ok);
  }
}

TEST_CASE("expected value backward matches finite differences", "[encoding][one_hot][gradcheck]") {
  ncl::rng random(6);
  matrix<double> p(3, 9);
  random.fill_uniform(span_of(p));
  matrix<double> mean;
  auto result = ncl::gradcheck(
      {{"probs", span_of(p)}},
      [&] {
        enc::expected_value_forward(mean, p);
        return flat(mean);
      },
      [&](std::span<const double> dout) {
        const matrix<double> dm = ncl::const_matrix_map<double>(dout.data(), p.rows(), 1);
        matrix<double> dp = matrix<double>::Zero(p.rows(), p.cols());
        enc::expected_value_backward(dp, dm);
        return std::vector<std::vector<double>>{flat(dp)};
      });
  INFO(result.report());
  CHECK(result.ok);
}

TEST_CASE("encodings reject bad input with named errors", "[encoding][errors]") {
  matrix<double> out;
  const std::vector<std::int64_t> values{3, 9};
  SECTION("value range of 0 or less") {
    CHECK_THROWS_WITH(enc::one_hot_encode(out, values, 0), Catch::Contains("value range n = 0"));
    CHECK_THROWS_AS(enc::bits_for(-3), ncl::value_error);
  }
  SECTION("values outside the range") {
    CHECK_THROWS_WITH(enc::one_hot_encode(out, values, 8),
                      Catch::Contains("values[1] = 9 is outside [0, 8)"));
    CHECK_THROWS_WITH(enc::binary_encode(out, values, 3), Catch::Contains("values[1] = 9 does not fit in 3 bits"));
    const std::vector<std::int64_t> negative{-1};
    CHECK_THROWS_AS(enc::binary_encode(out, negative, 3), ncl::value_error);
  }
  SECTION("more than 31 bits") {
    CHECK_THROWS_WITH(enc::binary_encode(out, values, 32), Catch::Contains("bits = 32 must be in [1, 31]"));
    CHECK_THROWS_WITH(enc::bits_for((std::int64_t{1} << 31) + 1), Catch::Contains("more than 31 bits"));
    matrix<double> wide = matrix<double>::Zero(1, 32);
    CHECK_THROWS_AS(enc::binary_decode(wide), ncl::value_error);
    CHECK_THROWS_AS(enc::one_hot_to_binary_forward(out, wide, 32), ncl::value_error);
  }
  SECTION("probabilities outside [0, 1]") {
    matrix<double> bits(2, 3);
    bits << 0.5, 0.5, 0.5, 0.5, 1.5, 0.5;
    CHECK_THROWS_WITH(enc::binary_to_one_hot_forward(out, bits, 8),
                      Catch::Contains("bit_probs(1, 1) = 1.5 is not a probability"));
    CHECK_THROWS_WITH(enc::binary_decode(bits), Catch::Contains("bit_probs(1, 1)"));
    matrix<double> p(1, 4);
    p << 0.5, -0.2, 0.4, 0.3;
    CHECK_THROWS_WITH(enc::one_hot_to_binary_forward(out, p, 2), Catch::Contains("probs(0, 1) = -0.2"));
    p(0, 1) = std::nan("");
    CHECK_THROWS_AS(enc::one_hot_to_binary_forward(out, p, 2), ncl::value_error);
  }
  SECTION("wrong shapes") {
    matrix<double> p = matrix<double>::Constant(2, 9, 0.1);
    CHECK_THROWS_WITH(enc::one_hot_to_binary_forward(out, p, 3),
                      Catch::Contains("probs has shape (2, 9), more values than 3 bits hold"));
    matrix<double> bits = matrix<double>::Constant(2, 3, 0.5);
    matrix<double> dp = matrix<double>::Zero(2, 4);
    matrix<double> dbits = matrix<double>::Zero(2, 3);
    CHECK_THROWS_WITH(enc::binary_to_one_hot_backward(dbits, dp, bits),
                      Catch::Contains("dprobs has shape (2, 4), expected (2, 8)"));
    matrix<double> db_wrong = matrix<double>::Zero(3, 3);
    matrix<double> dp8 = matrix<double>::Zero(2, 8);
    CHECK_THROWS_WITH(enc::one_hot_to_binary_backward(dp8, db_wrong),
                      Catch::Contains("dbit_probs has shape (3, 3), expected (2, 3)"));
  }
}
