// A small SVG line chart for training curves, so every example can write its figure without
// a plotting dependency: one or more series against a shared x axis, optional log-scale y.
// Every text (title, axis labels, series names) is XML-escaped: a user may put anything there.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "ncl/core/error.hpp"
#include "ncl/core/file.hpp"
#include "ncl/core/xml.hpp"

namespace ncl {

struct plot_series {
  std::string name;
  std::vector<double> x, y;
};

struct line_chart {
  std::string title, x_label, y_label;
  bool log_y = false;
  std::vector<plot_series> series;

  /// The chart as SVG text. Non-finite points (and y <= 0 on a log axis) are skipped.
  std::string svg() const {
    constexpr double width = 640, height = 400, left = 70, right = 160, top = 40, bottom = 50;
    double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
    auto usable = [&](double x, double y) {
      return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
    };
    for (const auto& s : series) {
      if (s.x.size() != s.y.size()) {
        throw shape_error(detail::concat("line_chart: series '", s.name, "' has ", s.x.size(),
                                         " x values and ", s.y.size(), " y values"));
      }
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!usable(s.x[i], s.y[i])) continue;
        const double y = log_y ? std::log10(s.y[i]) : s.y[i];
        x_min = std::min(x_min, s.x[i]);
        x_max = std::max(x_max, s.x[i]);
        y_min = std::min(y_min, y);
        y_max = std::max(y_max, y);
      }
    }
    if (!(x_min <= x_max)) x_min = 0, x_max = 1, y_min = 0, y_max = 1;
    if (x_max == x_min) x_max = x_min + 1;
    if (y_max == y_min) y_max = y_min + 1;
    const double pw = width - left - right, ph = height - top - bottom;
    auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * pw; };
    auto py = [&](double y) { return top + (1 - (y - y_min) / (y_max - y_min)) * ph; };
    static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
    using detail::xml_escape;
    std::ostringstream out;
    out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
        << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        << "<text x=\"" << left << "\" y=\"22\" font-size=\"14\">" << xml_escape(title) << "</text>\n"
        << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
        << "\" fill=\"none\" stroke=\"#444\"/>\n";
    for (int k = 0; k <= 4; ++k) {
      const double xv = x_min + (x_max - x_min) * k / 4, yv = y_min + (y_max - y_min) * k / 4;
      char xs[32], ys[32];
      std::snprintf(xs, sizeof xs, x_max - x_min >= 20 ? "%.0f" : "%.3g", xv);
      std::snprintf(ys, sizeof ys, "%.3g", log_y ? std::pow(10.0, yv) : yv);
      out << "<text x=\"" << px(xv) << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\">" << xs << "</text>\n"
          << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << py(yv) << "\" y2=\"" << py(yv)
          << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << py(yv) + 4
          << "\" text-anchor=\"end\">" << ys << "</text>\n";
    }
    out << "<text x=\"" << left + pw / 2 << "\" y=\"" << height - 12 << "\" text-anchor=\"middle\">" << xml_escape(x_label)
        << "</text>\n<text transform=\"translate(16," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
        << xml_escape(y_label) << (log_y ? " (log scale)" : "") << "</text>\n";
    for (std::size_t k = 0; k < series.size(); ++k) {
      const auto& s = series[k];
      const char* colour = colours[k % 6];
      out << "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"" << colour << "\" points=\"";
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (usable(s.x[i], s.y[i])) out << px(s.x[i]) << "," << py(log_y ? std::log10(s.y[i]) : s.y[i]) << " ";
      }
      out << "\"/>\n<line x1=\"" << left + pw + 12 << "\" x2=\"" << left + pw + 30 << "\" y1=\""
          << top + 10 + 16 * static_cast<double>(k) << "\" y2=\"" << top + 10 + 16 * static_cast<double>(k)
          << "\" stroke=\"" << colour << "\" stroke-width=\"2\"/>\n<text x=\"" << left + pw + 34
          << "\" y=\"" << top + 14 + 16 * static_cast<double>(k) << "\">" << xml_escape(s.name) << "</text>\n";
    }
    out << "</svg>\n";
    return out.str();
  }

  void write(const std::string& path) const { write_file_atomic(path, svg()); }
};

}  // namespace ncl
