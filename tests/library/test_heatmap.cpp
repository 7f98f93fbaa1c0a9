#include <catch2/catch.hpp>

#include "ncl/library/heatmap.hpp"

TEST_CASE("program heatmap labels axes with opcode and register names", "[library][heatmap]") {
  ncl::machine::machine_shape shape;
  shape.n = 8;
  shape.registers = 4;
  shape.memory = 8;
  shape.lines = 4;
  const auto assembled = ncl::machine::assemble("SET r1, 5\nADD r0, r1, sp\nHALT\n", shape);
  const auto program = ncl::machine::compile<double>(assembled, shape);
  const std::string svg = ncl::library::program_heatmap_svg(program, shape, "a <test> program");
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("a &lt;test&gt; program") != std::string::npos);
  CHECK(svg.find(">MUL</text>") != std::string::npos);
  CHECK(svg.find(">sp</text>") != std::string::npos);
  CHECK(svg.find(">ADD r0, r1, sp  p=1.000</text>") != std::string::npos);
  // 4 lines x (23 + 3 * 4 + 8) cells
  std::size_t cells = 0;
  for (std::size_t at = svg.find("<rect x="); at != std::string::npos; at = svg.find("<rect x=", at + 1)) ++cells;
  CHECK(cells == 4 * (23 + 12 + 8));
  // A one-hot cell is yellow, an empty one dark.
  CHECK(svg.find("fill=\"#fde725\"><title>line 1, op = ADD: 1</title>") != std::string::npos);
  CHECK(svg.find("fill=\"#440154\"><title>line 1, op = SUB: 0</title>") != std::string::npos);
  auto wrong = program;
  wrong.imm.resize(4, 7);
  CHECK_THROWS_AS(ncl::library::program_heatmap_svg(wrong, shape, "x"), ncl::shape_error);
}
