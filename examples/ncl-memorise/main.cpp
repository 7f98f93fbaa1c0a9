// ncl-memorise: compilation by memorisation (paper eq. 10). A free controller starts from
// random logits and is trained, by cross-entropy against the compiled program, until every
// line decompiles exactly; then the learned soft program runs on the soft machine. Writes
// the curve (CSV and SVG) and heatmaps of the program before and after training.
#include <cstdio>

#include <ncl/library/heatmap.hpp>

#include "example_util.hpp"
#include "example_main.hpp"

namespace {

int run(int argc, char** argv) {
  const example::flags flags(
      argc, argv,
      {{"program", "fib"}, {"n", "32"}, {"lines", "16"}, {"steps", "3000"}, {"lr", "0.05"},
       {"seed", "1"}, {"init", "1.0"}, {"out", "results/memorise"}, {"every", "25"}},
      "usage: ncl-memorise [--program STDLIB_ENTRY] [--n N] [--lines L] [--steps N] [--lr X]\n"
      "                    [--seed S] [--init STDDEV] [--every K] [--out DIR]\n"
      "exit status: 0 memorised, 1 not within --steps (or training failed), 2 bad flags or files\n");
  // Every value checked before any work, so a bad one is a usage error (exit 2).
  const std::int64_t steps = flags.integer("steps", 0), seed = flags.integer("seed", 0), every = flags.integer("every", 1);
  const double lr = flags.positive("lr"), init = flags.num("init", 0, 100);
  example::make_out_dir(flags.str("out"));  // before any work: a bad --out fails at once
  ncl::machine::machine_shape shape;
  shape.n = flags.integer("n");
  shape.registers = 8;
  shape.memory = shape.n;
  shape.lines = flags.integer("lines");
  shape.steps = 256;
  shape.validate();
  const auto library = ncl::library::link_stdlib(shape, {flags.str("program")});
  const auto target = library.compile<float>();
  std::printf("ncl-memorise: %s from the standard library, %zu lines (L = %lld, n = %lld)\n",
              flags.str("program").c_str(), library.program.lines.size(),
              static_cast<long long>(shape.lines), static_cast<long long>(shape.n));
  const auto result = ncl::library::memorise(
      target, shape,
      {.lr = lr, .max_steps = steps, .init_stddev = init, .seed = static_cast<std::uint64_t>(seed)},
      example::progress_printer(every, "exact_lines"));
  if (result.steps_to_confident < 0) {
    std::printf("did NOT decompile exactly with confidence >= 0.99999 within %lld steps\n",
                static_cast<long long>(steps));
  } else {
    std::printf("decompiles exactly after %lld optimizer steps, every line with p >= 0.99999 after %lld:\n%s",
                static_cast<long long>(result.steps_to_exact),
                static_cast<long long>(result.steps_to_confident),
                ncl::machine::decompile(result.after, shape).c_str());
  }
  // The memorised soft program runs on the soft machine like the original.
  if (flags.str("program") == "fib") {
    const ncl::machine::soft_interpreter<float> machine(shape);
    const ncl::machine::reference_machine reference(library.program, shape);
    // Run exactly the steps fib takes (11 d + 4, stdlib/fibonacci.s): a soft program keeps
    // leaking a little mass out of HALT at every extra step.
    std::printf("fib(0, 1, d) on the soft machine with the memorised program, 11 d + 4 steps:\n");
    for (std::int64_t d = 0; d <= 6; ++d) {
      auto state = ncl::machine::initial_state<float>(shape, 1, 0);
      ncl::machine::set_register(state, shape, 0, 1, 1);
      ncl::machine::set_register(state, shape, 0, 2, d);
      machine.run(state, result.after, 11 * d + 4);
      ncl::index best = 0;
      const float p = state.registers.row(0).segment(0, shape.n).maxCoeff(&best);
      const auto expected = reference.run({{0, 1, d, 0, 0, 0, 0, 0}, {}}).registers[0];
      std::printf("  d = %lld: r0 = %lld with p = %.3f (reference %lld)\n", static_cast<long long>(d),
                  static_cast<long long>(best), p, static_cast<long long>(expected));
    }
  }
  const std::string out = flags.str("out");
  example::write_curve(out, "memorise", result.curve,
                       "ncl-memorise: " + flags.str("program") + " from random logits", "exact_lines");
  ncl::library::write_program_heatmap(out + "/before.svg", result.before, shape,
                                      flags.str("program") + ": random initial logits (step 0)");
  ncl::library::write_program_heatmap(
      out + "/after.svg", result.after, shape,
      flags.str("program") + ": memorised (step " + std::to_string(result.steps_to_confident) + ")");
  std::printf("wrote %s/before.svg and %s/after.svg\n", out.c_str(), out.c_str());
  return result.steps_to_confident < 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return example::guarded_main("ncl-memorise", [&] { return run(argc, argv); });
}
