// Compiler, decompiler, file format and the reference interpreter on every example program.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ncl/machine/program.hpp"
#include "ncl/machine/reference.hpp"

using namespace ncl::machine;
using ncl::alu::opcode;

namespace {

const std::string programs_dir = NCL_SOURCE_DIR "/examples/programs/";

/// An example program with inputs and the state it must end in (from its header comment).
struct example {
  std::string file;
  machine_shape shape;
  machine_inputs inputs;
  std::vector<std::pair<int, std::int64_t>> registers;  // (register, value) to check
  std::vector<std::pair<int, std::int64_t>> memory;     // (cell, value) to check
  std::int64_t halt_step;
  std::int64_t pc;
};

machine_inputs inputs(std::vector<std::pair<int, std::int64_t>> regs,
                      std::vector<std::int64_t> mem_prefix = {}, const machine_shape& s = {}) {
  machine_inputs in;
  in.registers.assign(static_cast<std::size_t>(s.registers), 0);
  in.memory.assign(static_cast<std::size_t>(s.memory), 0);
  for (auto [r, v] : regs) in.registers[static_cast<std::size_t>(r)] = v;
  for (std::size_t i = 0; i < mem_prefix.size(); ++i) in.memory[i] = mem_prefix[i];
  return in;
}

std::vector<example> examples() {
  machine_shape deep;
  deep.steps = 400;
  return {
      {"factorial.s", {}, inputs({{0, 4}}), {{0, 0}, {1, 24}}, {}, 19, 5},
      {"gcd.s", {}, inputs({{0, 24}, {1, 18}}), {{0, 6}, {1, 0}}, {}, 12, 5},
      {"fibonacci.s", {}, inputs({{0, 7}}), {{0, 0}, {1, 13}, {2, 21}}, {}, 46, 8},
      {"fibonacci_recursive.s", {}, inputs({{0, 5}}), {{1, 5}, {6, 16}}, {}, 197, 2},
      {"fibonacci_recursive.s", deep, inputs({{0, 6}}), {{1, 8}, {6, 16}}, {}, 332, 2},
      {"sum_list.s", {}, inputs({{1, 5}}, {3, 1, 4, 1, 5}), {{0, 5}, {1, 0}, {2, 14}}, {}, 33, 7},
      {"bubble_sort.s", {}, inputs({{0, 5}}, {5, 3, 4, 1, 2}), {{0, 0}},
       {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 0}}, 127, 17},
      {"every_opcode.s", {}, inputs({}),
       {{0, 6}, {1, 3}, {2, 26}, {3, 30}, {4, 7}, {5, 8}, {6, 0}, {7, 4}},
       {{2, 1}, {3, 7}, {10, 17}, {0, 0}, {4, 0}}, 28, 30},
  };
}

template <class S>
bool same_program(const soft_program<S>& x, const soft_program<S>& y) {
  return x.op == y.op && x.dst == y.dst && x.a == y.a && x.b == y.b && x.imm == y.imm;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ncl_test_machine_" + name)).string();
}

}  // namespace

TEST_CASE("reference: every example program ends in its documented state", "[machine][reference]") {
  for (const auto& ex : examples()) {
    INFO(ex.file);
    const auto p = assemble_files({programs_dir + ex.file}, ex.shape);
    const reference_machine m(p, ex.shape);
    const reference_state s = m.run(ex.inputs);
    CHECK(s.halted);
    REQUIRE(s.halt_step.has_value());
    CHECK(*s.halt_step == ex.halt_step);
    CHECK(s.steps == ex.halt_step);
    CHECK(s.pc == ex.pc);
    for (auto [r, v] : ex.registers) CHECK(s.registers[static_cast<std::size_t>(r)] == v);
    for (auto [c, v] : ex.memory) CHECK(s.memory[static_cast<std::size_t>(c)] == v);
  }
}

TEST_CASE("reference: step semantics at the edges", "[machine][reference]") {
  machine_shape shape;
  shape.n = 16;
  shape.memory = 5;
  shape.lines = 8;
  SECTION("wraps: last line to 0, CALL's ra, JR mod L, jump targets mod L, addresses mod M") {
    // line 7 is CALL; its ra is (7 + 1) mod L = 0 and the next line after 7 is 0.
    const auto p = assemble(
        "  JZ r1, 7\n"    // 0: r1 = 0 -> line 7
        "  SET r2, 13\n"  // 1: JR r2 goes to 13 mod 8 = 5
        "  JR r2\n"       // 2
        "  NOP\n  NOP\n"  // 3, 4
        "  WRITE r2, r2\n"  // 5: Mem[13 mod 5 = 3] = 13
        "  JMP 15\n"        // 6: line 15 mod 8 = 7
        "  CALL 1\n",       // 7
        shape);
    const reference_machine m(p, shape);
    reference_state s = m.initial_state({});
    m.step(s);
    CHECK(s.pc == 7);
    m.step(s);
    CHECK(s.registers[7] == 0);  // ra = val(inc(c)) = (7 + 1) mod 8
    CHECK(s.pc == 1);
    m.step(s);
    m.step(s);
    CHECK(s.pc == 5);
    m.step(s);
    CHECK(s.memory[3] == 13);
    m.step(s);
    CHECK(s.pc == 7);
    CHECK_FALSE(s.halted);
    CHECK(s.steps == 6);
  }
  SECTION("STORE, division by zero, HALT self-loop and lines past the end") {
    const auto p = assemble("  STORE r3\n  DIV r4, r1, r0\n  MOD r5, r3, r0\n  DEC r0, r0\n", shape);
    const reference_machine m(p, shape);
    reference_state s = m.initial_state({});
    for (int t = 0; t < 4; ++t) m.step(s);
    CHECK(s.registers[3] == 0);
    CHECK(s.registers[4] == 15);  // x / 0 = n - 1
    CHECK(s.registers[5] == 0);   // x mod 0 = x
    CHECK(s.registers[0] == 15);  // 0 - 1 mod n
    CHECK(s.pc == 4);
    m.step(s);  // line 4 is past the end: HALT
    CHECK(s.halted);
    CHECK(s.halt_step == 5);
    const reference_state before = s;
    m.step(s);
    CHECK(s.pc == 4);
    CHECK(s.registers == before.registers);
    CHECK(s.halt_step == 5);
    CHECK(s.steps == 6);
  }
  SECTION("bad inputs") {
    const auto p = assemble("  NOP\n", shape);
    const reference_machine m(p, shape);
    machine_inputs in;
    in.registers.assign(8, 0);
    in.registers[2] = 16;
    CHECK_THROWS_AS(m.initial_state(in), ncl::value_error);
    in.registers.assign(3, 0);
    CHECK_THROWS_AS(m.initial_state(in), ncl::value_error);
    CHECK_THROWS_AS(m.initial_state(8, {}), ncl::value_error);
    reference_state s = m.initial_state({});
    s.pc = 9;
    CHECK_THROWS_AS(m.step(s), ncl::value_error);
    machine_shape small = shape;
    small.n = 8;
    small.lines = 8;
    const auto big = assemble("  SET r1, 15\n", shape);
    CHECK_THROWS_AS(reference_machine(big, small), ncl::value_error);
  }
}

TEST_CASE("compile: exact one-hot fields, unused fields on 0, HALT past the end", "[machine][program]") {
  machine_shape shape;
  shape.lines = 6;
  const auto p = assemble("  ADD r1, r2, r3\n  SET r4, 9\n  JZ r5, 0\n", shape);
  const auto soft = compile<double>(p, shape);
  REQUIRE(soft.op.rows() == 6);
  REQUIRE(soft.op.cols() == 23);
  REQUIRE(soft.imm.cols() == 32);
  for (ncl::index l = 0; l < 6; ++l) {
    CHECK(soft.op.row(l).sum() == 1.0);
    CHECK(soft.dst.row(l).sum() == 1.0);
    CHECK(soft.imm.row(l).sum() == 1.0);
  }
  CHECK(soft.op(0, static_cast<ncl::index>(ncl::alu::index_of(opcode::ADD))) == 1.0);
  CHECK(soft.dst(0, 1) == 1.0);
  CHECK(soft.a(0, 2) == 1.0);
  CHECK(soft.b(0, 3) == 1.0);
  CHECK(soft.imm(0, 0) == 1.0);
  CHECK(soft.imm(1, 9) == 1.0);
  CHECK(soft.a(1, 0) == 1.0);
  CHECK(soft.a(2, 5) == 1.0);
  for (ncl::index l = 3; l < 6; ++l) {
    CHECK(soft.op(l, 0) == 1.0);
    CHECK(soft.dst(l, 0) == 1.0);
  }
  machine_shape small = shape;
  small.lines = 2;
  CHECK_THROWS_AS(compile<double>(p, small), ncl::value_error);
}

TEST_CASE("compile_logits and softmax_program", "[machine][program]") {
  const machine_shape shape;
  const auto p = assemble_files({programs_dir + "factorial.s"}, shape);
  const auto logits = compile_logits<double>(p, shape, 12.0);
  CHECK(logits.op(0, static_cast<ncl::index>(ncl::alu::index_of(opcode::SET))) == 12.0);
  CHECK(logits.op(0, 0) == 0.0);
  const auto soft = softmax_program(logits);
  const double top = std::exp(12.0) / (std::exp(12.0) + 22.0);
  CHECK(soft.op(0, static_cast<ncl::index>(ncl::alu::index_of(opcode::SET))) == Approx(top));
  CHECK(soft.op.row(3).sum() == Approx(1.0));
  const double top_imm = std::exp(12.0) / (std::exp(12.0) + 31.0);
  CHECK(soft.imm(0, 1) == Approx(top_imm));
  CHECK_THROWS_AS(compile_logits<double>(p, shape, -1.0), ncl::value_error);
  CHECK_THROWS_AS(compile_logits<double>(p, shape, std::nan("")), ncl::value_error);
  // A sharp soft program decompiles to the same program, with its confidence printed.
  const std::string text = decompile(soft, shape);
  CHECK(same_program(compile<double>(assemble(text, shape), shape), compile<double>(p, shape)));
  CHECK_THAT(text, Catch::Contains("SET r1, 1"));
  // SET uses op (1 of 23), dst (1 of 8) and imm (1 of 32).
  const double top_dst = std::exp(12.0) / (std::exp(12.0) + 7.0);
  CHECK(decode_line(soft, 0).confidence == Approx(top * top_dst * top_imm));
}

TEST_CASE("decompile: every example and test program reassembles to itself", "[machine][program]") {
  std::vector<std::string> texts;
  for (const std::string& dir : {programs_dir, std::string(NCL_SOURCE_DIR "/share/ncl/stdlib/")}) {
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() == ".s") {
        std::ifstream in(entry.path());
        texts.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
    }
  }
  REQUIRE(texts.size() >= 7);
  texts.push_back("  JMP 40\n  JZ r1, 3\n  CALL 2\n  SET r2, 31\n");  // targets beyond L and lines past the end
  texts.push_back("");
  texts.push_back("  HALT\n  NOP\n  HALT\nx: HALT\n  JNZ ra, x\n");
  machine_shape shape;
  shape.lines = 40;
  shape.n = 48;
  for (const auto& text : texts) {
    INFO(text);
    const auto p = assemble(text, shape);
    const auto soft = compile<double>(p, shape);
    const std::string back = decompile(soft, shape);
    INFO(back);
    const auto again = assemble(back, shape);
    CHECK(same_program(compile<double>(again, shape), soft));
    for (std::size_t l = 0; l < std::min(p.lines.size(), again.lines.size()); ++l) {
      CHECK(p.lines[l] == again.lines[l]);
    }
  }
  const auto f = assemble_files({programs_dir + "factorial.s"}, shape);
  const std::string text = decompile(compile<float>(f, shape), shape);
  CHECK_THAT(text, Catch::Contains("L1:"));
  CHECK_THAT(text, Catch::Contains("JZ r0, L5"));
  CHECK_THAT(text, Catch::Contains("; p=1.000"));
}

TEST_CASE("decompile: confidence is the product of the used fields' max probabilities",
          "[machine][program]") {
  machine_shape shape;
  shape.n = 4;
  shape.registers = 2;
  shape.memory = 4;
  shape.lines = 2;
  auto soft = compile<double>(assemble("  MOV r1, r0\n", shape), shape);
  soft.op(0, static_cast<ncl::index>(ncl::alu::index_of(opcode::MOV))) = 0.8;
  soft.op(0, 0) = 0.2;
  soft.dst(0, 1) = 0.6;
  soft.dst(0, 0) = 0.4;
  soft.b(0, 0) = 0.5;  // unused by MOV: does not count
  soft.b(0, 1) = 0.5;
  const decoded_line d = decode_line(soft, 0);
  CHECK(d.inst == instruction{opcode::MOV, 1, 0, 0, 0});
  CHECK(d.confidence == Approx(0.48));
  CHECK_THAT(decompile(soft, shape), Catch::Contains("MOV ra, sp") && Catch::Contains("; p=0.480"));
  soft.op.resize(2, 22);
  CHECK_THROWS_AS(decompile(soft, shape), ncl::shape_error);
}

TEST_CASE("save_program / load_program round trip and reject bad files", "[machine][program][io]") {
  machine_shape shape;
  shape.n = 16;
  shape.memory = 8;
  shape.lines = 12;
  const auto p = assemble_files({programs_dir + "gcd.s"}, shape);
  const auto soft = softmax_program(compile_logits<double>(p, shape, 5.0));
  const std::string path = temp_path("gcd.json");
  save_program(path, soft, shape, 2);
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    CHECK(entry.path().filename().string().rfind("ncl_test_machine_gcd.json.tmp", 0) != 0);  // no temporary left
  }
  const auto back = load_program<double>(path);
  CHECK(back.entry == 2);
  CHECK(back.shape.n == 16);
  CHECK(back.shape.memory == 8);
  CHECK(back.shape.lines == 12);
  CHECK(same_program(back.program, soft));  // doubles survive the text round trip exactly
  const auto as_float = load_program<float>(path);
  CHECK(as_float.program.imm(0, 0) == Approx(soft.imm(0, 0)));

  std::ifstream in(path);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto load_text = [&](const std::string& text) {
    const std::string bad = temp_path("bad.json");
    {
      std::ofstream out(bad, std::ios::binary);
      out << text;
    }
    load_program<double>(bad);
  };
  CHECK_THROWS_AS(load_text(good.substr(0, good.size() / 2)), ncl::io_error);  // truncated
  CHECK_THROWS_AS(load_text(""), ncl::io_error);
  CHECK_THROWS_AS(load_text("[1, 2, 3]"), ncl::io_error);
  auto edited = [&](auto change) {
    auto j = nlohmann::json::parse(good);
    change(j);
    return j.dump();
  };
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["format"] = "other"; })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["version"] = 2; })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["shape"]["memory"] = 17; })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["shape"]["n"] = "16"; })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["entry"] = 12; })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["opcodes"][3] = "SET"; })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["op"].erase(0); })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["dst"][0].erase(0); })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["imm"][1][0] = 1.5; })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["a"][1][0] = "x"; })), ncl::io_error);
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j["b"][1][0] = 0.5; })), ncl::io_error);  // row sum
  CHECK_THROWS_AS(load_text(edited([](auto& j) { j.erase("imm"); })), ncl::io_error);
  CHECK_THROWS_AS(load_program<double>(temp_path("missing.json")), ncl::io_error);
  CHECK_THROWS_AS(save_program(temp_path("no_dir/x/y.json"), soft, shape), ncl::io_error);
  CHECK_THROWS_AS(save_program(path, soft, shape, 12), ncl::value_error);
  std::filesystem::remove(path);
  std::filesystem::remove(temp_path("bad.json"));
}

TEST_CASE("a small program file naming a huge shape is refused before it allocates (regression: "
          "std::bad_alloc)", "[machine][program][io][limits]") {
  // L = 16384 one-hot op, dst, a, b rows (about 1 MB of text) and imm rows that claim
  // n = 2^24 columns but hold none: the imm matrix would be 16384 x 2^24 doubles (2 TiB).
  nlohmann::json j;
  j["format"] = "ncl-soft-program";
  j["version"] = 1;
  const std::int64_t L = 16384;
  j["shape"] = {{"n", std::int64_t{1} << 24}, {"registers", 2}, {"memory", 1}, {"lines", L}, {"steps", 1}};
  j["entry"] = 0;
  j["opcodes"] = nlohmann::json::array();
  for (const auto name : ncl::alu::opcode_names) j["opcodes"].push_back(std::string(name));
  nlohmann::json op_row = nlohmann::json::array(), reg_row = {1, 0};
  for (int k = 0; k < 23; ++k) op_row.push_back(k == 0 ? 1 : 0);
  for (const char* f : {"op", "dst", "a", "b", "imm"}) j[f] = nlohmann::json::array();
  for (std::int64_t l = 0; l < L; ++l) {
    j["op"].push_back(op_row);
    for (const char* f : {"dst", "a", "b"}) j[f].push_back(reg_row);
    j["imm"].push_back(nlohmann::json::array());
  }
  CHECK_THROWS_WITH(ncl::machine::parse_program<double>(j.dump(), "huge.json"),
                    Catch::Contains("huge.json: field 'imm' row 0 must be an array of 16777216 numbers"));
}

TEST_CASE("initial_soft_state and fetch_halt_probability", "[machine][program]") {
  machine_shape shape;
  shape.n = 8;
  shape.registers = 3;
  shape.memory = 4;
  shape.lines = 5;
  machine_inputs in{{1, 7, 0}, {0, 0, 5, 0}};
  const auto s = initial_soft_state<double>(shape, 2, in, 2);
  CHECK(s.batch() == 2);
  CHECK(s.registers(1, 0 * 8 + 1) == 1.0);
  CHECK(s.registers(1, 1 * 8 + 7) == 1.0);
  CHECK(s.registers.row(0).sum() == 3.0);
  CHECK(s.memory(0, 2 * 8 + 5) == 1.0);
  CHECK(s.counter(0, 2) == 1.0);
  CHECK(s.halted == std::vector<double>{0.0, 0.0});
  const auto p = compile<double>(assemble("  NOP\n  NOP\n  NOP\n", shape), shape);
  CHECK(fetch_halt_probability(s, p) == std::vector<double>{0.0, 0.0});
  const auto at_end = initial_soft_state<double>(shape, 4, {}, 1);
  CHECK(fetch_halt_probability(at_end, p) == std::vector<double>{1.0});
  CHECK_THROWS_AS(initial_soft_state<double>(shape, 5, {}), ncl::value_error);
  CHECK_THROWS_AS(initial_soft_state<double>(shape, 0, {{8, 0, 0}, {}}), ncl::value_error);
}
