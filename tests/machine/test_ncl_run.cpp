// Runs the built ncl-run binary on every example program (soft and --reference, --json) and
// checks its outputs and its exit status 2 on assembly and usage errors.
#include <catch2/catch.hpp>

#ifdef NCL_HAVE_NCL_RUN

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../test_process.hpp"

namespace {

const std::string ncl_run = NCL_BINARY_DIR "/examples/ncl-run/ncl-run";
const std::string programs = NCL_SOURCE_DIR "/examples/programs/";

using ncl_test::cli_result;

/// Runs `ncl-run ARGS` through the shell; arguments must need no quoting.
cli_result run_cli(const std::string& args) { return ncl_test::run_command(ncl_run + " " + args); }

struct expectation {
  std::string args;  // file and inputs
  std::vector<std::int64_t> registers;  // a prefix of the registers
  std::vector<std::int64_t> memory;     // a prefix of the memory
  std::int64_t halt_step;
  std::int64_t pc;
};

std::vector<expectation> expectations() {
  return {
      {"factorial.s --set r0=4", {0, 24}, {}, 19, 5},
      {"gcd.s --set r0=24 --set R1=18", {6, 0}, {}, 12, 5},
      {"fibonacci.s --set r0=7", {0, 13, 21}, {}, 46, 8},
      {"fibonacci_recursive.s --set r0=5", {1, 5, 3, 2, 0, 0, 16, 2}, {}, 197, 2},
      {"sum_list.s --mem 0=3,1,4,1,5 --set r1=5", {5, 0, 14}, {3, 1, 4, 1, 5, 0}, 33, 7},
      {"bubble_sort.s --mem 0=5,3,4,1,2 --set r0=5", {0}, {1, 2, 3, 4, 5, 0}, 127, 17},
      {"every_opcode.s", {6, 3, 26, 30, 7, 8, 0, 4}, {0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 17, 0}, 28, 30},
  };
}

void check_json(const cli_result& r, const expectation& e, double min_confidence) {
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::ordered_json::parse(r.out);
  std::vector<std::string> keys;
  for (const auto& item : j.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"registers", "register_confidence", "memory",
                                         "memory_confidence", "halted", "halt_step", "pc"});
  REQUIRE(j["registers"].size() == 8);
  REQUIRE(j["memory"].size() == 32);
  for (std::size_t r = 0; r < e.registers.size(); ++r) CHECK(j["registers"][r] == e.registers[r]);
  for (std::size_t m = 0; m < e.memory.size(); ++m) CHECK(j["memory"][m] == e.memory[m]);
  for (const auto& c : j["register_confidence"]) CHECK(c.get<double>() >= min_confidence);
  for (const auto& c : j["memory_confidence"]) CHECK(c.get<double>() >= min_confidence);
  CHECK(j["halted"].get<double>() >= min_confidence);
  CHECK(j["halt_step"] == e.halt_step);
  CHECK(j["pc"] == e.pc);
}

}  // namespace

TEST_CASE("ncl-run --reference --json on every example program", "[machine][ncl-run]") {
  for (const auto& e : expectations()) {
    check_json(run_cli("--reference --json " + programs + e.args), e, 1.0);
  }
}

TEST_CASE("ncl-run soft --json on every example program matches the reference", "[machine][ncl-run]") {
  for (const auto& e : expectations()) {
    check_json(run_cli("--json " + programs + e.args), e, 1.0);
  }
}

TEST_CASE("ncl-run soft with --sharpness and other ALU backends", "[machine][ncl-run]") {
  const expectation fact{"factorial.s --set r0=4", {0, 24}, {}, 19, 5};
  check_json(run_cli("--json --sharpness 40 " + programs + fact.args), fact, 0.99);
  check_json(run_cli("--json --alu dense " + programs + fact.args), fact, 1.0);
  check_json(run_cli("--json --alu circuit " + programs + fact.args), fact, 1.0);
  check_json(run_cli("--json --control mean_field " + programs + fact.args), fact, 1.0);
}

TEST_CASE("ncl-run: text output, --trace, --entry, linking and a budget too short",
          "[machine][ncl-run]") {
  const auto text = run_cli("--reference " + programs + "factorial.s --set r0=3");
  REQUIRE(text.status == 0);
  CHECK_THAT(text.out, Catch::Contains("r1   =   6"));
  CHECK_THAT(text.out, Catch::Contains("HALT fetched at step 15"));

  const auto trace = run_cli("--reference --trace --json " + programs + "factorial.s --set r0=1");
  REQUIRE(trace.status == 0);
  CHECK(nlohmann::json::parse(trace.out)["registers"][1] == 1);  // stdout stays one JSON object
  CHECK_THAT(trace.err, Catch::Contains("step    1  line   0 (p=1.000)  SET r1, 1"));
  CHECK_THAT(trace.err, Catch::Contains("step    7  line   5 (p=1.000)  HALT"));
  CHECK_THAT(trace.err, Catch::Contains("r1=1 (1.000)"));

  const auto soft_trace = run_cli("--trace " + programs + "factorial.s --set r0=1");
  REQUIRE(soft_trace.status == 0);
  CHECK_THAT(soft_trace.out, Catch::Contains("step    3  line   2 (p=1.000)  MUL r1, r1, r0"));

  // Two files linked in order, labels global, started at a label in the second.
  const auto dir = std::filesystem::temp_directory_path();
  const std::string main_s = (dir / "ncl_test_machine_main.s").string();
  const std::string lib_s = (dir / "ncl_test_machine_lib.s").string();
  std::ofstream(main_s) << "  SET r0, 5\n  CALL double\n  HALT\n";
  std::ofstream(lib_s) << "double: ADD r0, r0, r0\n  RET\nstart: SET r0, 3\n  JMP 1\n";
  for (const std::string mode : {"--reference", "--alu table"}) {
    const auto linked = run_cli(mode + " --json " + main_s + " " + lib_s);
    REQUIRE(linked.status == 0);
    CHECK(nlohmann::json::parse(linked.out)["registers"][0] == 10);
    CHECK(nlohmann::json::parse(linked.out)["registers"][7] == 2);  // ra = the line after CALL
    const auto entry = run_cli(mode + " --json --entry start " + main_s + " " + lib_s);
    REQUIRE(entry.status == 0);
    CHECK(nlohmann::json::parse(entry.out)["registers"][0] == 6);
    CHECK(nlohmann::json::parse(entry.out)["halt_step"] == 6);
  }
  std::filesystem::remove(main_s);
  std::filesystem::remove(lib_s);

  const auto short_budget = run_cli("--json --steps 3 " + programs + "factorial.s --set r0=4");
  REQUIRE(short_budget.status == 0);
  const auto k = nlohmann::json::parse(short_budget.out);
  CHECK(k["halt_step"].is_null());
  CHECK(k["halted"] == 0.0);
  CHECK(k["pc"] == 3);
}

TEST_CASE("ncl-run: exit status 2 with a message on assembly and usage errors", "[machine][ncl-run]") {
  const std::string fact = programs + "factorial.s";
  const std::string bad = (std::filesystem::temp_directory_path() / "ncl_test_machine_bad.s").string();
  {
    std::ofstream out(bad);
    out << "  NOP\n  ADD r1, r2\n";
  }
  const std::vector<std::pair<std::string, std::string>> cases{
      {"", "no assembly file given"},
      {bad, "ncl_test_machine_bad.s:2:3: error: ADD takes 3 operands"},
      {programs + "no_such.s", "cannot open"},
      {"--bogus " + fact, "unknown option --bogus"},
      {"--set r9=1 " + fact, "unknown register 'r9'"},
      {"--set r1=32 " + fact, "outside [0, n = 32)"},
      {"--set r1=-1 " + fact, "not a non-negative decimal integer"},
      {"--set r1 " + fact, "expected REG=V"},
      {"--mem 30=1,2,3 " + fact, "do not fit in M = 32"},
      {"--mem 0=1,,2 " + fact, "not a non-negative decimal integer"},
      {"--mem 0=1,40 " + fact, "outside [0, n = 32)"},
      {"--alu abacus " + fact, "unknown ALU backend 'abacus'"},
      {"--reference --alu abacus " + fact, "unknown ALU backend 'abacus'"},
      {"--n 20 --alu circuit " + fact, "power of two"},
      {"--control psychic " + fact, "not per_line or mean_field"},
      {"--n 16 --memory 32 " + fact, "M = 32 must be in [1, n = 16]"},
      {"--lines 40 " + fact, "L = 40 must be in [1, n = 32]"},
      {"--n 1 " + fact, "n = 1"},
      {"--lines 4 " + fact, "program is 6 lines long, more than L = 4"},
      {"--steps many " + fact, "--steps: 'many'"},
      {"--sharpness -2 " + fact, "--sharpness: '-2'"},
      {"--sharpness nan " + fact, "--sharpness: 'nan'"},
      {"--entry nowhere " + fact, "entry label 'nowhere' is not defined"},
      {"--n", "--n needs a value"},
      {"--json=1 " + fact, "--json takes no value"},
      {programs + "gcd.s " + programs + "every_opcode.s", "every_opcode.s:37:1: error: duplicate label 'done'"},
  };
  for (const auto& [args, message] : cases) {
    INFO("ncl-run " << args);
    const auto r = run_cli(args);
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains(message));
  }
  std::filesystem::remove(bad);
}

#endif  // NCL_HAVE_NCL_RUN
