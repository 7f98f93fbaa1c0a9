// The arithmetic interface: backend names, validation, shape errors, and the three backends
// against each other (equal on one-hot inputs; each gradient-checked on soft inputs).
#include <catch2/catch.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ncl/alu/alu.hpp"
#include "ncl/core/gradcheck.hpp"
#include "ncl/core/rng.hpp"

#include "alu_test_util.hpp"

namespace {

using ncl::matrix;
using ncl::alu::arithmetic_unit;
using ncl::alu::backend;

using alu_test::random_distributions;

}  // namespace

TEST_CASE("backend names round-trip and unknown names are rejected", "[alu][alu]") {
  using ncl::alu::backend_from_name;
  using ncl::alu::backend_name;
  for (backend kind : {backend::table, backend::dense_table, backend::circuit}) {
    CHECK(backend_from_name(backend_name(kind)) == kind);
  }
  CHECK(backend_from_name("dense") == backend::dense_table);
  try {
    backend_from_name("abacus");
    FAIL("no exception");
  } catch (const ncl::value_error& e) {
    const std::string message = e.what();
    CHECK(message.find("abacus") != std::string::npos);
    CHECK(message.find("circuit") != std::string::npos);
  }
}

TEST_CASE("arithmetic_unit validates n and shapes", "[alu][alu]") {
  CHECK_THROWS_AS(arithmetic_unit<float>(1), ncl::value_error);
  CHECK_THROWS_AS(arithmetic_unit<float>(12, backend::circuit), ncl::value_error);
  CHECK_NOTHROW(arithmetic_unit<float>(12, backend::table));
  CHECK_THROWS_AS(arithmetic_unit<float>(1024, backend::dense_table), ncl::value_error);
  CHECK_THROWS_AS(arithmetic_unit<float>(64, backend::table, 1000), ncl::value_error);
  const arithmetic_unit<float> alu(8);
  CHECK(alu.n() == 8);
  CHECK(alu.kind() == backend::table);
  matrix<float> o, f(2, 9), u(2, 8), v(3, 8);
  f.setZero();
  u.setZero();
  v.setZero();
  try {
    alu.forward(o, f, u, v);
    FAIL("no exception");
  } catch (const ncl::shape_error& e) {
    const std::string message = e.what();
    CHECK(message.find("v has shape (3, 8), expected (2, 8)") != std::string::npos);
  }
  v.resize(2, 8);
  v.setZero();
  matrix<float> df(2, 9), du(2, 8), dv(2, 7), dout(2, 8);
  CHECK_THROWS_AS(alu.backward(df, du, dv, dout, f, u, v), ncl::shape_error);
}

TEST_CASE("all backends agree exactly on one-hot inputs at n = 16", "[alu][alu]") {
  const std::int64_t n = 16;
  const arithmetic_unit<float> table(n, backend::table), dense(n, backend::dense_table),
      circuit(n, backend::circuit);
  // Every (op, a, b) as one batch row.
  const ncl::index batch = 9 * n * n;
  matrix<float> f = matrix<float>::Zero(batch, 9), u = matrix<float>::Zero(batch, n),
                v = matrix<float>::Zero(batch, n);
  ncl::index row = 0;
  for (ncl::index i = 0; i < 9; ++i) {
    for (ncl::index a = 0; a < n; ++a) {
      for (ncl::index b = 0; b < n; ++b, ++row) {
        f(row, i) = 1;
        u(row, a) = 1;
        v(row, b) = 1;
      }
    }
  }
  matrix<float> expected = matrix<float>::Zero(batch, n);
  row = 0;
  for (std::size_t i = 0; i < 9; ++i) {
    for (ncl::index a = 0; a < n; ++a) {
      for (ncl::index b = 0; b < n; ++b) expected(row++, ncl::alu::apply(ncl::alu::table_ops[i], a, b, n)) = 1;
    }
  }
  for (const auto* alu : {&table, &dense, &circuit}) {
    INFO(ncl::alu::backend_name(alu->kind()));
    matrix<float> o;
    alu->forward(o, f, u, v);
    CHECK(o == expected);
  }
}

TEST_CASE("every backend's gradients match finite differences", "[alu][alu]") {
  const std::int64_t n = 8;
  const ncl::index batch = 3;
  for (backend kind : {backend::table, backend::dense_table, backend::circuit}) {
    INFO(ncl::alu::backend_name(kind));
    const arithmetic_unit<double> alu(n, kind);
    ncl::rng random(7);
    matrix<double> f = random_distributions<double>(random, batch, 9);
    matrix<double> u = random_distributions<double>(random, batch, n);
    matrix<double> v = random_distributions<double>(random, batch, n);
    auto forward = [&] {
      matrix<double> o;
      alu.forward(o, f, u, v);
      return std::vector<double>(o.data(), o.data() + o.size());
    };
    auto backward = [&](std::span<const double> dout_flat) {
      const ncl::const_matrix_map<double> dout(dout_flat.data(), batch, n);
      matrix<double> df = matrix<double>::Zero(batch, 9), du = matrix<double>::Zero(batch, n),
                     dv = matrix<double>::Zero(batch, n);
      alu.backward(df, du, dv, matrix<double>(dout), f, u, v);
      auto flat = [](const matrix<double>& m) {
        return std::vector<double>(m.data(), m.data() + m.size());
      };
      return std::vector<std::vector<double>>{flat(df), flat(du), flat(dv)};
    };
    ncl::gradcheck_options options;
    options.rtol = 1e-5;
    options.atol = 1e-8;
    const auto result = ncl::gradcheck(
        {{"f", {f.data(), static_cast<std::size_t>(f.size())}},
         {"u", {u.data(), static_cast<std::size_t>(u.size())}},
         {"v", {v.data(), static_cast<std::size_t>(v.size())}}},
        forward, backward, options);
    INFO(result.report());
    CHECK(result.ok);
  }
}

TEST_CASE("every backend handles an empty batch", "[alu][alu]") {
  for (backend kind : {backend::table, backend::dense_table, backend::circuit}) {
    INFO(ncl::alu::backend_name(kind));
    const arithmetic_unit<float> alu(8, kind);
    const matrix<float> f(0, 9), u(0, 8), v(0, 8), dout(0, 8);
    matrix<float> o, df(0, 9), du(0, 8), dv(0, 8);
    alu.forward(o, f, u, v);
    CHECK(o.rows() == 0);
    CHECK(o.cols() == 8);
    alu.backward(df, du, dv, dout, f, u, v);
  }
}
