// Reading a Hugging Face tokenizer.json quickly: one SAX pass (nlohmann::json) that stores
// model.vocab and model.merges (the 9 MB of LLaMA 3's file) as flat arrays of strings in one
// arena, and builds an ordinary JSON tree for everything else (a few kilobytes). Skipping
// the tree for the big parts keeps loading LLaMA 3's file well under half a second.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ncl/core/error.hpp"

namespace ncl {

/// A tokenizer.json split into its small settings tree and its big BPE tables.
struct tokenizer_json {
  struct piece {  // a string stored in `arena`
    std::uint32_t offset = 0, length = 0;
  };
  struct vocab_entry {
    piece token;
    std::int64_t id = 0;
  };

  nlohmann::json settings;                        // the file without model.vocab, model.merges
  std::string arena;                              // vocabulary and merge strings, back to back
  std::vector<vocab_entry> vocab;                 // model.vocab in file order
  std::vector<std::pair<piece, piece>> merges;    // model.merges (left, right) in rank order
  bool has_vocab = false, has_merges = false;

  std::string_view view(piece p) const { return std::string_view(arena).substr(p.offset, p.length); }
};

namespace detail {

class tokenizer_json_sax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit tokenizer_json_sax(tokenizer_json& out) : out_(out) {}

  // Set when parsing stopped: a JSON syntax error (with its byte offset) or a value of the
  // wrong kind inside model.vocab / model.merges.
  bool syntax_error = false;
  std::size_t error_offset = 0;
  std::string error_message;

  bool null() override { return scalar(nlohmann::json(nullptr)); }
  bool boolean(bool b) override { return scalar(nlohmann::json(b)); }
  bool number_integer(number_integer_t i) override {
    if (in(kind::vocab)) return vocab_id(i);
    return scalar(nlohmann::json(i));
  }
  bool number_unsigned(number_unsigned_t u) override {
    if (in(kind::vocab)) return vocab_id(u > 0x7FFFFFFFu ? -1 : static_cast<std::int64_t>(u));
    return scalar(nlohmann::json(u));
  }
  bool number_float(number_float_t f, const string_t&) override { return scalar(nlohmann::json(f)); }
  bool binary(binary_t&) override { return fail("unexpected binary value"); }

  bool string(string_t& s) override {
    if (in(kind::merges)) {  // "left right"
      const std::size_t space = s.find(' ', 1);
      if (space == std::string::npos)
        return fail("model.merges[" + std::to_string(out_.merges.size()) + "] = \"" + s + "\" is not \"left right\"");
      const std::string_view view(s);
      out_.merges.emplace_back(store(view.substr(0, space)), store(view.substr(space + 1)));
      return true;
    }
    if (in(kind::merge_pair)) {
      frame& f = stack_.back();
      if (f.pair_count == 2) return fail("model.merges[" + std::to_string(out_.merges.size()) + "] has more than two tokens");
      f.pair[f.pair_count++] = store(s);
      return true;
    }
    return scalar(nlohmann::json(std::move(s)));
  }

  bool start_object(std::size_t) override {
    if (!stack_.empty() && stack_.back().model && stack_.back().key == "vocab") {
      out_.has_vocab = true;
      stack_.push_back({kind::vocab, nullptr});
      return true;
    }
    if (in_table()) return fail("unexpected object in " + table_name());
    const bool model = stack_.size() == 1 && stack_.back().key == "model";
    nlohmann::json* node = place(nlohmann::json::object());
    stack_.push_back({kind::object, node});
    stack_.back().model = model;
    return true;
  }

  bool key(string_t& k) override {
    frame& f = stack_.back();
    if (f.k == kind::vocab) {
      f.pending = store(k);
    } else {
      f.key = std::move(k);
    }
    return true;
  }

  bool end_object() override {
    stack_.pop_back();
    return true;
  }

  bool start_array(std::size_t) override {
    if (!stack_.empty() && stack_.back().model && stack_.back().key == "merges") {
      out_.has_merges = true;
      stack_.push_back({kind::merges, nullptr});
      return true;
    }
    if (in(kind::merges)) {
      stack_.push_back({kind::merge_pair, nullptr});
      return true;
    }
    if (in_table()) return fail("unexpected array in " + table_name());
    nlohmann::json* node = place(nlohmann::json::array());
    stack_.push_back({kind::array, node});
    return true;
  }

  bool end_array() override {
    if (in(kind::merge_pair)) {
      const frame f = stack_.back();
      if (f.pair_count != 2) return fail("model.merges[" + std::to_string(out_.merges.size()) + "] is not a pair of tokens");
      out_.merges.emplace_back(f.pair[0], f.pair[1]);
    }
    stack_.pop_back();
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    syntax_error = true;
    error_offset = position > 0 ? position - 1 : 0;
    error_message = e.what();
    return false;
  }

 private:
  enum class kind { object, array, vocab, merges, merge_pair };
  struct frame {
    kind k;
    nlohmann::json* node;  // the tree node (object and array frames)
    std::string key;       // the current key (object frames)
    bool model = false;    // this object is the root's "model"
    tokenizer_json::piece pending{};  // the current key (vocab frame)
    int pair_count = 0;
    tokenizer_json::piece pair[2]{};
    frame(kind k_, nlohmann::json* node_) : k(k_), node(node_) {}
  };

  bool in(kind k) const { return !stack_.empty() && stack_.back().k == k; }
  bool in_table() const { return in(kind::vocab) || in(kind::merges) || in(kind::merge_pair); }
  std::string table_name() const { return in(kind::vocab) ? "model.vocab" : "model.merges"; }

  bool fail(std::string message) {
    error_message = std::move(message);
    return false;
  }

  tokenizer_json::piece store(std::string_view s) {
    const tokenizer_json::piece p{static_cast<std::uint32_t>(out_.arena.size()), static_cast<std::uint32_t>(s.size())};
    out_.arena.append(s);
    return p;
  }

  bool vocab_id(std::int64_t id) {
    out_.vocab.push_back({stack_.back().pending, id});
    return true;
  }

  bool scalar(nlohmann::json value) {
    if (in(kind::vocab)) return fail("model.vocab[\"" + std::string(out_.view(stack_.back().pending)) + "\"] is not an integer id");
    if (in_table()) return fail("model.merges[" + std::to_string(out_.merges.size()) + "] is not a string or a pair of strings");
    place(std::move(value));
    return true;
  }

  /// Puts a value where the parser is: the root, the current key of an object, or the end
  /// of an array. Pointers to enclosing containers stay valid: only the innermost grows.
  nlohmann::json* place(nlohmann::json value) {
    if (stack_.empty()) {
      out_.settings = std::move(value);
      return &out_.settings;
    }
    frame& f = stack_.back();
    if (f.k == kind::object) {
      nlohmann::json& slot = (*f.node)[f.key];
      slot = std::move(value);
      return &slot;
    }
    f.node->push_back(std::move(value));
    return &f.node->back();
  }

  tokenizer_json& out_;
  std::vector<frame> stack_;
};

}  // namespace detail

/// Reads tokenizer.json text. Throws ncl::parse_error ("ORIGIN:LINE:COL: error: ...") for
/// JSON syntax errors and ncl::io_error for wrongly typed vocabulary or merge entries.
inline tokenizer_json read_tokenizer_json(std::string_view text, const std::string& origin) {
  tokenizer_json out;
  detail::tokenizer_json_sax sax(out);
  const bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &sax);
  if (ok) return out;
  if (sax.syntax_error) {
    const std::size_t offset = std::min(sax.error_offset, text.size());
    int line = 1, column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw parse_error(origin, line, column, "invalid JSON: " + sax.error_message);
  }
  throw io_error(origin + ": malformed tokenizer.json: " + sax.error_message);
}

}  // namespace ncl
