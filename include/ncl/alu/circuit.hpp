// Arithmetic circuits built only from the probabilistic gates of gates.hpp (paper eq. 12-13),
// on b-bit little-endian binary encodings, mod 2^b:
//   ADD  ripple-carry adder              SUB  a + not(b) + 1 (two's complement)
//   MUL  shift-and-add multiplier        DIV, MOD  restoring long division; dividing by 0
//   MIN, MAX  a comparator and a mux          gives quotient 2^b - 1 and remainder a, the
//   EQ, LT  comparators (0 or 1)              ISA's RISC-V results, with no special case
// A circuit is a netlist: wires 0 and 1 hold the constants 0 and 1, then the b bits of each
// operand, then one wire per gate in evaluation order. The forward pass evaluates the gates
// in order over a batch, keeping every wire in a cache; the backward pass is the forward
// read in reverse. On hard bits each circuit equals alu::apply; on soft bits it is the
// mean-field function that treats every wire as an independent bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "ncl/alu/gates.hpp"
#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::alu {

using wire = std::int32_t;

struct gate {
  gate_kind kind;
  wire a, b, out;  // b is 0 for NOT
};

/// A netlist with two b-bit operands and one b-bit result.
struct circuit {
  int bits = 0;
  std::vector<gate> gates;
  std::vector<wire> outputs;  // bits wires, little-endian
  wire wires = 0;             // total wire count

  static constexpr wire zero = 0;
  static constexpr wire one = 1;
  wire operand_a(int i) const { return 2 + i; }
  wire operand_b(int i) const { return 2 + bits + i; }
};

namespace detail {

/// Appends gates to a circuit, folding constants (and(x, 0) = 0, xor(x, 1) = not(x), ...),
/// which is exact on soft bits too, so the netlists hold only gates that compute something.
class circuit_builder {
 public:
  using bus = std::vector<wire>;

  explicit circuit_builder(int bits) {
    c_.bits = bits;
    c_.wires = 2 + 2 * bits;
  }
  bus operand_a() const { return range(c_.operand_a(0)); }
  bus operand_b() const { return range(c_.operand_b(0)); }
  bus zeros(int width) const { return bus(static_cast<std::size_t>(width), circuit::zero); }

  wire not_(wire x) {
    if (x == circuit::zero) return circuit::one;
    if (x == circuit::one) return circuit::zero;
    return emit(gate_kind::NOT, x, 0);
  }
  wire and_(wire x, wire y) {
    if (x == circuit::zero || y == circuit::zero) return circuit::zero;
    if (x == circuit::one) return y;
    if (y == circuit::one) return x;
    return emit(gate_kind::AND, x, y);
  }
  wire or_(wire x, wire y) {
    if (x == circuit::one || y == circuit::one) return circuit::one;
    if (x == circuit::zero) return y;
    if (y == circuit::zero) return x;
    return emit(gate_kind::OR, x, y);
  }
  wire xor_(wire x, wire y) {
    if (x == circuit::zero) return y;
    if (y == circuit::zero) return x;
    if (x == circuit::one) return not_(y);
    if (y == circuit::one) return not_(x);
    return emit(gate_kind::XOR, x, y);
  }
  /// s ? x : y, as or(and(s, x), and(not s, y)).
  wire mux(wire s, wire x, wire y) { return or_(and_(s, x), and_(not_(s), y)); }

  /// x + y + carry over equal widths: the sum bits and the carry out (ripple-carry adder).
  std::pair<bus, wire> add(const bus& x, const bus& y, wire carry) {
    bus sum(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      const wire half = xor_(x[i], y[i]);
      sum[i] = xor_(half, carry);
      carry = or_(and_(x[i], y[i]), and_(half, carry));
    }
    return {sum, carry};
  }
  /// x - y mod 2^width and the carry out of x + not(y) + 1, which is 1 exactly when x >= y.
  std::pair<bus, wire> subtract(const bus& x, const bus& y) {
    bus not_y(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) not_y[i] = not_(y[i]);
    return add(x, not_y, circuit::one);
  }
  /// x * y mod 2^width: add x AND y_j shifted left by j for every bit j of y.
  bus multiply(const bus& x, const bus& y) {
    const std::size_t width = x.size();
    bus product = zeros(static_cast<int>(width));
    for (std::size_t j = 0; j < width; ++j) {
      bus partial = zeros(static_cast<int>(width));
      for (std::size_t i = 0; i + j < width; ++i) partial[i + j] = and_(x[i], y[j]);
      product = add(product, partial, circuit::zero).first;
    }
    return product;
  }
  /// Restoring long division: quotient and remainder. Bringing down bit i of x gives
  /// r' = 2 r + x_i (width + 1 bits); q_i = [r' >= y]; r = q_i ? r' - y : r'.
  std::pair<bus, bus> divide(const bus& x, const bus& y) {
    const std::size_t width = x.size();
    bus quotient(width), remainder = zeros(static_cast<int>(width));
    bus y_wide = y;
    y_wide.push_back(circuit::zero);
    for (std::size_t i = width; i-- > 0;) {
      bus shifted{x[i]};
      shifted.insert(shifted.end(), remainder.begin(), remainder.end());  // width + 1 bits
      auto [difference, no_borrow] = subtract(shifted, y_wide);
      quotient[i] = no_borrow;
      // r < y < 2^width afterwards (or, for y = 0, a prefix of x), so the top bit is 0.
      for (std::size_t k = 0; k < width; ++k) {
        remainder[k] = mux(no_borrow, difference[k], shifted[k]);
      }
    }
    return {quotient, remainder};
  }
  wire less_than(const bus& x, const bus& y) { return not_(subtract(x, y).second); }
  wire equal(const bus& x, const bus& y) {
    wire all = circuit::one;
    for (std::size_t i = 0; i < x.size(); ++i) all = and_(all, not_(xor_(x[i], y[i])));
    return all;
  }

  circuit finish(bus outputs) {
    c_.outputs = std::move(outputs);
    return std::move(c_);
  }

 private:
  bus range(wire first) const {
    bus result(static_cast<std::size_t>(c_.bits));
    for (int i = 0; i < c_.bits; ++i) result[static_cast<std::size_t>(i)] = first + i;
    return result;
  }
  wire emit(gate_kind kind, wire a, wire b) {
    const wire out = c_.wires++;
    c_.gates.push_back({kind, a, b, out});
    return out;
  }

  circuit c_;
};

}  // namespace detail

/// The circuit for table op `op` on `bits`-bit operands (bits in [1, 24]).
inline circuit build_circuit(opcode op, int bits) {
  if (bits < 1 || bits > 24) {
    throw value_error(ncl::detail::concat("build_circuit: bits = ", bits, " must be in [1, 24]"));
  }
  detail::circuit_builder builder(bits);
  const auto x = builder.operand_a();
  const auto y = builder.operand_b();
  auto flag = [&](wire w) {  // a 0/1 result: bit 0 is the flag, the others are 0
    auto out = builder.zeros(bits);
    out[0] = w;
    return out;
  };
  switch (op) {
    case opcode::ADD: return builder.finish(builder.add(x, y, circuit::zero).first);
    case opcode::SUB: return builder.finish(builder.subtract(x, y).first);
    case opcode::MUL: return builder.finish(builder.multiply(x, y));
    case opcode::DIV: return builder.finish(builder.divide(x, y).first);
    case opcode::MOD: return builder.finish(builder.divide(x, y).second);
    case opcode::MIN:
    case opcode::MAX: {
      const wire x_less = builder.less_than(x, y);
      detail::circuit_builder::bus out(static_cast<std::size_t>(bits));
      for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = op == opcode::MIN ? builder.mux(x_less, x[i], y[i])
                                   : builder.mux(x_less, y[i], x[i]);
      }
      return builder.finish(out);
    }
    case opcode::EQ: return builder.finish(flag(builder.equal(x, y)));
    case opcode::LT: return builder.finish(flag(builder.less_than(x, y)));
    default:
      throw value_error(ncl::detail::concat("build_circuit: ", name(op), " is not a table op"));
  }
}

/// Every wire's value over the batch, (wires, B): what the backward pass reads.
template <class S>
struct circuit_cache {
  matrix<S> wires;
};

/// out (B, bits), resized, from operand bit probabilities a, b (B, bits).
template <class S>
void circuit_forward(matrix<S>& out, circuit_cache<S>& cache, const circuit& c,
                     const matrix<S>& a, const matrix<S>& b) {
  const index batch = a.rows();
  check_shape("circuit_forward", "a", a, batch, c.bits);
  check_shape("circuit_forward", "b", b, batch, c.bits);
  matrix<S>& w = cache.wires;
  w.resize(c.wires, batch);
  w.row(circuit::zero).setZero();
  w.row(circuit::one).setOnes();
  // Operand bits are clamped to [0, 1]: bits summed from a distribution can exceed 1 by an ulp,
  // and with every wire in [0, 1] the gates (gates.hpp) keep every wire in [0, 1]. The backward
  // pass treats the clamp as the identity (it moves a value by rounding error only).
  for (int i = 0; i < c.bits; ++i) {
    w.row(c.operand_a(i)) = a.col(i).transpose().cwiseMax(S(0)).cwiseMin(S(1));
    w.row(c.operand_b(i)) = b.col(i).transpose().cwiseMax(S(0)).cwiseMin(S(1));
  }
  auto row = [&](wire id) {
    return std::span<S>(w.row(id).data(), static_cast<std::size_t>(batch));
  };
  for (const gate& g : c.gates) {
    gate_forward<S>(g.kind, row(g.out), row(g.a), row(g.b));
  }
  out.resize(batch, c.bits);
  for (int i = 0; i < c.bits; ++i) {
    out.col(i) = w.row(c.outputs[static_cast<std::size_t>(i)]).transpose();
  }
}

/// da, db (B, bits) += gradients of sum(out * dout), from the cache of the forward pass.
template <class S>
void circuit_backward(matrix<S>& da, matrix<S>& db, const matrix<S>& dout,
                      const circuit_cache<S>& cache, const circuit& c) {
  const matrix<S>& w = cache.wires;
  const index batch = w.cols();
  check_shape("circuit_backward", "cache.wires", w, c.wires, batch);
  check_shape("circuit_backward", "dout", dout, batch, c.bits);
  check_shape("circuit_backward", "da", da, batch, c.bits);
  check_shape("circuit_backward", "db", db, batch, c.bits);
  matrix<S> dw = matrix<S>::Zero(c.wires, batch);
  for (int i = 0; i < c.bits; ++i) {
    dw.row(c.outputs[static_cast<std::size_t>(i)]) += dout.col(i).transpose();
  }
  auto span = [&](auto& m, wire id) {
    return std::span(m.row(id).data(), static_cast<std::size_t>(batch));
  };
  for (auto g = c.gates.rbegin(); g != c.gates.rend(); ++g) {
    gate_backward<S>(g->kind, span(dw, g->a), span(dw, g->b), span(std::as_const(dw), g->out),
                     span(w, g->a), span(w, g->b));
  }
  for (int i = 0; i < c.bits; ++i) {
    da.col(i) += dw.row(c.operand_a(i)).transpose();
    db.col(i) += dw.row(c.operand_b(i)).transpose();
  }
}

}  // namespace ncl::alu
