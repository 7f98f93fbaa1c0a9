// Sentence data sets: examples made from templates, deterministic splits, the TSV files of
// shared/EXPERIMENTS.md (INPUT<TAB>ANSWER, written and read with every line checked), and
// sentences tokenized into left-padded batches (every sentence ends at position T - 1, where
// the models read their answer).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ncl/core/error.hpp>
#include <ncl/core/file.hpp>
#include <ncl/core/rng.hpp>
#include <ncl/tokenizer/bpe.hpp>
#include <ncl/tokenizer/byte_level.hpp>

namespace ncl_experiment {

using index = std::int64_t;

/// One example: a sentence, its answer (one integer, or a list), and a tag the experiment
/// reports by ("add", "depth 3", ...; may be empty).
struct example {
  std::string input;
  std::vector<std::int64_t> answer;
  std::string tag;
};

/// `text` with every "{key}" replaced by its value.
inline std::string fill_template(std::string text, std::initializer_list<std::pair<std::string, std::int64_t>> values) {
  for (const auto& [key, value] : values) {
    const std::string k = "{" + key + "}";
    for (auto at = text.find(k); at != std::string::npos; at = text.find(k, at)) {
      text.replace(at, k.size(), std::to_string(value));
    }
  }
  return text;
}

/// Exactly round(fraction * count) of `count` items marked held out, chosen by `random`.
inline std::vector<bool> choose_held_out(std::size_t count, double fraction, ncl::rng& random) {
  if (!(fraction >= 0 && fraction <= 1)) {
    throw ncl::value_error(ncl::detail::concat("held-out fraction ", fraction, " is outside [0, 1]"));
  }
  std::vector<std::size_t> order(count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (std::size_t i = count; i > 1; --i) {
    std::swap(order[i - 1], order[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i)))]);
  }
  const auto held = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(count)));
  std::vector<bool> out(count, false);
  for (std::size_t i = 0; i < held; ++i) out[order[i]] = true;
  return out;
}

/// `keep` of the examples, evenly spaced (all when keep >= size): a smaller set of the same mix.
inline std::vector<example> subsample(const std::vector<example>& set, std::size_t keep) {
  if (keep >= set.size()) return set;
  std::vector<example> out;
  out.reserve(keep);
  for (std::size_t i = 0; i < keep; ++i) out.push_back(set[i * set.size() / keep]);
  return out;
}

// ---- TSV files --------------------------------------------------------------------------------

inline std::string answer_text(std::span<const std::int64_t> answer) {
  std::string out;
  for (std::size_t i = 0; i < answer.size(); ++i) {
    if (i) out += ' ';
    out += std::to_string(answer[i]);
  }
  return out;
}

/// Writes INPUT<TAB>ANSWER lines atomically.
inline void write_tsv(const std::filesystem::path& path, const std::vector<example>& set) {
  ncl::write_file_atomic(path, [&](std::ostream& out) {
    for (const auto& e : set) out << e.input << '\t' << answer_text(e.answer) << '\n';
  });
}

/// Calls f(digits, value) for every whole run of decimal digits in text, in order; value is
/// -1 when the run does not fit in an int64.
template <class F>
void for_each_number(std::string_view text, F&& f) {
  for (std::size_t k = 0; k < text.size();) {
    if (text[k] < '0' || text[k] > '9') {
      ++k;
      continue;
    }
    std::size_t j = k;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    const std::string_view digits = text.substr(k, j - k);
    std::int64_t v = 0;
    if (std::from_chars(digits.data(), digits.data() + digits.size(), v).ec != std::errc()) v = -1;
    f(digits, v);
    k = j;
  }
}

/// Whether the number v is written in text (as a whole run of digits).
inline bool says_number(std::string_view text, std::int64_t v) {
  bool found = false;
  for_each_number(text, [&](std::string_view, std::int64_t x) { found = found || x == v; });
  return found && v >= 0;
}

/// What a line of an input file must satisfy: answers with `answer_count` integers (0: any
/// number >= 1) in [0, answer_limit), and every number written in the input below number_limit.
struct tsv_rules {
  std::size_t answer_count = 1;
  std::int64_t answer_limit = 0;  ///< 0: no limit
  std::int64_t number_limit = 0;  ///< 0: no limit
  std::size_t max_line_bytes = 4096;
};

/// Parses INPUT<TAB>ANSWER lines; every problem is an ncl::parse_error "ORIGIN:LINE: ...".
inline std::vector<example> parse_tsv(std::string_view text, const std::string& origin,
                                      const tsv_rules& rules) {
  std::vector<example> out;
  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    ++line_no;
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto fail = [&](const auto&... parts) {
      throw ncl::parse_error(origin, static_cast<int>(line_no), 1, ncl::detail::concat(parts...));
    };
    if (line.empty()) continue;
    if (line.size() > rules.max_line_bytes) fail("the line is ", line.size(), " bytes long (at most ", rules.max_line_bytes, ")");
    const auto tab = line.find('\t');
    if (tab == std::string_view::npos) fail("no tab: expected INPUT<TAB>ANSWER");
    if (line.find('\t', tab + 1) != std::string_view::npos) fail("more than one tab: expected INPUT<TAB>ANSWER");
    const std::string_view input = line.substr(0, tab), answer = line.substr(tab + 1);
    if (input.find_first_not_of(" ") == std::string_view::npos) fail("the input is empty");
    try {
      ncl::check_utf8(input, "the input");
    } catch (const ncl::error& e) {
      fail(e.what());
    }
    for (unsigned char c : input) {
      if (c < 0x20) fail("the input holds a control character (byte 0x", std::hex, static_cast<int>(c), ")");
    }
    example e;
    e.input = std::string(input);
    std::size_t i = 0;
    while (i < answer.size()) {
      if (answer[i] == ' ') {
        ++i;
        continue;
      }
      std::int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(answer.data() + i, answer.data() + answer.size(), v);
      const std::size_t used = static_cast<std::size_t>(ptr - (answer.data() + i));
      if (ec != std::errc() || used == 0 || (ptr != answer.data() + answer.size() && *ptr != ' ')) {
        fail("the answer '", answer, "' is not a list of integers");
      }
      if (v < 0 || (rules.answer_limit > 0 && v >= rules.answer_limit)) {
        fail("the answer ", v, " is outside [0, ", rules.answer_limit, ")");
      }
      e.answer.push_back(v);
      i += used;
    }
    if (e.answer.empty()) fail("no answer after the tab");
    if (rules.answer_count > 0 && e.answer.size() != rules.answer_count) {
      fail("expected ", rules.answer_count, " answer", rules.answer_count == 1 ? "" : "s", ", got ", e.answer.size());
    }
    if (rules.number_limit > 0) {
      for_each_number(input, [&](std::string_view digits, std::int64_t v) {
        if (v < 0 || v >= rules.number_limit) fail("the number ", digits, " in the input is outside [0, ", rules.number_limit, ")");
      });
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) throw ncl::parse_error(origin, 1, 1, "no examples in the file");
  return out;
}

/// Reads an INPUT<TAB>ANSWER file (parse_tsv); a missing or unreadable file is an ncl::io_error.
inline std::vector<example> read_tsv(const std::filesystem::path& path, const tsv_rules& rules) {
  return parse_tsv(ncl::read_file(path), path.string(), rules);
}

// ---- tokenized sentences ----------------------------------------------------------------------

/// The tokenizer of an experiment: the LLaMA 3 BPE (default) or any tokenizer.json, with its
/// begin-of-text id put before every sentence and its end-of-text id as padding.
class sentence_encoder {
 public:
  /// path empty: ncl::default_tokenizer_path(); "bytes": the 256-id byte tokenizer.
  explicit sentence_encoder(const std::string& path) {
    if (path == "bytes") {
      tok_ = std::make_unique<ncl::byte_tokenizer>();
      name_ = "bytes";
      return;
    }
    const auto file = path.empty() ? ncl::default_tokenizer_path() : std::filesystem::path(path);
    if (!std::filesystem::exists(file)) {
      throw ncl::io_error(ncl::detail::concat(file.string(), ": no tokenizer file (run 'bash cmake/fetch_tokenizer.sh', "
                                              "or give --tokenizer PATH)"));
    }
    auto bpe = std::make_unique<ncl::bpe_tokenizer>(ncl::bpe_tokenizer::from_file(file));
    if (auto id = bpe->find("<|begin_of_text|>")) bos_ = *id;
    if (auto id = bpe->find("<|end_of_text|>")) pad_ = *id;
    name_ = file.string();
    tok_ = std::move(bpe);
  }
  const ncl::tokenizer& tokenizer() const { return *tok_; }
  const std::string& name() const { return name_; }
  index vocab_size() const { return static_cast<index>(tok_->vocab_size()); }
  std::int32_t pad() const { return pad_; }

  std::vector<std::int32_t> encode(const std::string& text) const {
    auto ids = tok_->encode(text);
    std::vector<std::int32_t> out;
    out.reserve(ids.size() + 1);
    if (bos_ >= 0) out.push_back(bos_);
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }

 private:
  std::unique_ptr<ncl::tokenizer> tok_;
  std::string name_;
  std::int32_t bos_ = -1, pad_ = 0;
};

/// Examples as a token matrix (count, T), left-padded, with their answers and tag ids.
struct token_set {
  index T = 0;
  std::vector<std::int32_t> tokens;
  std::vector<std::vector<std::int64_t>> answers;
  std::vector<std::size_t> tag;     ///< index into tags
  std::vector<std::string> tags;    ///< distinct tags in order of first appearance
  index count() const { return static_cast<index>(answers.size()); }
};

/// The longest sentence of the sets, in tokens.
inline index longest(const sentence_encoder& enc, std::initializer_list<const std::vector<example>*> sets) {
  index T = 0;
  for (const auto* set : sets) {
    for (const auto& e : *set) T = std::max<index>(T, static_cast<index>(enc.encode(e.input).size()));
  }
  return T;
}

/// Tokenizes `set` into rows of T tokens (left-padded); a sentence longer than T is an error
/// naming it (`source`: the file, and the example's line, in the message).
inline token_set tokenize(const sentence_encoder& enc, const std::vector<example>& set, index T,
                          const std::string& source = "the data") {
  token_set out;
  out.T = T;
  out.tokens.reserve(set.size() * static_cast<std::size_t>(T));
  for (std::size_t i = 0; i < set.size(); ++i) {
    const auto ids = enc.encode(set[i].input);
    if (static_cast<index>(ids.size()) > T) {
      throw ncl::value_error(ncl::detail::concat(source, ": example ", i + 1, " ('", set[i].input, "') is ", ids.size(),
                                                 " tokens long; the model reads at most ", T));
    }
    out.tokens.insert(out.tokens.end(), static_cast<std::size_t>(T) - ids.size(), enc.pad());
    out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
    out.answers.push_back(set[i].answer);
    auto it = std::find(out.tags.begin(), out.tags.end(), set[i].tag);
    if (it == out.tags.end()) {
      out.tags.push_back(set[i].tag);
      it = out.tags.end() - 1;
    }
    out.tag.push_back(static_cast<std::size_t>(it - out.tags.begin()));
  }
  return out;
}

/// Rows `rows` of a set as one batch: tokens (B, T) and the first answer of each.
struct batch {
  index B = 0, T = 0;
  std::vector<std::int32_t> tokens;
  std::vector<std::int64_t> answers;
  std::vector<index> rows;
};

inline void gather(const token_set& set, std::span<const index> rows, batch& out) {
  out.B = static_cast<index>(rows.size());
  out.T = set.T;
  out.rows.assign(rows.begin(), rows.end());
  out.tokens.clear();
  out.answers.clear();
  for (index r : rows) {
    out.tokens.insert(out.tokens.end(), set.tokens.begin() + r * set.T, set.tokens.begin() + (r + 1) * set.T);
    out.answers.push_back(set.answers[static_cast<std::size_t>(r)].front());
  }
}

}  // namespace ncl_experiment
