// libFuzzer target for the experiments' INPUT<TAB>ANSWER data files (ncl_experiment's
// parse_tsv, which read_tsv and every experiment's --eval read files with). The first byte
// picks the rules (how many answers, their limit, the limit on numbers in the input); the rest
// is the file. It either parses or throws ncl::parse_error "fuzz.tsv:LINE:1: error: ...", on a
// line the file has; parsed examples keep every rule.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ncl_experiment/data.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_tsv: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ncl_experiment::tsv_rules rules;
  rules.answer_count = data[0] % 4;                          // 0: any number of answers
  rules.answer_limit = (data[0] >> 2) % 2 ? 128 : 0;         // 0: no limit
  rules.number_limit = (data[0] >> 3) % 2 ? 100 : 0;
  rules.max_line_bytes = (data[0] >> 4) % 2 ? 64 : 4096;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  try {
    const auto examples = ncl_experiment::parse_tsv(text, "fuzz.tsv", rules);
    if (examples.empty()) fail("no examples and no error");
    for (const auto& e : examples) {
      if (e.input.empty() || e.input.size() > rules.max_line_bytes) fail("an input breaks the rules");
      if (e.answer.empty() || (rules.answer_count > 0 && e.answer.size() != rules.answer_count)) fail("wrong answer count");
      for (const auto v : e.answer) {
        if (v < 0 || (rules.answer_limit > 0 && v >= rules.answer_limit)) fail("an answer outside its range");
      }
      if (rules.number_limit > 0) {
        ncl_experiment::for_each_number(e.input, [&](std::string_view, std::int64_t v) {
          if (v < 0 || v >= rules.number_limit) fail("a number outside its range in an input");
        });
      }
    }
  } catch (const ncl::parse_error& e) {
    if (e.file() != "fuzz.tsv" || e.line() < 1 || e.line() > lines) fail(std::string("a bad location: ") + e.what());
  }
  return 0;
}
