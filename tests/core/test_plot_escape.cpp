// Hostile text in figures: titles, axis labels, series names and program text go into the SVG
// escaped (ncl/core/xml.hpp), so the file stays well-formed whatever a user puts there.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "ncl/core/file.hpp"
#include "ncl/core/plot.hpp"
#include "ncl/core/xml.hpp"
#include "ncl/library/heatmap.hpp"

namespace {

const std::string hostile = "a<b & \"c\" 'd' </text><script>x</script>";
const std::string hostile_escaped = "a&lt;b &amp; &quot;c&quot; &#39;d&#39; &lt;/text&gt;&lt;script&gt;x&lt;/script&gt;";

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

/// Empty when `svg` is well-formed enough for an XML parser: every tag closed in order, attribute
/// values quoted without < or ", and every & one of the five entities we write; else what is wrong.
std::string xml_problem(const std::string& svg) {
  std::vector<std::string> open;
  for (std::size_t i = 0; i < svg.size();) {
    if (svg[i] == '&') {
      bool known = false;
      for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"}) known = known || svg.compare(i, std::string(e).size(), e) == 0;
      if (!known) return "a bare & at " + std::to_string(i);
      ++i;
      continue;
    }
    if (svg[i] == '>') return "a bare > at " + std::to_string(i);
    if (svg[i] != '<') {
      ++i;
      continue;
    }
    const bool closing = i + 1 < svg.size() && svg[i + 1] == '/';
    std::size_t j = i + (closing ? 2 : 1);
    const std::size_t name_start = j;
    while (j < svg.size() && (std::isalnum(static_cast<unsigned char>(svg[j])) != 0)) ++j;
    const std::string name = svg.substr(name_start, j - name_start);
    if (name.empty()) return "a < that opens no tag at " + std::to_string(i);
    bool self_closing = false;
    while (true) {  // attributes up to > or />
      if (j >= svg.size()) return "tag <" + name + " never ends";
      if (svg[j] == '"') {
        const auto end = svg.find('"', j + 1);
        if (end == std::string::npos) return "an attribute of <" + name + " never ends";
        if (svg.substr(j + 1, end - j - 1).find('<') != std::string::npos) return "a < in an attribute of <" + name;
        j = end + 1;
      } else if (svg[j] == '<') {
        return "a < inside tag <" + name;
      } else if (svg[j] == '>') {
        self_closing = svg[j - 1] == '/';
        ++j;
        break;
      } else {
        ++j;
      }
    }
    if (closing) {
      if (open.empty() || open.back() != name) return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
    } else if (!self_closing) {
      open.push_back(name);
    }
    i = j;
  }
  return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

void check_hostile_svg(const std::string& svg, std::size_t hostile_texts) {
  INFO(svg);
  CHECK(xml_problem(svg) == "");
  CHECK(count(svg, hostile_escaped) == hostile_texts);
  CHECK(svg.find("<b") == std::string::npos);
  CHECK(svg.find("<script") == std::string::npos);
  CHECK(svg.find("\"c\"") == std::string::npos);
  CHECK(svg.find("'d'") == std::string::npos);
  CHECK(count(svg, "<text") == count(svg, "</text>"));
}

}  // namespace

TEST_CASE("xml_escape: the five specials as entities, bad bytes and control characters as U+FFFD",
          "[core][xml]") {
  using ncl::detail::xml_escape;
  CHECK(xml_escape(hostile) == hostile_escaped);
  CHECK(xml_escape("plain text, 1.5e-3 (log scale)") == "plain text, 1.5e-3 (log scale)");
  CHECK(xml_escape("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  CHECK(xml_escape("tab\tnew\nline") == "tab\tnew\nline");
  CHECK(xml_escape(std::string("nul\0bell\x07", 9)) == "nul\xEF\xBF\xBD" "bell\xEF\xBF\xBD");
  CHECK(xml_escape("\xFF lone \x80 cut \xE2\x82") == "\xEF\xBF\xBD lone \xEF\xBF\xBD cut \xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(xml_escape("overlong \xC0\xBC surrogate \xED\xA0\x80") ==
        "overlong \xEF\xBF\xBD\xEF\xBF\xBD surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("line charts escape the title, the axis labels and the series names", "[core][plot]") {
  ncl::line_chart chart{hostile, hostile, hostile, true, {}};
  chart.series.push_back({hostile, {0, 1, 2}, {1, 0.5, 0.25}});
  chart.series.push_back({"plain", {0, 1, 2}, {2, 1, 0.5}});
  const std::string svg = chart.svg();
  check_hostile_svg(svg, 4);
  CHECK(svg.find(">plain</text>") != std::string::npos);
  CHECK(svg.find(hostile_escaped + " (log scale)</text>") != std::string::npos);

  // The file write() leaves is the same text.
  const auto path = std::filesystem::temp_directory_path() / ("ncl_test_plot." + std::to_string(::getpid()) + ".svg");
  chart.write(path.string());
  CHECK(ncl::read_file(path) == svg);
  std::filesystem::remove(path);
}

TEST_CASE("program heatmaps escape their title", "[core][plot]") {
  ncl::machine::machine_shape shape;
  shape.n = 8;
  shape.registers = 4;
  shape.memory = 8;
  shape.lines = 4;
  const auto program = ncl::machine::compile<double>(ncl::machine::assemble("SET r1, 5\nHALT\n", shape), shape);
  const std::string svg = ncl::library::program_heatmap_svg(program, shape, hostile);
  check_hostile_svg(svg, 1);
  CHECK(svg.find(">SET r1, 5  p=1.000</text>") != std::string::npos);

  const auto path = std::filesystem::temp_directory_path() / ("ncl_test_heatmap." + std::to_string(::getpid()) + ".svg");
  ncl::library::write_program_heatmap(path.string(), program, shape, hostile);
  CHECK(ncl::read_file(path) == svg);
  std::filesystem::remove(path);
}
