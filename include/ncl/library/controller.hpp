// Program controllers delta(theta, z) -> program (paper section 3.1): trainable parameters
// that emit a soft program, line by line and field by field, as softmax distributions.
//   free_controller:        one logit per (line, field, choice), no input
//   contextual_controller:  logits = z W + b, a linear map from a context vector z (B, C), so
//                           every batch element gets its own program
// Both keep their parameters in a train::parameter_set, so AdamW, checkpoints and masks
// (ncl/library/mask.hpp, paper eq. 9) work on them as on any other model.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/core/product.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/core/softmax.hpp"
#include "ncl/machine/shape.hpp"
#include "ncl/train/parameters.hpp"

namespace ncl::library {

/// The five fields of a program line (ISA.md, "State and program").
enum class field : std::uint8_t { op, dst, a, b, imm };
inline constexpr std::size_t field_count = 5;
inline constexpr std::array<field, field_count> all_fields{field::op, field::dst, field::a,
                                                           field::b, field::imm};
inline constexpr std::array<std::string_view, field_count> field_names{"op", "dst", "a", "b",
                                                                       "imm"};

constexpr std::string_view name(field f) { return field_names[static_cast<std::size_t>(f)]; }

/// Number of choices of a field: 23 opcodes, R registers, or n values.
inline index field_width(field f, const machine::machine_shape& shape) {
  switch (f) {
    case field::op: return static_cast<index>(alu::opcode_count);
    case field::dst:
    case field::a:
    case field::b: return shape.registers;
    case field::imm: return shape.n;
  }
  return 0;
}

/// The matrix of one field of a soft program (L, width).
template <class S>
matrix<S>& field_of(machine::soft_program<S>& p, field f) {
  switch (f) {
    case field::op: return p.op;
    case field::dst: return p.dst;
    case field::a: return p.a;
    case field::b: return p.b;
    case field::imm: break;
  }
  return p.imm;
}
template <class S>
const matrix<S>& field_of(const machine::soft_program<S>& p, field f) {
  return field_of(const_cast<machine::soft_program<S>&>(p), f);
}

/// A soft program of the right shape with every entry zero (a gradient buffer).
template <class S>
machine::soft_program<S> zero_program(const machine::machine_shape& shape) {
  machine::soft_program<S> p;
  for (field f : all_fields) field_of(p, f).setZero(shape.lines, field_width(f, shape));
  return p;
}

/// Free controller: parameters "<prefix>.<field>" of shape (L, width) hold the logits.
template <class S>
class free_controller {
 public:
  free_controller(train::parameter_set<S>& params, const std::string& prefix,
                  const machine::machine_shape& shape)
      : params_(&params), shape_(shape) {
    shape.validate();
    for (field f : all_fields) {
      ids_[static_cast<std::size_t>(f)] =
          params.add(prefix + "." + std::string(name(f)), {shape.lines, field_width(f, shape)},
                     {.sparse_rows = false, .weight_decay = false});
    }
  }

  const machine::machine_shape& shape() const { return shape_; }
  typename train::parameter_set<S>::id parameter(field f) const { return ids_[static_cast<std::size_t>(f)]; }

  /// The logits of field f as an (L, width) view into the parameter set.
  matrix_map<S> logits(field f) {
    return matrix_map<S>(params_->value(parameter(f)).data(), shape_.lines, field_width(f, shape_));
  }
  const_matrix_map<S> logits(field f) const {
    const auto& set = *params_;
    return const_matrix_map<S>(set.value(parameter(f)).data(), shape_.lines, field_width(f, shape_));
  }
  matrix_map<S> logit_grads(field f) {
    return matrix_map<S>(params_->grad(parameter(f)).data(), shape_.lines, field_width(f, shape_));
  }

  /// Random logits, N(0, stddev): a program with no knowledge in it.
  void randomize(ncl::rng& random, double stddev = 1.0) {
    for (field f : all_fields) random.fill_normal(params_->value(parameter(f)), 0.0, stddev);
  }

  /// Logits = sharpness * program (exact programs become softmax(sharpness * one-hot)).
  void set_program(const machine::soft_program<S>& program, S sharpness) {
    for (field f : all_fields) {
      check_shape("free_controller::set_program", name(f), field_of(program, f), shape_.lines,
                  field_width(f, shape_));
      logits(f) = sharpness * field_of(program, f);
    }
  }

  /// program = softmax of each row of each field's logits.
  void forward(machine::soft_program<S>& program) const {
    for (field f : all_fields) {
      const matrix<S> z = logits(f);
      softmax_forward(field_of(program, f), z);
    }
  }

  /// Adds d loss / d logits into the parameter set's gradients, given d loss / d program
  /// and the forward's program.
  void backward(const machine::soft_program<S>& dprogram, const machine::soft_program<S>& program) {
    for (field f : all_fields) {
      matrix<S> dz = matrix<S>::Zero(shape_.lines, field_width(f, shape_));
      softmax_backward(dz, field_of(dprogram, f), field_of(program, f));
      logit_grads(f) += dz;
    }
  }

 private:
  train::parameter_set<S>* params_;
  machine::machine_shape shape_;
  std::array<typename train::parameter_set<S>::id, field_count> ids_{};
};

/// Contextual controller: for each field, "<prefix>.<field>.weight" (C, L * width) and
/// "<prefix>.<field>.bias" (1, L * width); logits of element b = z_b W + bias, row-major over
/// (line, choice).
template <class S>
class contextual_controller {
 public:
  contextual_controller(train::parameter_set<S>& params, const std::string& prefix,
                        const machine::machine_shape& shape, index context_dim)
      : params_(&params), shape_(shape), context_dim_(context_dim) {
    shape.validate();
    if (context_dim < 1) {
      throw value_error(ncl::detail::concat("contextual_controller: context_dim = ", context_dim,
                                            " must be at least 1"));
    }
    for (field f : all_fields) {
      const index cols = shape.lines * field_width(f, shape);
      const auto k = static_cast<std::size_t>(f);
      weight_ids_[k] = params.add(prefix + "." + std::string(name(f)) + ".weight", {context_dim, cols});
      bias_ids_[k] = params.add(prefix + "." + std::string(name(f)) + ".bias", {1, cols},
                                {.sparse_rows = false, .weight_decay = false});
    }
  }

  const machine::machine_shape& shape() const { return shape_; }
  index context_dim() const { return context_dim_; }
  typename train::parameter_set<S>::id weight(field f) const { return weight_ids_[static_cast<std::size_t>(f)]; }
  typename train::parameter_set<S>::id bias(field f) const { return bias_ids_[static_cast<std::size_t>(f)]; }

  /// Weights N(0, stddev / sqrt(C)), biases zero.
  void randomize(ncl::rng& random, double stddev = 1.0) {
    for (field f : all_fields) {
      random.fill_normal(params_->value(weight(f)), 0.0, stddev / std::sqrt(double(context_dim_)));
      for (auto& x : params_->value(bias(f))) x = S(0);
    }
  }

  /// Bias = sharpness * program: with a zero weight every context gets that program.
  void set_program(const machine::soft_program<S>& program, S sharpness) {
    for (field f : all_fields) {
      const matrix<S>& p = field_of(program, f);
      check_shape("contextual_controller::set_program", name(f), p, shape_.lines, field_width(f, shape_));
      auto b = params_->value(bias(f));
      for (index i = 0; i < p.size(); ++i) b[static_cast<std::size_t>(i)] = sharpness * p.data()[i];
    }
  }

  /// programs[b] = softmax rows of (z_b W + bias) reshaped (L, width), for z (B, C).
  void forward(std::vector<machine::soft_program<S>>& programs, const matrix<S>& z) const {
    check_cols("contextual_controller::forward", "z", z, context_dim_);
    programs.resize(static_cast<std::size_t>(z.rows()));
    for (field f : all_fields) {
      const index width = field_width(f, shape_);
      matrix<S> logits(z.rows(), shape_.lines * width);  // (B, L*width)
      ncl::detail::product(logits, z, weight_map(f), false);
      logits += bias_map(f).replicate(z.rows(), 1);
      for (index b = 0; b < z.rows(); ++b) {
        const matrix<S> row = const_matrix_map<S>(logits.row(b).data(), shape_.lines, width);
        softmax_forward(field_of(programs[static_cast<std::size_t>(b)], f), row);
      }
    }
  }

  /// Adds into the gradients of W and b, and (if dz is not null) into dz (B, C).
  void backward(const std::vector<machine::soft_program<S>>& dprograms,
                const std::vector<machine::soft_program<S>>& programs, const matrix<S>& z,
                matrix<S>* dz = nullptr) {
    if (dprograms.size() != static_cast<std::size_t>(z.rows()) || programs.size() != dprograms.size()) {
      throw shape_error(ncl::detail::concat("contextual_controller::backward: ", dprograms.size(),
                                            " program gradients and ", programs.size(),
                                            " programs for a batch of ", z.rows()));
    }
    if (dz) check_shape("contextual_controller::backward", "dz", *dz, z.rows(), context_dim_);
    for (field f : all_fields) {
      const index width = field_width(f, shape_);
      matrix<S> dlogits = matrix<S>::Zero(z.rows(), shape_.lines * width);
      for (index b = 0; b < z.rows(); ++b) {
        const auto k = static_cast<std::size_t>(b);
        matrix<S> d = matrix<S>::Zero(shape_.lines, width);
        softmax_backward(d, field_of(dprograms[k], f), field_of(programs[k], f));
        dlogits.row(b) = Eigen::Map<const Eigen::Matrix<S, 1, Eigen::Dynamic>>(d.data(), d.size());
      }
      ncl::detail::product(grad_map(weight(f), context_dim_), z.transpose(), dlogits, true);
      grad_map(bias(f), 1) += dlogits.colwise().sum();
      if (dz) ncl::detail::product(*dz, dlogits, weight_map(f).transpose(), true);
    }
  }

 private:
  const_matrix_map<S> weight_map(field f) const {
    const auto& set = *params_;
    return const_matrix_map<S>(set.value(weight(f)).data(), context_dim_,
                               shape_.lines * field_width(f, shape_));
  }
  const_matrix_map<S> bias_map(field f) const {
    const auto& set = *params_;
    return const_matrix_map<S>(set.value(bias(f)).data(), 1, shape_.lines * field_width(f, shape_));
  }
  matrix_map<S> grad_map(typename train::parameter_set<S>::id p, index rows) {
    auto g = params_->grad(p);
    return matrix_map<S>(g.data(), rows, static_cast<index>(g.size()) / rows);
  }

  train::parameter_set<S>* params_;
  machine::machine_shape shape_;
  index context_dim_;
  std::array<typename train::parameter_set<S>::id, field_count> weight_ids_{};
  std::array<typename train::parameter_set<S>::id, field_count> bias_ids_{};
};

}  // namespace ncl::library
