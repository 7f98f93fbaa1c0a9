// Learning through the machine, on small seeds: each experiment reaches its target.
#include <catch2/catch.hpp>

#include "ncl/core/gradcheck.hpp"
#include "ncl/library/learn.hpp"

namespace lib = ncl::library;
using ncl::machine::machine_shape;

namespace {

machine_shape shape_of(std::int64_t n, std::int64_t registers, std::int64_t lines, std::int64_t steps) {
  machine_shape s;
  s.n = n;
  s.registers = registers;
  s.memory = n;
  s.lines = lines;
  s.steps = steps;
  return s;
}

const char* factorial_source = R"(
        SET  r1, 1
loop:   JZ   r0, done
        MUL  r1, r1, r0
        DEC  r0, r0
        JMP  loop
done:   MOV  r0, r1
        HALT
)";

}  // namespace

TEST_CASE("answer loss backward matches finite differences", "[library][learn][gradcheck]") {
  const auto shape = shape_of(4, 2, 2, 1);
  auto state = ncl::machine::initial_state<double>(shape, 2, 0);
  ncl::rng random(1);
  random.fill_uniform(std::span<double>(state.registers.data(), static_cast<std::size_t>(state.registers.size())), 0.1, 1.0);
  const std::vector<std::int64_t> answers{3, 1};
  auto result = ncl::gradcheck(
      {{"registers", {state.registers.data(), static_cast<std::size_t>(state.registers.size())}}},
      [&] { return std::vector<double>{lib::answer_loss_forward(state, shape, 1, std::span<const std::int64_t>(answers))}; },
      [&](std::span<const double> dout) {
        auto d = ncl::machine::zero_state<double>(shape, 2);
        lib::answer_loss_backward(d, state, shape, 1, std::span<const std::int64_t>(answers));
        d.registers *= dout[0];
        return std::vector<std::vector<double>>{{d.registers.data(), d.registers.data() + d.registers.size()}};
      });
  INFO(result.report());
  CHECK(result.ok);
}

TEST_CASE("compilation by memorisation reaches an exact program", "[library][learn]") {
  const auto shape = shape_of(16, 4, 8, 32);
  const auto program = ncl::machine::assemble(factorial_source, shape);
  const auto target = ncl::machine::compile<float>(program, shape);
  const auto result = lib::memorise(target, shape, {.lr = 0.1, .max_steps = 3000, .init_stddev = 1.0, .seed = 3});
  INFO("steps to exact: " << result.steps_to_exact << ", to confident: " << result.steps_to_confident);
  REQUIRE(result.steps_to_exact > 0);
  REQUIRE(result.steps_to_confident >= result.steps_to_exact);
  CHECK_FALSE(lib::decodes_to(result.before, target));
  CHECK(lib::decodes_to(result.after, target));
  CHECK(result.curve.back().accuracy == 1.0);
  CHECK(result.curve.back().loss < result.curve.front().loss);
}

TEST_CASE("a sketch's missing loop line is learned from answers alone", "[library][learn]") {
  lib::sketch_task task;
  task.shape = shape_of(32, 4, 8, 28);
  task.program = ncl::machine::assemble(factorial_source, task.shape);
  task.holes = {2};  // MUL r1, r1, r0: its opcode and both operands are forgotten
  task.hole_fields = {lib::field::op, lib::field::a, lib::field::b};
  task.answer_register = 0;
  for (std::int64_t a = 0; a <= 5; ++a) task.inputs.push_back({{a, 0, 0, 0}, {}});
  const auto result = lib::learn_sketch<float>(task, {.lr = 0.1, .max_steps = 300, .seed = 2});
  INFO("hole: " << (result.hole_text.empty() ? "" : result.hole_text[0]) << ", steps " << result.steps_to_solved);
  CHECK(result.solved);
}

TEST_CASE("a network learns which library program to select from answers alone", "[library][learn]") {
  const auto shape = shape_of(32, 6, 32, 28);
  const std::vector<std::string> tasks{"absdiff", "factorial", "gcd"};
  const auto library = lib::link_stdlib(shape, tasks);
  std::vector<lib::selection_example> examples;
  for (ncl::index t = 0; t < 3; ++t) {
    for (std::int64_t a = 2; a <= 5; ++a) {
      for (std::int64_t b = 2; b <= 5; ++b) examples.push_back({t, {a, b}});
    }
  }
  const auto result = lib::learn_selection<float>(library, tasks, examples, {.lr = 1.0, .max_steps = 200, .seed = 1});
  INFO("steps: " << result.steps_to_target << ", final accuracy " << result.curve.back().accuracy);
  CHECK(result.steps_to_target >= 0);
  for (ncl::index t = 0; t < 3; ++t) {
    ncl::index best = 0;
    result.task_choice.row(t).maxCoeff(&best);
    INFO("task " << tasks[static_cast<std::size_t>(t)]);
    CHECK(library.entries[static_cast<std::size_t>(best)].name == tasks[static_cast<std::size_t>(t)]);
  }
}
