// Finite-difference gradient checks (double) of every layer of ncl/nn, and the float path
// against the double one.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "ncl/core/gradcheck.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/nn/attention.hpp"
#include "ncl/nn/cross_entropy.hpp"
#include "ncl/nn/embedding.hpp"
#include "ncl/nn/linear.hpp"
#include "ncl/nn/rmsnorm.hpp"
#include "ncl/nn/rope.hpp"
#include "ncl/nn/swiglu.hpp"

using Index = ncl::index;
using vec = std::vector<double>;

namespace {

vec random_vec(std::size_t n, std::uint64_t seed, double stddev = 1.0) {
  ncl::rng r(seed);
  vec v(n);
  r.fill_normal(std::span<double>(v), 0.0, stddev);
  return v;
}

void require_ok(const ncl::gradcheck_result& r) {
  INFO(r.report());
  REQUIRE(r.ok);
  REQUIRE(r.checked > 10);
}

}  // namespace

TEST_CASE("linear: gradient check", "[nn][linear]") {
  const Index N = 5, C = 4, OC = 3;
  vec x = random_vec(N * C, 1), w = random_vec(OC * C, 2);
  auto fwd = [&] {
    vec y(N * OC);
    ncl::nn::linear_forward(y.data(), x.data(), w.data(), N, C, OC);
    return y;
  };
  auto bwd = [&](std::span<const double> dy) {
    vec dx(x.size()), dw(w.size());
    ncl::nn::linear_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), N, C, OC);
    return std::vector<vec>{dx, dw};
  };
  require_ok(ncl::gradcheck({{"x", x}, {"w", w}}, fwd, bwd));
}

TEST_CASE("rmsnorm: gradient check", "[nn][rmsnorm]") {
  const Index N = 4, C = 6;
  vec x = random_vec(N * C, 3), w = random_vec(C, 4);
  auto fwd = [&] {
    vec y(N * C), rstd(N);
    ncl::nn::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5);
    return y;
  };
  auto bwd = [&](std::span<const double> dy) {
    vec y(N * C), rstd(N), dx(x.size()), dw(w.size());
    ncl::nn::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5);
    ncl::nn::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), N, C);
    return std::vector<vec>{dx, dw};
  };
  require_ok(ncl::gradcheck({{"x", x}, {"w", w}}, fwd, bwd));
}

TEST_CASE("rmsnorm: unit rms times weight", "[nn][rmsnorm]") {
  const Index C = 4;
  vec x{1, -2, 3, -4}, w{1, 1, 1, 2}, y(C), rstd(1);
  ncl::nn::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), 1, C, 0.0);
  const double r = 1 / std::sqrt((1 + 4 + 9 + 16) / 4.0);
  CHECK(rstd[0] == Approx(r));
  CHECK(y[3] == Approx(-8 * r));
}

TEST_CASE("swiglu: gradient check", "[nn][swiglu]") {
  const Index N = 3, F = 5;
  vec gu = random_vec(N * 2 * F, 5, 2.0);
  auto fwd = [&] {
    vec h(N * F);
    ncl::nn::swiglu_forward(h.data(), gu.data(), N, F);
    return h;
  };
  auto bwd = [&](std::span<const double> dh) {
    vec dgu(gu.size());
    ncl::nn::swiglu_backward(dgu.data(), dh.data(), gu.data(), N, F);
    return std::vector<vec>{dgu};
  };
  require_ok(ncl::gradcheck({{"gate_up", gu}}, fwd, bwd));
}

TEST_CASE("rope: rotation keeps norms, position 0 is the identity, gradient check", "[nn][rope]") {
  const Index T = 5, H = 3, D = 8, B = 2, N = B * T;
  const ncl::nn::rope_table<double> table(D, 16, 500000.0);
  vec x = random_vec(N * H * D, 6), y(x.size());
  ncl::nn::rope_forward(y.data(), x.data(), table, N, T, H, H * D);
  for (Index d = 0; d < H * D; ++d) CHECK(y[d] == Approx(x[d]));  // row 0: position 0
  for (Index n = 0; n < N; ++n) {
    double nx = 0, ny = 0;
    for (Index d = 0; d < H * D; ++d) {
      nx += x[n * H * D + d] * x[n * H * D + d];
      ny += y[n * H * D + d] * y[n * H * D + d];
    }
    CHECK(ny == Approx(nx));
  }
  // pair (i, i + D/2) at position t turns by t * theta^(-2i/D)
  const double angle = 3 * std::pow(500000.0, -2.0 * 1 / D);
  const Index row = 3 * H * D + D;  // position 3, head 1
  CHECK(y[row + 1] == Approx(x[row + 1] * std::cos(angle) - x[row + 1 + D / 2] * std::sin(angle)));
  // in place gives the same result
  vec z = x;
  ncl::nn::rope_forward(z.data(), z.data(), table, N, T, H, H * D);
  CHECK(z == y);
  auto fwd = [&] {
    vec out(x.size());
    ncl::nn::rope_forward(out.data(), x.data(), table, N, T, H, H * D);
    return out;
  };
  auto bwd = [&](std::span<const double> dy) {
    vec dx(x.size());
    ncl::nn::rope_backward(dx.data(), dy.data(), table, N, T, H, H * D);
    return std::vector<vec>{dx};
  };
  require_ok(ncl::gradcheck({{"x", x}}, fwd, bwd));
  CHECK_THROWS_AS(ncl::nn::rope_table<double>(7, 4), ncl::value_error);
  CHECK_THROWS_AS(ncl::nn::rope_forward(y.data(), x.data(), table, N, 17, H, H * D), ncl::value_error);
}

TEST_CASE("attention: causal GQA gradient check", "[nn][attention]") {
  for (Index KV : {4, 2, 1}) {
    const ncl::nn::attention_shape sh{2, 4, 4, KV, 3};
    const Index N = sh.B * sh.T;
    vec qkv = random_vec(N * sh.qkv_stride(), 7 + KV);
    auto fwd = [&] {
      vec y(N * sh.H * sh.D), att(sh.B * sh.H * sh.T * sh.T);
      ncl::nn::attention_forward(y.data(), att.data(), qkv.data(), sh);
      return y;
    };
    auto bwd = [&](std::span<const double> dy) {
      vec y(N * sh.H * sh.D), att(sh.B * sh.H * sh.T * sh.T), dqkv(qkv.size());
      ncl::nn::attention_forward(y.data(), att.data(), qkv.data(), sh);
      ncl::nn::attention_backward(dqkv.data(), dy.data(), qkv.data(), att.data(), sh);
      return std::vector<vec>{dqkv};
    };
    INFO("KV = " << KV);
    ncl::gradcheck_options opt;
    opt.samples_per_input = 200;
    opt.atol = 1e-8;  // central-difference rounding on gradients near 1e-5
    require_ok(ncl::gradcheck({{"qkv", qkv}}, fwd, bwd, opt));
  }
}

TEST_CASE("attention: causal (later tokens do not change earlier outputs), rows sum to one", "[nn][attention]") {
  const ncl::nn::attention_shape sh{1, 5, 2, 1, 4};
  const Index N = sh.T;
  vec qkv = random_vec(N * sh.qkv_stride(), 11);
  vec y(N * sh.H * sh.D), att(sh.H * sh.T * sh.T);
  ncl::nn::attention_forward(y.data(), att.data(), qkv.data(), sh);
  for (Index r = 0; r < sh.H * sh.T; ++r) {
    double total = 0;
    for (Index s = 0; s < sh.T; ++s) total += att[r * sh.T + s];
    CHECK(total == Approx(1.0));
  }
  vec changed = qkv;
  for (Index d = 0; d < sh.qkv_stride(); ++d) changed[(N - 1) * sh.qkv_stride() + d] += 1.0;
  vec y2(y.size()), att2(att.size());
  ncl::nn::attention_forward(y2.data(), att2.data(), changed.data(), sh);
  for (Index i = 0; i < (N - 1) * sh.H * sh.D; ++i) CHECK(y2[i] == y[i]);
  CHECK_THROWS_AS((ncl::nn::attention_shape{1, 5, 3, 2, 4}.validate()), ncl::value_error);
}

TEST_CASE("attention: the last Tq queries equal the full attention's last rows, gradient check", "[nn][attention]") {
  const ncl::nn::attention_shape full{2, 5, 4, 2, 3};
  ncl::nn::attention_shape part = full;
  part.queries = 2;
  const Index N = full.B * full.T, HD = full.H * full.D;
  vec qkv = random_vec(N * full.qkv_stride(), 21);
  vec y(N * HD), att(full.B * full.H * full.T * full.T);
  ncl::nn::attention_forward(y.data(), att.data(), qkv.data(), full);
  vec yq(full.B * 2 * HD), attq(full.B * full.H * 2 * full.T);
  ncl::nn::attention_forward(yq.data(), attq.data(), qkv.data(), part);
  for (Index b = 0; b < full.B; ++b) {
    for (Index i = 0; i < 2 * HD; ++i) CHECK(yq[b * 2 * HD + i] == y[(b * full.T + 3) * HD + i]);
  }
  // the gradient equals the full backward's with dout zero outside the query rows
  vec dyq = random_vec(yq.size(), 22), dy(y.size(), 0.0);
  for (Index b = 0; b < full.B; ++b) {
    for (Index i = 0; i < 2 * HD; ++i) dy[(b * full.T + 3) * HD + i] = dyq[b * 2 * HD + i];
  }
  vec dq_full(qkv.size()), dq_part(qkv.size());
  ncl::nn::attention_backward(dq_full.data(), dy.data(), qkv.data(), att.data(), full);
  ncl::nn::attention_backward(dq_part.data(), dyq.data(), qkv.data(), attq.data(), part);
  for (std::size_t i = 0; i < qkv.size(); ++i) CHECK(dq_part[i] == Approx(dq_full[i]).margin(1e-14));
  auto fwd = [&] {
    vec out(yq.size()), a(attq.size());
    ncl::nn::attention_forward(out.data(), a.data(), qkv.data(), part);
    return out;
  };
  auto bwd = [&](std::span<const double> dout) {
    vec out(yq.size()), a(attq.size()), d(qkv.size());
    ncl::nn::attention_forward(out.data(), a.data(), qkv.data(), part);
    ncl::nn::attention_backward(d.data(), dout.data(), qkv.data(), a.data(), part);
    return std::vector<vec>{d};
  };
  ncl::gradcheck_options opt;
  opt.samples_per_input = 200;
  opt.atol = 1e-8;
  require_ok(ncl::gradcheck({{"qkv", qkv}}, fwd, bwd, opt));
  part.queries = 6;
  CHECK_THROWS_AS(part.validate(), ncl::value_error);
}

TEST_CASE("embedding: lookup, scatter-add backward, bad tokens", "[nn][embedding]") {
  const Index V = 5, C = 3, N = 4;
  vec w = random_vec(V * C, 12);
  const std::vector<std::int32_t> tokens{3, 1, 3, 0};
  auto fwd = [&] {
    vec out(N * C);
    ncl::nn::embedding_forward(out.data(), tokens.data(), w.data(), N, C, V);
    return out;
  };
  auto bwd = [&](std::span<const double> dout) {
    vec dw(w.size());
    ncl::nn::embedding_backward(dw.data(), dout.data(), tokens.data(), N, C);
    return std::vector<vec>{dw};
  };
  require_ok(ncl::gradcheck({{"weight", w}}, fwd, bwd));
  vec dw(w.size()), dout(N * C, 1.0);
  ncl::nn::embedding_backward(dw.data(), dout.data(), tokens.data(), N, C);
  CHECK(dw[2 * C] == 0.0);  // row 2 is not in the batch
  CHECK(dw[3 * C] == 2.0);
  const std::vector<std::int32_t> bad{0, 5};
  vec out(2 * C);
  CHECK_THROWS_AS(ncl::nn::embedding_forward(out.data(), bad.data(), w.data(), 2, C, V), ncl::value_error);
}

TEST_CASE("cross entropy: value and gradient check", "[nn][cross_entropy]") {
  const Index B = 3, V = 4;
  vec logits = random_vec(B * V, 13);
  const std::vector<std::int32_t> targets{1, 0, 3};
  auto fwd = [&] {
    vec probs(B * V);
    return vec{ncl::nn::cross_entropy_forward(probs.data(), logits.data(), targets.data(), B, V)};
  };
  auto bwd = [&](std::span<const double> dloss) {
    vec probs(B * V), dlogits(B * V);
    ncl::nn::cross_entropy_forward(probs.data(), logits.data(), targets.data(), B, V);
    ncl::nn::cross_entropy_backward(dlogits.data(), probs.data(), targets.data(), B, V, dloss[0]);
    return std::vector<vec>{dlogits};
  };
  require_ok(ncl::gradcheck({{"logits", logits}}, fwd, bwd));
  vec uniform(V, 0.0), probs(V);
  const std::int32_t t = 2;
  CHECK(ncl::nn::cross_entropy_forward(probs.data(), uniform.data(), &t, 1, V) == Approx(std::log(4.0)));
  const std::int32_t bad = 4;
  CHECK_THROWS_AS(ncl::nn::cross_entropy_forward(probs.data(), uniform.data(), &bad, 1, V), ncl::value_error);
}
