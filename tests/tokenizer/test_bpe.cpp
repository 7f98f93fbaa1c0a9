// Byte-level BPE on a small hand-made tokenizer.json (tests/tokenizer/data/tiny_bpe.json:
// the 256 byte tokens with id = byte, eleven merged tokens, four added tokens, LLaMA 3's
// Split regex), so the loader, the regex split, the merges and the added-token rules are
// tested without the 9 MB LLaMA 3 file.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/tokenizer/bpe.hpp"
#include "ncl/tokenizer/byte_level.hpp"
#include "ncl/tokenizer/hash_table.hpp"
#include "ncl/tokenizer/merge.hpp"
#include "ncl/tokenizer/regex.hpp"
#include "ncl/tokenizer/tokenizer_json.hpp"

namespace {

using ids = std::vector<ncl::token_id>;

const std::string fixture_path = std::string(NCL_SOURCE_DIR) + "/tests/tokenizer/data/tiny_bpe.json";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  return text.replace(pos, from.size(), to);
}

const ncl::bpe_tokenizer& tiny() {
  static const ncl::bpe_tokenizer tok = ncl::bpe_tokenizer::from_file(fixture_path);
  return tok;
}

ids bytes_of(const std::string& s) {
  ids out;
  for (const char c : s) out.push_back(static_cast<unsigned char>(c));
  return out;
}

// Random valid UTF-8 made of pieces that exercise every regex branch and the added tokens.
std::string random_text(ncl::rng& gen, int pieces) {
  static const std::vector<std::string> pool = {
      "a", "h", "e", "l", "o", "t", "the", " ", "  ", "\t", "\n", "\r\n", "1", "2", "12345", "'s", "'LL",
      ".", "!?", "é", "ß", "Ж", "中", "日本", "😀", "👍🏽", "\u200d", "\u00a0", "\u3000", "e\u0301", "<|end|>",
      "<|e", "<|", "|>", "hello", " world", "aaaa"};
  std::string s;
  for (int i = 0; i < pieces; ++i) s += pool[static_cast<std::size_t>(gen.integer(0, static_cast<int>(pool.size()) - 1))];
  return s;
}

}  // namespace

TEST_CASE("tiny tokenizer.json loads: vocabulary, merges, added tokens, flags", "[tokenizer][bpe]") {
  const auto& tok = tiny();
  CHECK(tok.vocab_size() == 271);
  CHECK(tok.merges().size() == 10);
  CHECK(tok.ignore_merges());
  REQUIRE(tok.added_tokens().size() == 4);
  CHECK(tok.added_tokens()[0].content == "<|end|>");
  CHECK(tok.added_tokens()[0].special);
  CHECK_FALSE(tok.added_tokens()[1].special);
  CHECK(tok.added_tokens()[2].lstrip);
  CHECK(tok.added_tokens()[3].rstrip);
  CHECK(tok.find("<|end|>") == 267);
  CHECK(tok.find(" the") == 262);  // vocabulary tokens are looked up by their bytes
  CHECK_FALSE(tok.find("Ġthe").has_value());
  CHECK(tok.token_bytes(262) == " the");
  CHECK(tok.byte_id(' ') == 32);
  REQUIRE(tok.pre_tokenizer_regexes().size() == 1);
}

TEST_CASE("BPE merges by rank, leftmost first, and ignore_merges takes whole vocabulary words", "[tokenizer][bpe]") {
  const auto& tok = tiny();
  CHECK(tok.encode("hello") == ids{260});
  CHECK(tok.encode("the") == ids{261});
  CHECK(tok.encode("hello the") == ids{260, 262});
  CHECK(tok.encode(" world") == ids{266});  // no merges make it: only ignore_merges finds it
  CHECK(tok.encode("aaaaa") == ids{265, 97});  // a a -> [aa a a a] -> [aa aa a] -> [aaaa a]
  CHECK(tok.encode("12345") == ids{263, 51, 52, 53});  // \p{N}{1,3}: "123" "45"
  CHECK(tok.encode("hel") == ids{256, 108});
  CHECK(tok.encode("") == ids{});

  // The same file without ignore_merges spells " world" byte by byte.
  const auto plain = ncl::bpe_tokenizer::from_json(
      replaced(read_text(fixture_path), "\"ignore_merges\": true", "\"ignore_merges\": false"), "no_ignore");
  CHECK_FALSE(plain.ignore_merges());
  CHECK(plain.encode(" world") == bytes_of(" world"));
  CHECK(plain.encode("hello the") == ids{260, 262});
}

TEST_CASE("Split regex isolates matches and the text between them", "[tokenizer][regex]") {
  const auto pieces = [](const ncl::split_regex& re, const std::string& text) {
    std::vector<std::string> out;
    re.split(text, 0, text.size(), [&](std::size_t b, std::size_t e) { out.push_back(text.substr(b, e - b)); });
    return out;
  };
  using strings = std::vector<std::string>;
  CHECK(pieces(ncl::split_regex(R"(\d+)"), "ab12cd3") == strings{"ab", "12", "cd", "3"});
  // An empty match is a zero-width cut, as in Hugging Face tokenizers and transformers.js.
  CHECK(pieces(ncl::split_regex("x*"), "abxxc") == strings{"a", "b", "xx", "c"});
  CHECK(pieces(ncl::split_regex(R"(\p{L}+)"), "Жук 中文!") == strings{"Жук", " ", "中文", "!"});
  const ncl::split_regex llama(tiny().pre_tokenizer_regexes()[0].pattern());
  CHECK(pieces(llama, "I'M  fine\n\n  ok") == strings{"I", "'M", " ", " fine", "\n\n", " ", " ok"});
  CHECK_THROWS_AS(ncl::split_regex("(unclosed"), ncl::value_error);
}

TEST_CASE("added tokens: leftmost-longest match, lstrip and rstrip", "[tokenizer][bpe]") {
  const auto& tok = tiny();
  CHECK(tok.encode("<|end|>") == ids{267});
  CHECK(tok.encode("x<|end|>y") == ids{120, 267, 121});
  CHECK(tok.encode("<|e") == ids{268});
  CHECK(tok.encode("<|end") == ids{268, 110, 100});  // "<|e" then "nd"
  CHECK(tok.encode("<|end|><|end|>") == ids{267, 267});
  CHECK(tok.encode("a \t[L]b") == ids{97, 269, 98});         // lstrip swallows the white space before
  CHECK(tok.encode("a[R]\u3000 b") == ids{97, 270, 98});      // rstrip the (Unicode) white space after
  CHECK(tok.decode(ids{97, 267, 98}) == "a<|end|>b");
}

TEST_CASE("decode(encode(s)) == s for random valid UTF-8", "[tokenizer][bpe]") {
  ncl::rng gen(11);
  const auto& tok = tiny();
  for (int trial = 0; trial < 300; ++trial) {
    const std::string text = random_text(gen, gen.integer(0, 40));
    INFO("text: " << text);
    REQUIRE(tok.decode(tok.encode(text)) == text);
  }
}

TEST_CASE("concurrent encode calls agree with a single-threaded one", "[tokenizer][bpe]") {
  // One call at a time owns the pre-token cache; the others encode without it.
  const auto& tok = tiny();
  ncl::rng gen(23);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(random_text(gen, 200));
  std::vector<ids> expected;
  for (const auto& t : texts) expected.push_back(tok.encode(t));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (int round = 0; round < 5; ++round)
        for (std::size_t i = 0; i < texts.size(); ++i)
          if (tok.encode(texts[i]) != expected[i]) ++mismatches[static_cast<std::size_t>(w)];
    });
  for (auto& t : threads) t.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

TEST_CASE("heap merges equal the plain rescan on random words", "[tokenizer][merge]") {
  const auto& tok = tiny();
  ncl::rng gen(5);
  const std::string alphabet = "ahelot12 ";
  for (int trial = 0; trial < 400; ++trial) {
    const int n = trial < 300 ? gen.integer(0, 40) : gen.integer(100, 400);
    ids word;
    for (int i = 0; i < n; ++i) word.push_back(tok.byte_id(static_cast<unsigned char>(alphabet[static_cast<std::size_t>(gen.integer(0, 8))])));
    ids rescan = word, heap = word;
    ncl::merge_word_rescan(rescan, tok.merges());
    ncl::merge_word_heap(heap, tok.merges());
    REQUIRE(heap == rescan);
  }
}

TEST_CASE("long pre-tokens (a run of 200000 spaces, of letters) stay linear", "[tokenizer][bpe]") {
  const auto& tok = tiny();
  const std::string spaces(200000, ' ');
  const ids a = tok.encode(spaces + "x");
  REQUIRE(a.size() == 200001);  // 199999 spaces, then " x", which is not a token: " " "x"
  CHECK(a[199998] == 32);
  CHECK(a.back() == 120);
  std::string letters;
  for (int i = 0; i < 50000; ++i) letters += "hello";
  const ids b = tok.encode(letters);
  CHECK(b == ids(50000, 260));
  CHECK(tok.decode(b) == letters);
}

TEST_CASE("invalid UTF-8 is a value_error naming the byte offset", "[tokenizer][utf8]") {
  const auto& tok = tiny();
  const ncl::byte_tokenizer bytes;
  const std::vector<std::pair<std::string, std::size_t>> bad = {
      {"\xff", 0}, {"ab\x80", 2}, {"abc\xc3", 3}, {"x\xc0\xaf", 1}, {"12345678\xe0\x80\x80", 8},
      {"\xed\xa0\x80", 0}, {"ok \xf4\x90\x80\x80", 3}, {"\xf0\x9f\x98", 0}, {"é\xe2\x82", 2}};
  for (const auto& [text, offset] : bad) {
    INFO("offset " << offset);
    const std::string expected = "byte offset " + std::to_string(offset);
    CHECK_THROWS_WITH(tok.encode(text), Catch::Contains(expected));
    CHECK_THROWS_AS(tok.encode(text), ncl::value_error);
    CHECK_THROWS_WITH(bytes.encode(text), Catch::Contains(expected));
  }
  CHECK_NOTHROW(ncl::check_utf8("\xf4\x8f\xbf\xbf \xed\x9f\xbf \xc2\x80"));  // U+10FFFF, U+D7FF, U+0080
}

TEST_CASE("bad ids and bad files are ncl errors naming the id or the path", "[tokenizer][errors]") {
  const auto& tok = tiny();
  CHECK_THROWS_AS(tok.decode(ids{1, 271}), ncl::value_error);
  CHECK_THROWS_WITH(tok.decode(ids{1, -3}), Catch::Contains("ids[1] = -3"));

  const std::string missing = std::string(NCL_BINARY_DIR) + "/no/such/tokenizer.json";
  CHECK_THROWS_AS(ncl::bpe_tokenizer::from_file(missing), ncl::io_error);
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_file(missing), Catch::Contains(missing));

  try {
    (void)ncl::bpe_tokenizer::from_json("{\n  \"model\": {\n    \"vocab\": [1, 2,\n", "corrupt.json");
    FAIL("corrupt JSON loaded");
  } catch (const ncl::parse_error& e) {
    CHECK(e.file() == "corrupt.json");
    CHECK(e.line() == 4);
  }
  const std::string json = read_text(fixture_path);
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_json(replaced(json, "\"BPE\"", "\"Unigram\""), "uni.json"),
                    Catch::Contains("uni.json") && Catch::Contains("Unigram"));
  CHECK_THROWS_AS(ncl::bpe_tokenizer::from_json(replaced(json, "\"BPE\"", "\"Unigram\""), "uni.json"), ncl::io_error);
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_json(replaced(json, "\"normalizer\": null", "\"normalizer\": {\"type\": \"NFC\"}"), "n.json"),
                    Catch::Contains("NFC"));
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_json(replaced(json, "\"aa aa\"", "\"aa zq\""), "m.json"),
                    Catch::Contains("m.json") && Catch::Contains("missing from model.vocab"));
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_json(replaced(json, "\"Isolated\"", "\"Removed\""), "s.json"),
                    Catch::Contains("Removed"));
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_json(replaced(json, "\"ÿ\": 255,", ""), "b.json"),
                    Catch::Contains("byte 0xff"));
  CHECK_THROWS_AS(ncl::bpe_tokenizer::from_json(replaced(json, "\"hello\": 260", "\"hello\": \"x\""), "t.json"),
                  ncl::io_error);
  CHECK_THROWS_AS(ncl::bpe_tokenizer::from_json("[]", "array.json"), ncl::io_error);
}

TEST_CASE("a small tokenizer.json with one huge id is refused before sizing its tables (regression: "
          "a 5 KB file took 530 MB)", "[tokenizer][errors][limits]") {
  const std::string json = read_text(fixture_path);
  // The tiny tokenizer defines 271 tokens; id 2^24 - 1 passed the old limit (2^24) and sized
  // two tables of 2^24 entries.
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_json(replaced(json, "\"hello\": 260", "\"hello\": 16777215"), "gap.json"),
                    Catch::Contains("gap.json: token id 16777215 is far past the"));
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_json(replaced(json, "\"id\": 270", "\"id\": 16777215"), "added.json"),
                    Catch::Contains("added.json: token id 16777215 is far past the"));
  CHECK_NOTHROW(ncl::bpe_tokenizer::from_json(replaced(json, "\"id\": 270", "\"id\": 1500"), "gap_ok.json"));
}

TEST_CASE("merges as [left, right] pairs (newer tokenizer.json files) load the same", "[tokenizer][bpe]") {
  std::string json = read_text(fixture_path);
  for (const std::string merge : {"h e", "l l", "Ġ t", "he ll", "hell o", "t he", "Ġt he", "1 2", "a a", "aa aa"}) {
    const auto space = merge.find(' ');
    json = replaced(json, "\"" + merge + "\"", "[\"" + merge.substr(0, space) + "\", \"" + merge.substr(space + 1) + "\"]");
  }
  const auto pairs = ncl::bpe_tokenizer::from_json(json, "pairs");
  CHECK(pairs.merges().size() == 10);
  for (const std::string text : {"hello the world", "aaaaa 12345", "<|end|>hel"}) CHECK(pairs.encode(text) == tiny().encode(text));
  CHECK_THROWS_WITH(ncl::bpe_tokenizer::from_json(replaced(json, "[\"a\", \"a\"]", "[\"a\"]"), "p.json"),
                    Catch::Contains("p.json") && Catch::Contains("not a pair"));
}

TEST_CASE("GPT-2 style: ByteLevel pre-tokenizer with its own regex and add_prefix_space", "[tokenizer][bpe]") {
  std::string json = read_text(fixture_path);
  const auto begin = json.find("\"pre_tokenizer\"");
  const auto end = json.find("\"post_processor\"");
  REQUIRE(begin < end);
  json.replace(begin, end - begin,
               "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true},\n ");
  const auto tok = ncl::bpe_tokenizer::from_json(json, "gpt2_style");
  REQUIRE(tok.pre_tokenizer_regexes().size() == 1);
  CHECK(tok.encode("hello the") == ids{32, 260, 262});  // " hello" is not a token: " " + "hello"
  CHECK(tok.encode("12345") == ids{32, 263, 51, 52, 53});
}

TEST_CASE("byte tokenizer: 256 ids, the bytes of the text", "[tokenizer][byte_level]") {
  const ncl::byte_tokenizer tok;
  CHECK(tok.vocab_size() == 256);
  CHECK(tok.encode("hé") == ids{104, 195, 169});
  CHECK(tok.decode(ids{104, 195, 169}) == "hé");
  CHECK_THROWS_AS(tok.decode(ids{256}), ncl::value_error);
  ncl::rng gen(3);
  for (int trial = 0; trial < 100; ++trial) {
    const std::string text = random_text(gen, gen.integer(0, 30));
    REQUIRE(tok.decode(tok.encode(text)) == text);
  }
}

TEST_CASE("byte-level alphabet: GPT-2's printable spelling of every byte, reversible", "[tokenizer][byte_level]") {
  CHECK(ncl::bytes_to_byte_level("hello world\n") == "helloĠworldĊ");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string back;
  REQUIRE(ncl::byte_level_to_bytes(ncl::bytes_to_byte_level(all), back));
  CHECK(back == all);
  std::string junk;
  CHECK_FALSE(ncl::byte_level_to_bytes("中", junk));
}

TEST_CASE("default tokenizer path: NCL_TOKENIZER, then NCL_CACHE_DIR, then HOME", "[tokenizer][path]") {
  const auto saved = [](const char* name) {
    const char* v = std::getenv(name);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  const auto tokenizer = saved("NCL_TOKENIZER"), cache = saved("NCL_CACHE_DIR"), home = saved("HOME");
  ::unsetenv("NCL_TOKENIZER");
  ::unsetenv("NCL_CACHE_DIR");
  ::setenv("HOME", "/home/someone", 1);
  CHECK(ncl::default_tokenizer_path() == "/home/someone/.cache/ncl/tokenizers/llama3/tokenizer.json");
  ::setenv("NCL_CACHE_DIR", "/var/cache/ncl", 1);
  CHECK(ncl::default_tokenizer_path() == "/var/cache/ncl/tokenizers/llama3/tokenizer.json");
  ::setenv("NCL_TOKENIZER", "/data/gpt2.json", 1);
  CHECK(ncl::default_tokenizer_path() == "/data/gpt2.json");
  const auto restore = [](const char* name, const std::optional<std::string>& v) {
    if (v) ::setenv(name, v->c_str(), 1); else ::unsetenv(name);
  };
  restore("NCL_TOKENIZER", tokenizer);
  restore("NCL_CACHE_DIR", cache);
  restore("HOME", home);
}

TEST_CASE("tokenizer hash tables agree with std::unordered_map", "[tokenizer][hash]") {
  ncl::rng random(17);
  ncl::detail::string_table<int> strings;
  ncl::detail::u64_table<int> numbers;
  std::unordered_map<std::string, int> string_truth;
  std::unordered_map<std::uint64_t, int> number_truth;
  for (int i = 0; i < 5000; ++i) {
    // keys of 0 to 40 bytes: short ones stored in the slot, long ones in the arena; few
    // distinct short keys, so overwrites happen
    std::string key(static_cast<std::size_t>(random.integer(0, 41)), 'a');
    for (auto& ch : key) ch = static_cast<char>('a' + random.integer(0, 3));
    strings.insert_or_assign(key, i);
    string_truth[key] = i;
    const auto number = static_cast<std::uint64_t>(random.integer(0, 3000)) * 0x9E3779B97F4A7C15ULL;
    numbers.insert_or_assign(number, i);
    number_truth[number] = i;
  }
  CHECK(strings.size() == string_truth.size());
  CHECK(numbers.size() == number_truth.size());
  for (const auto& [key, value] : string_truth) {
    const int* found = strings.find(key);
    REQUIRE(found != nullptr);
    CHECK(*found == value);
  }
  for (const auto& [key, value] : number_truth) {
    const int* found = numbers.find(key);
    REQUIRE(found != nullptr);
    CHECK(*found == value);
  }
  CHECK(strings.find("not a key: it has spaces") == nullptr);
  CHECK(numbers.find(1) == nullptr);
  strings.clear();
  CHECK(strings.size() == 0);
  CHECK(strings.find(string_truth.begin()->first) == nullptr);
}

TEST_CASE("tokenizer.json is split into settings and BPE tables", "[tokenizer][json]") {
  const auto file = ncl::read_tokenizer_json(
      R"({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
          "merges": ["a b"]}, "pre_tokenizer": null})",
      "tiny.json");
  REQUIRE(file.has_vocab);
  REQUIRE(file.has_merges);
  REQUIRE(file.vocab.size() == 3);
  CHECK(file.view(file.vocab[2].token) == "ab");
  CHECK(file.vocab[2].id == 2);
  REQUIRE(file.merges.size() == 1);
  CHECK(file.view(file.merges[0].first) == "a");
  CHECK(file.view(file.merges[0].second) == "b");
  CHECK(file.settings["model"]["type"] == "BPE");
  CHECK_FALSE(file.settings["model"].contains("vocab"));  // the big tables stay out of the tree
  CHECK_THROWS_WITH(ncl::read_tokenizer_json("{\n  \"model\": [1,\n", "broken.json"),
                    Catch::StartsWith("broken.json:"));
  CHECK_THROWS_AS(ncl::read_tokenizer_json(R"({"model": {"vocab": {"a": "zero"}}})", "typed.json"), ncl::io_error);
}
