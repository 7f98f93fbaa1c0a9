// Byte-level BPE loaded from a Hugging Face tokenizer.json (LLaMA 3, GPT-2 style files):
// added/special tokens are split out first, the rest goes through the Split pre-tokenizer
// regex (PCRE2) and the BPE merges of each piece's bytes. See tokenizer.hpp for the contract.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ncl/core/error.hpp"
#include "ncl/tokenizer/byte_level.hpp"
#include "ncl/tokenizer/hash_table.hpp"
#include "ncl/tokenizer/merge.hpp"
#include "ncl/tokenizer/regex.hpp"
#include "ncl/tokenizer/tokenizer.hpp"
#include "ncl/tokenizer/tokenizer_json.hpp"

namespace ncl {

/// A token from tokenizer.json's "added_tokens": matched in the text before pre-tokenizing
/// (leftmost, then longest, as Hugging Face does by default).
struct added_token {
  std::string content;
  token_id id = 0;
  bool special = false;
  bool lstrip = false;  // swallow the Unicode white space before it
  bool rstrip = false;  // swallow the Unicode white space after it
};

namespace detail {

/// The Unicode White_Space code point at text[pos] (its byte length), or 0.
inline std::size_t white_space_length(std::string_view text, std::size_t pos) {
  const auto b = [&](std::size_t i) { return i < text.size() ? static_cast<unsigned char>(text[i]) : 0u; };
  const unsigned c0 = b(pos);
  if ((c0 >= 0x09 && c0 <= 0x0D) || c0 == 0x20) return 1;
  if (c0 == 0xC2 && (b(pos + 1) == 0x85 || b(pos + 1) == 0xA0)) return 2;              // U+0085, U+00A0
  if (c0 == 0xE1 && b(pos + 1) == 0x9A && b(pos + 2) == 0x80) return 3;                // U+1680
  if (c0 == 0xE2 && b(pos + 1) == 0x80) {
    const unsigned c2 = b(pos + 2);
    if (c2 <= 0x8A || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF) return 3;                // U+2000..200A, 2028, 2029, 202F
  }
  if (c0 == 0xE2 && b(pos + 1) == 0x81 && b(pos + 2) == 0x9F) return 3;                // U+205F
  if (c0 == 0xE3 && b(pos + 1) == 0x80 && b(pos + 2) == 0x80) return 3;                // U+3000
  return 0;
}

/// Byte length of the White_Space code point ending at text[end - 1], or 0.
inline std::size_t white_space_before(std::string_view text, std::size_t end) {
  for (std::size_t len = 1; len <= 3 && len <= end; ++len)
    if (white_space_length(text, end - len) == len) return len;
  return 0;
}

/// GPT-2's pattern, which the ByteLevel pre-tokenizer applies when "use_regex" is true.
inline constexpr const char* gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace detail

class bpe_tokenizer final : public tokenizer {
 public:
  /// Loads a byte-level BPE tokenizer.json. Throws ncl::io_error (missing or unreadable file,
  /// unsupported model or settings, vocabulary/merge inconsistencies; the message starts with
  /// the path) or ncl::parse_error (JSON syntax, as PATH:LINE:COL).
  static bpe_tokenizer from_file(const std::filesystem::path& path) {
    // A directory opens as a stream whose end is at 2^63 - 1: refuse it before sizing a buffer.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      throw io_error(detail::concat(path.string(), ": is a directory, not a tokenizer file"));
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(detail::concat(path.string(), ": cannot open tokenizer file"));
    std::string text;
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) throw io_error(detail::concat(path.string(), ": cannot read tokenizer file"));
    constexpr std::streamoff max_size = std::streamoff(1) << 30;  // LLaMA 3's is 9 MB
    if (size > max_size) {
      throw io_error(detail::concat(path.string(), ": ", size, " bytes, more than a tokenizer file may have (1 GiB)"));
    }
    text.resize(static_cast<std::size_t>(size));
    in.seekg(0, std::ios::beg);
    if (!in.read(text.data(), size)) throw io_error(detail::concat(path.string(), ": cannot read tokenizer file"));
    return from_json(text, path.string());
  }

  /// Loads from tokenizer.json text; `origin` names it in error messages.
  static bpe_tokenizer from_json(std::string_view json_text, const std::string& origin = "<tokenizer.json>") {
    const tokenizer_json file = read_tokenizer_json(json_text, origin);
    bpe_tokenizer result;
    try {
      result.load(file, origin);
    } catch (const nlohmann::json::exception& e) {
      throw io_error(detail::concat(origin, ": malformed tokenizer.json: ", e.what()));
    }
    return result;
  }

  std::vector<token_id> encode(std::string_view text) const override {
    check_utf8(text);
    std::vector<token_id> ids;
    ids.reserve(text.size() / 3 + 16);
    // One thread at a time uses the shared pre-token cache; a concurrent call goes without.
    std::unique_lock<std::mutex> lock(cache_->mutex, std::try_to_lock);
    word_cache* cache = lock.owns_lock() ? cache_.get() : nullptr;
    std::vector<token_id> scratch;
    // Added tokens first: the text between them is pre-tokenized, they map to their id.
    std::size_t section = 0;  // start of the text not yet encoded
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t match = added_first_byte_[static_cast<unsigned char>(text[pos])] ? match_added(text, pos) : 0;
      if (match == 0) { ++pos; continue; }
      const added_token& token = added_tokens_[*added_index_.find(text.substr(pos, match))];
      std::size_t section_end = pos;
      if (token.lstrip)
        while (section_end > section) {
          const std::size_t len = detail::white_space_before(text, section_end);
          if (len == 0) break;
          section_end -= len;
        }
      encode_section(text, section, section_end, ids, scratch, cache);
      ids.push_back(token.id);
      pos += match;
      if (token.rstrip)
        while (pos < text.size()) {
          const std::size_t len = detail::white_space_length(text, pos);
          if (len == 0) break;
          pos += len;
        }
      section = pos;
    }
    encode_section(text, section, text.size(), ids, scratch, cache);
    return ids;
  }

  std::string decode(std::span<const token_id> ids) const override {
    std::string text;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const token_id id = ids[i];
      if (id < 0 || static_cast<std::size_t>(id) >= token_bytes_.size() || !has_token_[static_cast<std::size_t>(id)])
        throw value_error(detail::concat("bpe_tokenizer::decode: ids[", i, "] = ", id,
                                         " is not a token id (vocabulary size ", token_bytes_.size(), ")"));
      text += token_bytes_[static_cast<std::size_t>(id)];
    }
    return text;
  }

  /// One more than the largest id (LLaMA 3: 128256).
  std::size_t vocab_size() const override { return token_bytes_.size(); }

  /// The id of an added token's content, or of a vocabulary token given by its bytes.
  std::optional<token_id> find(std::string_view token) const {
    if (const std::size_t* index = added_index_.find(token)) return added_tokens_[*index].id;
    if (const token_id* id = vocab_.find(token)) return *id;
    return std::nullopt;
  }

  /// The bytes a token id decodes to.
  std::string_view token_bytes(token_id id) const { return decode_one(id); }

  const std::vector<added_token>& added_tokens() const { return added_tokens_; }
  bool ignore_merges() const { return ignore_merges_; }
  const merge_table& merges() const { return merges_; }
  std::span<const split_regex> pre_tokenizer_regexes() const { return splits_; }
  /// The ids of single bytes: the start of every pre-token's merges.
  token_id byte_id(unsigned char byte) const { return byte_ids_[byte]; }

 private:
  // Ordinary text repeats a few thousand short pre-tokens; their ids are kept in a small
  // cache, which spares the vocabulary and merge tables (megabytes, so cache misses).
  struct word_cache {
    std::mutex mutex;
    detail::word_cache<token_id> words;
  };

  bpe_tokenizer() : cache_(std::make_unique<word_cache>()) {}

  std::string_view decode_one(token_id id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= token_bytes_.size() || !has_token_[static_cast<std::size_t>(id)])
      throw value_error(detail::concat("bpe_tokenizer: ", id, " is not a token id"));
    return token_bytes_[static_cast<std::size_t>(id)];
  }

  /// Byte length of the longest added token starting at text[pos], or 0.
  std::size_t match_added(std::string_view text, std::size_t pos) const {
    for (const std::size_t len : added_lengths_)
      if (pos + len <= text.size() && added_index_.find(text.substr(pos, len))) return len;
    return 0;
  }

  /// Pre-tokenizes and merges text[begin, end), appending the ids.
  void encode_section(std::string_view text, std::size_t begin, std::size_t end, std::vector<token_id>& ids,
                      std::vector<token_id>& scratch, word_cache* cache) const {
    if (begin >= end) return;
    // ByteLevel's add_prefix_space: each section between added tokens that does not start
    // with a space gets one, as Hugging Face pre-tokenizes each section on its own.
    if (add_prefix_space_ && text[begin] != ' ') {
      const std::string spaced = " " + std::string(text.substr(begin, end - begin));
      split_and_merge(spaced, 0, spaced.size(), 0, ids, scratch, cache);
    } else {
      split_and_merge(text, begin, end, 0, ids, scratch, cache);
    }
  }

  void split_and_merge(std::string_view text, std::size_t begin, std::size_t end, std::size_t step,
                       std::vector<token_id>& ids, std::vector<token_id>& scratch, word_cache* cache) const {
    if (step == splits_.size()) {
      encode_word(text.substr(begin, end - begin), ids, scratch, cache);
      return;
    }
    splits_[step].split(text, begin, end, [&](std::size_t b, std::size_t e) {
      split_and_merge(text, b, e, step + 1, ids, scratch, cache);
    });
  }

  /// The ids of one pre-token: the whole word when ignore_merges and it is in the
  /// vocabulary, else its cached or freshly computed merges.
  void encode_word(std::string_view word, std::vector<token_id>& ids, std::vector<token_id>& scratch,
                   word_cache* cache) const {
    if (word.size() == 1) {
      ids.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
      return;
    }
    const std::uint64_t hash = detail::hash_bytes(word);
    if (cache)
      if (const auto hit = cache->words.find(word, hash); !hit.empty()) {
        ids.insert(ids.end(), hit.begin(), hit.end());
        return;
      }
    if (ignore_merges_)
      if (const token_id* id = vocab_.find(word, hash)) {
        ids.push_back(*id);
        if (cache) cache->words.insert(word, hash, std::span<const token_id>(id, 1));
        return;
      }
    scratch.resize(word.size());
    for (std::size_t i = 0; i < word.size(); ++i) scratch[i] = byte_ids_[static_cast<unsigned char>(word[i])];
    merge_word(scratch, merges_);
    ids.insert(ids.end(), scratch.begin(), scratch.end());
    if (cache) cache->words.insert(word, hash, scratch);
  }

  // ---- loading ------------------------------------------------------------------------
  [[noreturn]] static void unsupported(const std::string& origin, const std::string& what) {
    throw io_error(detail::concat(origin, ": unsupported tokenizer.json: ", what,
                                  " (ncl loads byte-level BPE tokenizers such as LLaMA 3's and GPT-2's)"));
  }

  static std::string type_of(const nlohmann::json& j) {
    return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
  }

  void load_pre_tokenizer(const nlohmann::json& pre, const std::string& origin) {
    if (pre.is_null()) return;
    const std::string type = type_of(pre);
    if (type == "Sequence") {
      for (const auto& step : pre.at("pretokenizers")) load_pre_tokenizer(step, origin);
    } else if (type == "Split") {
      const auto& pattern = pre.at("pattern");
      std::string regex;
      if (pattern.contains("Regex")) {
        regex = pattern["Regex"].get<std::string>();
      } else if (pattern.contains("String")) {
        const std::string literal = pattern["String"].get<std::string>();
        if (literal.find("\\E") != std::string::npos) unsupported(origin, "a Split string containing \\E");
        regex = "\\Q" + literal + "\\E";
      } else {
        unsupported(origin, "a Split pattern that is neither Regex nor String");
      }
      const std::string behavior = pre.value("behavior", std::string("Isolated"));
      if (behavior != "Isolated") unsupported(origin, "Split behavior '" + behavior + "' (only Isolated)");
      if (pre.value("invert", false)) unsupported(origin, "an inverted Split");
      try {
        splits_.emplace_back(regex);
      } catch (const value_error& e) {
        throw io_error(detail::concat(origin, ": ", e.what()));
      }
    } else if (type == "ByteLevel") {
      if (pre.value("add_prefix_space", false)) add_prefix_space_ = true;
      if (pre.value("use_regex", true)) splits_.emplace_back(detail::gpt2_pattern);
    } else {
      unsupported(origin, "pre_tokenizer type '" + type + "'");
    }
  }

  void load(const tokenizer_json& file, const std::string& origin) {
    const nlohmann::json& json = file.settings;
    if (!json.is_object()) throw io_error(detail::concat(origin, ": tokenizer.json is not a JSON object"));
    if (!json.contains("model")) throw io_error(detail::concat(origin, ": tokenizer.json has no \"model\""));
    const auto& model = json["model"];
    const std::string model_type = type_of(model);
    if (!(model_type == "BPE" || (model_type.empty() && file.has_merges)))
      unsupported(origin, "model type '" + model_type + "' (only BPE)");
    if (!file.has_vocab || !file.has_merges)
      throw io_error(detail::concat(origin, ": model.vocab (an object) or model.merges (an array) is missing"));
    if (json.contains("normalizer") && !json["normalizer"].is_null())
      unsupported(origin, "normalizer '" + type_of(json["normalizer"]) + "'");
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() > 0.0)
      unsupported(origin, "BPE dropout");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(key) && !model[key].is_null() && !model[key].get<std::string>().empty())
        unsupported(origin, std::string("BPE ") + key);
    if (model.value("byte_fallback", false)) unsupported(origin, "BPE byte_fallback");
    if (json.contains("decoder") && !json["decoder"].is_null() && type_of(json["decoder"]) != "ByteLevel")
      unsupported(origin, "decoder '" + type_of(json["decoder"]) + "' (only ByteLevel)");
    ignore_merges_ = model.value("ignore_merges", false);
    if (json.contains("pre_tokenizer")) load_pre_tokenizer(json["pre_tokenizer"], origin);

    // Vocabulary: byte-level spellings -> ids, kept by spelling only while reading merges.
    // As for the merges below, slots are prefetched a few entries ahead of their insertion.
    constexpr std::size_t ahead = 16;
    const std::size_t n_vocab = file.vocab.size();
    std::vector<std::uint64_t> hashes(n_vocab);
    std::int64_t max_id = -1;
    for (std::size_t i = 0; i < n_vocab; ++i) {
      const auto& entry = file.vocab[i];
      if (entry.id < 0)
        throw io_error(detail::concat(origin, ": model.vocab[\"", file.view(entry.token), "\"] = ", entry.id, " is not a valid id"));
      hashes[i] = detail::hash_bytes(file.view(entry.token));
      max_id = std::max(max_id, entry.id);
    }
    detail::string_table<token_id> spelled;
    spelled.reserve(n_vocab);
    for (std::size_t i = 0; i < n_vocab; ++i) {
      if (i + ahead < n_vocab) spelled.prefetch(hashes[i + ahead]);
      spelled.insert_or_assign(file.view(file.vocab[i].token), static_cast<token_id>(file.vocab[i].id), hashes[i]);
    }
    const auto& added = json.contains("added_tokens") ? json["added_tokens"] : nlohmann::json::array();
    for (const auto& token : added) max_id = std::max(max_id, token.at("id").get<std::int64_t>());
    if (max_id >= (std::int64_t{1} << 24))
      throw io_error(detail::concat(origin, ": token id ", max_id, " is implausibly large (limit 2^24)"));
    // The id tables are sized by the largest id: ids may leave gaps, but not so many that a
    // small file makes them huge (each id costs a string, 32 bytes).
    const auto defined = static_cast<std::int64_t>(n_vocab + added.size());
    if (max_id >= 2 * defined + 1024)
      throw io_error(detail::concat(origin, ": token id ", max_id, " is far past the ", defined,
                                    " tokens the file defines (ids must stay below 2 x tokens + 1024)"));
    token_bytes_.assign(static_cast<std::size_t>(max_id + 1), std::string());
    has_token_.assign(static_cast<std::size_t>(max_id + 1), false);
    std::vector<char> byte_level(n_vocab, 0);  // whether entry i is spelled in the byte-level alphabet
    for (std::size_t i = 0; i < n_vocab; ++i) {
      const auto& entry = file.vocab[i];
      const std::string_view spelling = file.view(entry.token);
      const auto id = static_cast<std::size_t>(entry.id);
      if (has_token_[id]) throw io_error(detail::concat(origin, ": id ", id, " appears twice in model.vocab"));
      std::string& bytes = token_bytes_[id];
      // A spelling outside the byte-level alphabet cannot come out of the merges; it still
      // decodes, to its own text.
      byte_level[i] = byte_level_to_bytes(spelling, bytes);
      if (!byte_level[i]) bytes.assign(spelling);
      hashes[i] = detail::hash_bytes(bytes);
      has_token_[id] = true;
    }
    vocab_.reserve(n_vocab);
    for (std::size_t i = 0; i < n_vocab; ++i) {
      if (i + ahead < n_vocab) vocab_.prefetch(hashes[i + ahead]);
      const auto id = static_cast<std::size_t>(file.vocab[i].id);
      if (byte_level[i]) vocab_.insert_or_assign(token_bytes_[id], static_cast<token_id>(id), hashes[i]);
    }
    for (int b = 0; b < 256; ++b) {
      const char byte = static_cast<char>(b);
      const token_id* id = vocab_.find(std::string_view(&byte, 1));
      if (!id)
        throw io_error(detail::concat(origin, ": model.vocab lacks the byte-level token of byte 0x", std::hex, b,
                                      ": not a byte-level BPE vocabulary"));
      byte_ids_[static_cast<std::size_t>(b)] = *id;
    }

    // Merges in rank order; a later duplicate wins, as in Hugging Face tokenizers. The
    // tables are far bigger than the CPU caches, so the lookups are issued in batches:
    // hash a merge's three strings first, prefetch their slots, look them up a few merges
    // later.
    const std::size_t n_merges = file.merges.size();
    hashes.assign(3 * n_merges, 0);
    std::string joined;
    for (std::size_t i = 0; i < n_merges; ++i) {
      const auto& [l, r] = file.merges[i];
      joined.assign(file.view(l)).append(file.view(r));
      hashes[3 * i] = detail::hash_bytes(file.view(l));
      hashes[3 * i + 1] = detail::hash_bytes(file.view(r));
      hashes[3 * i + 2] = detail::hash_bytes(joined);
    }
    struct resolved {
      token_id left, right, joined;
    };
    std::vector<resolved> ids(n_merges);
    for (std::size_t i = 0; i < n_merges; ++i) {
      if (i + ahead < n_merges)
        for (std::size_t k = 0; k < 3; ++k) spelled.prefetch(hashes[3 * (i + ahead) + k]);
      const auto& [l, r] = file.merges[i];
      const std::string_view left = file.view(l), right = file.view(r);
      joined.assign(left).append(right);
      const token_id* left_id = spelled.find(left, hashes[3 * i]);
      const token_id* right_id = spelled.find(right, hashes[3 * i + 1]);
      const token_id* joined_id = spelled.find(joined, hashes[3 * i + 2]);
      if (!left_id || !right_id || !joined_id)
        throw io_error(detail::concat(origin, ": model.merges[", i, "] (\"", left, "\", \"", right,
                                      "\") uses a token missing from model.vocab"));
      ids[i] = {*left_id, *right_id, *joined_id};
    }
    merges_.reserve(n_merges);
    for (std::size_t i = 0; i < n_merges; ++i) {
      if (i + ahead < n_merges) merges_.prefetch(ids[i + ahead].left, ids[i + ahead].right);
      merges_.set(ids[i].left, ids[i].right, {static_cast<std::int32_t>(i), ids[i].joined});
    }

    for (const auto& token : added) {
      added_token t;
      t.content = token.at("content").get<std::string>();
      t.id = static_cast<token_id>(token.at("id").get<std::int64_t>());
      t.special = token.value("special", false);
      t.lstrip = token.value("lstrip", false);
      t.rstrip = token.value("rstrip", false);
      if (token.value("single_word", false))
        unsupported(origin, "added token '" + t.content + "' with single_word");
      if (t.content.empty()) throw io_error(detail::concat(origin, ": added token ", t.id, " has empty content"));
      if (t.id < 0) throw io_error(detail::concat(origin, ": added token '", t.content, "' has id ", t.id));
      auto& slot = token_bytes_[static_cast<std::size_t>(t.id)];
      if (has_token_[static_cast<std::size_t>(t.id)] && slot != t.content)
        throw io_error(detail::concat(origin, ": added token '", t.content, "' reuses id ", t.id, " of another token"));
      slot = t.content;
      has_token_[static_cast<std::size_t>(t.id)] = true;
      added_first_byte_[static_cast<unsigned char>(t.content[0])] = true;
      if (std::find(added_lengths_.begin(), added_lengths_.end(), t.content.size()) == added_lengths_.end())
        added_lengths_.push_back(t.content.size());
      if (!added_index_.find(t.content)) {
        added_index_.insert_or_assign(t.content, added_tokens_.size());
        added_tokens_.push_back(std::move(t));
      }
    }
    std::sort(added_lengths_.begin(), added_lengths_.end(), std::greater<>());
  }

  std::vector<std::string> token_bytes_;          // id -> the bytes it decodes to
  std::vector<bool> has_token_;                   // id -> whether the id is used
  detail::string_table<token_id> vocab_;          // model vocabulary by bytes
  std::array<token_id, 256> byte_ids_{};          // id of each single byte
  merge_table merges_;
  bool ignore_merges_ = false;
  std::vector<split_regex> splits_;               // applied in order, each splitting the last's pieces
  bool add_prefix_space_ = false;
  std::vector<added_token> added_tokens_;
  detail::string_table<std::size_t> added_index_; // content -> index in added_tokens_
  std::vector<std::size_t> added_lengths_;        // distinct content lengths, longest first
  std::array<bool, 256> added_first_byte_{};      // bytes that start some added token
  mutable std::unique_ptr<word_cache> cache_;     // the pre-token cache (see encode)
};

/// The tokenizer at `path`, or the default one (default_tokenizer_path()).
inline bpe_tokenizer load_tokenizer(const std::filesystem::path& path = default_tokenizer_path()) {
  return bpe_tokenizer::from_file(path);
}

}  // namespace ncl
