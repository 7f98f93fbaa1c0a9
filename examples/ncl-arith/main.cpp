// ncl-arith: the paper's calculator experiment (section 4.2, "Modular Arithmetic"). A small
// LLaMA reads sentences such as "Add 3 and 4." or "What is 100 modulo 7?" and answers with
// one of n = 128 values; the only supervision is the answer. The computer models call a
// lookup-table calculator after block 1: a library of one-instruction programs (ADD SUB MUL
// mod 128, DIV and MOD), whose entry point and two arguments the heads choose; the
// transformer alone answers from its head. All three see the same batches.
//
// Data: every (op, a, b) with a, b in 0..127 (b > 0 for divide and modulo), one sentence per
// triple from one of three templates per operation (drawn by the seed). Splits:
//   random  20% of the triples held out (the paper's setting), drawn by the seed
//   range   every triple with an operand among the top fifth of the values (102..127) held
//           out; training shows those numbers only as answers and in "Repeat a." sentences,
//           which the library answers with an entry point that halts at once (r0 = a)
// Writes summary.json, curves.csv, accuracy.svg, loss.svg, train.tsv and test.tsv to --out.
#include <cstdio>
#include <string>
#include <vector>

#include <ncl/library/linker.hpp>
#include <ncl/machine/reference.hpp>

#include "ncl_experiment/experiment.hpp"

namespace {

namespace xp = ncl_experiment;
constexpr std::int64_t n = 128;

struct operation {
  std::string name, entry;
  std::vector<std::string> templates;
  std::int64_t (*answer)(std::int64_t, std::int64_t);
  bool divisor;  // b > 0
};

const std::vector<operation>& operations() {
  static const std::vector<operation> ops{
      {"add", "op_add", {"Add {a} and {b}.", "What is {a} plus {b}?", "Compute the sum of {a} and {b}."},
       [](std::int64_t a, std::int64_t b) { return (a + b) % n; }, false},
      {"subtract", "op_sub", {"Subtract {b} from {a}.", "What is {a} minus {b}?", "Compute the difference of {a} and {b}."},
       [](std::int64_t a, std::int64_t b) { return ((a - b) % n + n) % n; }, false},
      {"multiply", "op_mul", {"Multiply {a} by {b}.", "What is {a} times {b}?", "Compute the product of {a} and {b}."},
       [](std::int64_t a, std::int64_t b) { return a * b % n; }, false},
      {"divide", "op_div", {"Divide {a} by {b}.", "What is {a} divided by {b}?", "Compute the quotient of {a} and {b}."},
       [](std::int64_t a, std::int64_t b) { return a / b; }, true},
      {"modulo", "op_mod", {"What is {a} modulo {b}?", "Find the remainder of {a} divided by {b}.", "Compute {a} mod {b}."},
       [](std::int64_t a, std::int64_t b) { return a % b; }, true},
  };
  return ops;
}

const std::vector<std::string> repeat_templates{"Repeat {a}.", "Say {a}.", "Write the number {a}."};

// The calculator: one `OP r0, r0, r1; HALT` program per operation and, for the range split's
// "Repeat a." sentences, an entry point that halts at once.
std::shared_ptr<const ncl::library::program_library> calculator(bool with_repeat) {
  ncl::machine::machine_shape shape;
  shape.n = n;
  shape.registers = 4;
  shape.memory = 1;
  shape.lines = 16;
  const std::vector<ncl::alu::opcode> ops{ncl::alu::opcode::ADD, ncl::alu::opcode::SUB, ncl::alu::opcode::MUL,
                                          ncl::alu::opcode::DIV, ncl::alu::opcode::MOD};
  auto [file, names] = ncl::library::opcode_programs(ops);
  if (with_repeat) {
    file.text += "repeat:  HALT\n";
    names.push_back("repeat");
  }
  return std::make_shared<const ncl::library::program_library>(ncl::library::link_library({file}, shape, names));
}

// Checks every operation's program against the answers on the reference machine and returns
// the steps the longest run takes.
std::int64_t checked_steps(const ncl::library::program_library& lib) {
  const ncl::machine::reference_machine reference(lib.program, lib.shape);
  std::int64_t steps = 0;
  for (const auto& op : operations()) {
    const auto entry = lib.entries[lib.entry_index(op.entry)].line;
    for (std::int64_t a = 0; a < n; a += 7) {
      for (std::int64_t b = op.divisor ? 1 : 0; b < n; b += 5) {
        auto state = reference.initial_state(entry, {{a, b, 0, 0}, {}});
        std::int64_t ran = 0;
        while (!state.halted && ran < 100) {
          state = reference.run(state, 1);
          ++ran;
        }
        if (!state.halted || state.registers[0] != op.answer(a, b)) {
          throw ncl::value_error(ncl::detail::concat("ncl-arith: the library's ", op.entry, "(", a, ", ", b, ") gives ",
                                                     state.registers[0], ", expected ", op.answer(a, b)));
        }
        steps = std::max(steps, ran);
      }
    }
  }
  return steps;
}

}  // namespace

int main(int argc, char** argv) {
  return xp::guarded_main("ncl-arith", [&] {
    CLI::App app{"ncl-arith: mod-128 arithmetic from sentences, through a lookup-table calculator (paper section 4.2)",
                 "ncl-arith"};
    xp::common_options common;
    common.out = "results/arith";
    common.epochs = 10;
    xp::add_common_options(app, common, {"computer-value", "computer-value-masked", "computer-pointer", "transformer"});
    xp::sentence_model_options mo;
    xp::add_model_options(app, mo);
    std::string split = "random";
    app.add_option("--split", split, "random: 20% of the triples held out; range: every triple with an operand in "
                                     "102..127 held out")
        ->check(CLI::IsMember({"random", "range"}))
        ->capture_default_str();
    if (int status = xp::parse(app, argc, argv); status >= 0) return status;
    xp::check_common_options(common);

    // The data, fixed before any model exists.
    xp::sentence_task task;
    task.name = "arith";
    task.n = n;
    task.title = "ncl-arith (" + split + " split)";
    task.tag_key = "op";
    task.setting = {{"split", split}};
    task.metadata = {{"ncl.arith.split", split}};
    task.computer = [](const std::map<std::string, std::string>& settings) {
      const auto it = settings.find("ncl.arith.split");
      if (it == settings.end() || (it->second != "random" && it->second != "range")) {
        throw ncl::io_error("ncl-arith: the checkpoint's metadata ncl.arith.split is missing or unknown");
      }
      auto lib = calculator(it->second == "range");
      ncl::nn::computer_config cc;
      cc.argument_registers = {0, 1};
      cc.answer_register = 0;
      cc.steps = checked_steps(*lib);
      return std::pair{lib, cc};
    };
    const std::int64_t cut = n - static_cast<std::int64_t>(std::llround(0.2 * static_cast<double>(n)));  // 102
    ncl::rng split_random(common.seed * 7919 + 17), template_random(common.seed * 104729 + 3);
    std::vector<xp::example> all;
    std::vector<bool> range_held;
    for (const auto& op : operations()) {
      for (std::int64_t a = 0; a < n; ++a) {
        for (std::int64_t b = op.divisor ? 1 : 0; b < n; ++b) {
          const auto& tpl = op.templates[static_cast<std::size_t>(template_random.integer(0, 3))];
          all.push_back({xp::fill_template(tpl, {{"a", a}, {"b", b}}), {op.answer(a, b)}, op.name});
          range_held.push_back(a >= cut || b >= cut);
        }
      }
    }
    const auto held = split == "random" ? xp::choose_held_out(all.size(), 0.2, split_random) : range_held;
    for (std::size_t i = 0; i < all.size(); ++i) (held[i] ? task.test : task.train).push_back(all[i]);
    if (split == "range") {  // every number, as an answer to "Repeat a."
      for (std::int64_t a = 0; a < n; ++a) {
        for (const auto& tpl : repeat_templates) task.train.push_back({xp::fill_template(tpl, {{"a", a}}), {a}, "repeat"});
      }
    }
    if (common.quick) {  // about a minute: a tenth of the training set, 2000 test sentences, 2 epochs
      task.train = xp::subsample(task.train, task.train.size() / 10);
      task.test = xp::subsample(task.test, 2000);
      if (app.count("--epochs") == 0) common.epochs = 2;
    }
    task.config = {{"n", n}, {"split", split}, {"held_out", split == "random" ? 0.2 : 0.0},
                   {"range_cut", cut}, {"templates_per_op", 3}, {"library", "ADD SUB MUL DIV MOD (+ repeat: HALT, range split)"},
                   {"alu", "table"}, {"control", "per_line"}};
    xp::train_options training;
    return xp::run_sentence_experiment(common, mo, task, training);
  });
}
