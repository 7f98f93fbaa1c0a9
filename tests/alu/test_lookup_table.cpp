// Lookup tables (paper eq. 7/11): the dense tensor, the structured table's plain loops and
// its fast path give the same outputs and gradients; one-hot inputs give exact one-hot
// results; both tables are honest about memory.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ncl/alu/lookup_table.hpp"
#include "ncl/alu/table_kernels.hpp"  // the fast path, tested below against the dense table
#include "ncl/core/gradcheck.hpp"
#include "ncl/core/rng.hpp"

#include "alu_test_util.hpp"

namespace {

using ncl::matrix;
using ncl::alu::dense_lookup_table;
using ncl::alu::lookup_table;

using alu_test::random_distributions;

template <class S>
matrix<S> random_matrix(ncl::rng& random, ncl::index rows, ncl::index cols) {
  matrix<S> m(rows, cols);
  for (ncl::index r = 0; r < rows; ++r) {
    for (ncl::index c = 0; c < cols; ++c) m(r, c) = S(random.uniform(-1.0, 1.0));
  }
  return m;
}

template <class S>
double max_abs_difference(const matrix<S>& a, const matrix<S>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return static_cast<double>((a - b).cwiseAbs().maxCoeff());
}

struct gradients {
  matrix<float> df, du, dv;
};

}  // namespace

TEST_CASE("structured fast path, its plain loops and the dense tensor agree on soft inputs",
          "[alu][lookup_table]") {
  // Batches that are not multiples of the fast path's lanes, and f with an unused op.
  for (std::int64_t n : {2, 7, 16, 33}) {
    for (ncl::index batch : {1, 5, 16, 37}) {
      INFO("n = " << n << ", B = " << batch);
      const lookup_table<float> table(n);
      const dense_lookup_table<float> dense(n);
      ncl::rng random(static_cast<std::uint64_t>(n * 100 + batch));
      matrix<float> f = random_distributions<float>(random, batch, 9);
      f.col(3).setZero();  // DIV unused: the fast path skips it in forward
      for (ncl::index r = 0; r < batch; ++r) f.row(r) /= f.row(r).sum();
      const matrix<float> u = random_distributions<float>(random, batch, n);
      const matrix<float> v = random_distributions<float>(random, batch, n);
      const matrix<float> dout = random_matrix<float>(random, batch, n);

      matrix<float> o_fast, o_plain, o_dense;
      table.forward(o_fast, f, u, v);
      table.forward_reference(o_plain, f, u, v);
      dense.forward(o_dense, f, u, v);
      CHECK(max_abs_difference(o_fast, o_plain) < 1e-6);
      CHECK(max_abs_difference(o_dense, o_plain) < 1e-6);
      CHECK(std::abs(o_fast.sum() - float(batch)) < 1e-4);  // o is a distribution

      auto run = [&](auto&& backward) {
        // Start from nonzero buffers: backward must add, not overwrite.
        gradients g{matrix<float>::Ones(batch, 9), matrix<float>::Ones(batch, n),
                    matrix<float>::Ones(batch, n)};
        backward(g);
        return g;
      };
      const gradients fast = run([&](gradients& g) { table.backward(g.df, g.du, g.dv, dout, f, u, v); });
      const gradients plain =
          run([&](gradients& g) { table.backward_reference(g.df, g.du, g.dv, dout, f, u, v); });
      const gradients full = run([&](gradients& g) { dense.backward(g.df, g.du, g.dv, dout, f, u, v); });
      for (const gradients* other : {&fast, &full}) {
        CHECK(max_abs_difference(other->df, plain.df) < 1e-5);
        CHECK(max_abs_difference(other->du, plain.du) < 1e-5);
        CHECK(max_abs_difference(other->dv, plain.dv) < 1e-5);
      }
    }
  }
}

TEST_CASE("both tables give exact one-hot results for every (op, a, b) at n = 16",
          "[alu][lookup_table]") {
  const std::int64_t n = 16;
  const lookup_table<float> table(n);
  const dense_lookup_table<float> dense(n);
  const ncl::index batch = 9 * n * n;
  matrix<float> f = matrix<float>::Zero(batch, 9), u = matrix<float>::Zero(batch, n),
                v = matrix<float>::Zero(batch, n);
  std::vector<std::int64_t> expected;
  ncl::index row = 0;
  for (ncl::index i = 0; i < 9; ++i) {
    for (ncl::index a = 0; a < n; ++a) {
      for (ncl::index b = 0; b < n; ++b, ++row) {
        f(row, i) = u(row, a) = v(row, b) = 1;
        expected.push_back(ncl::alu::apply(ncl::alu::table_ops[static_cast<std::size_t>(i)], a, b, n));
        CHECK(table.result_index(i, a, b) == expected.back());
        CHECK(dense.at(i, a, b, expected.back()) == 1.0f);
      }
    }
  }
  matrix<float> o_fast, o_plain, o_dense;
  table.forward(o_fast, f, u, v);
  table.forward_reference(o_plain, f, u, v);
  dense.forward(o_dense, f, u, v);
  for (const matrix<float>* o : {&o_fast, &o_plain, &o_dense}) {
    matrix<float> want = matrix<float>::Zero(batch, n);
    for (ncl::index r = 0; r < batch; ++r) want(r, expected[static_cast<std::size_t>(r)]) = 1;
    CHECK(*o == want);
  }
}

TEST_CASE("structured and dense tables match finite differences in double",
          "[alu][lookup_table]") {
  const std::int64_t n = 6;
  const ncl::index batch = 19;  // two chunks of the fast path, the second partial
  const lookup_table<double> table(n);
  const dense_lookup_table<double> dense(n);
  ncl::rng random(11);
  matrix<double> f = random_distributions<double>(random, batch, 9);
  matrix<double> u = random_distributions<double>(random, batch, n);
  matrix<double> v = random_distributions<double>(random, batch, n);
  ncl::gradcheck_options options;
  options.samples_per_input = 24;  // of 114 (f) and 171 (u, v) coordinates
  auto check = [&](auto&& forward_fn, auto&& backward_fn) {
    auto forward = [&] {
      matrix<double> o;
      forward_fn(o);
      return std::vector<double>(o.data(), o.data() + o.size());
    };
    auto backward = [&](std::span<const double> dout_flat) {
      const matrix<double> dout = ncl::const_matrix_map<double>(dout_flat.data(), batch, n);
      matrix<double> df = matrix<double>::Zero(batch, 9), du = matrix<double>::Zero(batch, n),
                     dv = matrix<double>::Zero(batch, n);
      backward_fn(df, du, dv, dout);
      auto flat = [](const matrix<double>& m) {
        return std::vector<double>(m.data(), m.data() + m.size());
      };
      return std::vector<std::vector<double>>{flat(df), flat(du), flat(dv)};
    };
    return ncl::gradcheck({{"f", {f.data(), static_cast<std::size_t>(f.size())}},
                           {"u", {u.data(), static_cast<std::size_t>(u.size())}},
                           {"v", {v.data(), static_cast<std::size_t>(v.size())}}},
                          forward, backward, options);
  };
  const auto fast = check([&](matrix<double>& o) { table.forward(o, f, u, v); },
                          [&](auto& df, auto& du, auto& dv, const auto& dout) {
                            table.backward(df, du, dv, dout, f, u, v);
                          });
  INFO(fast.report());
  CHECK(fast.ok);
  const auto full = check([&](matrix<double>& o) { dense.forward(o, f, u, v); },
                          [&](auto& df, auto& du, auto& dv, const auto& dout) {
                            dense.backward(df, du, dv, dout, f, u, v);
                          });
  INFO(full.report());
  CHECK(full.ok);
}

TEST_CASE("tables are honest about memory", "[alu][lookup_table]") {
  SECTION("the structured table at n = 1024 takes tens of MB") {
    const lookup_table<float> table(1024);
    CHECK(table.bytes() > std::size_t{10} << 20);
    CHECK(table.bytes() < std::size_t{100} << 20);
    CHECK(table.result_index(2, 1000, 1000) == 1000 * 1000 % 1024);  // MUL
    CHECK(table.result_index(3, 1000, 0) == 1023);                   // DIV by 0
  }
  SECTION("the dense table refuses n = 1024 before allocating") {
    try {
      const dense_lookup_table<float> dense(1024);
      FAIL("no exception");
    } catch (const ncl::value_error& e) {
      const std::string message = e.what();
      CHECK(message.find("n = 1024") != std::string::npos);
      CHECK(message.find("36864 MiB") != std::string::npos);
      CHECK(message.find("limit of 1024 MiB") != std::string::npos);
    }
  }
  SECTION("the dense limit is configurable") {
    CHECK_THROWS_AS(dense_lookup_table<float>(16, 100000), ncl::value_error);
    const dense_lookup_table<float> dense(16, 9 * 16 * 16 * 16 * sizeof(float));
    CHECK(dense.bytes() == 9 * 16 * 16 * 16 * sizeof(float));
  }
  SECTION("the structured table refuses sizes above its limit") {
    CHECK_THROWS_AS(lookup_table<float>(65536), ncl::value_error);
    CHECK_THROWS_AS(lookup_table<float>(64, 1000), ncl::value_error);
  }
  SECTION("bad value ranges") {
    CHECK_THROWS_AS(lookup_table<float>(1), ncl::value_error);
    CHECK_THROWS_AS(dense_lookup_table<float>(0), ncl::value_error);
    CHECK_THROWS_AS(lookup_table<float>(70000), ncl::value_error);
  }
}
