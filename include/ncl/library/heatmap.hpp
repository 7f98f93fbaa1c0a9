// A soft program as a picture: an SVG heatmap, lines down, the five fields across (op over the
// 23 opcodes, dst/a/b over the registers, imm over the values), each cell coloured by its
// probability, with the most likely instruction and its confidence beside every line. The
// title and every label are XML-escaped (ncl/core/xml.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

#include "ncl/core/file.hpp"
#include "ncl/core/xml.hpp"
#include "ncl/library/controller.hpp"
#include "ncl/machine/assembler.hpp"
#include "ncl/machine/program.hpp"

namespace ncl::library {

namespace detail {

/// A viridis-like ramp from p = 0 (dark purple) to p = 1 (yellow).
inline std::string probability_colour(double p) {
  static constexpr std::array<std::array<double, 3>, 5> stops{{{68, 1, 84},
                                                               {59, 82, 139},
                                                               {33, 145, 140},
                                                               {94, 201, 98},
                                                               {253, 231, 37}}};
  p = std::clamp(p, 0.0, 1.0) * (stops.size() - 1);
  const auto i = std::min<std::size_t>(static_cast<std::size_t>(p), stops.size() - 2);
  const double t = p - static_cast<double>(i);
  char out[8];
  std::snprintf(out, sizeof out, "#%02x%02x%02x",
                static_cast<int>(std::lround(stops[i][0] + t * (stops[i + 1][0] - stops[i][0]))),
                static_cast<int>(std::lround(stops[i][1] + t * (stops[i + 1][1] - stops[i][1]))),
                static_cast<int>(std::lround(stops[i][2] + t * (stops[i + 1][2] - stops[i][2]))));
  return out;
}

}  // namespace detail

/// The SVG text of the heatmap of `program`, with `title` on top.
template <class S>
std::string program_heatmap_svg(const machine::soft_program<S>& program,
                                const machine::machine_shape& shape, const std::string& title) {
  machine::detail::check_program_shape("program_heatmap_svg", program, shape);
  constexpr int cell = 12, gap = 14, left = 34, top = 78, text_width = 270;
  const index L = shape.lines;
  auto column_label = [&](field f, index k) -> std::string {
    switch (f) {
      case field::op: return std::string(alu::name(static_cast<alu::opcode>(k)));
      case field::dst:
      case field::a:
      case field::b: return machine::register_name(static_cast<int>(k), shape);
      case field::imm: break;
    }
    return std::to_string(k);
  };
  int width = left;
  for (field f : all_fields) width += static_cast<int>(field_width(f, shape)) * cell + gap;
  const int grid_right = width;
  width += text_width;
  const int height = top + static_cast<int>(L) * cell + 30;

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"monospace\" font-size=\"9\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << left << "\" y=\"14\" font-size=\"12\" font-weight=\"bold\">"
      << ncl::detail::xml_escape(title) << "</text>\n";
  int x0 = left;
  for (field f : all_fields) {
    const index w = field_width(f, shape);
    const matrix<S>& m = field_of(program, f);
    svg << "<text x=\"" << x0 << "\" y=\"28\" font-size=\"10\" font-weight=\"bold\">" << name(f)
        << "</text>\n";
    // Column labels, rotated; the value axis of imm is labelled every 4 values when wide.
    for (index k = 0; k < w; ++k) {
      if (f == field::imm && w > 16 && k % 4 != 0) continue;
      const int x = x0 + static_cast<int>(k) * cell + cell - 3;
      svg << "<text transform=\"translate(" << x << "," << (top - 3) << ") rotate(-70)\">"
          << ncl::detail::xml_escape(column_label(f, k)) << "</text>\n";
    }
    for (index l = 0; l < L; ++l) {
      for (index k = 0; k < w; ++k) {
        const double p = static_cast<double>(m(l, k));
        svg << "<rect x=\"" << x0 + static_cast<int>(k) * cell << "\" y=\""
            << top + static_cast<int>(l) * cell << "\" width=\"" << cell << "\" height=\"" << cell
            << "\" fill=\"" << detail::probability_colour(p) << "\"><title>line " << l << ", "
            << name(f) << " = " << ncl::detail::xml_escape(column_label(f, k)) << ": " << p
            << "</title></rect>\n";
      }
    }
    x0 += static_cast<int>(w) * cell + gap;
  }
  for (index l = 0; l < L; ++l) {
    const int y = top + static_cast<int>(l) * cell + cell - 2;
    svg << "<text x=\"" << left - 4 << "\" y=\"" << y << "\" text-anchor=\"end\">" << l << "</text>\n";
    const auto decoded = machine::decode_line(program, l);
    char confidence[32];
    std::snprintf(confidence, sizeof confidence, "  p=%.3f", decoded.confidence);
    svg << "<text x=\"" << grid_right + 4 << "\" y=\"" << y << "\">"
        << ncl::detail::xml_escape(machine::format_instruction(decoded.inst, shape)) << confidence
        << "</text>\n";
  }
  svg << "<text x=\"" << left << "\" y=\"" << height - 10
      << "\">colour: probability, 0 (dark) to 1 (yellow); right: most likely instruction</text>\n";
  svg << "</svg>\n";
  return svg.str();
}

/// Writes the heatmap to `path` (atomically).
template <class S>
void write_program_heatmap(const std::string& path, const machine::soft_program<S>& program,
                           const machine::machine_shape& shape, const std::string& title) {
  write_file_atomic(path, program_heatmap_svg(program, shape, title));
}

}  // namespace ncl::library
