// The learning examples on bad input: a message naming the problem on stderr and exit status
// 2 (example_main.hpp), never std::terminate or a signal; a bad --out fails before any work.
#include <catch2/catch.hpp>

#ifdef NCL_HAVE_LEARNING_EXAMPLES

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../test_process.hpp"

namespace {

std::string binary(const std::string& name) { return NCL_BINARY_DIR "/examples/" + name + "/" + name; }

struct bad_case {
  std::string args;
  std::string message;  // a part of the error message
};

void check_fails_cleanly(const std::string& name, const bad_case& c) {
  INFO(name << " " << c.args);
  const auto r = ncl_test::run_command(binary(name) + " " + c.args);
  INFO("stderr: " << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find(c.message) != std::string::npos);
  CHECK(r.err.find("terminate called") == std::string::npos);
}

// A directory that cannot be created: its parent is a regular file.
std::string blocked_out() {
  static const auto file = std::filesystem::temp_directory_path() / ("ncl_test_examples." + std::to_string(::getpid()) + ".file");
  if (!std::filesystem::exists(file)) std::ofstream{file};
  return (file / "out").string();
}

}  // namespace

TEST_CASE("learning examples reject bad flags with exit 2 and a message", "[examples]") {
  for (const std::string name : {"ncl-memorise", "ncl-sketch", "ncl-select"}) {
    check_fails_cleanly(name, {"--bogus 1", "unknown argument '--bogus'"});
    check_fails_cleanly(name, {"--steps", "missing value after '--steps'"});
    check_fails_cleanly(name, {"--steps many", "--steps expects a finite number, got 'many'"});
    check_fails_cleanly(name, {"--lr nan", "--lr expects a finite number, got 'nan'"});
    check_fails_cleanly(name, {"--lr inf", "--lr expects a finite number, got 'inf'"});
    check_fails_cleanly(name, {"--out " + blocked_out(), "cannot create the output directory"});
  }
  std::filesystem::remove(std::filesystem::path(blocked_out()).parent_path());
}

TEST_CASE("learning examples report a bad configuration with exit 2 instead of terminating", "[examples]") {
  const auto out = std::filesystem::temp_directory_path() / ("ncl_test_examples." + std::to_string(::getpid()) + ".out");
  // The sketch's built-in program has 8 lines, more than n = 3 values can address.
  check_fails_cleanly("ncl-sketch", {"--n 3 --out " + out.string(), "must be in [1, n = 3]"});
  check_fails_cleanly("ncl-memorise", {"--program no_such_entry --out " + out.string(), "no_such_entry"});
  check_fails_cleanly("ncl-select", {"--tasks no_such_task --out " + out.string(), "no_such_task"});
  for (const std::string name : {"ncl-memorise", "ncl-sketch", "ncl-select"}) {
    check_fails_cleanly(name, {"--every 0 --out " + out.string(), "--every must be at least 1, got 0"});
  }
  std::filesystem::remove_all(out);
}

#ifdef NCL_HAVE_NCL_TOKENIZE
TEST_CASE("ncl-tokenize rejects bad flags, tokenizer files and id lines with exit 2", "[examples]") {
  const auto dir = std::filesystem::temp_directory_path() / ("ncl_test_examples." + std::to_string(::getpid()) + ".tok");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "truncated.json") << "{\"model\": ";
  std::ofstream(dir / "garbage.json") << "not json";
  check_fails_cleanly("ncl-tokenize", {"--bogus", "unknown option --bogus"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer", "--tokenizer needs a PATH"});
  check_fails_cleanly("ncl-tokenize", {"--bytes --tokenizer x.json hi", "exclude each other"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + (dir / "missing.json").string() + " hi", "missing.json"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + (dir / "truncated.json").string() + " hi", "truncated.json"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + (dir / "garbage.json").string() + " hi", "garbage.json"});
  // Was "out of memory": a directory opens as a stream whose end is at 2^63 - 1.
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + dir.string() + " hi", "is a directory, not a tokenizer file"});
  check_fails_cleanly("ncl-tokenize", {"--bytes --decode '104 x7'", "expected a token id"});
  check_fails_cleanly("ncl-tokenize", {"--bytes --decode 999", "argument 1"});
  const auto ok = ncl_test::run_command(binary("ncl-tokenize") + " --bytes hi");
  CHECK(ok.status == 0);
  CHECK(ok.out == "104 105\n");
  std::filesystem::remove_all(dir);
}
#endif  // NCL_HAVE_NCL_TOKENIZE

#endif  // NCL_HAVE_LEARNING_EXAMPLES
