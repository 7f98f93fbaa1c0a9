// A small, seeded random generator (xoshiro256** seeded by splitmix64). Its streams are
// the same on every compiler and standard library, unlike std::normal_distribution, so
// every test and example is reproducible bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>

#include "ncl/core/error.hpp"

namespace ncl {
namespace detail {
__extension__ typedef unsigned __int128 uint128;  // __extension__: no -Wpedantic warning
}  // namespace detail

class rng {
 public:
  using result_type = std::uint64_t;
  static constexpr std::uint64_t default_seed = 0x6e636c2d72756e21ULL;  // "ncl-run!"

  explicit rng(std::uint64_t seed = default_seed) { reseed(seed); }

  void reseed(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& word : state_) word = splitmix64(x);
    has_spare_normal_ = false;
  }

  /// An independent generator for sub-stream `stream` (per thread, per batch element, ...).
  rng split(std::uint64_t stream) const {
    return rng(state_[0] ^ (0x9e3779b97f4a7c15ULL * (stream + 1)));
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  result_type operator()() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
  double normal() {
    if (has_spare_normal_) {
      has_spare_normal_ = false;
      return spare_normal_;
    }
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    spare_normal_ = radius * std::sin(angle);
    has_spare_normal_ = true;
    return radius * std::cos(angle);
  }

  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// Uniform integer in [lo, hi), unbiased (Lemire's multiply-and-reject).
  std::int64_t integer(std::int64_t lo, std::int64_t hi) {
    if (hi <= lo) {
      throw value_error(detail::concat("rng::integer: empty range [", lo, ", ", hi, ")"));
    }
    const std::uint64_t range = static_cast<std::uint64_t>(hi - lo);
    detail::uint128 product = static_cast<detail::uint128>((*this)()) * range;
    std::uint64_t low = static_cast<std::uint64_t>(product);
    if (low < range) {
      const std::uint64_t threshold = (0 - range) % range;
      while (low < threshold) {
        product = static_cast<detail::uint128>((*this)()) * range;
        low = static_cast<std::uint64_t>(product);
      }
    }
    return lo + static_cast<std::int64_t>(product >> 64);
  }

  template <class S>
  void fill_uniform(std::span<S> out, double lo = 0.0, double hi = 1.0) {
    for (auto& x : out) x = static_cast<S>(uniform(lo, hi));
  }

  template <class S>
  void fill_normal(std::span<S> out, double mean = 0.0, double stddev = 1.0) {
    for (auto& x : out) x = static_cast<S>(normal(mean, stddev));
  }

  /// Everything the generator's future output depends on, for a checkpoint to resume from.
  struct snapshot {
    std::uint64_t words[4]{};
    double spare_normal = 0.0;
    bool has_spare_normal = false;
  };
  snapshot save() const {
    snapshot s;
    for (int i = 0; i < 4; ++i) s.words[i] = state_[i];
    s.spare_normal = spare_normal_;
    s.has_spare_normal = has_spare_normal_;
    return s;
  }
  void restore(const snapshot& s) {
    for (int i = 0; i < 4; ++i) state_[i] = s.words[i];
    spare_normal_ = s.spare_normal;
    has_spare_normal_ = s.has_spare_normal;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::uint64_t state_[4]{};
  double spare_normal_ = 0.0;
  bool has_spare_normal_ = false;
};

}  // namespace ncl
