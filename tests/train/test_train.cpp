// The training core: parameter set, AdamW (against a plain reference implementation), global
// norm clipping, masks, sparse rows, NaN/Inf detection and the warm-up + cosine schedule.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/train/adamw.hpp"
#include "ncl/train/parameters.hpp"
#include "ncl/train/schedule.hpp"

using ncl::train::adamw;
using ncl::train::adamw_options;
using ncl::train::parameter_set;

namespace {

// The textbook AdamW of one scalar, as torch.optim.AdamW computes it.
struct reference_adamw {
  double m = 0, v = 0;
  void step(double& p, double g, int t, double lr, const adamw_options& o, double clip = 1) {
    g *= clip;
    p *= 1 - lr * o.weight_decay;
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g * g;
    const double bc1 = 1 - std::pow(o.beta1, t), bc2 = 1 - std::pow(o.beta2, t);
    p -= lr / bc1 * m / (std::sqrt(v) / std::sqrt(bc2) + o.eps);
  }
};

void fill_grads(parameter_set<double>& ps, ncl::rng& r) {
  for (auto& g : ps.grads()) g = r.normal();
}

bool bits_equal(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST_CASE("parameter set: contiguous named tensors, views, errors", "[train][parameters]") {
  parameter_set<float> ps;
  const auto a = ps.add("a", {2, 3});
  const auto b = ps.add("b", {4});
  CHECK(ps.count() == 2);
  CHECK(ps.total_size() == 10);
  CHECK(ps.info(b).offset == 6);
  CHECK(ps.value(b).data() == ps.values().data() + 6);
  CHECK(ps.grad(a).size() == 6);
  CHECK(ps.info(a).row_size() == 3);
  CHECK(ps.require("b") == b);
  CHECK(ps.find("zzz") == nullptr);
  CHECK_THROWS_AS(ps.require("zzz"), ncl::value_error);
  CHECK_THROWS_AS(ps.add("a", {1}), ncl::value_error);
  CHECK_THROWS_AS(ps.add("c", {2, 0}), ncl::shape_error);
  CHECK_THROWS_AS(ps.add("d", {5}, {.sparse_rows = true}), ncl::shape_error);
  CHECK_THROWS_AS(ps.touch_row(a, 0), ncl::value_error);  // a is dense
  CHECK_FALSE(ps.has_mask());
  ps.mask(b)[1] = 0;
  CHECK(ps.has_mask());
  CHECK(ps.mask().size() == 10);
  ps.add("e", {3});  // the mask grows with the set, new entries trainable
  CHECK(ps.mask().size() == 13);
  CHECK(ps.mask()[12] == 1);
  CHECK(ps.mask()[7] == 0);
}

TEST_CASE("adamw: matches the reference update, with and without clipping", "[train][adamw]") {
  for (double max_norm : {0.0, 0.5}) {
    parameter_set<double> ps;
    ps.add("w", {3, 4});
    ps.add("b", {5});
    ncl::rng r(1);
    for (auto& x : ps.values()) x = r.normal();
    adamw_options o;
    o.weight_decay = 0.1;
    o.max_grad_norm = max_norm;
    adamw<double> opt(ps, o);
    std::vector<double> ref(ps.values().begin(), ps.values().end());
    std::vector<reference_adamw> state(ref.size());
    for (int t = 1; t <= 20; ++t) {
      fill_grads(ps, r);
      double norm = 0;
      for (double g : ps.grads()) norm += g * g;
      norm = std::sqrt(norm);
      const double clip = (max_norm > 0 && norm > max_norm) ? max_norm / (norm + 1e-6) : 1.0;
      const double lr = 0.01 * t;
      const auto result = opt.step(ps, lr);
      CHECK(result.grad_norm == Approx(norm));
      CHECK(result.clip == Approx(clip));
      for (std::size_t i = 0; i < ref.size(); ++i) state[i].step(ref[i], ps.grads()[i], t, lr, o, clip);
    }
    CHECK(opt.step_count() == 20);
    for (std::size_t i = 0; i < ref.size(); ++i) CHECK(ps.values()[i] == Approx(ref[i]).epsilon(1e-12));
  }
}

TEST_CASE("adamw: minimises a quadratic under a warm-up + cosine schedule", "[train][adamw][schedule]") {
  parameter_set<float> ps;
  const auto w = ps.add("w", {8});
  adamw_options o;
  o.weight_decay = 0;
  adamw<float> opt(ps, o);
  const ncl::train::warmup_cosine schedule{0.1, 0.001, 10, 300};
  auto loss = [&] {
    double l = 0;
    for (std::size_t i = 0; i < 8; ++i) l += std::pow(ps.value(w)[i] - static_cast<float>(i), 2);
    return l;
  };
  const double before = loss();
  for (int t = 0; t < 300; ++t) {
    for (std::size_t i = 0; i < 8; ++i) ps.grad(w)[i] = 2 * (ps.value(w)[i] - static_cast<float>(i));
    opt.step(ps, schedule(t));
  }
  CHECK(loss() < 1e-3 * before);
}

TEST_CASE("adamw: masked entries stay bit-identical, weight decay included", "[train][adamw][mask]") {
  parameter_set<double> ps;
  const auto w = ps.add("w", {4, 4});
  const auto b = ps.add("b", {6});
  ncl::rng r(2);
  for (auto& x : ps.values()) x = r.normal();
  auto mw = ps.mask(w);
  for (std::size_t i = 0; i < mw.size(); i += 3) mw[i] = 0;
  ps.mask(b)[5] = 0;
  const std::vector<double> before(ps.values().begin(), ps.values().end());
  adamw_options o;
  o.weight_decay = 0.5;
  o.max_grad_norm = 1.0;
  adamw<double> opt(ps, o);
  for (int t = 0; t < 200; ++t) {
    fill_grads(ps, r);
    opt.step(ps, 0.05);
  }
  std::size_t frozen = 0, moved = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    if (ps.mask()[i] == 0) {
      CHECK(bits_equal(ps.values()[i], before[i]));
      CHECK(opt.exp_avg()[i] == 0.0);
      ++frozen;
    } else if (ps.values()[i] != before[i]) {
      ++moved;
    }
  }
  CHECK(frozen == 7);
  CHECK(moved == before.size() - frozen);
  // a masked gradient does not count in the global norm
  ps.zero_grad();
  ps.grad(w)[0] = 1e6;  // entry 0 is masked
  ps.grad(b)[0] = 3;
  ps.grad(b)[1] = 4;
  CHECK(opt.global_norm(ps, 0) == Approx(5.0));
}

TEST_CASE("adamw: sparse rows are updated lazily; a row touched every step follows the dense update", "[train][adamw][sparse]") {
  parameter_set<double> dense, sparse;
  dense.add("emb", {6, 3});
  sparse.add("emb", {6, 3}, {.sparse_rows = true});
  ncl::rng r(3);
  for (auto& x : dense.values()) x = r.normal();
  std::copy(dense.values().begin(), dense.values().end(), sparse.values().begin());
  const std::vector<double> start(dense.values().begin(), dense.values().end());
  adamw<double> od(dense), os(sparse);
  for (int t = 0; t < 30; ++t) {
    dense.zero_grad();
    sparse.zero_grad();
    std::vector<std::size_t> rows{1, 4};  // rows 1 and 4 every step, row 2 every third step
    if (t % 3 == 0) rows.push_back(2);
    for (std::size_t row : rows) {
      for (std::size_t c = 0; c < 3; ++c) {
        const double g = r.normal();
        dense.grads()[row * 3 + c] = g;
        sparse.grads()[row * 3 + c] = g;
      }
      sparse.touch_row(0, row);
    }
    od.step(dense, 0.01);
    os.step(sparse, 0.01);
  }
  for (std::size_t c = 0; c < 3; ++c) {
    for (std::size_t row : {1, 4}) CHECK(bits_equal(sparse.values()[row * 3 + c], dense.values()[row * 3 + c]));
    for (std::size_t row : {0, 3, 5}) {  // never touched: lazily untouched, densely decayed
      CHECK(bits_equal(sparse.values()[row * 3 + c], start[row * 3 + c]));
      CHECK(dense.values()[row * 3 + c] != start[row * 3 + c]);
    }
    // row 2: moments only advanced on its 10 steps, so it differs from the dense update
    CHECK(sparse.values()[2 * 3 + c] != dense.values()[2 * 3 + c]);
    CHECK(sparse.values()[2 * 3 + c] != start[2 * 3 + c]);
  }
  sparse.zero_grad();
  CHECK(sparse.touched_rows(0).empty());
  for (double g : sparse.grads()) CHECK(g == 0.0);
}

TEST_CASE("adamw: a NaN or Inf gradient stops training naming the step and the tensor", "[train][adamw][nonfinite]") {
  parameter_set<float> ps;
  ps.add("model.a", {3});
  const auto b = ps.add("model.b", {2, 2});
  adamw<float> opt(ps);
  for (int t = 0; t < 2; ++t) {
    for (auto& g : ps.grads()) g = 0.5f;
    opt.step(ps);
  }
  const std::vector<float> before(ps.values().begin(), ps.values().end());
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    ps.grad(b)[3] = bad;
    try {
      opt.step(ps);
      FAIL("no exception");
    } catch (const ncl::train::nonfinite_error& e) {
      CHECK(e.step() == 3);
      CHECK(e.tensor() == "model.b");
      const std::string what = e.what();
      CHECK(what.find("step 3") != std::string::npos);
      CHECK(what.find("'model.b'") != std::string::npos);
      CHECK(what.find("flat index 3") != std::string::npos);
    }
    CHECK(opt.step_count() == 2);
    CHECK(std::equal(before.begin(), before.end(), ps.values().begin()));
  }
  CHECK_THROWS_AS(ncl::train::check_finite_loss(7, std::nan("")), ncl::train::nonfinite_error);
  CHECK_THROWS_WITH(ncl::train::check_finite_loss(7, INFINITY), Catch::Contains("step 7: loss"));
  CHECK_NOTHROW(ncl::train::check_finite_loss(7, 1.5));
  // an error derives from ncl::error
  ps.grad(b)[3] = std::nanf("");
  CHECK_THROWS_AS(opt.step(ps), ncl::error);
}

TEST_CASE("schedule: linear warm-up then cosine to the floor", "[train][schedule]") {
  const ncl::train::warmup_cosine s{1.0, 0.1, 10, 110};
  CHECK(s(0) == Approx(0.1));
  CHECK(s(9) == Approx(1.0));
  CHECK(s(10) == Approx(1.0));
  CHECK(s(60) == Approx(0.55));  // half way: the mean of max and min
  CHECK(s(110) == Approx(0.1));
  CHECK(s(1000) == Approx(0.1));
  for (int t = 10; t < 110; ++t) CHECK(s(t + 1) <= s(t));
  CHECK_THROWS_AS(s(-1), ncl::value_error);
  CHECK_THROWS_AS((ncl::train::warmup_cosine{0.1, 1.0, 10, 100}(0)), ncl::value_error);
  CHECK_THROWS_AS((ncl::train::warmup_cosine{1.0, 0.1, 10, 5}(0)), ncl::value_error);
  const ncl::train::warmup_cosine no_warmup{1.0, 0.0, 0, 100};
  CHECK(no_warmup(0) == Approx(1.0));
}
