// Tokenizer speed: loading LLaMA 3's tokenizer.json, and encode throughput (MB/s, one core)
// on a few MB of generated mixed text (prose, code, numbers, white space runs, the
// multilingual lines of tests/tokenizer/data/corpus.txt). The plain merge loop (rescan) is
// measured beside the heap one, and the pre-tokenizer regex and UTF-8 check on their own.
//   bench_tokenizer [--write_text=PATH] [Google Benchmark flags]
// --write_text writes the benchmark text to PATH (and the rare-word text to PATH.rare) so
// scripts/tokenizer/bench.mjs can time the JavaScript tokenizer on exactly the same bytes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/tokenizer/bpe.hpp"
#include "ncl/tokenizer/byte_level.hpp"
#include "ncl/tokenizer/merge.hpp"

namespace {

struct splitmix {  // tiny seeded generator: the text is the same on every machine
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

std::vector<std::string> corpus_lines() {
  std::ifstream in(std::string(NCL_SOURCE_DIR) + "/tests/tokenizer/data/corpus.txt", std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

/// About 4 MiB of mixed text, built from a fixed seed. `rare` is the share (percent) of
/// prose words and identifier parts that are random made-up words, nearly all unseen
/// before: ordinary English has a few percent of words outside a 128k vocabulary.
std::string make_text(std::size_t rare, std::size_t target = std::size_t{4} << 20) {
  static const char* words[] = {
      "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
      "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
      "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would",
      "who", "so", "no", "machine", "program", "register", "memory", "network", "gradient", "language", "model",
      "compiler", "library", "instruction", "differentiable", "computer", "algorithm", "token", "neural"};
  static const char* syllables[] = {"ka", "tor", "mi", "lex", "an", "dre", "vo", "sun", "qui", "bel", "ost", "ra",
                                     "phe", "no", "zy", "gr", "ith", "um", "ex", "pla"};
  static const char* code[] = {"int", "auto", "return", "const", "for", "if", "else", "while", "std::vector",
                               "size_t", "def", "self", "None", "True", "lambda", "import", "struct"};
  const std::vector<std::string> multilingual = corpus_lines();
  splitmix rng{2024};
  const auto pseudo_word = [&] {
    std::string w;
    for (std::size_t k = 1 + rng.below(4); k > 0; --k) w += syllables[rng.below(std::size(syllables))];
    return w;
  };
  const auto number = [&] {
    std::string n;
    for (std::size_t k = 1 + rng.below(12); k > 0; --k) n += static_cast<char>('0' + rng.below(10));
    return n;
  };
  std::string text;
  text.reserve(target + 4096);
  while (text.size() < target) {
    switch (rng.below(4)) {
      case 0: {  // prose
        for (std::size_t w = 30 + rng.below(50), i = 0; i < w; ++i) {
          const std::size_t r = rng.below(100);
          std::string word = r < 95 - rare ? words[rng.below(std::size(words))] : r < 95 ? pseudo_word() : number();
          if (i == 0 || rng.below(12) == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
          if (rng.below(20) == 0) word += rng.below(2) ? "'s" : "'LL";
          text += word;
          const std::size_t p = rng.below(30);
          text += p == 0 ? ". " : p == 1 ? ", " : p == 2 ? "; " : p == 3 ? "! " : " ";
        }
        text += ".\n\n";
        break;
      }
      case 1: {  // code
        for (std::size_t l = 5 + rng.below(10); l > 0; --l) {
          text += rng.below(3) == 0 ? std::string(rng.below(3), '\t') : std::string(4 * rng.below(4), ' ');
          text += code[rng.below(std::size(code))];
          const auto name = [&] { return rng.below(100) < rare ? pseudo_word() : words[rng.below(std::size(words))]; };
          text += ' ' + name() + "_" + name() + " = " + name() + "(" + number() + ", " + name() + "[i]);";
          if (rng.below(3) == 0) text += "  // " + name() + " " + words[rng.below(std::size(words))];
          text += '\n';
        }
        text += '\n';
        break;
      }
      case 2: {  // several scripts, emoji, special-token strings
        for (std::size_t l = 3 + rng.below(6); l > 0; --l) text += multilingual[rng.below(multilingual.size())] + '\n';
        break;
      }
      default: {  // numbers in columns, runs of spaces and tabs
        for (std::size_t l = 2 + rng.below(6); l > 0; --l) {
          for (std::size_t c = 2 + rng.below(6); c > 0; --c)
            text += number() + (rng.below(2) ? "\t" : std::string(1 + rng.below(8), ' '));
          text += '\n';
        }
        text += '\n';
      }
    }
  }
  return text;
}

// The benchmark text: 5% made-up words. The rare-word text (30%) is the pessimistic case,
// where most pre-tokens miss the cache and go through the merges.
const std::string& bench_text() {
  static const std::string text = make_text(5);
  return text;
}
const std::string& rare_word_text() {
  static const std::string text = make_text(30);
  return text;
}

const ncl::bpe_tokenizer* llama3() {
  static const std::unique_ptr<ncl::bpe_tokenizer> tok = []() -> std::unique_ptr<ncl::bpe_tokenizer> {
    if (!std::filesystem::exists(ncl::default_tokenizer_path())) return nullptr;
    return std::make_unique<ncl::bpe_tokenizer>(ncl::load_tokenizer());
  }();
  return tok.get();
}

void BM_load_llama3(benchmark::State& state) {
  if (!std::filesystem::exists(ncl::default_tokenizer_path())) {
    state.SkipWithError("no LLaMA 3 tokenizer.json: run bash cmake/fetch_tokenizer.sh");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(ncl::load_tokenizer());
}
BENCHMARK(BM_load_llama3)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_encode_llama3(benchmark::State& state) {
  const ncl::bpe_tokenizer* tok = llama3();
  if (!tok) {
    state.SkipWithError("no LLaMA 3 tokenizer.json: run bash cmake/fetch_tokenizer.sh");
    return;
  }
  const std::string& text = bench_text();
  std::size_t count = 0;
  for (auto _ : state) {
    const auto ids = tok->encode(text);
    count = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(count);
  state.counters["MiB"] = static_cast<double>(text.size()) / (1 << 20);
}
BENCHMARK(BM_encode_llama3)->Unit(benchmark::kMillisecond);

void BM_encode_llama3_rare_words(benchmark::State& state) {
  const ncl::bpe_tokenizer* tok = llama3();
  if (!tok) {
    state.SkipWithError("no LLaMA 3 tokenizer.json: run bash cmake/fetch_tokenizer.sh");
    return;
  }
  const std::string& text = rare_word_text();
  std::size_t count = 0;
  for (auto _ : state) {
    const auto ids = tok->encode(text);
    count = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(count);
}
BENCHMARK(BM_encode_llama3_rare_words)->Unit(benchmark::kMillisecond);

// Line by line, as ncl-tokenize reads stdin: many small encode() calls.
void BM_encode_llama3_lines(benchmark::State& state) {
  const ncl::bpe_tokenizer* tok = llama3();
  if (!tok) {
    state.SkipWithError("no LLaMA 3 tokenizer.json: run bash cmake/fetch_tokenizer.sh");
    return;
  }
  std::vector<std::string_view> lines;
  const std::string_view text = bench_text();
  for (std::size_t begin = 0, end; begin < text.size(); begin = end + 1) {
    end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(begin, end - begin));
  }
  for (auto _ : state)
    for (const auto line : lines) benchmark::DoNotOptimize(tok->encode(line).data());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_encode_llama3_lines)->Unit(benchmark::kMillisecond);

// The pre-tokenizer regex alone (PCRE2 JIT), to see what share of encode it takes.
void BM_split_llama3(benchmark::State& state) {
  const ncl::bpe_tokenizer* tok = llama3();
  if (!tok) {
    state.SkipWithError("no LLaMA 3 tokenizer.json: run bash cmake/fetch_tokenizer.sh");
    return;
  }
  const std::string& text = bench_text();
  const ncl::split_regex& re = tok->pre_tokenizer_regexes()[0];
  for (auto _ : state) {
    std::size_t pieces = 0;
    re.split(text, 0, text.size(), [&](std::size_t, std::size_t) { ++pieces; });
    benchmark::DoNotOptimize(pieces);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.counters["jit"] = re.jit() ? 1 : 0;
}
BENCHMARK(BM_split_llama3)->Unit(benchmark::kMillisecond);

// The merge loops on random lowercase words of length state.range(0): the plain rescan
// (the reference) beside the heap.
template <void (*Merge)(std::vector<ncl::token_id>&, const ncl::merge_table&)>
void BM_merge(benchmark::State& state) {
  const ncl::bpe_tokenizer* tok = llama3();
  if (!tok) {
    state.SkipWithError("no LLaMA 3 tokenizer.json: run bash cmake/fetch_tokenizer.sh");
    return;
  }
  splitmix rng{7};
  std::vector<std::vector<ncl::token_id>> words(256);
  for (auto& w : words)
    for (std::int64_t i = 0; i < state.range(0); ++i) w.push_back(tok->byte_id(static_cast<unsigned char>('a' + rng.below(26))));
  std::vector<ncl::token_id> scratch;
  std::size_t k = 0;
  for (auto _ : state) {
    scratch = words[k++ % words.size()];
    Merge(scratch, tok->merges());
    benchmark::DoNotOptimize(scratch.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_merge<ncl::merge_word_rescan>)->Name("BM_merge_rescan")->Arg(8)->Arg(32)->Arg(128)->Arg(512);
BENCHMARK(BM_merge<ncl::merge_word_heap>)->Name("BM_merge_heap")->Arg(8)->Arg(32)->Arg(128)->Arg(512);

void BM_check_utf8(benchmark::State& state) {
  const std::string& text = bench_text();
  for (auto _ : state) ncl::check_utf8(text);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_check_utf8)->Unit(benchmark::kMillisecond);

void BM_encode_bytes(benchmark::State& state) {
  const ncl::byte_tokenizer tok;
  const std::string& text = bench_text();
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode(text).data());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_encode_bytes)->Unit(benchmark::kMillisecond);

// Writes to a temporary name, then renames into place.
bool write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) {
      std::fprintf(stderr, "bench_tokenizer: cannot write %s\n", tmp.c_str());
      return false;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::fprintf(stderr, "bench_tokenizer: cannot rename %s to %s: %s\n", tmp.c_str(), path.c_str(), ec.message().c_str());
    return false;
  }
  std::fprintf(stderr, "bench_tokenizer: wrote %zu bytes to %s\n", text.size(), path.c_str());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // --write_text=PATH: write the benchmark text for the JavaScript side, then run as usual.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--write_text=")) {
      const std::string path(arg.substr(13));
      if (!write_file(path, bench_text()) || !write_file(path + ".rare", rare_word_text())) return 1;
      continue;
    }
    args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
