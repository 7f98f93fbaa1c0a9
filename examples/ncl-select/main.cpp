// ncl-select: a linear network learns which library program to run. Its input is a task id
// (with --argument-features 1 also the one-hot arguments); its output, a distribution over the library's entry points,
// becomes the machine's initial instruction counter; the arguments go into r0 and r1; the
// machine runs T steps in superposition; the only supervision is the cross-entropy of r0
// against the task's answer. Nothing tells the network which program belongs to which task.
#include <cstdio>

#include "example_util.hpp"
#include "example_main.hpp"

namespace {

int run(int argc, char** argv) {
  const example::flags flags(argc, argv,
                             {{"steps", "300"}, {"lr", "1.0"}, {"seed", "1"}, {"max-arg", "5"}, {"min-arg", "2"}, {"argument-features", "0"}, {"tasks", "absdiff,factorial,gcd"},
                              {"out", "results/select"}, {"every", "10"}},
                             "usage: ncl-select [--steps N] [--lr X] [--seed S] [--max-arg A] "
                             "[--min-arg A] [--argument-features 0|1]\n"
                             "       [--tasks power,absdiff,factorial,gcd (two-argument stdlib programs)] [--every K] [--out DIR]\n"
                             "exit status: 0 target reached, 1 not within --steps (or training failed), 2 bad flags\n");
  // Every value checked before any work, so a bad one is a usage error (exit 2). The arguments
  // go into r0 and r1, so they must be values of the machine (n = 32).
  constexpr std::int64_t n = 32;
  const std::int64_t steps = flags.integer("steps", 0), seed = flags.integer("seed", 0), every = flags.integer("every", 1);
  const double lr = flags.positive("lr");
  const std::int64_t max_arg = flags.integer("max-arg", 0, n - 1), min_arg = flags.integer("min-arg", 0, max_arg);
  const bool argument_features = flags.integer("argument-features", 0, 1) != 0;
  std::vector<std::string> tasks;
  {
    const std::string list = flags.str("tasks") + ",";
    for (std::size_t at = 0, comma; (comma = list.find(',', at)) != std::string::npos; at = comma + 1) {
      if (comma > at) tasks.push_back(list.substr(at, comma - at));
    }
  }
  if (tasks.empty()) flags.fail("--tasks: no task given");
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (tasks[i] == tasks[j]) flags.fail("--tasks: '" + tasks[i] + "' is listed twice");
    }
  }
  example::make_out_dir(flags.str("out"));  // before any work: a bad --out fails at once
  ncl::machine::machine_shape shape;
  shape.n = n;
  shape.registers = 6;
  shape.memory = 32;
  shape.lines = 32;
  shape.steps = 4 * max_arg + 8;
  const auto library = ncl::library::link_stdlib(shape, tasks);
  std::vector<ncl::library::selection_example> examples;
  for (ncl::index t = 0; t < static_cast<ncl::index>(tasks.size()); ++t) {
    for (std::int64_t a = min_arg; a <= max_arg; ++a) {
      for (std::int64_t b = min_arg; b <= max_arg; ++b) examples.push_back({t, {a, b}});
    }
  }
  std::printf("ncl-select: %zu tasks (%s), %zu examples, n = 32, L = 32, T = %lld\n", tasks.size(),
              flags.str("tasks").c_str(), examples.size(), static_cast<long long>(shape.steps));
  const auto result = ncl::library::learn_selection<float>(
      library, tasks, examples,
      {.lr = lr, .max_steps = steps, .seed = static_cast<std::uint64_t>(seed), .argument_features = argument_features},
      example::progress_printer(every, "answer_accuracy"));
  std::printf("%s after %lld steps. Learned choice per task (mean probability of each entry):\n",
              result.steps_to_target >= 0 ? "all answers right, and every most likely choice answers right," : "target NOT reached",
              static_cast<long long>(result.curve.back().step));
  std::printf("%-10s", "task");
  for (const auto& e : library.entries) std::printf(" %9s", e.name.c_str());
  std::printf("\n");
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    std::printf("%-10s", tasks[t].c_str());
    for (ncl::index e = 0; e < result.task_choice.cols(); ++e) {
      std::printf(" %9.3f", result.task_choice(static_cast<ncl::index>(t), e));
    }
    std::printf("\n");
  }
  example::write_curve(flags.str("out"), "select", result.curve,
                       "ncl-select: choosing library programs from answers", "answer_accuracy");
  return result.steps_to_target >= 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return example::guarded_main("ncl-select", [&] { return run(argc, argv); });
}
