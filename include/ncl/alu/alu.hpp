// The arithmetic unit the machine calls every step (ISA.md step 3, paper eq. 7 and 11):
// given f (B, A), a distribution over alu::table_ops, and operand distributions u, v (B, n),
//   o_l = sum_i f_i sum_{j,k: op_i(j,k) = l} u_j v_k,
// and in backward the gradients with respect to f, u and v. Three backends compute it:
//   table        the structured lookup table (lookup_table.hpp), the default
//   dense_table  the paper's dense tensor T[i][j][k][l] (lookup_table.hpp), the reference
//   circuit      one-hot -> binary, gate circuits (circuit.hpp), binary -> one-hot, n = 2^b;
//                exact on one-hot inputs, a mean-field-over-bits function on soft ones.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "ncl/alu/circuit.hpp"
#include "ncl/alu/lookup_table.hpp"
#include "ncl/alu/opcode.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/encoding/binary.hpp"

namespace ncl::alu {

enum class backend { table, dense_table, circuit };

inline std::string_view backend_name(backend kind) {
  switch (kind) {
    case backend::table: return "table";
    case backend::dense_table: return "dense_table";
    case backend::circuit: return "circuit";
  }
  throw value_error("backend_name: unknown backend");
}

/// "table", "dense" or "dense_table", "circuit".
inline backend backend_from_name(std::string_view name) {
  if (name == "table") return backend::table;
  if (name == "dense" || name == "dense_table") return backend::dense_table;
  if (name == "circuit") return backend::circuit;
  throw value_error(ncl::detail::concat("unknown ALU backend '", name,
                                        "'; choices: table, dense (or dense_table), circuit"));
}

namespace detail {

/// The circuit backend: one circuit per table op on log2(n)-bit encodings.
template <class S>
class circuit_unit {
 public:
  explicit circuit_unit(std::int64_t n) : n_(n) {
    if (n < 2 || (n & (n - 1)) != 0 || n > (std::int64_t{1} << 24)) {
      throw value_error(ncl::detail::concat(
          "arithmetic_unit: the circuit backend needs n a power of two in [2, 2^24], got n = ", n));
    }
    bits_ = encoding::bits_for(n);
    for (std::size_t i = 0; i < table_op_count; ++i) circuits_[i] = build_circuit(table_ops[i], bits_);
  }

  const circuit& circuit_for(std::size_t i) const { return circuits_[i]; }

  void forward(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    check_forward_args("arithmetic_unit::forward", f, u, v, n_);
    matrix<S> a, b, out_bits, probs;
    encoding::one_hot_to_binary_forward(a, u, bits_);
    encoding::one_hot_to_binary_forward(b, v, bits_);
    o.setZero(f.rows(), n_);
    circuit_cache<S> cache;
    for (std::size_t i = 0; i < table_op_count; ++i) {
      circuit_forward(out_bits, cache, circuits_[i], a, b);
      encoding::binary_to_one_hot_forward(probs, out_bits, n_);
      o += f.col(static_cast<index>(i)).asDiagonal() * probs;
    }
  }

  /// Recomputes each op's forward, then reads it in reverse.
  void backward(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    check_backward_args("arithmetic_unit::backward", df, du, dv, dout, f, u, v, n_);
    const index batch = f.rows();
    matrix<S> a, b, out_bits, probs;
    encoding::one_hot_to_binary_forward(a, u, bits_);
    encoding::one_hot_to_binary_forward(b, v, bits_);
    matrix<S> da = matrix<S>::Zero(batch, bits_), db = matrix<S>::Zero(batch, bits_);
    circuit_cache<S> cache;
    for (std::size_t i = 0; i < table_op_count; ++i) {
      const auto col = static_cast<index>(i);
      circuit_forward(out_bits, cache, circuits_[i], a, b);
      encoding::binary_to_one_hot_forward(probs, out_bits, n_);
      df.col(col) += (dout.cwiseProduct(probs)).rowwise().sum();
      const matrix<S> dprobs = f.col(col).asDiagonal() * dout;
      matrix<S> dout_bits = matrix<S>::Zero(batch, bits_);
      encoding::binary_to_one_hot_backward(dout_bits, dprobs, out_bits);
      circuit_backward(da, db, dout_bits, cache, circuits_[i]);
    }
    encoding::one_hot_to_binary_backward(du, da);
    encoding::one_hot_to_binary_backward(dv, db);
  }

 private:
  std::int64_t n_;
  int bits_ = 0;
  std::array<circuit, table_op_count> circuits_;
};

}  // namespace detail

/// The one arithmetic interface: forward and backward of paper eq. 7/11 over a batch, by
/// the chosen backend. Shapes: f (B, A), u and v (B, n), o (B, n).
template <class S>
class arithmetic_unit {
 public:
  /// n >= 2; circuit: n a power of two. The table backends refuse, before allocating, tables
  /// above max_table_bytes (default 1 GiB: in float, the dense table up to n = 310, the
  /// structured table up to n = 2574).
  explicit arithmetic_unit(std::int64_t n, backend kind = backend::table,
                           std::size_t max_table_bytes = default_table_max_bytes)
      : n_(n), kind_(kind), impl_(make(n, kind, max_table_bytes)) {}

  std::int64_t n() const { return n_; }
  backend kind() const { return kind_; }
  /// The structured table behind backend::table (its lane-major entry points), else null.
  const lookup_table<S>* table() const { return std::get_if<lookup_table<S>>(&impl_); }

  /// o (B, n), resized.
  void forward(matrix<S>& o, const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    std::visit([&](const auto& impl) { impl.forward(o, f, u, v); }, impl_);
  }

  /// df (B, A), du (B, n), dv (B, n) += gradients of sum(o * dout).
  void backward(matrix<S>& df, matrix<S>& du, matrix<S>& dv, const matrix<S>& dout,
                const matrix<S>& f, const matrix<S>& u, const matrix<S>& v) const {
    std::visit([&](const auto& impl) { impl.backward(df, du, dv, dout, f, u, v); }, impl_);
  }

 private:
  using implementation =
      std::variant<lookup_table<S>, dense_lookup_table<S>, detail::circuit_unit<S>>;

  static implementation make(std::int64_t n, backend kind, std::size_t max_table_bytes) {
    detail::check_value_range("arithmetic_unit", n);
    switch (kind) {
      case backend::table:
        return implementation(std::in_place_type<lookup_table<S>>, n, max_table_bytes);
      case backend::dense_table:
        return implementation(std::in_place_type<dense_lookup_table<S>>, n, max_table_bytes);
      case backend::circuit:
        return implementation(std::in_place_type<detail::circuit_unit<S>>, n);
    }
    throw value_error("arithmetic_unit: unknown backend");
  }

  std::int64_t n_;
  backend kind_;
  implementation impl_;
};

}  // namespace ncl::alu
