// The assembler: syntax, labels, macros, linking, and one test per error kind (ISA.md,
// "Assembly text").
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <string>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/machine/assembler.hpp"

using namespace ncl::machine;
using ncl::alu::opcode;

namespace {

machine_shape default_shape() { return machine_shape{}; }

/// The parse_error an assembly text raises; fails the test if it assembles.
ncl::parse_error error_of(const std::string& text, const machine_shape& shape = default_shape(),
                          const std::string& entry = "") {
  try {
    assemble(text, shape, "t.s", entry);
  } catch (const ncl::parse_error& e) {
    return e;
  }
  FAIL("expected a parse_error for:\n" << text);
  throw std::logic_error("unreachable");
}

void check_error(const std::string& text, int line, int column, const std::string& fragment,
                 const machine_shape& shape = default_shape()) {
  const auto e = error_of(text, shape);
  INFO(e.what());
  CHECK(e.file() == "t.s");
  CHECK(e.line() == line);
  CHECK(e.column() == column);
  CHECK_THAT(e.message(), Catch::Contains(fragment));
  CHECK_THAT(std::string(e.what()),
             Catch::StartsWith("t.s:" + std::to_string(line) + ":" + std::to_string(column) + ": error: "));
}

}  // namespace

TEST_CASE("assembler: the ISA example, labels and field layout", "[machine][assembler]") {
  const auto p = assemble(
      "; factorial of r0 into r1\n"
      "        SET  r1, 1\n"
      "loop:   JZ   r0, done\n"
      "        MUL  r1, r1, r0\n"
      "        DEC  r0, r0\n"
      "        JMP  loop\n"
      "done:   HALT\n",
      default_shape());
  REQUIRE(p.lines.size() == 6);
  CHECK(p.lines[0] == instruction{opcode::SET, 1, 0, 0, 1});
  CHECK(p.lines[1] == instruction{opcode::JZ, 0, 0, 0, 5});
  CHECK(p.lines[2] == instruction{opcode::MUL, 1, 1, 0, 0});
  CHECK(p.lines[3] == instruction{opcode::DEC, 0, 0, 0, 0});
  CHECK(p.lines[4] == instruction{opcode::JMP, 0, 0, 0, 1});
  CHECK(p.lines[5] == instruction{opcode::HALT, 0, 0, 0, 0});
  CHECK(p.labels.at("loop") == 1);
  CHECK(p.labels.at("done") == 5);
  CHECK(p.entry == 0);
  CHECK(p.source[2].file == "<input>");
  CHECK(p.source[2].line == 4);
  CHECK(p.source[2].column == 9);
  CHECK(p.source[2].text == "MUL  r1, r1, r0");
}

TEST_CASE("assembler: case, aliases, macros, label immediates", "[machine][assembler]") {
  machine_shape shape;
  shape.registers = 6;  // sp = r4, ra = r5
  const auto p = assemble(
      "start: set R1, 3 ; comment, with commas\n"
      "  Stop\n"
      "  jez r1, start\n"
      "  ZERO r2\n"
      "  PUSH r1\n"
      "  POP r3\n"
      "  RET\n"
      "  CALL start\n"
      "  SET r0, after\n"
      "  mov SP, Ra\n"
      "after:\n",
      shape);
  REQUIRE(p.lines.size() == 12);
  CHECK(p.lines[0] == instruction{opcode::SET, 1, 0, 0, 3});
  CHECK(p.lines[1] == instruction{opcode::HALT, 0, 0, 0, 0});
  CHECK(p.lines[2] == instruction{opcode::JZ, 0, 1, 0, 0});
  CHECK(p.lines[3] == instruction{opcode::SET, 2, 0, 0, 0});
  CHECK(p.lines[4] == instruction{opcode::WRITE, 0, 4, 1, 0});  // PUSH: WRITE sp, x
  CHECK(p.lines[5] == instruction{opcode::INC, 4, 4, 0, 0});    //       INC sp, sp
  CHECK(p.lines[6] == instruction{opcode::DEC, 4, 4, 0, 0});    // POP:  DEC sp, sp
  CHECK(p.lines[7] == instruction{opcode::READ, 3, 4, 0, 0});   //       READ d, sp
  CHECK(p.lines[8] == instruction{opcode::JR, 0, 5, 0, 0});     // RET = JR ra
  CHECK(p.lines[9] == instruction{opcode::CALL, 5, 0, 0, 0});   // CALL writes ra
  CHECK(p.lines[10] == instruction{opcode::SET, 0, 0, 0, 12});  // a label at the end: line 12
  CHECK(p.lines[11] == instruction{opcode::MOV, 4, 5, 0, 0});
  CHECK(p.labels.at("after") == 12);
  CHECK(p.source[5].line == 5);  // both lines of a macro point at it
}

TEST_CASE("assembler: several files share labels and lay out in order, entry label",
          "[machine][assembler]") {
  const std::vector<source_file> files{
      {"main.s", "  SET r0, 4\n  CALL double\n  HALT\n"},
      {"lib.s", "; a library\ndouble: ADD r0, r0, r0\n  RET\nentry_point: NOP\n"}};
  const auto p = assemble(files, default_shape(), "entry_point");
  REQUIRE(p.lines.size() == 6);
  CHECK(p.lines[1].imm == 3);
  CHECK(p.labels.at("double") == 3);
  CHECK(p.entry == 5);
  CHECK(p.source[3].file == "lib.s");
  CHECK(p.source[3].line == 2);
  CHECK(p.lines[4].a == 7);

  const auto e = [&] {
    try {
      assemble(files, default_shape(), "nowhere");
    } catch (const ncl::parse_error& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  }();
  CHECK_THAT(e, Catch::Contains("entry label 'nowhere' is not defined"));
}

TEST_CASE("assembler: every error kind names FILE:LINE:COL", "[machine][assembler][errors]") {
  SECTION("unknown mnemonic") { check_error("  NOP\n  FOO r1\n", 2, 3, "unknown mnemonic 'FOO'"); }
  SECTION("unknown register") {
    check_error("  SET r8, 1\n", 1, 7, "unknown register 'r8'");
    check_error("  ADD r1, r2, r99999999999\n", 1, 15, "unknown register");
  }
  SECTION("wrong operand count") {
    check_error("  ADD r1, r2\n", 1, 3, "ADD takes 3 operands (dst, a, b), got 2");
    check_error("  HALT r1\n", 1, 3, "HALT takes 0 operands");
    check_error("  RET ra\n", 1, 3, "RET takes 0 operands");
  }
  SECTION("empty operand") { check_error("  ADD r1,, r2\n", 1, 10, "empty operand"); }
  SECTION("wrong operand kind") {
    check_error("  SET r1, r2\n", 1, 11, "operand 2 of SET must be an immediate or a label, got a register");
    check_error("  MOV r1, 5\n", 1, 11, "operand 2 of MOV must be a register, got an immediate");
    check_error("x: JMP r1\n", 1, 8, "operand 1 of JMP must be a label or a line number");
    check_error("x: ADD r1, x, r2\n", 1, 12, "must be a register, got a label");
  }
  SECTION("malformed operand") {
    check_error("  SET r1, 3x\n", 1, 11, "malformed operand '3x'");
    check_error("  ADD r1, r2 r3\n", 1, 11, "missing ',' between operands in 'r2 r3'");
    check_error("  SET r1, #4\n", 1, 11, "malformed operand '#4'");
  }
  SECTION("undefined label") { check_error("  NOP\n  JMP nowhere\n", 2, 7, "undefined label 'nowhere'"); }
  SECTION("duplicate label") {
    check_error("a: NOP\n  NOP\n  a: HALT\n", 3, 3, "duplicate label 'a' (first defined at t.s:1:1)");
  }
  SECTION("label named like a register or malformed") {
    check_error("sp: NOP\n", 1, 1, "label 'sp' is a register name");
    check_error("9lives: NOP\n", 1, 1, "malformed label '9lives'");
  }
  SECTION("immediate out of range") {
    check_error("  SET r1, 32\n", 1, 11, "immediate 32 is out of range");
    check_error("  SET r1, -1\n", 1, 11, "immediate -1 is out of range");
    check_error("  SET r1, 99999999999999999999999\n", 1, 11, "out of range");
  }
  SECTION("program longer than L") {
    machine_shape shape;
    shape.lines = 3;
    check_error("  NOP\n  NOP\n  NOP\n  PUSH r1\n", 4, 3, "program is 5 lines long, more than L = 3", shape);
    check_error("  NOP\n  NOP\n  NOP\nend:\n", 4, 1, "label 'end' points to line 3, past the last line", shape);
  }
  SECTION("a shape that breaks the table") {
    machine_shape shape;
    shape.memory = 33;
    check_error("  NOP\n", 1, 1, "M = 33 must be in [1, n = 32]", shape);
    shape.memory = 32;
    shape.lines = 40;
    check_error("  NOP\n", 1, 1, "L = 40 must be in [1, n = 32]", shape);
  }
}

TEST_CASE("assembler: reading files", "[machine][assembler]") {
  const std::string dir = NCL_SOURCE_DIR "/examples/programs/";
  const auto p = assemble_files({dir + "factorial.s"}, default_shape());
  CHECK(p.lines.size() == 6);
  CHECK(p.source[0].file == dir + "factorial.s");
  CHECK_THROWS_AS(assemble_files({dir + "no_such_file.s"}, default_shape()), ncl::io_error);
  CHECK(format_instruction(p.lines[1], default_shape(), "done") == "JZ r0, done");
  CHECK(format_instruction(instruction{opcode::WRITE, 0, 6, 2, 0}, default_shape()) == "WRITE sp, r2");
}

TEST_CASE("assembler: a directory given as a source file is refused (regression: it assembled as an empty program)",
          "[machine][assembler]") {
  const std::string dir = NCL_SOURCE_DIR "/examples/programs";
  CHECK_THROWS_WITH(assemble_files({dir}, default_shape()),
                    Catch::Contains(dir) && Catch::Contains("is a directory"));
}

TEST_CASE("assembler: a million-line program is refused without keeping its lines (regression: it "
          "held every line before refusing)", "[machine][assembler][limits]") {
  std::string text;
  text.reserve(4'000'000);
  for (int i = 0; i < 1'000'000; ++i) text += "NOP\n";
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  CHECK_THROWS_WITH(assemble(text, default_shape(), "big.s"),
                    Catch::Contains("big.s:33:1: error: program is 1000000 lines long, more than L = 32"));
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  // Holding a million instructions with their source locations took over 100 MB; now only
  // the L = 32 that fit are kept (ru_maxrss is in KiB; each test runs in its own process).
  CHECK(after.ru_maxrss - before.ru_maxrss < 32 * 1024);
}

TEST_CASE("assembler: random text either assembles or raises parse_error", "[machine][assembler]") {
  const std::vector<std::string> pieces{"SET", "add", "JMP", "PUSH", "ret", "r0", "r7", "r8", "sp",
                                        "RA", "x:", "loop", ":", ",", " ", "\t", "7", "-3", "31",
                                        "32", "99999999999999999999", ";", "\r", "x", "loop:", "r",
                                        "\xc3\xa9", "#", "..", "_a.b", "HALT", "CALL", "0"};
  ncl::rng random(1234);
  int assembled = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string text;
    const auto lines = random.integer(1, 7);
    for (std::int64_t l = 0; l < lines; ++l) {
      const auto count = random.integer(0, 7);
      for (std::int64_t k = 0; k < count; ++k) {
        text += pieces[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(pieces.size())))];
        if (random.uniform() < 0.5) text += " ";
      }
      text += "\n";
    }
    try {
      const auto p = assemble(text, machine_shape{});
      CHECK(static_cast<std::int64_t>(p.lines.size()) <= 32);
      ++assembled;
    } catch (const ncl::parse_error& e) {
      CHECK(e.line() >= 1);
      CHECK(e.column() >= 1);
      ++rejected;
    }
  }
  CHECK(assembled > 0);
  CHECK(rejected > 0);
}
