// The router of ncl-circuits: the minimal network that learns to use the arithmetic unit.
//
// Given a task id t and two numbers in input slots x0 and x1, the router picks the operation
// and routes the slots to the ALU's operands; the ALU (lookup tables or probabilistic logic
// circuits, ncl/alu/alu.hpp) computes, and the answer's probability is the only training
// signal. Per example, for the ALU's 9 table ops and its two operands:
//
//   f     = softmax(op_logits[t])                 (9)   the operation
//   alpha = softmax(slot_logits[t][0])            (2)   which slot operand a reads
//   beta  = softmax(slot_logits[t][1])            (2)   which slot operand b reads
//   u     = alpha_0 e(x0) + alpha_1 e(x1)         (n)   e(x): the one-hot of x in 0..n-1
//   v     = beta_0  e(x0) + beta_1  e(x1)         (n)
//   o     = ALU(f, u, v)                          (n)   the answer distribution
//   loss  = -log o[y], averaged over the batch
//
// No parameter depends on the value range n: a router trained with a 4-bit table runs
// unchanged on a 16-bit circuit. Forward and backward are side by side below; the backward
// is checked against finite differences in tests/experiment/test_circuits.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <ncl/alu/alu.hpp>
#include <ncl/core/error.hpp>
#include <ncl/core/softmax.hpp>
#include <ncl/core/tensor.hpp>

namespace ncl_circuits {

using ncl::index;
using ncl::matrix;

inline constexpr index op_count = static_cast<index>(ncl::alu::table_op_count);  // 9
inline constexpr index operands = 2;                                               // a, b
inline constexpr index slots = 2;                                                  // x0, x1

/// A batch: task ids and the two slots' values, all in [0, n) for the ALU's n.
struct router_batch {
  std::vector<index> task;
  std::vector<std::int64_t> x0, x1;
  index size() const { return static_cast<index>(task.size()); }
};

/// The router's weights: op_logits (tasks, 9) over ncl::alu::table_ops, slot_logits
/// (tasks, operands * slots), row t = [a from x0, a from x1, b from x0, b from x1].
struct router_weights {
  index tasks = 0;
  std::span<const double> op_logits, slot_logits;
};

struct router_gradients {
  std::span<double> op_logits, slot_logits;  // added to
};

/// What the forward keeps for the backward.
struct router_cache {
  matrix<double> f;            // (B, 9)
  matrix<double> alpha, beta;  // (B, 2)
  matrix<double> u, v;         // (B, n)
  matrix<double> o;            // (B, n): the answer distribution
};

inline void check_batch(const router_weights& w, const router_batch& in, std::int64_t n) {
  if (static_cast<index>(w.op_logits.size()) != w.tasks * op_count ||
      static_cast<index>(w.slot_logits.size()) != w.tasks * operands * slots) {
    throw ncl::shape_error(ncl::detail::concat("router: weights for ", w.tasks, " tasks have ", w.op_logits.size(),
                                               " op logits and ", w.slot_logits.size(), " slot logits"));
  }
  if (in.x0.size() != in.task.size() || in.x1.size() != in.task.size()) {
    throw ncl::shape_error("router: a batch's tasks and slots differ in number");
  }
  for (index b = 0; b < in.size(); ++b) {
    const auto i = static_cast<std::size_t>(b);
    if (in.task[i] < 0 || in.task[i] >= w.tasks) {
      throw ncl::value_error(ncl::detail::concat("router: task ", in.task[i], " is outside [0, ", w.tasks, ")"));
    }
    if (in.x0[i] < 0 || in.x0[i] >= n || in.x1[i] < 0 || in.x1[i] >= n) {
      throw ncl::value_error(ncl::detail::concat("router: slot values ", in.x0[i], ", ", in.x1[i],
                                                 " are outside the ALU's range [0, ", n, ")"));
    }
  }
}

/// The forward pass: c.o (B, n) is the answer distribution of each example.
inline void router_forward(router_cache& c, const router_weights& w, const ncl::alu::arithmetic_unit<double>& alu,
                           const router_batch& in) {
  const std::int64_t n = alu.n();
  check_batch(w, in, n);
  const index B = in.size();
  c.f.resize(B, op_count);
  c.alpha.resize(B, slots);
  c.beta.resize(B, slots);
  c.u.setZero(B, n);
  c.v.setZero(B, n);
  for (index b = 0; b < B; ++b) {
    const auto i = static_cast<std::size_t>(b);
    const index t = in.task[i];
    double f[op_count], alpha[slots], beta[slots];
    ncl::softmax_row(f, w.op_logits.data() + t * op_count, op_count);
    ncl::softmax_row(alpha, w.slot_logits.data() + t * operands * slots, slots);
    ncl::softmax_row(beta, w.slot_logits.data() + t * operands * slots + slots, slots);
    for (index k = 0; k < op_count; ++k) c.f(b, k) = f[k];
    for (index s = 0; s < slots; ++s) {
      c.alpha(b, s) = alpha[s];
      c.beta(b, s) = beta[s];
    }
    c.u(b, in.x0[i]) += alpha[0];
    c.u(b, in.x1[i]) += alpha[1];
    c.v(b, in.x0[i]) += beta[0];
    c.v(b, in.x1[i]) += beta[1];
  }
  alu.forward(c.o, c.f, c.u, c.v);
}

/// The smallest probability the loss takes the log of (an answer the ALU gives no mass).
inline constexpr double min_probability = 1e-30;

/// Mean of -log o[b][y_b] over the batch.
inline double router_loss(const router_cache& c, std::span<const std::int64_t> answers) {
  double total = 0;
  for (index b = 0; b < c.o.rows(); ++b) {
    total -= std::log(std::max(c.o(b, answers[static_cast<std::size_t>(b)]), min_probability));
  }
  return total / static_cast<double>(c.o.rows());
}

/// The backward pass of router_loss o router_forward: adds the gradients of the mean loss.
inline void router_backward(const router_gradients& g, const router_cache& c, const router_weights& w,
                            const ncl::alu::arithmetic_unit<double>& alu, const router_batch& in,
                            std::span<const std::int64_t> answers) {
  const index B = in.size();
  const std::int64_t n = alu.n();
  matrix<double> dout = matrix<double>::Zero(B, n);
  for (index b = 0; b < B; ++b) {
    const auto y = answers[static_cast<std::size_t>(b)];
    const double p = c.o(b, y);
    if (p > min_probability) dout(b, y) = -1.0 / (static_cast<double>(B) * p);  // the clamp has no slope
  }
  matrix<double> df = matrix<double>::Zero(B, op_count), du = matrix<double>::Zero(B, n),
                 dv = matrix<double>::Zero(B, n);
  alu.backward(df, du, dv, dout, c.f, c.u, c.v);
  for (index b = 0; b < B; ++b) {
    const auto i = static_cast<std::size_t>(b);
    const index t = in.task[i];
    double f[op_count], dfr[op_count], alpha[slots], beta[slots];
    for (index k = 0; k < op_count; ++k) {
      f[k] = c.f(b, k);
      dfr[k] = df(b, k);
    }
    ncl::softmax_row_backward(g.op_logits.data() + t * op_count, dfr, f, op_count);
    // u = alpha_0 e(x0) + alpha_1 e(x1): d alpha_s = du[x_s]; likewise beta from dv.
    const double dalpha[slots] = {du(b, in.x0[i]), du(b, in.x1[i])};
    const double dbeta[slots] = {dv(b, in.x0[i]), dv(b, in.x1[i])};
    for (index s = 0; s < slots; ++s) {
      alpha[s] = c.alpha(b, s);
      beta[s] = c.beta(b, s);
    }
    ncl::softmax_row_backward(g.slot_logits.data() + t * operands * slots, dalpha, alpha, slots);
    ncl::softmax_row_backward(g.slot_logits.data() + t * operands * slots + slots, dbeta, beta, slots);
  }
  (void)w;
}

/// The most likely answer of each example (the first of equal ones).
inline std::vector<std::int64_t> router_predictions(const router_cache& c) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(c.o.rows()));
  for (index b = 0; b < c.o.rows(); ++b) {
    index best = 0;
    c.o.row(b).maxCoeff(&best);
    out[static_cast<std::size_t>(b)] = best;
  }
  return out;
}

/// The router's hard choices for task t: the most likely op (an index into table_ops) and the
/// slot each operand reads.
struct routing {
  index op = 0, a_slot = 0, b_slot = 0;
  friend bool operator==(const routing&, const routing&) = default;
};

inline routing hard_routing(const router_weights& w, index t) {
  routing r;
  const double* ops = w.op_logits.data() + t * op_count;
  r.op = static_cast<index>(std::max_element(ops, ops + op_count) - ops);
  const double* s = w.slot_logits.data() + t * operands * slots;
  r.a_slot = s[1] > s[0] ? 1 : 0;
  r.b_slot = s[3] > s[2] ? 1 : 0;
  return r;
}

/// Weights with the same hard choices as `w`, made one-hot: every chosen logit 0, every other
/// -inf (softmax then gives exactly 1 and 0).
inline std::vector<double> hardened(std::span<const double> logits, index width) {
  std::vector<double> out(logits.size(), -std::numeric_limits<double>::infinity());
  for (std::size_t row = 0; row * static_cast<std::size_t>(width) < logits.size(); ++row) {
    const auto first = logits.begin() + static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(width));
    const auto best = std::max_element(first, first + width) - first;
    out[row * static_cast<std::size_t>(width) + static_cast<std::size_t>(best)] = 0;
  }
  return out;
}

}  // namespace ncl_circuits
