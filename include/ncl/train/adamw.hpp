// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019) over a
// parameter_set, with global-norm gradient clipping, per-entry freezing masks and a check that
// stops training on a NaN or Inf gradient, naming the step and the tensor.
//
// One step, for every trainable entry p with gradient g (PyTorch's torch.optim.AdamW order):
//   g  = g * clip,          clip = min(1, max_norm / (||G||_2 + 1e-6))   (all gradients G)
//   p  = p * (1 - lr * weight_decay)                                      (decoupled decay)
//   m  = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Masked entries (mask 0) are skipped entirely: their value, m and v never change, and their
// gradient does not count in the global norm.
//
// Sparse-row parameters (embeddings) are updated lazily, like torch.optim.SparseAdam: only rows
// touched since the last zero_grad are decayed and have their moments updated; an untouched row
// keeps its value and moments, and bias correction uses the global step count. A row touched at
// every step follows exactly the dense update.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ncl/core/buffer.hpp"
#include "ncl/core/error.hpp"
#include "ncl/train/parallel.hpp"
#include "ncl/train/parameters.hpp"

namespace ncl::train {

/// Training met a NaN or Inf: what() names the step and the tensor (and the first bad entry).
class nonfinite_error : public error {
 public:
  nonfinite_error(std::int64_t step, std::string tensor, const std::string& message)
      : error(message), step_(step), tensor_(std::move(tensor)) {}
  std::int64_t step() const noexcept { return step_; }
  const std::string& tensor() const noexcept { return tensor_; }

 private:
  std::int64_t step_;
  std::string tensor_;
};

/// Throws nonfinite_error if the loss of step `step` is NaN or Inf.
inline void check_finite_loss(std::int64_t step, double loss) {
  if (!std::isfinite(loss)) {
    throw nonfinite_error(step, "loss",
                          ncl::detail::concat("step ", step, ": loss is ", loss,
                                              " (not finite); training stopped"));
  }
}

struct adamw_options {
  double lr = 1e-3;  ///< used when step() is called without a learning rate
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  double max_grad_norm = 0;  ///< clip the global gradient norm to this; 0 = no clipping
};

struct adamw_step_result {
  double grad_norm = 0;  ///< global L2 norm of the gradients before clipping
  double clip = 1;       ///< factor the gradients were scaled by
};

template <class S>
class adamw {
 public:
  explicit adamw(const parameter_set<S>& params, adamw_options options = {})
      : options_(options), m_(params.total_size(), S(0)), v_(params.total_size(), S(0)) {}

  const adamw_options& options() const { return options_; }
  /// Number of completed steps (t in the bias corrections).
  std::int64_t step_count() const { return step_; }

  std::span<S> exp_avg() { return m_; }
  std::span<const S> exp_avg() const { return m_; }
  std::span<S> exp_avg_sq() { return v_; }
  std::span<const S> exp_avg_sq() const { return v_; }
  /// For resuming from a checkpoint (with exp_avg and exp_avg_sq restored).
  void set_step_count(std::int64_t step) {
    if (step < 0) throw value_error(ncl::detail::concat("adamw: step count ", step, " < 0"));
    step_ = step;
  }

  /// The global L2 norm of all live, unmasked gradients. Throws nonfinite_error naming the
  /// tensor (and entry) if a gradient is NaN or Inf; `step` is only used in that message.
  double global_norm(const parameter_set<S>& params, std::int64_t step) const {
    const auto chunks = live_chunks(params);
    const auto grads = params.grads();
    const auto mask = params.mask();
    std::vector<double> sums(chunks.size());
    const long n_chunks = static_cast<long>(chunks.size());
    ncl::detail::parallel_for<long>(n_chunks, params.total_size() >= static_cast<std::size_t>(detail::parallel_threshold), [&](long k) {
      const auto& ch = chunks[static_cast<std::size_t>(k)];
      double part = 0;
      for (std::size_t i = ch.offset; i < ch.offset + ch.size; ++i) {
        const double g = (mask.empty() || mask[i]) ? static_cast<double>(grads[i]) : 0.0;
        part += g * g;
      }
      sums[static_cast<std::size_t>(k)] = part;
    }, ncl::detail::grain_for(n_chunks));
    std::vector<double> per_tensor(params.count(), 0.0);
    for (std::size_t k = 0; k < chunks.size(); ++k) per_tensor[chunks[k].param] += sums[k];
    double total = 0;
    for (std::size_t p = 0; p < params.count(); ++p) {
      if (!std::isfinite(per_tensor[p])) throw_nonfinite(params, p, step);
      total += per_tensor[p];
    }
    return std::sqrt(total);
  }

  /// One AdamW step at learning rate `lr`, reading params.grads(). Throws nonfinite_error
  /// (leaving parameters and state unchanged) if a gradient is not finite.
  adamw_step_result step(parameter_set<S>& params, double lr) {
    if (params.total_size() != m_.size()) {
      throw shape_error(ncl::detail::concat("adamw::step: optimizer state has ", m_.size(),
                                            " entries, the parameter set ", params.total_size()));
    }
    const std::int64_t t = step_ + 1;
    adamw_step_result result;
    result.grad_norm = global_norm(params, t);
    if (options_.max_grad_norm > 0 && result.grad_norm > options_.max_grad_norm) {
      result.clip = options_.max_grad_norm / (result.grad_norm + 1e-6);
    }
    step_ = t;
    const double bc1 = 1 - std::pow(options_.beta1, static_cast<double>(t));
    const double bc2 = 1 - std::pow(options_.beta2, static_cast<double>(t));
    coefficients c{};
    c.clip = static_cast<S>(result.clip);
    c.beta1 = static_cast<S>(options_.beta1);
    c.beta2 = static_cast<S>(options_.beta2);
    c.step_size = static_cast<S>(lr / bc1);
    c.inv_sqrt_bc2 = static_cast<S>(1 / std::sqrt(bc2));
    c.eps = static_cast<S>(options_.eps);
    const auto mask = params.mask();
    std::vector<S> decay(params.count());
    for (std::size_t p = 0; p < params.count(); ++p) {
      decay[p] = static_cast<S>(1 - lr * (params.info(p).options.weight_decay ? options_.weight_decay : 0.0));
    }
    const auto chunks = live_chunks(params);
    const long n_chunks = static_cast<long>(chunks.size());
    S* values = params.values().data();
    const S* grads = params.grads().data();
    ncl::detail::parallel_for<long>(n_chunks, params.total_size() >= static_cast<std::size_t>(detail::parallel_threshold), [&](long k) {
      const auto& ch = chunks[static_cast<std::size_t>(k)];
      coefficients ck = c;
      ck.decay = decay[ch.param];
      update(values + ch.offset, grads + ch.offset, m_.data() + ch.offset, v_.data() + ch.offset,
             mask.empty() ? nullptr : mask.data() + ch.offset, ch.size, ck);
    }, ncl::detail::grain_for(n_chunks));
    return result;
  }
  adamw_step_result step(parameter_set<S>& params) { return step(params, options_.lr); }

 private:
  struct coefficients {
    S clip, decay, beta1, beta2, step_size, inv_sqrt_bc2, eps;
  };

  // A stretch of live gradient (a dense tensor cut into pieces, or one touched row), the unit
  // the norm and the update are parallelised over.
  struct chunk {
    std::size_t param, offset, size;
  };
  static constexpr std::size_t chunk_size = 16384;

  static std::vector<chunk> live_chunks(const parameter_set<S>& params) {
    std::vector<chunk> chunks;
    for (std::size_t p = 0; p < params.count(); ++p) {
      params.for_each_live_range(p, [&](std::size_t offset, std::size_t n) {
        for (std::size_t i = 0; i < n; i += chunk_size) {
          chunks.push_back({p, offset + i, std::min(chunk_size, n - i)});
        }
      });
    }
    return chunks;
  }

  static void update(S* value, const S* grad, S* m, S* v, const std::uint8_t* mask,
                     std::size_t n, const coefficients& c) {
    const S one = 1;
    if (mask == nullptr) {
      NCL_OMP(omp simd)
      for (std::size_t i = 0; i < n; ++i) {
        const S g = grad[i] * c.clip;
        m[i] = c.beta1 * m[i] + (one - c.beta1) * g;
        v[i] = c.beta2 * v[i] + (one - c.beta2) * g * g;
        value[i] = value[i] * c.decay -
                   c.step_size * m[i] / (std::sqrt(v[i]) * c.inv_sqrt_bc2 + c.eps);
      }
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!mask[i]) continue;
      const S g = grad[i] * c.clip;
      m[i] = c.beta1 * m[i] + (one - c.beta1) * g;
      v[i] = c.beta2 * v[i] + (one - c.beta2) * g * g;
      value[i] = value[i] * c.decay -
                 c.step_size * m[i] / (std::sqrt(v[i]) * c.inv_sqrt_bc2 + c.eps);
    }
  }

  [[noreturn]] static void throw_nonfinite(const parameter_set<S>& params, std::size_t p,
                                           std::int64_t step) {
    const auto& in = params.info(p);
    const auto grads = params.grads();
    std::size_t bad = in.offset;
    double value = 0;
    params.for_each_live_range(p, [&](std::size_t offset, std::size_t n) {
      for (std::size_t i = offset; i < offset + n && value == 0; ++i) {
        if (!std::isfinite(static_cast<double>(grads[i]))) {
          bad = i;
          value = static_cast<double>(grads[i]);
        }
      }
    });
    throw nonfinite_error(step, in.name,
                          ncl::detail::concat("step ", step, ": gradient of '", in.name, "' ",
                                              detail::shape_string(in.shape), " is ", value,
                                              " at flat index ", bad - in.offset,
                                              "; training stopped"));
  }

  adamw_options options_;
  buffer<S> m_;
  buffer<S> v_;
  std::int64_t step_ = 0;
};

}  // namespace ncl::train
