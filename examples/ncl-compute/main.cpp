// ncl-compute: a LLaMA-style transformer learns to use the differentiable computer from
// English sentences ("Add 3 and 4.", "What is the greatest common divisor of 12 and 18?"),
// trained on the answers alone, next to the same transformer without the computer.
//
// The computer model reads the residual stream after block k at the sentence's last token;
// its heads pick a library entry point (ADD SUB MUL MIN MAX as one-instruction programs, and
// the stdlib's absdiff, power and gcd) and the two arguments (r0, r1): pointer heads (the
// default) attend over the sentence's number tokens, value heads (the paper's, --arguments
// value) output a distribution over the n values. The soft machine runs the library for T
// steps; the loss is the cross-entropy of r0 against the answer. The baseline is the same
// transformer with a head over the n answers at the last position. Both see the same batches.
// Every (task, a, b) triple is either in the training set (all its sentence templates) or
// held out, so the held-out accuracy measures whether a model computes rather than remembers:
// --split range (the default) holds out every question with an operand among the top fifth
// of the values, which training shows only in "Repeat 27."; --split operand holds out, per
// task, the triples whose first operand is in a random fifth of the values.
//
// Writes <out>/compute.csv (the curves), <out>/compute_per_task.csv, <out>/compute_accuracy.svg
// and <out>/compute_loss.svg.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <numeric>
#include <sstream>

#include <ncl/core/file.hpp>
#include <ncl/core/plot.hpp>
#include <ncl/library/linker.hpp>
#include <ncl/machine/reference.hpp>
#include <ncl/nn/computer.hpp>
#include <ncl/nn/llama.hpp>
#include <ncl/tokenizer/bpe.hpp>
#include <ncl/tokenizer/byte_level.hpp>
#include <ncl/train/adamw.hpp>
#include <ncl/train/schedule.hpp>

#include "example_util.hpp"

namespace {

using Index = ncl::index;

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

std::string fill(std::string text, std::int64_t a, std::int64_t b) {
  for (auto [key, value] : {std::pair<std::string, std::int64_t>{"{a}", a}, {"{b}", b}}) {
    if (const auto at = text.find(key); at != std::string::npos) text.replace(at, key.size(), std::to_string(value));
  }
  return text;
}

struct example_set {
  std::vector<std::int32_t> tokens;  // (count, T), left-padded
  std::vector<std::int64_t> answers;
  std::vector<Index> task_of;
  Index count() const { return static_cast<Index>(answers.size()); }
};

// Rows `rows` of a set as one batch.
void gather(const example_set& set, const std::vector<Index>& rows, Index T, std::vector<std::int32_t>& tokens,
            std::vector<std::int64_t>& answers) {
  tokens.clear();
  answers.clear();
  for (Index r : rows) {
    tokens.insert(tokens.end(), set.tokens.begin() + r * T, set.tokens.begin() + (r + 1) * T);
    answers.push_back(set.answers[static_cast<std::size_t>(r)]);
  }
}

Index argmax_row(const float* row, Index n) {
  return static_cast<Index>(std::max_element(row, row + n) - row);
}

}  // namespace

int main(int argc, char** argv) {
  const example::flags flags(
      argc, argv,
      {{"steps", "1500"}, {"batch", "64"}, {"lr", "2e-3"}, {"seed", "1"}, {"dim", "128"}, {"layers", "2"},
       {"heads", "4"}, {"kv-heads", "2"}, {"after-block", "1"}, {"holdout", "0.2"}, {"split", "range"}, {"n", "32"},
       {"tokenizer", ""}, {"every", "50"}, {"max-eval", "0"}, {"arguments", "pointer"}, {"out", "results/compute"}},
      "usage: ncl-compute [--steps N] [--batch B] [--lr X] [--seed S] [--dim C] [--layers L] [--heads H]\n"
      "                   [--kv-heads K] [--after-block k] [--holdout F] [--split operand|range|random] [--n N]\n"
      "                   [--every K] [--max-eval N] [--arguments value|pointer] [--out DIR]\n"
      "                   [--tokenizer PATH|bytes]   (default: the LLaMA 3 tokenizer.json that\n"
      "                   cmake/fetch_tokenizer.sh caches; 'bytes': the byte-level fallback)\n"
      "  --split range:   every triple with an operand among the top fraction F of the values is\n"
      "                   held out: those numbers are seen in training only in 'Repeat a.' (default);\n"
      "          operand: per task, a random fraction F of the first operand's values is held out\n"
      "                   (every number is still seen in training, in the other tasks);\n"
      "          random:  each (task, a, b) is held out with probability F\n"
      "  --max-eval N: evaluate on N evenly spaced held-out sentences only (0: all)\n"
      "  --arguments pointer: argument heads point at a number token, whose value the tokenizer\n"
      "                       gives (default);\n"
      "              value:   they output a distribution over the n values (the paper's heads)\n");
  try {
    const std::int64_t n = flags.integer("n");
    const Index steps = flags.integer("steps"), batch = flags.integer("batch"), every = std::max<Index>(1, flags.integer("every"));
    // The tokenizer.
    std::unique_ptr<ncl::tokenizer> tok;
    std::string tok_name = flags.str("tokenizer");
    ncl::token_id bos = -1, pad = 0;
    if (tok_name == "bytes") {
      tok = std::make_unique<ncl::byte_tokenizer>();
    } else {
      const auto path = tok_name.empty() ? ncl::default_tokenizer_path() : std::filesystem::path(tok_name);
      auto bpe = std::make_unique<ncl::bpe_tokenizer>(ncl::bpe_tokenizer::from_file(path));
      if (auto id = bpe->find("<|begin_of_text|>")) bos = *id;
      if (auto id = bpe->find("<|end_of_text|>")) pad = *id;
      tok_name = path.string();
      tok = std::move(bpe);
    }
    // The library: one-instruction programs and three stdlib programs.
    ncl::machine::machine_shape shape;
    shape.n = n;
    shape.registers = 6;
    shape.memory = 4;
    shape.lines = n;
    const std::vector<ncl::alu::opcode> ops{ncl::alu::opcode::ADD, ncl::alu::opcode::SUB, ncl::alu::opcode::MUL,
                                            ncl::alu::opcode::MIN, ncl::alu::opcode::MAX};
    const auto lib = ncl::library::opcode_library(shape, ops, {"absdiff", "power", "gcd"});
    const ncl::machine::reference_machine reference(lib.program, shape);

    // The data: every valid (task, a, b), each checked on the reference machine.
    const auto all_tasks = tasks();
    ncl::rng random(static_cast<std::uint64_t>(flags.integer("seed")));
    example_set train, test;
    std::vector<std::vector<std::int32_t>> sentences[2];
    std::int64_t machine_steps = 0;
    const std::string split = flags.str("split");
    const double holdout = flags.num("holdout");
    if (split != "operand" && split != "range" && split != "random") {
      throw ncl::value_error("ncl-compute: --split must be operand, range or random, got '" + split + "'");
    }
    const std::int64_t cut = n - static_cast<std::int64_t>(std::llround(holdout * static_cast<double>(n)));
    for (Index t = 0; t < static_cast<Index>(all_tasks.size()); ++t) {
      const task& k = all_tasks[static_cast<std::size_t>(t)];
      const Index entry_line = lib.entries[lib.entry_index(k.entry)].line;
      std::vector<bool> held_a(static_cast<std::size_t>(n), false);  // --split operand
      for (std::int64_t a = 0; a < n; ++a) held_a[static_cast<std::size_t>(a)] = random.uniform() < holdout;
      for (std::int64_t a = 0; a < n; ++a) {
        for (std::int64_t b = 0; b < n; ++b) {
          if (!k.valid(a, b, n)) continue;
          ncl::machine::machine_inputs in;
          in.registers = {a, b};
          in.registers.resize(static_cast<std::size_t>(shape.registers), 0);
          auto state = reference.initial_state(entry_line, in);
          std::int64_t ran = 0;
          while (!state.halted && ran < 1000) {
            state = reference.run(state, 1);
            ++ran;
          }
          if (!state.halted || state.registers[0] != k.answer(a, b)) {
            throw ncl::value_error(ncl::detail::concat("ncl-compute: the library's ", k.entry, "(", a, ", ", b,
                                                       ") gives ", state.registers[0], ", expected ", k.answer(a, b)));
          }
          machine_steps = std::max(machine_steps, ran);
          bool held_out = split == "operand" ? held_a[static_cast<std::size_t>(a)]
                          : split == "range" ? a >= cut || b >= cut
                                             : random.uniform() < holdout;
          if (k.name == "repeat") held_out = false;
          for (const auto& text : k.templates) {
            auto ids = tok->encode(fill(text, a, b));
            if (bos >= 0) ids.insert(ids.begin(), bos);
            sentences[held_out].push_back(std::vector<std::int32_t>(ids.begin(), ids.end()));
            (held_out ? test : train).answers.push_back(k.answer(a, b));
            (held_out ? test : train).task_of.push_back(t);
          }
        }
      }
    }
    Index T = 0;
    for (const auto& side : sentences) {
      for (const auto& s : side) T = std::max(T, static_cast<Index>(s.size()));
    }
    for (int side = 0; side < 2; ++side) {
      auto& set = side ? test : train;
      for (const auto& s : sentences[side]) {  // left-pad, so every sentence ends at T - 1
        set.tokens.insert(set.tokens.end(), static_cast<std::size_t>(T) - s.size(), pad);
        set.tokens.insert(set.tokens.end(), s.begin(), s.end());
      }
    }
    if (train.count() == 0 || test.count() == 0) throw ncl::value_error("ncl-compute: --holdout leaves an empty set");

    // The two models.
    ncl::nn::llama_config mc;
    mc.dim = flags.integer("dim");
    mc.n_layers = flags.integer("layers");
    mc.n_heads = flags.integer("heads");
    mc.n_kv_heads = flags.integer("kv-heads");
    mc.ffn_dim = (8 * mc.dim / 3 + 31) / 32 * 32;
    mc.vocab_size = static_cast<Index>(tok->vocab_size());
    mc.output_size = n;
    mc.max_seq_len = T;
    ncl::nn::computer_config cc{.after_block = flags.integer("after-block"), .steps = machine_steps};
    if (flags.str("arguments") == "pointer") {
      cc.arguments = ncl::nn::argument_head::pointer;
      cc.token_values = ncl::nn::token_number_values(tok->vocab_size(), n, [&](std::int32_t id) {
        return tok->decode(std::span<const ncl::token_id>(&id, 1));
      });
    } else if (flags.str("arguments") != "value") {
      throw ncl::value_error("ncl-compute: --arguments must be value or pointer, got '" + flags.str("arguments") + "'");
    }
    ncl::train::parameter_set<float> computer_params, baseline_params;
    ncl::nn::llama_computer<float> computer(mc, cc, lib, computer_params);
    ncl::nn::llama<float> baseline(mc, baseline_params);
    ncl::rng init(static_cast<std::uint64_t>(flags.integer("seed")) + 1);
    computer.init(init);
    baseline.init(init);
    const ncl::train::warmup_cosine schedule{.max_lr = flags.num("lr"), .min_lr = flags.num("lr") / 10,
                                             .warmup_steps = std::min<Index>(100, steps / 10), .total_steps = steps};
    ncl::train::adamw<float> computer_opt(computer_params, {.weight_decay = 0.0, .max_grad_norm = 1.0});
    ncl::train::adamw<float> baseline_opt(baseline_params, {.weight_decay = 0.0, .max_grad_norm = 1.0});
    std::printf("ncl-compute: %lld training and %lld held-out sentences (%zu tasks), T = %lld tokens (%s),\n"
                "  dim %lld, %lld layers, the machine after block %lld: n = %lld, L = %lld, %zu programs, %lld steps, %s arguments\n",
                static_cast<long long>(train.count()), static_cast<long long>(test.count()), all_tasks.size(),
                static_cast<long long>(T), tok_name.c_str(), static_cast<long long>(mc.dim),
                static_cast<long long>(mc.n_layers), static_cast<long long>(cc.after_block),
                static_cast<long long>(n), static_cast<long long>(shape.lines), lib.entries.size(),
                static_cast<long long>(machine_steps), flags.str("arguments").c_str());

    // Accuracy on a set (per task too): argmax of the machine's answer / the head's logits.
    auto evaluate = [&](const example_set& set, std::vector<double>& per_task_computer,
                        std::vector<double>& per_task_baseline) {
      const std::size_t K = all_tasks.size();
      std::vector<double> right_c(K, 0), right_b(K, 0), total(K, 0);
      std::vector<std::int32_t> tokens, targets;
      std::vector<std::int64_t> answers;
      const Index limit = flags.integer("max-eval") > 0 ? std::min<Index>(set.count(), flags.integer("max-eval")) : set.count();
      for (Index start = 0; start < limit; start += 256) {
        std::vector<Index> rows;  // evenly spaced over the set, which is ordered by task
        for (Index i = start; i < std::min<Index>(start + 256, limit); ++i) rows.push_back(i * set.count() / limit);
        gather(set, rows, T, tokens, answers);
        targets.assign(answers.begin(), answers.end());
        const Index B = static_cast<Index>(rows.size());
        computer.forward(tokens, {}, answers, B, T);
        baseline.forward(tokens, targets, B, T);
        for (Index b = 0; b < B; ++b) {
          const auto k = static_cast<std::size_t>(set.task_of[static_cast<std::size_t>(rows[static_cast<std::size_t>(b)])]);
          const Index truth = answers[static_cast<std::size_t>(b)];
          right_c[k] += argmax_row(computer.answer().row(b).data(), n) == truth;
          right_b[k] += argmax_row(baseline.logits().data() + b * n, n) == truth;
          total[k] += 1;
        }
      }
      per_task_computer.assign(K, 0);
      per_task_baseline.assign(K, 0);
      double all_c = 0, all_b = 0, all = 0;
      for (std::size_t k = 0; k < K; ++k) {
        if (total[k] > 0) {
          per_task_computer[k] = right_c[k] / total[k];
          per_task_baseline[k] = right_b[k] / total[k];
        }
        all_c += right_c[k];
        all_b += right_b[k];
        all += total[k];
      }
      return std::pair<double, double>{all_c / all, all_b / all};
    };

    std::ostringstream csv;
    csv << "step,computer_loss,baseline_loss,computer_test_accuracy,baseline_test_accuracy\n";
    const std::string computer_label = "with the computer (" + flags.str("arguments") + " arguments)";
    ncl::plot_series loss_c{computer_label, {}, {}}, loss_b{"transformer alone", {}, {}};
    ncl::plot_series acc_c{computer_label, {}, {}}, acc_b{"transformer alone", {}, {}};
    std::vector<Index> order(static_cast<std::size_t>(train.count()));
    std::iota(order.begin(), order.end(), Index{0});
    std::size_t cursor = order.size();
    std::vector<std::int32_t> tokens, targets;
    std::vector<std::int64_t> answers;
    std::vector<double> per_c, per_b;
    double sum_c = 0, sum_b = 0;
    Index summed = 0;
    for (Index step = 0; step <= steps; ++step) {
      if (step % every == 0 || step == steps) {
        const auto [test_c, test_b] = evaluate(test, per_c, per_b);
        const double mean_c = summed ? sum_c / static_cast<double>(summed) : 0, mean_b = summed ? sum_b / static_cast<double>(summed) : 0;
        if (summed) {
          for (auto* s : {&loss_c, &loss_b}) s->x.push_back(static_cast<double>(step));
          loss_c.y.push_back(mean_c);
          loss_b.y.push_back(mean_b);
        }
        for (auto* s : {&acc_c, &acc_b}) s->x.push_back(static_cast<double>(step));
        acc_c.y.push_back(test_c);
        acc_b.y.push_back(test_b);
        csv << step << "," << mean_c << "," << mean_b << "," << test_c << "," << test_b << "\n";
        std::printf("step %5lld  loss: computer %.4f, alone %.4f  held-out accuracy: computer %.3f, alone %.3f\n",
                    static_cast<long long>(step), mean_c, mean_b, test_c, test_b);
        std::fflush(stdout);
        sum_c = sum_b = 0;
        summed = 0;
      }
      if (step == steps) break;
      std::vector<Index> rows;
      while (static_cast<Index>(rows.size()) < batch) {
        if (cursor == order.size()) {  // a new epoch in a new order
          for (std::size_t i = order.size() - 1; i > 0; --i) {
            std::swap(order[i], order[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i) + 1))]);
          }
          cursor = 0;
        }
        rows.push_back(order[cursor++]);
      }
      gather(train, rows, T, tokens, answers);
      targets.assign(answers.begin(), answers.end());
      const double lr = schedule(step);
      const double lc = computer.forward(tokens, {}, answers, batch, T);
      ncl::train::check_finite_loss(step, lc);
      computer_params.zero_grad();
      computer.backward();
      computer_opt.step(computer_params, lr);
      const double lb = baseline.forward(tokens, targets, batch, T);
      ncl::train::check_finite_loss(step, lb);
      baseline_params.zero_grad();
      baseline.backward();
      baseline_opt.step(baseline_params, lr);
      sum_c += lc;
      sum_b += lb;
      ++summed;
    }

    // Per-task held-out accuracy at the end, and which program the computer model picks.
    std::ostringstream per_task;
    per_task << "task,held_out_sentences,computer_accuracy,baseline_accuracy\n";
    std::printf("\n%-10s %9s %9s %9s\n", "task", "held-out", "computer", "alone");
    for (std::size_t k = 0; k < all_tasks.size(); ++k) {
      const auto count = std::count(test.task_of.begin(), test.task_of.end(), static_cast<Index>(k));
      std::printf("%-10s %9lld %9.3f %9.3f\n", all_tasks[k].name.c_str(), static_cast<long long>(count), per_c[k], per_b[k]);
      per_task << all_tasks[k].name << "," << count << "," << per_c[k] << "," << per_b[k] << "\n";
    }
    const std::filesystem::path out = flags.str("out");
    std::filesystem::create_directories(out);
    ncl::write_file_atomic(out / "compute.csv", csv.str());
    ncl::write_file_atomic(out / "compute_per_task.csv", per_task.str());
    ncl::line_chart{"ncl-compute: held-out accuracy (sentences -> answer), --split " + split, "training step", "accuracy", false,
                    {acc_c, acc_b}}.write((out / "compute_accuracy.svg").string());
    ncl::line_chart{"ncl-compute: training loss (answer cross-entropy)", "training step", "loss", true,
                    {loss_c, loss_b}}.write((out / "compute_loss.svg").string());
    std::printf("wrote %s/compute.csv, compute_per_task.csv, compute_accuracy.svg, compute_loss.svg\n",
                out.string().c_str());
    return 0;
  } catch (const ncl::error& e) {
    std::fprintf(stderr, "ncl-compute: %s\n", e.what());
    return 2;
  }
}
