// Learning-rate schedule: linear warm-up, then a cosine decay to a floor (the schedule of
// LLaMA and most LLM training runs).
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "ncl/core/error.hpp"

namespace ncl::train {

struct warmup_cosine {
  double max_lr = 1e-3;
  double min_lr = 1e-4;
  std::int64_t warmup_steps = 100;  ///< lr rises linearly over these steps
  std::int64_t total_steps = 1000;  ///< cosine reaches min_lr here and stays there

  void validate() const {
    if (!(max_lr >= 0 && min_lr >= 0 && min_lr <= max_lr)) {
      throw value_error(ncl::detail::concat("warmup_cosine: need 0 <= min_lr <= max_lr, got min_lr ",
                                            min_lr, ", max_lr ", max_lr));
    }
    if (warmup_steps < 0 || total_steps < warmup_steps) {
      throw value_error(ncl::detail::concat("warmup_cosine: need 0 <= warmup_steps <= total_steps, got ",
                                            warmup_steps, " and ", total_steps));
    }
  }

  /// Learning rate for 0-based step `step`: max_lr (step + 1) / warmup_steps during warm-up,
  /// then min_lr + (max_lr - min_lr) (1 + cos(pi progress)) / 2, progress going 0 -> 1.
  double operator()(std::int64_t step) const {
    validate();
    if (step < 0) throw value_error(ncl::detail::concat("warmup_cosine: step ", step, " < 0"));
    if (step < warmup_steps) {
      return max_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    }
    if (step >= total_steps) return min_lr;
    const double progress = static_cast<double>(step - warmup_steps) /
                            static_cast<double>(total_steps - warmup_steps);
    return min_lr + (max_lr - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
  }
};

}  // namespace ncl::train
