// ncl-compute: a LLaMA-style transformer learns to use the differentiable computer from
// English sentences ("Add 3 and 4.", "What is the greatest common divisor of 12 and 18?"),
// trained on the answers alone, beside the same transformer without the computer, on the
// experiment harness (examples/common/ncl_experiment; shared/EXPERIMENTS.md).
//
// The computer models read the residual stream after block k at the sentence's last token;
// their heads pick a library entry point (ADD SUB MUL MIN MAX as one-instruction programs,
// and the stdlib's absdiff, power and gcd) and the two arguments (r0, r1): pointer heads
// attend over the sentence's number tokens (computer-pointer), value heads output a
// distribution over the n values (computer-value, the paper's), or over the values the
// sentence's numbers spell (computer-value-masked). The soft machine runs the library; the
// loss is the cross-entropy of r0 against the answer. The transformer model has a head over
// the n answers at the last position. All four see the same batches.
// Every (task, a, b) triple is either in the training set (all its sentence templates) or
// held out, so the test accuracy measures whether a model computes rather than remembers:
//   --split range (the default): every question with an operand among the top fifth of the
//           values is held out; training shows those numbers only in "Repeat 27.";
//   --split operand: per task, the triples whose first operand is in a random fifth of the
//           values; --split random: each triple held out with probability --holdout.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <ncl/library/linker.hpp>
#include <ncl/machine/reference.hpp>

#include "ncl_experiment/experiment.hpp"

namespace {

namespace xp = ncl_experiment;

struct task {
  std::string name, entry;            // the task and the library entry point that solves it
  std::vector<std::string> templates;  // "{a}" and "{b}" are replaced by the operands
  std::function<bool(std::int64_t, std::int64_t, std::int64_t)> valid;  // (a, b, n)
  std::function<std::int64_t(std::int64_t, std::int64_t)> answer;
};

std::int64_t ipow(std::int64_t a, std::int64_t b) {
  std::int64_t r = 1;
  for (std::int64_t i = 0; i < b; ++i) r *= a;
  return r;
}

std::vector<task> tasks() {
  return {
      {"add", "op_add", {"Add {a} and {b}.", "What is {a} plus {b}?"},
       [](auto a, auto b, auto n) { return a + b < n; }, [](auto a, auto b) { return a + b; }},
      {"subtract", "op_sub", {"Subtract {b} from {a}.", "What is {a} minus {b}?"},
       [](auto a, auto b, auto) { return a >= b; }, [](auto a, auto b) { return a - b; }},
      {"multiply", "op_mul", {"Multiply {a} by {b}.", "What is {a} times {b}?"},
       [](auto a, auto b, auto n) { return a * b < n; }, [](auto a, auto b) { return a * b; }},
      {"min", "op_min", {"Which is smaller, {a} or {b}?", "What is the minimum of {a} and {b}?"},
       [](auto, auto, auto) { return true; }, [](auto a, auto b) { return std::min(a, b); }},
      {"max", "op_max", {"Which is larger, {a} or {b}?", "What is the maximum of {a} and {b}?"},
       [](auto, auto, auto) { return true; }, [](auto a, auto b) { return std::max(a, b); }},
      {"distance", "absdiff", {"How far apart are {a} and {b}?", "What is the distance between {a} and {b}?"},
       [](auto, auto, auto) { return true; }, [](auto a, auto b) { return a > b ? a - b : b - a; }},
      {"power", "power", {"What is {a} to the power of {b}?", "Raise {a} to the power {b}."},
       [](auto a, auto b, auto n) { return b <= 4 && ipow(a, b) < n; }, [](auto a, auto b) { return ipow(a, b); }},
      {"gcd", "gcd", {"What is the greatest common divisor of {a} and {b}?", "Find the gcd of {a} and {b}."},
       [](auto a, auto b, auto) { return a > 0 && b > 0; }, [](auto a, auto b) { return std::gcd(a, b); }},
      // Never held out: it shows every number, so --split range can hold some out of the rest.
      {"repeat", "op_add", {"Repeat {a}.", "Say {a}."},
       [](auto, auto b, auto) { return b == 0; }, [](auto a, auto) { return a; }},
  };
}

std::shared_ptr<const ncl::library::program_library> library_for(std::int64_t n) {
  ncl::machine::machine_shape shape;
  shape.n = n;
  shape.registers = 6;
  shape.memory = 4;
  shape.lines = n;
  const std::vector<ncl::alu::opcode> ops{ncl::alu::opcode::ADD, ncl::alu::opcode::SUB, ncl::alu::opcode::MUL,
                                          ncl::alu::opcode::MIN, ncl::alu::opcode::MAX};
  return std::make_shared<const ncl::library::program_library>(
      ncl::library::opcode_library(shape, ops, {"absdiff", "power", "gcd"}));
}

// Runs (a, b) through the task's program on the reference machine: the answer must match;
// returns the steps it took.
std::int64_t checked_run(const ncl::library::program_library& lib, const ncl::machine::reference_machine& reference,
                         const task& k, std::int64_t a, std::int64_t b) {
  ncl::machine::machine_inputs in;
  in.registers = {a, b};
  in.registers.resize(static_cast<std::size_t>(lib.shape.registers), 0);
  auto state = reference.initial_state(lib.entries[lib.entry_index(k.entry)].line, in);
  std::int64_t ran = 0;
  while (!state.halted && ran < 1000) {
    state = reference.run(state, 1);
    ++ran;
  }
  if (!state.halted || state.registers[0] != k.answer(a, b)) {
    throw ncl::value_error(ncl::detail::concat("ncl-compute: the library's ", k.entry, "(", a, ", ", b, ") gives ",
                                               state.registers[0], ", expected ", k.answer(a, b)));
  }
  return ran;
}

}  // namespace

int main(int argc, char** argv) {
  return xp::guarded_main("ncl-compute", [&] {
    CLI::App app{"ncl-compute: a transformer learns to use the computer from sentences (8 tasks, n values)",
                 "ncl-compute"};
    xp::common_options common;
    common.out = "results/compute";
    common.epochs = 13;
    xp::add_common_options(app, common, {"computer-pointer", "computer-value", "computer-value-masked", "transformer"});
    xp::sentence_model_options mo;
    xp::add_model_options(app, mo);
    std::string split = "range";
    std::int64_t n = 32;
    double holdout = 0.2;
    app.add_option("--split", split,
                   "range: every triple with an operand among the top fraction F of the values held out (those "
                   "numbers seen in training only in 'Repeat a.'); operand: per task, a random fraction F of the "
                   "first operand's values; random: each triple with probability F")
        ->check(CLI::IsMember({"range", "operand", "random"}))
        ->capture_default_str();
    app.add_option("--n", n, "values 0..n-1 (n >= 8)")->check(CLI::Range(8, 128))->capture_default_str();
    app.add_option("--holdout", holdout, "F, the held-out fraction")->check(CLI::Range(0.01, 0.9))->capture_default_str();
    if (int status = xp::parse(app, argc, argv); status >= 0) return status;
    xp::check_common_options(common);

    xp::sentence_task task;
    task.name = "compute";
    task.n = n;
    task.title = "ncl-compute (" + split + " split)";
    task.tag_key = "task";
    task.setting = {{"split", split}};
    task.metadata = {{"ncl.compute.n", std::to_string(n)}};
    std::int64_t machine_steps = 0;
    // The data: every valid (task, a, b), each checked on the reference machine.
    const auto lib = library_for(n);
    const ncl::machine::reference_machine reference(lib->program, lib->shape);
    const auto all_tasks = tasks();
    ncl::rng random(common.seed);
    const std::int64_t cut = n - static_cast<std::int64_t>(std::llround(holdout * static_cast<double>(n)));
    for (const auto& k : all_tasks) {
      std::vector<bool> held_a(static_cast<std::size_t>(n), false);  // --split operand
      for (std::int64_t a = 0; a < n; ++a) held_a[static_cast<std::size_t>(a)] = random.uniform() < holdout;
      for (std::int64_t a = 0; a < n; ++a) {
        for (std::int64_t b = 0; b < n; ++b) {
          if (!k.valid(a, b, n)) continue;
          machine_steps = std::max(machine_steps, checked_run(*lib, reference, k, a, b));
          bool held_out = split == "operand" ? held_a[static_cast<std::size_t>(a)]
                          : split == "range" ? a >= cut || b >= cut
                                             : random.uniform() < holdout;
          if (k.name == "repeat") held_out = false;
          for (const auto& text : k.templates) {
            (held_out ? task.test : task.train).push_back({xp::fill_template(text, {{"a", a}, {"b", b}}), {k.answer(a, b)}, k.name});
          }
        }
      }
    }
    task.metadata["ncl.compute.steps"] = std::to_string(machine_steps);
    task.computer = [](const std::map<std::string, std::string>& settings) {
      auto value = [&](const std::string& key, std::int64_t lo, std::int64_t hi) {
        const auto it = settings.find(key);
        const std::int64_t v = it == settings.end() ? -1 : std::atoll(it->second.c_str());
        if (v < lo || v > hi) throw ncl::io_error("ncl-compute: the checkpoint's metadata " + key + " is missing or invalid");
        return v;
      };
      const std::int64_t saved_n = value("ncl.compute.n", 8, 128);
      ncl::nn::computer_config cc;
      cc.argument_registers = {0, 1};
      cc.answer_register = 0;
      cc.steps = value("ncl.compute.steps", 1, 10000);
      return std::pair{library_for(saved_n), cc};
    };
    if (common.quick) {
      task.train = xp::subsample(task.train, task.train.size() / 4);
      task.test = xp::subsample(task.test, 1000);
      if (app.count("--epochs") == 0) common.epochs = 2;
    }
    task.config = {{"n", n}, {"split", split}, {"holdout", holdout}, {"machine_steps", machine_steps},
                   {"library", "ADD SUB MUL MIN MAX absdiff power gcd"}, {"alu", "table"}, {"control", "per_line"}};
    return xp::run_sentence_experiment(common, mo, task, xp::train_options{});
  });
}
