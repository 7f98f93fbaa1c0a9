// libFuzzer target for tokenizer.json files (ncl::read_tokenizer_json and the byte-level BPE
// loader, bpe_tokenizer::from_json), seeded with small valid tokenizers. Any byte string
// either loads or throws an ncl::error whose message starts with the file's name. A loaded
// tokenizer encodes sample texts to ids inside its vocabulary, decodes them again without
// error, and, when no added token strips the white space beside it, gets the text back.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ncl/tokenizer/bpe.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_tokenizer_json: %s\n", what.c_str());
  std::abort();
}

constexpr const char* samples[] = {
    "Add 3 and 4", "hello world", "  spaces\tand\nnew lines\r\n", "<|end|>x<|e[L] [R] y",
    "caf\xc3\xa9 \xe2\x82\xac 12345 \xf0\x9f\x98\x80", "'s 't 're don't", ""};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto tok = ncl::bpe_tokenizer::from_json(text, "fuzz.json");
    bool strips = false;
    for (const auto& t : tok.added_tokens()) strips = strips || t.lstrip || t.rstrip;
    for (const char* sample : samples) {
      const auto ids = tok.encode(sample);
      for (const auto id : ids) {
        if (id < 0 || static_cast<std::size_t>(id) >= tok.vocab_size()) fail("an id outside the vocabulary");
      }
      const std::string back = tok.decode(ids);
      if (!strips && back != sample) fail(std::string("decode(encode(s)) != s for s = '") + sample + "'");
    }
  } catch (const ncl::error& e) {
    if (std::string_view(e.what()).substr(0, 10) != "fuzz.json:") {
      fail(std::string("an error without the file's name: ") + e.what());
    }
  }
  return 0;
}
