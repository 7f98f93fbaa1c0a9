// Small helpers the example binaries share: --key value flags, CSV curves and their figures.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <ncl/core/error.hpp>
#include <ncl/core/file.hpp>
#include <ncl/core/plot.hpp>
#include <ncl/library/learn.hpp>

namespace example {

/// --key value arguments; an unknown key or a bad value is a usage error: the message and the
/// usage on stderr, exit status 2.
class flags {
 public:
  flags(int argc, char** argv, std::map<std::string, std::string> defaults, std::string usage)
      : values_(std::move(defaults)), usage_(std::move(usage)) {
    if (argc > 0) name_ = std::filesystem::path(argv[0]).filename().string();
    for (int i = 1; i < argc; ++i) {
      std::string key = argv[i];
      if (key == "--help" || key == "-h") {
        std::printf("%s", usage_.c_str());
        std::exit(0);
      }
      if (key.rfind("--", 0) != 0 || !values_.count(key.substr(2))) fail("unknown argument '" + key + "'");
      if (i + 1 >= argc) fail("missing value after '" + key + "'");
      values_[key.substr(2)] = argv[++i];
    }
  }
  std::string str(const std::string& key) const { return values_.at(key); }
  /// A finite number in [lo, hi].
  double num(const std::string& key, double lo = -HUGE_VAL, double hi = HUGE_VAL) const {
    const std::string& v = values_.at(key);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(x)) fail("--" + key + " expects a finite number, got '" + v + "'");
    if (x < lo || x > hi) fail(ncl::detail::concat("--", key, " must be in [", lo, ", ", hi, "], got ", v));
    return x;
  }
  /// A finite number > 0 (a learning rate).
  double positive(const std::string& key) const {
    const double x = num(key);
    if (!(x > 0)) fail("--" + key + " must be > 0, got " + values_.at(key));
    return x;
  }
  /// A decimal integer in [lo, hi] (not through a double: --seed keeps every bit, 1e300 is no
  /// integer).
  std::int64_t integer(const std::string& key, std::int64_t lo = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t hi = std::numeric_limits<std::int64_t>::max()) const {
    const std::string& v = values_.at(key);
    std::int64_t x = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
      fail("--" + key + " expects an integer, got '" + v + "'");
    }
    if (x < lo || x > hi) {
      fail(hi == std::numeric_limits<std::int64_t>::max()
               ? ncl::detail::concat("--", key, " must be at least ", lo, ", got ", v)
               : ncl::detail::concat("--", key, " must be in [", lo, ", ", hi, "], got ", v));
    }
    return x;
  }
  /// A bad value found by the example itself: the same message, usage and exit status.
  [[noreturn]] void fail(const std::string& message) const {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: error: %s\n%s", name_.c_str(), message.c_str(), usage_.c_str());
    std::exit(2);
  }

 private:
  std::map<std::string, std::string> values_;
  std::string usage_;
  std::string name_ = "example";
};

/// Writes the curve as CSV (step,loss,accuracy) and as an SVG figure (loss and accuracy).
inline void write_curve(const std::filesystem::path& dir, const std::string& name,
                        const std::vector<ncl::library::curve_point>& curve, const std::string& title,
                        const std::string& accuracy_label) {
  std::filesystem::create_directories(dir);
  std::ostringstream csv;
  csv << "step,loss," << accuracy_label << "\n";
  ncl::plot_series loss{"loss", {}, {}}, accuracy{accuracy_label, {}, {}};
  for (const auto& p : curve) {
    csv << p.step << "," << p.loss << "," << p.accuracy << "\n";
    loss.x.push_back(static_cast<double>(p.step));
    loss.y.push_back(p.loss);
    accuracy.x.push_back(static_cast<double>(p.step));
    accuracy.y.push_back(p.accuracy);
  }
  ncl::write_file_atomic(dir / (name + ".csv"), csv.str());
  ncl::line_chart{title, "training step", "loss", true, {loss}}.write((dir / (name + "_loss.svg")).string());
  ncl::line_chart{title, "training step", accuracy_label, false, {accuracy}}
      .write((dir / (name + "_accuracy.svg")).string());
  std::printf("wrote %s/%s.csv, %s_loss.svg, %s_accuracy.svg\n", dir.string().c_str(), name.c_str(),
              name.c_str(), name.c_str());
}

/// Prints a progress line every `every` steps (and the last).
inline ncl::library::progress_callback progress_printer(std::int64_t every, const char* accuracy_label) {
  if (every < 1) throw ncl::value_error(ncl::detail::concat("--every must be at least 1, got ", every));
  return [every, accuracy_label](const ncl::library::curve_point& p) {
    if (p.step % every == 0) {
      std::printf("step %5lld  loss %.5f  %s %.3f\n", static_cast<long long>(p.step), p.loss,
                  accuracy_label, p.accuracy);
      std::fflush(stdout);
    }
  };
}

}  // namespace example
