// Every example binary on bad input: a message naming the problem on stderr and exit status 2
// (example_main.hpp), never std::terminate or a signal; a bad --out fails before any work; output
// that cannot be written is exit 1, not a silent 0. Each binary is driven with an unknown flag, a
// flag with a bad value, a missing file, a directory given as a file (the tests may run as root,
// for whom no file is unreadable) and a malformed file where it reads one. ncl-run's assembly and
// usage errors are in tests/machine/test_ncl_run.cpp, ncl-arith's flags in
// tests/experiment/test_arith.cpp; only what those miss is here.
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

const std::string fixture_safetensors = NCL_SOURCE_DIR "/tests/nn/data/llama_tiny.safetensors";

struct bad_case {
  std::string args;
  std::string message;  // a part of the error message
};

/// Runs `env name args`; `env` is VAR=VALUE assignments or empty.
ncl_test::cli_result run(const std::string& name, const std::string& args, const std::string& env = "") {
  return ncl_test::run_command((env.empty() ? "" : "env " + env + " ") + binary(name) + " " + args);
}

void check_fails_cleanly(const std::string& name, const bad_case& c, const std::string& env = "") {
  INFO(env << " " << name << " " << c.args);
  const auto r = run(name, c.args, env);
  INFO("stderr: " << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find(c.message) != std::string::npos);
  CHECK(r.err.find("terminate called") == std::string::npos);
}

// Standard output to a full disk: exit 1 and a message, not 0 with the output lost.
void check_full_stdout(const std::string& name, const std::string& args) {
  if (!std::filesystem::exists("/dev/full")) return;
  INFO(name << " " << args << " >/dev/full");
  const auto r = run(name, args + " >/dev/full");
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find(name + ": error: cannot write standard output") != std::string::npos);
}

/// A scratch folder of its own per test case and process, removed at the end.
struct scratch {
  std::filesystem::path dir;
  explicit scratch(const std::string& tag)
      : dir(std::filesystem::temp_directory_path() / ("ncl_test_examples." + std::to_string(::getpid()) + "." + tag)) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~scratch() { std::filesystem::remove_all(dir); }
  /// Writes `bytes` to dir/name and returns its path.
  std::string file(const std::string& name, const std::string& bytes) const {
    std::ofstream(dir / name, std::ios::binary) << bytes;
    return (dir / name).string();
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

// A directory that cannot be created: its parent is a regular file.
std::string blocked_out() {
  static const auto file = std::filesystem::temp_directory_path() / ("ncl_test_examples." + std::to_string(::getpid()) + ".file");
  if (!std::filesystem::exists(file)) std::ofstream{file};
  return (file / "out").string();
}

// The first bytes of a valid safetensors file: the header's length runs past the end.
std::string truncated_safetensors() {
  std::ifstream in(fixture_safetensors, std::ios::binary);
  std::string head(100, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return head;
}

// A header of the right length that is not JSON.
std::string bad_header_safetensors() {
  const std::string header = "{\"a\": [1, 2";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  return bytes + header;
}

}  // namespace

TEST_CASE("learning examples reject bad flags with exit 2 and a message", "[examples]") {
  for (const std::string name : {"ncl-memorise", "ncl-sketch", "ncl-select"}) {
    check_fails_cleanly(name, {"--bogus 1", "unknown argument '--bogus'"});
    check_fails_cleanly(name, {"--steps", "missing value after '--steps'"});
    check_fails_cleanly(name, {"--steps many", "--steps expects an integer, got 'many'"});
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

// Each of these was accepted before: run with a value cast from a double out of range (undefined
// behaviour), trained with a meaningless setting, ran for hours, or failed later with a message
// about something else.
TEST_CASE("learning examples check every flag value before any work", "[examples]") {
  const scratch s("values");
  const std::string out = " --out " + s.path("out");
  for (const std::string name : {"ncl-memorise", "ncl-sketch", "ncl-select"}) {
    check_fails_cleanly(name, {"--steps -1" + out, "--steps must be at least 0, got -1"});
    check_fails_cleanly(name, {"--steps 1e300" + out, "--steps expects an integer, got '1e300'"});
    check_fails_cleanly(name, {"--seed 1.5" + out, "--seed expects an integer, got '1.5'"});
    check_fails_cleanly(name, {"--seed -1" + out, "--seed must be at least 0, got -1"});
    check_fails_cleanly(name, {"--lr 0" + out, "--lr must be > 0, got 0"});
    check_fails_cleanly(name, {"--lr -0.1" + out, "--lr must be > 0, got -0.1"});
    check_fails_cleanly(name, {"--every 2.5" + out, "--every expects an integer, got '2.5'"});
  }
  check_fails_cleanly("ncl-memorise", {"--n 1e300" + out, "--n expects an integer, got '1e300'"});
  check_fails_cleanly("ncl-memorise", {"--n -3" + out, "n = -3 must be in [2, 2^24]"});
  check_fails_cleanly("ncl-memorise", {"--init -1" + out, "--init must be in [0, 100], got -1"});
  check_fails_cleanly("ncl-sketch", {"--program fibonacci" + out, "--program: 'fibonacci' is not factorial or triangle"});
  check_fails_cleanly("ncl-sketch", {"--max-input 1000000000" + out, "--max-input must be in [0, n - 1 = 31], got 1000000000"});
  check_fails_cleanly("ncl-sketch", {"--max-input -1" + out, "--max-input must be at least 0, got -1"});
  check_fails_cleanly("ncl-sketch", {"--fields op,x" + out, "--fields: unknown field 'x'"});
  check_fails_cleanly("ncl-sketch", {"--init -1" + out, "--init must be in [0, 100], got -1"});
  check_fails_cleanly("ncl-select", {"--max-arg 1000000000" + out, "--max-arg must be in [0, 31], got 1000000000"});
  check_fails_cleanly("ncl-select", {"--min-arg 9 --max-arg 3" + out, "--min-arg must be in [0, 3], got 9"});
  check_fails_cleanly("ncl-select", {"--argument-features 7" + out, "--argument-features must be in [0, 1], got 7"});
  check_fails_cleanly("ncl-select", {"--tasks ," + out, "--tasks: no task given"});
  check_fails_cleanly("ncl-select", {"--tasks gcd,gcd" + out, "--tasks: 'gcd' is listed twice"});
}

TEST_CASE("ncl-memorise and ncl-select name a missing, unreadable or malformed stdlib file", "[examples]") {
  const scratch s("stdlib");
  std::filesystem::create_directories(s.dir / "dir" / "fibonacci.s");
  std::filesystem::create_directories(s.dir / "dir" / "absdiff.s");
  // The real stdlib with two files broken (ncl-select reads absdiff.s, factorial.s and gcd.s).
  std::filesystem::copy(NCL_SOURCE_DIR "/share/ncl/stdlib", s.dir / "bad");
  s.file("bad/fibonacci.s", "fib:  ADD r0, r1\n");
  s.file("bad/absdiff.s", "absdiff:  FROB r0\n");
  const std::string out = " --out " + s.path("out");
  check_fails_cleanly("ncl-memorise", {out, "missing/fibonacci.s: cannot open"}, "NCL_STDLIB=" + s.path("missing"));
  check_fails_cleanly("ncl-select", {out, "missing/absdiff.s: cannot open"}, "NCL_STDLIB=" + s.path("missing"));
  check_fails_cleanly("ncl-memorise", {out, "fibonacci.s: is a directory"}, "NCL_STDLIB=" + s.path("dir"));
  check_fails_cleanly("ncl-select", {out, "absdiff.s: is a directory"}, "NCL_STDLIB=" + s.path("dir"));
  check_fails_cleanly("ncl-memorise", {out, "bad/fibonacci.s:1:7: error"}, "NCL_STDLIB=" + s.path("bad"));
  check_fails_cleanly("ncl-select", {out, "bad/absdiff.s:1:11: error"}, "NCL_STDLIB=" + s.path("bad"));
  // An --out that is a regular file.
  const std::string file = s.file("a_file", "x");
  for (const std::string name : {"ncl-memorise", "ncl-sketch", "ncl-select"}) {
    check_fails_cleanly(name, {"--out " + file, "a_file: cannot create the output directory"});
  }
}

#ifdef NCL_HAVE_NCL_TOKENIZE
TEST_CASE("ncl-tokenize rejects bad flags, tokenizer files and id lines with exit 2", "[examples]") {
  const auto dir = std::filesystem::temp_directory_path() / ("ncl_test_examples." + std::to_string(::getpid()) + ".tok");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "truncated.json") << "{\"model\": ";
  std::ofstream(dir / "garbage.json") << "not json";
  std::ofstream(dir / "wrong.json") << "{\"model\": {\"type\": \"BPE\", \"vocab\": 5}}";
  check_fails_cleanly("ncl-tokenize", {"--bogus", "unknown option --bogus"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer", "--tokenizer needs a PATH"});
  check_fails_cleanly("ncl-tokenize", {"--bytes --tokenizer x.json hi", "exclude each other"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + (dir / "missing.json").string() + " hi", "missing.json"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + (dir / "truncated.json").string() + " hi", "truncated.json"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + (dir / "garbage.json").string() + " hi", "garbage.json"});
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + (dir / "wrong.json").string() + " hi", "wrong.json"});
  // Was "out of memory": a directory opens as a stream whose end is at 2^63 - 1.
  check_fails_cleanly("ncl-tokenize", {"--tokenizer " + dir.string() + " hi", "is a directory, not a tokenizer file"});
  check_fails_cleanly("ncl-tokenize", {"--bytes --decode '104 x7'", "expected a token id"});
  check_fails_cleanly("ncl-tokenize", {"--bytes --decode 999", "argument 1"});
  const auto ok = ncl_test::run_command(binary("ncl-tokenize") + " --bytes hi");
  CHECK(ok.status == 0);
  CHECK(ok.out == "104 105\n");
  check_full_stdout("ncl-tokenize", "--bytes hi");
  std::filesystem::remove_all(dir);
}
#endif  // NCL_HAVE_NCL_TOKENIZE

TEST_CASE("ncl-run names a directory or a binary file given as assembly and fails on a full stdout", "[examples]") {
  const scratch s("run");
  const std::string garbage = s.file("garbage.s", std::string("\x7f" "ELF\x02\x01\x01\0\0\0\xff\xfe\n", 13));
  check_fails_cleanly("ncl-run", {s.dir.string(), "is a directory, not a file"});
  check_fails_cleanly("ncl-run", {garbage, "garbage.s:1:1: error: unknown mnemonic"});
  check_fails_cleanly("ncl-run", {"--steps= " NCL_SOURCE_DIR "/examples/programs/factorial.s", "--steps: ''"});
  check_full_stdout("ncl-run", NCL_SOURCE_DIR "/examples/programs/factorial.s");
  check_full_stdout("ncl-run", "--json " NCL_SOURCE_DIR "/examples/programs/factorial.s");
}

TEST_CASE("ncl-inspect rejects bad flags and missing, unreadable and malformed files with exit 2", "[examples]") {
  const scratch s("inspect");
  const std::string truncated = s.file("truncated.safetensors", truncated_safetensors());
  const std::string bad_header = s.file("bad_header.safetensors", bad_header_safetensors());
  const std::string text = s.file("text.safetensors", "hello\n");
  check_fails_cleanly("ncl-inspect", {"--bogus " + fixture_safetensors, "unknown option '--bogus'"});
  check_fails_cleanly("ncl-inspect", {"--json=yes " + fixture_safetensors, "unknown option '--json=yes'"});
  check_fails_cleanly("ncl-inspect", {"", "no FILE given"});
  check_fails_cleanly("ncl-inspect", {fixture_safetensors + " " + fixture_safetensors, "more than one FILE given"});
  check_fails_cleanly("ncl-inspect", {s.path("missing.safetensors"), "missing.safetensors: cannot open"});
  // Was "std::bad_alloc": a directory opens as a stream whose end is at 2^63 - 1.
  check_fails_cleanly("ncl-inspect", {s.dir.string(), "is a directory, not a safetensors file"});
  check_fails_cleanly("ncl-inspect", {truncated, "truncated.safetensors: invalid safetensors file"});
  check_fails_cleanly("ncl-inspect", {bad_header, "bad_header.safetensors"});
  check_fails_cleanly("ncl-inspect", {text, "text.safetensors: invalid safetensors file"});
  const auto ok = run("ncl-inspect", fixture_safetensors);
  CHECK(ok.status == 0);
  CHECK(ok.out.find("model.embed_tokens.weight") != std::string::npos);
  check_full_stdout("ncl-inspect", fixture_safetensors);
  CHECK(run("ncl-inspect", "--help").status == 0);
}

TEST_CASE("ncl-demo takes no arguments: exit 2 on any, 0 on none", "[examples]") {
  check_fails_cleanly("ncl-demo", {"--bogus", "unexpected argument '--bogus'"});
  check_fails_cleanly("ncl-demo", {"--n=3", "unexpected argument '--n=3'"});
  check_fails_cleanly("ncl-demo", {"results/demo.txt", "unexpected argument 'results/demo.txt'"});
  const auto ok = run("ncl-demo", "");
  CHECK(ok.status == 0);
  CHECK(ok.out.find("exact round trips") != std::string::npos);
  const auto help = run("ncl-demo", "--help");
  CHECK(help.status == 0);
  CHECK(help.out.find("usage: ncl-demo") != std::string::npos);
  check_full_stdout("ncl-demo", "");
}

#ifdef NCL_HAVE_EXPERIMENTS
// Inputs that fail before any training starts (the byte tokenizer unless the tokenizer is the
// subject, so no cached tokenizer.json is needed), each in well under a second.
TEST_CASE("ncl-arith and ncl-compute reject bad flags and files with exit 2 before training", "[examples]") {
  const scratch s("experiments");
  std::filesystem::create_directories(s.dir / "dir");
  const std::string dir = s.path("dir");
  const std::string good_tsv = s.file("good.tsv", "Add 1 and 2.\t3\n");
  const std::string bad_tsv = s.file("bad.tsv", "Add 1 and 2.\t3\nAdd 2 and 2.\n");
  const std::string truncated = s.file("truncated.safetensors", truncated_safetensors());
  const std::string garbage_json = s.file("garbage.json", "{\"model\": [");
  const std::string out = " --out " + s.path("out"), bytes = " --tokenizer bytes" + out;
  const std::string load = " --load " + fixture_safetensors;
  const std::vector<bad_case> cases{
      // flags
      {"--bogus 1" + bytes, "bogus"},
      {"--shards 3" + bytes, "--shards must be a power of two"},
      {"--batch 0" + bytes, "--batch must be >= 1"},
      {"--epochs many" + bytes, "--epochs"},
      // missing files
      {"--tokenizer " + s.path("missing.json") + out, "missing.json: no tokenizer file"},
      {"--load " + s.path("missing.safetensors") + " --eval " + good_tsv + bytes, "missing.safetensors: cannot open"},
      {load + " --eval " + s.path("missing.tsv") + bytes, "missing.tsv"},
      // a directory given as a file; --load and --checkpoint were "out of memory", exit 1
      {"--tokenizer " + dir + out, "is a directory, not a tokenizer file"},
      {"--load " + dir + " --eval " + good_tsv + bytes, "dir: is a directory, not a file (--load)"},
      {load + " --eval " + dir + bytes, "dir: is a directory, not a file (--eval)"},
      {"--checkpoint " + dir + bytes, "dir: is a directory, not a file (--checkpoint)"},
      // malformed files; the --eval file is read before the checkpoint
      {"--tokenizer " + garbage_json + out, "garbage.json"},
      {load + " --eval " + bad_tsv + bytes, "bad.tsv:2:1: error: no tab"},
      {"--load " + truncated + " --eval " + good_tsv + bytes, "truncated.safetensors: invalid safetensors file"},
      {load + " --eval " + good_tsv + bytes, "not a checkpoint of an ncl experiment"},
      {"--checkpoint " + truncated + " --model transformer" + bytes, "truncated.safetensors: invalid safetensors file"},
      // an --out that cannot be created
      {"--tokenizer bytes --out " + blocked_out(), "cannot create the output directory"},
  };
  for (const std::string name : {"ncl-arith", "ncl-compute"}) {
    for (const auto& c : cases) check_fails_cleanly(name, c);
  }
  std::filesystem::remove(std::filesystem::path(blocked_out()).parent_path());
}
#endif  // NCL_HAVE_EXPERIMENTS

#endif  // NCL_HAVE_LEARNING_EXAMPLES
