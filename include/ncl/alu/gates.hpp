// Probabilistic logic gates (paper eq. 12-13): on independent bit probabilities a, b in
// [0, 1] each gate returns the probability that its output bit is 1,
//   and(a, b) = a b,  or(a, b) = a + b - a b,  xor(a, b) = a + b - 2 a b,  not(a) = 1 - a,
// exact on hard (0 or 1) bits. Each *_forward sits beside its *_backward, which adds
// dout times the partial derivatives into da (and db).
//
// The forwards are written so that, for inputs in [0, 1], their floating-point results provably
// stay in [0, 1]: or as 1 - (1 - a)(1 - b), xor as a (1 - b) + b (1 - a) capped at 1 (the
// forms a + b - a b and a + b - 2 a b were never seen to leave it, but carry no such proof).
// A wire outside [0, 1] grows through a deep circuit (xor(1 + e, 1 + e) = -2e): operand bits
// of 1 + 1e-16 became a wire of -3.8e-6 in the 16-bit divider, which the one-hot decoding
// refused; circuit_forward (circuit.hpp) now clamps the operand bits.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ncl/core/error.hpp"

namespace ncl::alu {

template <class S>
constexpr S and_forward(S a, S b) { return a * b; }
template <class S>
constexpr void and_backward(S& da, S& db, S dout, S a, S b) {
  da += dout * b;
  db += dout * a;
}

template <class S>
constexpr S or_forward(S a, S b) { return S(1) - (S(1) - a) * (S(1) - b); }
template <class S>
constexpr void or_backward(S& da, S& db, S dout, S a, S b) {
  da += dout * (S(1) - b);
  db += dout * (S(1) - a);
}

template <class S>
constexpr S xor_forward(S a, S b) {
  const S out = a * (S(1) - b) + b * (S(1) - a);
  return out < S(1) ? out : S(1);
}
template <class S>
constexpr void xor_backward(S& da, S& db, S dout, S a, S b) {
  da += dout * (S(1) - S(2) * b);
  db += dout * (S(1) - S(2) * a);
}

template <class S>
constexpr S not_forward(S a) { return S(1) - a; }
template <class S>
constexpr void not_backward(S& da, S dout) { da -= dout; }

/// The gate types a circuit is built from.
enum class gate_kind : std::uint8_t { AND, OR, XOR, NOT };
inline constexpr std::size_t gate_kind_count = 4;
inline constexpr std::array<std::string_view, gate_kind_count> gate_kind_names{"AND", "OR", "XOR",
                                                                               "NOT"};
static_assert(gate_kind_names.size() == static_cast<std::size_t>(gate_kind::NOT) + 1,
              "the name table must cover every gate kind");

/// out[t] = gate(a[t], b[t]) over a batch of bit probabilities (b is ignored by NOT).
template <class S>
void gate_forward(gate_kind kind, std::span<S> out, std::span<const S> a, std::span<const S> b) {
  const std::size_t size = out.size();
  switch (kind) {
    case gate_kind::AND:
      for (std::size_t t = 0; t < size; ++t) out[t] = and_forward(a[t], b[t]);
      return;
    case gate_kind::OR:
      for (std::size_t t = 0; t < size; ++t) out[t] = or_forward(a[t], b[t]);
      return;
    case gate_kind::XOR:
      for (std::size_t t = 0; t < size; ++t) out[t] = xor_forward(a[t], b[t]);
      return;
    case gate_kind::NOT:
      for (std::size_t t = 0; t < size; ++t) out[t] = not_forward(a[t]);
      return;
  }
  throw value_error("gate_forward: unknown gate kind");
}

/// da[t], db[t] += dout[t] times the gate's partial derivatives (db untouched by NOT).
template <class S>
void gate_backward(gate_kind kind, std::span<S> da, std::span<S> db, std::span<const S> dout,
                   std::span<const S> a, std::span<const S> b) {
  const std::size_t size = dout.size();
  switch (kind) {
    case gate_kind::AND:
      for (std::size_t t = 0; t < size; ++t) and_backward(da[t], db[t], dout[t], a[t], b[t]);
      return;
    case gate_kind::OR:
      for (std::size_t t = 0; t < size; ++t) or_backward(da[t], db[t], dout[t], a[t], b[t]);
      return;
    case gate_kind::XOR:
      for (std::size_t t = 0; t < size; ++t) xor_backward(da[t], db[t], dout[t], a[t], b[t]);
      return;
    case gate_kind::NOT:
      for (std::size_t t = 0; t < size; ++t) not_backward(da[t], dout[t]);
      return;
  }
  throw value_error("gate_backward: unknown gate kind");
}

}  // namespace ncl::alu
