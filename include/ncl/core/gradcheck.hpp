// The gradient-check harness every differentiable op in ncl is tested with.
//
// For inputs x_1..x_k (flat double buffers the caller's forward reads) and a forward that
// returns a flat output `out`, the loss is sum(out * dout) for a random dout. The caller's
// backward gets dout and returns d loss / d x_i for every input. On a random sample of each
// input's coordinates the harness compares that with the central difference
//   (loss(x + eps e_j) - loss(x - eps e_j)) / (2 eps).
// A coordinate where the one-sided differences disagree sits on a kink (argmax, threshold,
// clamp) where the gradient is not defined: it is skipped and counted, never silently passed.
// A check with fewer than `min_checked` compared coordinates fails.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ncl/core/error.hpp"
#include "ncl/core/rng.hpp"

namespace ncl {

struct gradcheck_options {
  double eps = 1e-6;                  ///< step of the central difference
  double rtol = 1e-6;                 ///< relative tolerance
  double atol = 1e-9;                 ///< absolute tolerance, for gradients near zero
  std::size_t samples_per_input = 64; ///< coordinates checked per input (all if fewer)
  bool skip_kinks = true;             ///< skip coordinates whose one-sided slopes disagree
  double kink_tolerance = 1e-3;       ///< relative disagreement that marks a kink
  std::size_t min_checked = 1;        ///< fewer compared coordinates than this fails the check
  std::uint64_t seed = 0x6772616463686bULL;
};

/// One named input: the buffer the forward reads, perturbed in place and restored.
struct gradcheck_input {
  std::string name;
  std::span<double> values;
};

struct gradcheck_mismatch {
  std::string input;
  std::size_t coordinate;
  double analytic;
  double numeric;
};

struct gradcheck_result {
  bool ok = true;
  std::size_t checked = 0;
  std::size_t skipped_kinks = 0;
  double max_error_ratio = 0;  ///< max |a - n| / (atol + rtol max(|a|, |n|)); <= 1 passes
  std::vector<gradcheck_mismatch> mismatches;
  std::string failure;  ///< set when the check failed for a reason other than mismatches

  /// A human-readable summary for test output.
  std::string report() const {
    std::ostringstream out;
    out << "gradcheck: " << (ok ? "ok" : "FAILED") << ", " << checked << " coordinates checked, "
        << skipped_kinks << " skipped at kinks, max error ratio " << max_error_ratio;
    if (!failure.empty()) out << "\n  " << failure;
    for (std::size_t i = 0; i < mismatches.size() && i < 10; ++i) {
      const auto& m = mismatches[i];
      out << "\n  " << m.input << "[" << m.coordinate << "]: analytic " << m.analytic
          << ", numeric " << m.numeric;
    }
    return out.str();
  }
};

/// forward: () -> std::vector<double>; backward: (std::span<const double> dout) ->
/// std::vector<std::vector<double>>, one gradient per input in the order given.
template <class Forward, class Backward>
gradcheck_result gradcheck(std::vector<gradcheck_input> inputs, Forward&& forward,
                           Backward&& backward, const gradcheck_options& options = {}) {
  gradcheck_result result;
  ncl::rng random(options.seed);

  const std::vector<double> out0 = forward();
  std::vector<double> dout(out0.size());
  for (auto& d : dout) d = random.uniform(-1.0, 1.0);
  const std::vector<std::vector<double>> analytic = backward(std::span<const double>(dout));
  if (analytic.size() != inputs.size()) {
    result.ok = false;
    result.failure = detail::concat("backward returned ", analytic.size(),
                                    " gradients for ", inputs.size(), " inputs");
    return result;
  }
  auto loss = [&] {
    const std::vector<double> out = forward();
    if (out.size() != dout.size()) {
      throw shape_error(detail::concat("gradcheck: forward's output changed size from ",
                                       dout.size(), " to ", out.size()));
    }
    return std::inner_product(out.begin(), out.end(), dout.begin(), 0.0);
  };
  const double loss0 = std::inner_product(out0.begin(), out0.end(), dout.begin(), 0.0);

  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto& input = inputs[i];
    if (analytic[i].size() != input.values.size()) {
      result.ok = false;
      result.failure = detail::concat("gradient of ", input.name, " has ", analytic[i].size(),
                                      " entries, the input has ", input.values.size());
      return result;
    }
    std::vector<std::size_t> coords(input.values.size());
    std::iota(coords.begin(), coords.end(), std::size_t{0});
    if (coords.size() > options.samples_per_input) {
      // Partial Fisher-Yates: the first samples_per_input entries are a random sample.
      for (std::size_t k = 0; k < options.samples_per_input; ++k) {
        const auto j = static_cast<std::size_t>(
            random.integer(static_cast<std::int64_t>(k), static_cast<std::int64_t>(coords.size())));
        std::swap(coords[k], coords[j]);
      }
      coords.resize(options.samples_per_input);
    }
    for (std::size_t c : coords) {
      double& x = input.values[c];
      const double saved = x;
      x = saved + options.eps;
      const double loss_plus = loss();
      x = saved - options.eps;
      const double loss_minus = loss();
      x = saved;
      const double numeric = (loss_plus - loss_minus) / (2 * options.eps);
      if (options.skip_kinks) {
        const double right = (loss_plus - loss0) / options.eps;
        const double left = (loss0 - loss_minus) / options.eps;
        const double scale = std::max({1.0, std::abs(left), std::abs(right)});
        if (std::abs(right - left) > options.kink_tolerance * scale) {
          ++result.skipped_kinks;
          continue;
        }
      }
      const double a = analytic[i][c];
      const double allowed = options.atol + options.rtol * std::max(std::abs(a), std::abs(numeric));
      const double ratio = std::abs(a - numeric) / allowed;
      ++result.checked;
      if (!(ratio <= 1.0)) {  // also catches NaN
        result.ok = false;
        result.mismatches.push_back({input.name, c, a, numeric});
      }
      if (!(ratio <= result.max_error_ratio)) result.max_error_ratio = ratio;
    }
  }
  if (result.checked < options.min_checked) {
    result.ok = false;
    result.failure = detail::concat("only ", result.checked, " coordinates were compared (",
                                    result.skipped_kinks, " at kinks), fewer than ",
                                    options.min_checked);
  }
  return result;
}

/// Moves every value at least `margin` away from each kink (a threshold such as 0.5, or the
/// 0 of a ReLU), so a check samples the smooth parts of a piecewise function.
inline void keep_away_from_kinks(std::span<double> values, std::span<const double> kinks,
                                 double margin) {
  for (double& x : values) {
    for (double k : kinks) {
      if (std::abs(x - k) < margin) x = (x < k) ? k - margin : k + margin;
    }
  }
}

}  // namespace ncl
