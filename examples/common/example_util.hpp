// Small helpers the example binaries share: --key value flags, CSV curves and their figures.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <ncl/core/error.hpp>
#include <ncl/core/file.hpp>
#include <ncl/core/plot.hpp>
#include <ncl/library/learn.hpp>

namespace example {

/// --key value and --flag arguments; unknown keys are a usage error.
class flags {
 public:
  flags(int argc, char** argv, std::map<std::string, std::string> defaults, std::string usage)
      : values_(std::move(defaults)), usage_(std::move(usage)) {
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
  double num(const std::string& key) const {
    const std::string& v = values_.at(key);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(x)) fail("--" + key + " expects a finite number, got '" + v + "'");
    return x;
  }
  std::int64_t integer(const std::string& key) const { return static_cast<std::int64_t>(num(key)); }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    std::fprintf(stderr, "error: %s\n%s", message.c_str(), usage_.c_str());
    std::exit(2);
  }
  std::map<std::string, std::string> values_;
  std::string usage_;
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
