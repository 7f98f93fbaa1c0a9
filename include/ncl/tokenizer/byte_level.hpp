// Byte-level text: GPT-2's reversible byte <-> printable code point mapping used in
// byte-level BPE vocabularies, and byte_tokenizer, the fallback tokenizer whose 256 ids are
// the bytes of the UTF-8 text (examples run with it when no tokenizer.json is at hand).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/core/error.hpp"
#include "ncl/tokenizer/tokenizer.hpp"

namespace ncl {

namespace detail {

/// GPT-2's bytes_to_unicode: printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC,
/// U+00AE..U+00FF) stand for themselves; the other 68 bytes map, in byte order, to
/// U+0100, U+0101, ... so every byte has a visible code point in the vocabulary.
struct byte_level_alphabet {
  std::array<char32_t, 256> code_point_of_byte{};
  std::array<int, 324> byte_of_code_point{};  // -1 where no byte maps

  byte_level_alphabet() {
    byte_of_code_point.fill(-1);
    const auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const int cp = printable(b) ? b : next++;
      code_point_of_byte[static_cast<std::size_t>(b)] = static_cast<char32_t>(cp);
      byte_of_code_point[static_cast<std::size_t>(cp)] = b;
    }
  }
};

inline const byte_level_alphabet& byte_level() {
  static const byte_level_alphabet alphabet;
  return alphabet;
}

/// Appends the UTF-8 encoding of code point `cp` to `out`.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace detail

/// Maps raw bytes to their byte-level vocabulary spelling ("hello world" -> "helloĠworld").
inline std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes)
    detail::append_utf8(out, detail::byte_level().code_point_of_byte[static_cast<unsigned char>(c)]);
  return out;
}

/// The inverse of bytes_to_byte_level. Returns false (and leaves `out` partly written) when
/// `spelling` is not valid UTF-8 or holds a code point outside the byte-level alphabet.
inline bool byte_level_to_bytes(std::string_view spelling, std::string& out) {
  std::size_t pos = 0;
  while (pos < spelling.size()) {
    const std::size_t len = detail::utf8_sequence_length(spelling, pos);
    if (len == 0 || len > 2) return false;  // the alphabet ends at U+0143: 1 or 2 bytes
    const auto b0 = static_cast<unsigned char>(spelling[pos]);
    const char32_t cp = len == 1 ? b0
                                 : ((b0 & 0x1Fu) << 6) |
                                       (static_cast<unsigned char>(spelling[pos + 1]) & 0x3Fu);
    if (cp >= detail::byte_level().byte_of_code_point.size()) return false;
    const int byte = detail::byte_level().byte_of_code_point[cp];
    if (byte < 0) return false;
    out += static_cast<char>(byte);
    pos += len;
  }
  return true;
}

/// The fallback tokenizer: id b is byte b of the UTF-8 text, 256 ids, no file needed.
class byte_tokenizer final : public tokenizer {
 public:
  std::vector<token_id> encode(std::string_view text) const override {
    check_utf8(text);
    std::vector<token_id> ids(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }

  std::string decode(std::span<const token_id> ids) const override {
    std::string text(ids.size(), '\0');
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] > 255)
        throw value_error(detail::concat("byte_tokenizer::decode: ids[", i, "] = ", ids[i],
                                         " is outside [0, 256)"));
      text[i] = static_cast<char>(static_cast<unsigned char>(ids[i]));
    }
    return text;
  }

  std::size_t vocab_size() const override { return 256; }
};

}  // namespace ncl
