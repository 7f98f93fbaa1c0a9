// ncl-sketch: learn the missing part of a loop from input/output pairs alone.
// The sketch is factorial (or the triangle numbers) with fields of its loop body's line
// forgotten (by default the opcode and both operands of MUL r1, r1, r0): every other line and
// field is frozen library code (a parameter mask), the hole starts from random logits, and the
// only signal is the cross-entropy of the answer register after T steps of the soft machine.
#include <cstdio>

#include "example_util.hpp"
#include "example_main.hpp"

namespace {

int run(int argc, char** argv) {
  const example::flags flags(argc, argv,
                             {{"steps", "400"}, {"lr", "0.1"}, {"seed", "1"}, {"init", "0.5"},
                              {"out", "results/sketch"}, {"every", "10"}, {"n", "32"}, {"max-input", "5"}, {"program", "factorial"}, {"fields", "op,a,b"}},
                             "usage: ncl-sketch [--steps N] [--lr X] [--seed S] [--init STDDEV] "
                             "[--every K] [--out DIR] [--n N] [--max-input A]\n"
                             "       [--program factorial|triangle] [--fields op,a,b | all | a comma list of op,dst,a,b,imm]\n"
                             "exit status: 0 solved, 1 not solved within --steps (or training failed), 2 bad flags\n");
  // Every value checked before any work, so a bad one is a usage error (exit 2).
  const std::int64_t steps = flags.integer("steps", 0), seed = flags.integer("seed", 0), every = flags.integer("every", 1);
  const double lr = flags.positive("lr"), init = flags.num("init", 0, 100);
  const std::string which = flags.str("program");
  if (which != "factorial" && which != "triangle") flags.fail("--program: '" + which + "' is not factorial or triangle");
  const std::int64_t n = flags.integer("n", 2, std::int64_t{1} << 24);
  const std::int64_t max_input = flags.integer("max-input", 0);
  example::make_out_dir(flags.str("out"));  // before any work: a bad --out fails at once
  ncl::library::sketch_task task;
  task.shape.n = n;
  task.shape.registers = 4;
  task.shape.memory = task.shape.n;
  task.shape.lines = 8;
  task.shape.steps = 28;
  const char* source = which == "factorial" ? R"(
        SET  r1, 1
loop:   JZ   r0, done
        MUL  r1, r1, r0      ; the hole: this line is forgotten and learned
        DEC  r0, r0
        JMP  loop
done:   MOV  r0, r1
        HALT
)" : R"(
        SET  r1, 0
loop:   JZ   r0, done
        ADD  r1, r1, r0      ; the hole: this line is forgotten and learned
        DEC  r0, r0
        JMP  loop
done:   MOV  r0, r1
        HALT
)";
  task.program = ncl::machine::assemble(source, task.shape, which + "-sketch.s");
  // Inputs a = 0..A go into r0, so each must be a value of the machine (n checked above).
  if (max_input >= n) flags.fail(ncl::detail::concat("--max-input must be in [0, n - 1 = ", n - 1, "], got ", max_input));
  task.holes = {2};
  if (flags.str("fields") != "all") {
    task.hole_fields.clear();
    std::string list = flags.str("fields") + ",";
    for (std::size_t at = 0, comma; (comma = list.find(',', at)) != std::string::npos; at = comma + 1) {
      const std::string name = list.substr(at, comma - at);
      bool found = false;
      for (auto f : ncl::library::all_fields) {
        if (ncl::library::name(f) == name) task.hole_fields.push_back(f), found = true;
      }
      if (!found) flags.fail("--fields: unknown field '" + name + "' (op, dst, a, b, imm, or all)");
    }
  }
  task.answer_register = 0;
  task.shape.steps = 4 * max_input + 8;
  for (std::int64_t a = 0; a <= max_input; ++a) task.inputs.push_back({{a, 0, 0, 0}, {}});
  std::printf("ncl-sketch: %s with fields %s of line 2 forgotten; n = %lld, L = 8, T = %lld, inputs a = 0..%lld\n",
              which.c_str(), flags.str("fields").c_str(), static_cast<long long>(task.shape.n),
              static_cast<long long>(task.shape.steps), static_cast<long long>(max_input));
  const auto result = ncl::library::learn_sketch<float>(
      task, {.lr = lr, .max_steps = steps, .init_stddev = init, .seed = static_cast<std::uint64_t>(seed)},
      example::progress_printer(every, "answer_accuracy"));
  std::printf("%s after %lld steps; the hole decodes to: %s\n", result.solved ? "solved" : "NOT solved",
              static_cast<long long>(result.solved ? result.steps_to_solved : static_cast<std::int64_t>(result.curve.size() - 1)),
              result.hole_text[0].c_str());
  std::printf("%s", ncl::machine::decompile(result.learned, task.shape).c_str());
  example::write_curve(flags.str("out"), "sketch", result.curve,
                       "ncl-sketch: learning a loop's missing line from answers", "answer_accuracy");
  return result.solved ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return example::guarded_main("ncl-sketch", [&] { return run(argc, argv); });
}
