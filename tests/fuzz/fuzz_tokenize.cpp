// libFuzzer target for what users give a tokenizer: text to encode and ids to decode, for the
// byte tokenizer and a small byte-level BPE (tests/tokenizer/data/tiny_bpe.json, with added
// tokens). The first byte picks the direction.
//   even: the rest is text. Valid UTF-8 encodes to ids inside the vocabulary and decodes back
//         to the same bytes (for the BPE: unless an added token that strips the white space
//         beside it occurs); invalid UTF-8 throws ncl::value_error naming the byte offset.
//   odd:  the rest is little-endian int32 ids. Each tokenizer decodes them, or throws
//         ncl::value_error when one is outside [0, vocab_size()).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/tokenizer/bpe.hpp"
#include "ncl/tokenizer/byte_level.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_tokenize: %s\n", what.c_str());
  std::abort();
}

const ncl::bpe_tokenizer& bpe() {
  static const ncl::bpe_tokenizer tok =
      ncl::bpe_tokenizer::from_file(std::string(NCL_SOURCE_DIR) + "/tests/tokenizer/data/tiny_bpe.json");
  return tok;
}

bool valid_utf8(std::string_view text) {
  try {
    ncl::check_utf8(text);
    return true;
  } catch (const ncl::value_error&) {
    return false;
  }
}

void encode_both(std::string_view text) {
  const ncl::byte_tokenizer bytes;
  const bool valid = valid_utf8(text);
  bool stripping_token = false;
  for (const auto& t : bpe().added_tokens()) {
    stripping_token = stripping_token || ((t.lstrip || t.rstrip) && text.find(t.content) != std::string_view::npos);
  }
  const ncl::tokenizer* toks[] = {&bytes, &bpe()};
  for (const ncl::tokenizer* tok : toks) {
    std::vector<ncl::token_id> ids;
    try {
      ids = tok->encode(text);
    } catch (const ncl::value_error& e) {
      if (valid) fail(std::string("valid UTF-8 refused: ") + e.what());
      if (std::string_view(e.what()).find("byte offset") == std::string_view::npos) fail(std::string("no offset: ") + e.what());
      continue;
    }
    if (!valid) fail("invalid UTF-8 encoded");
    for (const auto id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= tok->vocab_size()) fail("an id outside the vocabulary");
    }
    const bool may_strip = tok == &bpe() && stripping_token;
    if (tok->decode(ids) != text && !may_strip) fail("decode(encode(s)) != s");
  }
}

void decode_both(const std::uint8_t* data, std::size_t size) {
  std::vector<ncl::token_id> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
  const ncl::byte_tokenizer bytes;
  const ncl::tokenizer* toks[] = {&bytes, &bpe()};
  for (const ncl::tokenizer* tok : toks) {
    bool in_range = true;
    for (const auto id : ids) in_range = in_range && id >= 0 && static_cast<std::size_t>(id) < tok->vocab_size();
    try {
      const std::string text = tok->decode(ids);
      if (!in_range) fail("an id outside the vocabulary decoded");
      if (tok == &bytes && text.size() != ids.size()) fail("the byte tokenizer decoded to the wrong length");
    } catch (const ncl::value_error&) {
      if (in_range) fail("ids inside the vocabulary refused");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    encode_both(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  } else {
    decode_both(data + 1, size - 1);
  }
  return 0;
}
