// The one tokenizer interface (text -> ids -> text), UTF-8 validation shared by every
// tokenizer, and the rule that finds the default tokenizer.json on disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/core/error.hpp"

namespace ncl {

using token_id = std::int32_t;

/// A tokenizer turns UTF-8 text into token ids and back. Every implementation keeps the
/// contract: encode() throws ncl::value_error naming the byte offset of the first invalid
/// UTF-8 sequence; decode() throws ncl::value_error for an id outside [0, vocab_size());
/// decode(encode(s)) == s for every valid UTF-8 string s. decode() returns the exact bytes
/// of the tokens, so decoding a prefix of a sequence may end inside a UTF-8 character.
class tokenizer {
 public:
  virtual ~tokenizer() = default;
  virtual std::vector<token_id> encode(std::string_view text) const = 0;
  virtual std::string decode(std::span<const token_id> ids) const = 0;
  virtual std::size_t vocab_size() const = 0;
};

namespace detail {

/// Length of the valid UTF-8 sequence at text[pos], or 0 when it is invalid (bad lead
/// byte, missing continuation, overlong form, surrogate, or above U+10FFFF).
inline std::size_t utf8_sequence_length(std::string_view text, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const std::size_t n = text.size();
  const unsigned char b0 = byte(pos);
  if (b0 < 0x80) return 1;
  const auto continuation = [&](std::size_t i) { return i < n && (byte(i) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) return continuation(pos + 1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!continuation(pos + 1) || !continuation(pos + 2)) return 0;
    const unsigned char b1 = byte(pos + 1);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!continuation(pos + 1) || !continuation(pos + 2) || !continuation(pos + 3)) return 0;
    const unsigned char b1 = byte(pos + 1);
    if (b0 == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace detail

/// Throws ncl::value_error naming the byte offset of the first invalid UTF-8 sequence in
/// `text`; `what` names the argument in the message.
inline void check_utf8(std::string_view text, std::string_view what = "text") {
  std::size_t pos = 0;
  const std::size_t n = text.size();
  while (pos < n) {
    // ASCII runs are the common case: skip them eight bytes at a time.
    while (pos + 8 <= n) {
      std::uint64_t word = 0;
      for (int i = 0; i < 8; ++i)
        word |= std::uint64_t{static_cast<unsigned char>(text[pos + i])} << (8 * i);
      if (word & 0x8080808080808080ULL) break;
      pos += 8;
    }
    if (pos >= n) break;
    const std::size_t len = detail::utf8_sequence_length(text, pos);
    if (len == 0) {
      throw value_error(detail::concat(what, ": invalid UTF-8 at byte offset ", pos, " (byte 0x",
                                       std::hex, static_cast<int>(static_cast<unsigned char>(text[pos])),
                                       ")"));
    }
    pos += len;
  }
}

/// Where ncl looks for a tokenizer.json when none is given: $NCL_TOKENIZER if set, else
/// ${NCL_CACHE_DIR:-$HOME/.cache/ncl}/tokenizers/llama3/tokenizer.json, the file that
/// cmake/fetch_tokenizer.sh fetches.
inline std::filesystem::path default_tokenizer_path() {
  if (const char* explicit_path = std::getenv("NCL_TOKENIZER"); explicit_path && *explicit_path)
    return explicit_path;
  std::filesystem::path cache;
  if (const char* dir = std::getenv("NCL_CACHE_DIR"); dir && *dir) {
    cache = dir;
  } else {
    const char* home = std::getenv("HOME");
    cache = std::filesystem::path(home && *home ? home : ".") / ".cache" / "ncl";
  }
  return cache / "tokenizers" / "llama3" / "tokenizer.json";
}

}  // namespace ncl
