// The standard library (share/ncl/stdlib/*.s), run by the reference interpreter over many
// inputs: each program's result and its documented step count.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/library/linker.hpp"
#include "ncl/machine/reference.hpp"

namespace lib = ncl::library;
using ncl::machine::machine_inputs;
using ncl::machine::reference_machine;

namespace {

ncl::machine::machine_shape stdlib_shape() {
  ncl::machine::machine_shape s;
  s.n = 128;
  s.registers = 8;
  s.memory = 64;
  s.lines = 128;
  s.steps = 20000;
  return s;
}

struct run_result {
  std::vector<std::int64_t> registers, memory;
  std::int64_t halt_step;
};

run_result run(const lib::program_library& library, const std::string& entry,
               std::vector<std::int64_t> registers, std::vector<std::int64_t> memory = {}) {
  const auto& shape = library.shape;
  registers.resize(static_cast<std::size_t>(shape.registers), 0);
  memory.resize(static_cast<std::size_t>(shape.memory), 0);
  const reference_machine machine(library.program, shape);
  const auto line = library.entries[library.entry_index(entry)].line;
  auto state = machine.run(machine.initial_state(line, machine_inputs{registers, memory}), shape.steps);
  REQUIRE(state.halt_step.has_value());
  return {state.registers, state.memory, *state.halt_step};
}

std::int64_t fib(std::int64_t a, std::int64_t b, std::int64_t d, std::int64_t n) {
  for (; d > 0; --d) {
    const std::int64_t c = (a + b) % n;
    a = b;
    b = c;
  }
  return a;
}

}  // namespace

TEST_CASE("the standard library links into one program with named entry points", "[library][stdlib]") {
  const auto library = lib::link_stdlib(stdlib_shape());
  CHECK(library.entries.size() == lib::stdlib_entry_points().size());
  CHECK(library.program.lines.size() <= 128);
  CHECK(library.entries[library.entry_index("power")].line == 0);
  CHECK_THROWS_WITH(library.entry_index("nope"), Catch::Contains("no entry point 'nope'"));
  // A library that does not fit the shape is an assembly error, not a clipped program.
  auto small = stdlib_shape();
  small.n = 64;
  small.lines = 64;
  small.memory = 64;
  CHECK_THROWS_AS(lib::link_stdlib(small), ncl::parse_error);
}

TEST_CASE("stdlib arithmetic programs: power, absdiff, factorial, gcd", "[library][stdlib]") {
  const auto library = lib::link_stdlib(stdlib_shape());
  const std::int64_t n = 128;
  for (std::int64_t a = 0; a < 12; ++a) {
    for (std::int64_t b = 0; b < 12; ++b) {
      std::int64_t p = 1;
      for (std::int64_t k = 0; k < b; ++k) p = p * a % n;
      const auto pw = run(library, "power", {a, b});
      CHECK(pw.registers[0] == p);
      CHECK(pw.halt_step == 4 * b + 4);
      const auto ad = run(library, "absdiff", {a * 9, b * 7});
      CHECK(ad.registers[0] == std::abs(a * 9 - b * 7));
      CHECK(ad.halt_step == 4);
      const auto g = run(library, "gcd", {a * 5, b * 3});
      CHECK(g.registers[0] == std::gcd(a * 5, b * 3));
      std::int64_t x = a * 5, y = b * 3, k = 0;
      while (y != 0) {
        const std::int64_t r = x % y;
        x = y;
        y = r;
        ++k;
      }
      CHECK(g.halt_step == 5 * k + 2);
    }
    std::int64_t f = 1;
    for (std::int64_t k = 2; k <= a; ++k) f = f * k % n;
    const auto fa = run(library, "factorial", {a});
    CHECK(fa.registers[0] == f);
    CHECK(fa.halt_step == 4 * a + 4);
  }
}

TEST_CASE("stdlib fib recurses through CALL/RET to depth d", "[library][stdlib]") {
  const auto library = lib::link_stdlib(stdlib_shape());
  for (std::int64_t d = 0; d <= 20; ++d) {
    for (auto [a, b] : std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 1}, {2, 5}, {7, 3}}) {
      const auto r = run(library, "fib", {a, b, d});
      CHECK(r.registers[0] == fib(a, b, d, 128));
      CHECK(r.halt_step == 11 * d + 4);
      CHECK(r.registers[6] == 0);  // the stack is balanced: sp is back at 0
    }
  }
}

TEST_CASE("stdlib list programs: sum, min, max, reverse, sort, search", "[library][stdlib]") {
  const auto library = lib::link_stdlib(stdlib_shape());
  ncl::rng random(11);
  for (int trial = 0; trial < 60; ++trial) {
    const std::int64_t length = random.integer(1, 14);
    const std::int64_t start = random.integer(0, 64 - length);
    std::vector<std::int64_t> memory(64);
    for (auto& m : memory) m = random.integer(0, 128);
    const std::vector<std::int64_t> list(memory.begin() + start, memory.begin() + start + length);

    const auto sum = run(library, "list_sum", {start, length}, memory);
    CHECK(sum.registers[0] == std::accumulate(list.begin(), list.end(), std::int64_t{0}) % 128);
    CHECK(sum.halt_step == 6 * length + 4);
    const auto mn = run(library, "list_min", {start, length}, memory);
    CHECK(mn.registers[0] == *std::min_element(list.begin(), list.end()));
    CHECK(mn.halt_step == 6 * length - 1);
    const auto mx = run(library, "list_max", {start, length}, memory);
    CHECK(mx.registers[0] == *std::max_element(list.begin(), list.end()));
    CHECK(mx.halt_step == 6 * length - 1);

    const auto rev = run(library, "reverse", {start, length}, memory);
    std::vector<std::int64_t> expected = memory;
    std::reverse(expected.begin() + start, expected.begin() + start + length);
    CHECK(rev.memory == expected);
    CHECK(rev.halt_step == 9 * (length / 2) + 6);

    const auto sorted = run(library, "sort", {start, length}, memory);
    expected = memory;
    std::sort(expected.begin() + start, expected.begin() + start + length);
    CHECK(sorted.memory == expected);
    CHECK(sorted.halt_step == 11 * length * (length - 1) / 2 + 5 * (length - 1) + 4);

    const bool present = trial % 2 == 0;
    const std::int64_t key = present ? list[static_cast<std::size_t>(random.integer(0, length))] : 200 % 128;
    const auto found = run(library, "search", {start, length, key}, memory);
    const auto it = std::find(list.begin(), list.end(), key);
    const std::int64_t offset = it - list.begin();
    CHECK(found.registers[0] == offset);
    CHECK(found.halt_step == (it == list.end() ? 8 * length + 5 : 8 * offset + 9));
  }
  // Empty lists: reverse and sort do nothing, sum is 0, search finds nothing.
  CHECK(run(library, "reverse", {3, 0}).halt_step == 2);
  CHECK(run(library, "sort", {3, 0}).halt_step == 2);
  CHECK(run(library, "list_sum", {3, 0}).registers[0] == 0);
  CHECK(run(library, "search", {3, 0, 5}).registers[0] == 0);
}

#include "ncl/core/gradcheck.hpp"
#include "ncl/machine/interpreter.hpp"

TEST_CASE("selection and argument writing: exact on one-hot, gradient-checked on soft",
          "[library][linker][gradcheck]") {
  auto shape = stdlib_shape();
  shape.n = 32;
  shape.lines = 32;
  shape.memory = 32;
  shape.registers = 6;
  const auto library = lib::link_stdlib(shape, {"absdiff", "factorial", "gcd"});
  // One-hot selection of entry e puts the counter one-hot on e's line.
  ncl::matrix<double> select = ncl::matrix<double>::Zero(2, 3), counter;
  select(0, 1) = 1;
  select(1, 2) = 1;
  lib::select_forward(counter, select, library);
  CHECK(counter(0, library.entries[1].line) == 1.0);
  CHECK(counter(1, library.entries[2].line) == 1.0);
  CHECK(counter.sum() == 2.0);

  ncl::rng random(2);
  ncl::matrix<double> soft_select(2, 3), x0(2, 32), x1(2, 32);
  for (auto* m : {&soft_select, &x0, &x1}) {
    random.fill_uniform(std::span<double>(m->data(), static_cast<std::size_t>(m->size())), 0.05, 1.0);
  }
  const std::vector<ncl::index> argument_registers{0, 1};
  auto state = ncl::machine::initial_state<double>(shape, 2, 0);
  auto forward = [&] {
    lib::select_forward(state.counter, soft_select, library);
    lib::write_arguments(state, shape, argument_registers, {x0, x1});
    std::vector<double> out(state.counter.data(), state.counter.data() + state.counter.size());
    out.insert(out.end(), state.registers.data(), state.registers.data() + state.registers.size());
    return out;
  };
  auto backward = [&](std::span<const double> dout) {
    const ncl::matrix<double> dcounter = ncl::const_matrix_map<double>(dout.data(), 2, shape.lines);
    const ncl::matrix<double> dregisters =
        ncl::const_matrix_map<double>(dout.data() + 2 * shape.lines, 2, shape.registers * shape.n);
    ncl::matrix<double> dselect = ncl::matrix<double>::Zero(2, 3);
    std::vector<ncl::matrix<double>> dargs{ncl::matrix<double>::Zero(2, 32), ncl::matrix<double>::Zero(2, 32)};
    lib::select_backward(dselect, dcounter, library);
    lib::write_arguments_backward(dargs, dregisters, shape, argument_registers);
    return std::vector<std::vector<double>>{{dselect.data(), dselect.data() + 6},
                                            {dargs[0].data(), dargs[0].data() + 64},
                                            {dargs[1].data(), dargs[1].data() + 64}};
  };
  const auto result = ncl::gradcheck({{"select", {soft_select.data(), 6}}, {"x0", {x0.data(), 64}}, {"x1", {x1.data(), 64}}},
                                     forward, backward);
  INFO(result.report());
  CHECK(result.ok);
  CHECK_THROWS_WITH(lib::write_arguments(state, shape, {7}, {x0}), Catch::Contains("register 7 is outside [0, 6)"));
  CHECK_THROWS_AS(lib::select_forward(counter, x0, library), ncl::shape_error);
}

TEST_CASE("stdlib: opcode programs linked with stdlib programs", "[library][stdlib]") {
  const std::vector<ncl::alu::opcode> ops{ncl::alu::opcode::SUB, ncl::alu::opcode::MAX};
  const auto library = lib::opcode_library(stdlib_shape(), ops, {"gcd", "absdiff"});
  std::vector<std::string> names;
  for (const auto& e : library.entries) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"op_sub", "op_max", "gcd", "absdiff"});
  CHECK(library.entries[0].line == 0);
  CHECK(library.entries[1].line == 2);
  for (std::int64_t a : {0, 7, 30}) {
    for (std::int64_t b : {1, 12, 45}) {
      CHECK(run(library, "op_sub", {a, b}).registers[0] == ncl::alu::apply(ncl::alu::opcode::SUB, a, b, 128));
      CHECK(run(library, "op_sub", {a, b}).halt_step == 2);
      CHECK(run(library, "op_max", {a, b}).registers[0] == std::max(a, b));
      CHECK(run(library, "gcd", {a, b}).registers[0] == std::gcd(a, b));
      CHECK(run(library, "absdiff", {a, b}).registers[0] == (a > b ? a - b : b - a));
    }
  }
  CHECK_THROWS_AS(lib::opcode_library(stdlib_shape(), ops, {"nonesuch"}), ncl::value_error);
  CHECK_THROWS_AS(lib::opcode_library(stdlib_shape(), std::vector<ncl::alu::opcode>{}), ncl::value_error);
  CHECK_THROWS_AS(lib::opcode_library(stdlib_shape(), std::vector<ncl::alu::opcode>{ncl::alu::opcode::ADD, ncl::alu::opcode::ADD}),
                  ncl::value_error);
}
