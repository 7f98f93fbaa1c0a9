// Learning through the machine (paper section 3.1, appendix E), the three experiments of the
// program-library issue as reusable procedures (the example binaries and the tests call them):
//   memorise:        compilation by memorisation (paper eq. 10): a free controller from random
//                    logits is trained to emit a given program, until it decompiles exactly;
//   learn_sketch:    a program with holes: library lines frozen by a mask, the holes trained
//                    from input/output pairs alone, the loss on the answer register;
//   learn_selection: a linear network picks a library entry point from a task id and the
//                    arguments, trained on answers alone, through the machine.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ncl/core/product.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/library/controller.hpp"
#include "ncl/library/linker.hpp"
#include "ncl/library/mask.hpp"
#include "ncl/machine/interpreter.hpp"
#include "ncl/machine/program.hpp"
#include "ncl/machine/reference.hpp"
#include "ncl/train/adamw.hpp"

namespace ncl::library {

// ---- the answer loss ------------------------------------------------------------------------

/// Mean cross-entropy of the answer register: -1/B sum_b log(p_b[answer_b] + eps), where p_b
/// is register `reg` of element b's final state.
template <class S>
double answer_loss_forward(const machine::soft_state<S>& final_state, const machine::machine_shape& shape,
                           index reg, std::span<const std::int64_t> answers, S eps = S(1e-6)) {
  if (static_cast<index>(answers.size()) != final_state.batch()) {
    throw shape_error(ncl::detail::concat("answer_loss_forward: ", answers.size(),
                                          " answers for a batch of ", final_state.batch()));
  }
  double total = 0;
  for (index b = 0; b < final_state.batch(); ++b) {
    const S p = final_state.registers(b, reg * shape.n + answers[static_cast<std::size_t>(b)]);
    total -= std::log(static_cast<double>(p + eps));
  }
  return total / static_cast<double>(final_state.batch());
}

/// dfinal.registers += d loss / d registers of answer_loss_forward.
template <class S>
void answer_loss_backward(machine::soft_state<S>& dfinal, const machine::soft_state<S>& final_state,
                          const machine::machine_shape& shape, index reg,
                          std::span<const std::int64_t> answers, S eps = S(1e-6)) {
  const S scale = S(1) / static_cast<S>(final_state.batch());
  for (index b = 0; b < final_state.batch(); ++b) {
    const index col = reg * shape.n + answers[static_cast<std::size_t>(b)];
    dfinal.registers(b, col) -= scale / (final_state.registers(b, col) + eps);
  }
}

/// Fraction of elements whose answer register's most likely value is the answer.
template <class S>
double answer_accuracy(const machine::soft_state<S>& final_state, const machine::machine_shape& shape,
                       index reg, std::span<const std::int64_t> answers) {
  std::size_t right = 0;
  for (index b = 0; b < final_state.batch(); ++b) {
    index best = 0;
    final_state.registers.row(b).segment(reg * shape.n, shape.n).maxCoeff(&best);
    right += best == answers[static_cast<std::size_t>(b)];
  }
  return static_cast<double>(right) / static_cast<double>(final_state.batch());
}

/// True when every line of `program` decodes to the same instruction as in `target`.
template <class S>
bool decodes_to(const machine::soft_program<S>& program, const machine::soft_program<S>& target) {
  for (index l = 0; l < target.lines(); ++l) {
    if (!(machine::decode_line(program, l).inst == machine::decode_line(target, l).inst)) return false;
  }
  return true;
}

/// One row of a training curve.
struct curve_point {
  std::int64_t step = 0;
  double loss = 0;
  double accuracy = 0;  ///< the experiment's own measure (fraction of exact lines or answers)
};

using progress_callback = std::function<void(const curve_point&)>;

// ---- (a) compilation by memorisation ------------------------------------------------------

struct memorise_options {
  double lr = 0.05;
  std::int64_t max_steps = 3000;
  double init_stddev = 1.0;
  std::uint64_t seed = 1;
  double min_confidence = 0.99999;  ///< keep training until every line decodes with this confidence
  /// Adam's second-moment decay. Memorisation's gradients shrink by orders of magnitude as
  /// the program sharpens; with the usual 0.999 the moment remembers the large early ones and
  /// the steps stall, so a shorter memory is the default here.
  double beta2 = 0.99;
};

template <class S>
struct memorise_result {
  std::int64_t steps_to_exact = -1;      ///< optimizer steps until the program decoded exactly; -1: never
  std::int64_t steps_to_confident = -1;  ///< ... and every line's confidence >= min_confidence
  std::vector<curve_point> curve;    ///< accuracy = fraction of lines that decode exactly
  machine::soft_program<S> before, after;
};

/// Trains a free controller from N(0, init_stddev) logits to emit `target` (a one-hot
/// compiled program) by the cross-entropy sum over lines and fields (paper eq. 10), with
/// AdamW, until every line decodes exactly with confidence >= min_confidence (then stops)
/// or max_steps.
template <class S>
memorise_result<S> memorise(const machine::soft_program<S>& target, const machine::machine_shape& shape,
                            const memorise_options& options, const progress_callback& progress = {}) {
  train::parameter_set<S> params;
  free_controller<S> controller(params, "program", shape);
  ncl::rng random(options.seed);
  controller.randomize(random, options.init_stddev);
  train::adamw<S> optimizer(params, {.lr = options.lr, .beta2 = options.beta2, .weight_decay = 0.0});
  memorise_result<S> result;
  machine::soft_program<S> program;
  controller.forward(result.before);
  const double lines = static_cast<double>(shape.lines);
  for (std::int64_t step = 0; step <= options.max_steps; ++step) {
    controller.forward(program);
    double loss = 0;
    params.zero_grad();
    for (field f : all_fields) {
      const matrix<S>& p = field_of(program, f);
      const matrix<S>& t = field_of(target, f);
      loss -= (t.array() * (p.array() + S(1e-12)).log()).sum() / lines;
      controller.logit_grads(f) += (p - t) / static_cast<S>(lines);  // softmax + cross-entropy
    }
    std::size_t exact = 0;
    double confidence = 1;
    for (index l = 0; l < shape.lines; ++l) {
      const auto line = machine::decode_line(program, l);
      exact += line.inst == machine::decode_line(target, l).inst;
      confidence = std::min(confidence, line.confidence);
    }
    const curve_point point{step, loss, static_cast<double>(exact) / lines};
    result.curve.push_back(point);
    if (progress) progress(point);
    train::check_finite_loss(step, loss);
    if (exact == static_cast<std::size_t>(shape.lines)) {
      if (result.steps_to_exact < 0) result.steps_to_exact = step;
      if (confidence >= options.min_confidence) {
        result.steps_to_confident = step;
        break;
      }
    }
    if (step < options.max_steps) optimizer.step(params);
  }
  controller.forward(result.after);
  return result;
}

// ---- (b) learning a sketch's holes from input/output pairs ------------------------------------

struct sketch_options {
  double lr = 0.1;
  std::int64_t max_steps = 400;
  double init_stddev = 0.5;
  double frozen_sharpness = 20;  ///< logits of frozen library lines: sharpness * one-hot
  std::uint64_t seed = 1;
  machine::control_mode control = machine::control_mode::per_line;
};

struct sketch_task {
  machine::assembled_program program;  ///< the complete program; hole lines are forgotten
  machine::machine_shape shape;
  std::vector<index> holes;            ///< lines to learn
  std::vector<field> hole_fields{all_fields.begin(), all_fields.end()};  ///< their fields to learn
  index answer_register = 0;
  std::vector<machine::machine_inputs> inputs;  ///< training inputs; answers by the reference run
};

template <class S>
struct sketch_result {
  std::vector<curve_point> curve;           ///< accuracy = fraction of right answers
  machine::soft_program<S> learned;         ///< the controller's program after training
  bool solved = false;                      ///< soft and decoded program answer every input right
  std::int64_t steps_to_solved = -1;
  std::vector<std::string> hole_text;       ///< the decoded hole lines
};

namespace detail {

/// Answers of `program` on `inputs` by the discrete reference interpreter.
inline std::vector<std::int64_t> reference_answers(const machine::assembled_program& program,
                                                   const machine::machine_shape& shape,
                                                   const std::vector<machine::machine_inputs>& inputs,
                                                   index reg) {
  const machine::reference_machine machine(program, shape);
  std::vector<std::int64_t> answers;
  for (const auto& in : inputs) {
    answers.push_back(machine.run(in).registers[static_cast<std::size_t>(reg)]);
  }
  return answers;
}

/// The discrete program a soft program decodes to.
template <class S>
machine::assembled_program decoded_program(const machine::soft_program<S>& p,
                                           const machine::machine_shape& shape, int entry) {
  machine::assembled_program out;
  out.shape = shape;
  out.entry = entry;
  for (index l = 0; l < p.lines(); ++l) {
    out.lines.push_back(machine::decode_line(p, l).inst);
    out.source.push_back({"<decoded>", static_cast<int>(l + 1), 1, ""});
  }
  return out;
}

template <class S>
machine::soft_state<S> input_states(const machine::machine_shape& shape,
                                    const std::vector<machine::machine_inputs>& inputs, index entry) {
  auto state = machine::initial_state<S>(shape, static_cast<index>(inputs.size()), entry);
  for (std::size_t b = 0; b < inputs.size(); ++b) {
    for (std::size_t r = 0; r < inputs[b].registers.size(); ++r) {
      machine::set_register(state, shape, static_cast<index>(b), static_cast<index>(r), inputs[b].registers[r]);
    }
    for (std::size_t m = 0; m < inputs[b].memory.size(); ++m) {
      machine::set_memory(state, shape, static_cast<index>(b), static_cast<index>(m), inputs[b].memory[m]);
    }
  }
  return state;
}

}  // namespace detail

/// Learns the hole lines of `task.program` from its input/answer pairs alone: the other
/// lines are set to sharp one-hot logits and frozen by a program_mask; the holes start from
/// random logits; the loss is the answer register's cross-entropy after T = shape.steps
/// steps of the soft machine, back-propagated through time. Stops once the soft machine's
/// most likely answer is right for every training input and the decoded (discrete) program
/// answers every one right too (checked with the reference interpreter).
template <class S>
sketch_result<S> learn_sketch(const sketch_task& task, const sketch_options& options,
                              const progress_callback& progress = {}) {
  const auto& shape = task.shape;
  const auto answers = detail::reference_answers(task.program, shape, task.inputs, task.answer_register);
  train::parameter_set<S> params;
  free_controller<S> controller(params, "sketch", shape);
  controller.set_program(machine::compile<S>(task.program, shape), static_cast<S>(options.frozen_sharpness));
  program_mask mask(shape.lines);
  mask.freeze_program(0, shape.lines);
  ncl::rng random(options.seed);
  for (index hole : task.holes) {
    for (field f : task.hole_fields) {
      mask.thaw_field(hole, f);
      auto row = controller.logits(f).row(hole);
      for (index k = 0; k < row.size(); ++k) row(k) = static_cast<S>(random.normal(0.0, options.init_stddev));
    }
  }
  apply_mask(params, controller, mask);
  train::adamw<S> optimizer(params, {.lr = options.lr, .weight_decay = 0.0});
  const machine::soft_interpreter<S> machine(shape, alu::backend::table, options.control);
  const auto initial = detail::input_states<S>(shape, task.inputs, task.program.entry);
  machine::machine_tape<S> tape;
  sketch_result<S> result;
  machine::soft_program<S> program;
  for (std::int64_t step = 0; step <= options.max_steps; ++step) {
    controller.forward(program);
    machine.unroll_forward(tape, initial, program, shape.steps);
    const auto& final_state = tape.final_state();
    const double loss = answer_loss_forward(final_state, shape, task.answer_register, answers);
    const double accuracy = answer_accuracy(final_state, shape, task.answer_register, answers);
    const curve_point point{step, loss, accuracy};
    result.curve.push_back(point);
    if (progress) progress(point);
    train::check_finite_loss(step, loss);
    const auto decoded = detail::decoded_program(program, shape, task.program.entry);
    if (accuracy == 1.0 &&
        detail::reference_answers(decoded, shape, task.inputs, task.answer_register) == answers) {
      result.solved = true;
      result.steps_to_solved = step;
      break;
    }
    if (step == options.max_steps) break;
    auto dfinal = machine::zero_state<S>(shape, initial.batch());
    answer_loss_backward(dfinal, final_state, shape, task.answer_register, answers);
    auto grads = machine::machine_gradients<S>::zeros(shape, initial.batch(), 1);
    machine.unroll_backward(grads, tape, dfinal);
    params.zero_grad();
    controller.backward(grads.programs[0], program);
    optimizer.step(params);
  }
  controller.forward(result.learned);
  for (index hole : task.holes) {
    result.hole_text.push_back(machine::format_instruction(machine::decode_line(result.learned, hole).inst, shape));
  }
  return result;
}

// ---- (c) learning to select a library program -------------------------------------------------

struct selection_example {
  index task = 0;                        ///< which task (an index into the task list)
  std::vector<std::int64_t> arguments;   ///< written one-hot into r0, r1, ...
};

struct selection_options {
  double lr = 0.1;
  std::int64_t max_steps = 300;
  std::uint64_t seed = 1;
  /// Feed the network the one-hot arguments too, not only the task id. With them it may pick
  /// a different program per example wherever two programs agree on the answer (gcd and
  /// absdiff on (2, 3), say), which makes the per-task choice ambiguous.
  bool argument_features = false;
  double target_accuracy = 1.0;  ///< the soft answers' accuracy to reach (and every argmax choice right)
};

template <class S>
struct selection_result {
  std::vector<curve_point> curve;  ///< accuracy = fraction of right answers
  std::int64_t steps_to_target = -1;
  matrix<S> task_choice;           ///< (tasks, entries): the learned selection per task
};

/// A linear network from the one-hot task id (and, if asked, the one-hot arguments) to logits over the library's
/// entry points; softmax -> initial counter (select_forward); the machine runs shape.steps
/// steps; the loss is the cross-entropy of register r0 against the answers, which come from
/// running each task's true program (`task_programs[task]`, an entry name) on the reference
/// interpreter. Only the answers supervise the choice. Stops once the soft machine's answers
/// reach target_accuracy and, for every task, the entry point it chooses most on average
/// answers all of that task's examples right on the reference interpreter.
template <class S>
selection_result<S> learn_selection(const program_library& lib, const std::vector<std::string>& task_programs,
                                    const std::vector<selection_example>& examples,
                                    const selection_options& options, const progress_callback& progress = {}) {
  const auto& shape = lib.shape;
  const index tasks = static_cast<index>(task_programs.size());
  const index entries = static_cast<index>(lib.entries.size());
  const index args = examples.empty() ? 0 : static_cast<index>(examples.front().arguments.size());
  const index features = tasks + (options.argument_features ? args * shape.n : 0);
  const index B = static_cast<index>(examples.size());
  // Inputs and answers.
  matrix<S> x = matrix<S>::Zero(B, features);
  std::vector<machine::machine_inputs> inputs;
  std::vector<std::int64_t> answers;
  const machine::reference_machine reference(lib.program, shape);
  for (index b = 0; b < B; ++b) {
    const auto& e = examples[static_cast<std::size_t>(b)];
    if (e.task < 0 || e.task >= tasks || static_cast<index>(e.arguments.size()) != args) {
      throw value_error(ncl::detail::concat("learn_selection: example ", b, " has task ", e.task,
                                            " and ", e.arguments.size(), " arguments"));
    }
    x(b, e.task) = S(1);
    for (index a = 0; options.argument_features && a < args; ++a) {
      x(b, tasks + a * shape.n + e.arguments[static_cast<std::size_t>(a)]) = S(1);
    }
    machine::machine_inputs in;
    in.registers = e.arguments;
    in.registers.resize(static_cast<std::size_t>(shape.registers), 0);
    inputs.push_back(in);
    const index line = lib.entries[lib.entry_index(task_programs[static_cast<std::size_t>(e.task)])].line;
    answers.push_back(reference.run(reference.initial_state(line, in), shape.steps).registers[0]);
  }
  train::parameter_set<S> params;
  const auto weight = params.add("select.weight", {features, entries});
  const auto bias = params.add("select.bias", {1, entries}, {.sparse_rows = false, .weight_decay = false});
  ncl::rng random(options.seed);
  random.fill_normal(params.value(weight), 0.0, 0.1);
  train::adamw<S> optimizer(params, {.lr = options.lr, .weight_decay = 0.0});
  const machine::soft_interpreter<S> machine(shape);
  // The arguments go in as distributions (one-hot here) through write_arguments, the same
  // path a model's predicted argument distributions take.
  auto initial = machine::initial_state<S>(shape, B, 0);
  {
    std::vector<index> argument_registers;
    std::vector<matrix<S>> argument_values;
    for (index a = 0; a < args; ++a) {
      argument_registers.push_back(a);
      argument_values.push_back(matrix<S>::Zero(B, shape.n));
      for (index b = 0; b < B; ++b) {
        argument_values.back()(b, examples[static_cast<std::size_t>(b)].arguments[static_cast<std::size_t>(a)]) = S(1);
      }
    }
    write_arguments(initial, shape, argument_registers, argument_values);
  }
  const auto program = lib.compile<S>();
  machine::machine_tape<S> tape;
  selection_result<S> result;
  matrix<S> logits, select;
  auto mean_choice_per_task = [&](const matrix<S>& sel) {
    matrix<S> choice = matrix<S>::Zero(tasks, entries);
    std::vector<S> counts(static_cast<std::size_t>(tasks), S(0));
    for (index b = 0; b < B; ++b) {
      const index t = examples[static_cast<std::size_t>(b)].task;
      choice.row(t) += sel.row(b);
      counts[static_cast<std::size_t>(t)] += S(1);
    }
    for (index t = 0; t < tasks; ++t) {
      if (counts[static_cast<std::size_t>(t)] > 0) choice.row(t) /= counts[static_cast<std::size_t>(t)];
    }
    return choice;
  };
  for (std::int64_t step = 0; step <= options.max_steps; ++step) {
    const const_matrix_map<S> W(params.value(weight).data(), features, entries);
    const const_matrix_map<S> w0(params.value(bias).data(), 1, entries);
    logits = x * W + w0.replicate(B, 1);
    softmax_forward(select, logits);
    select_forward(initial.counter, select, lib);
    machine.unroll_forward(tape, initial, program, shape.steps);
    const auto& final_state = tape.final_state();
    const double loss = answer_loss_forward(final_state, shape, 0, answers);
    const double accuracy = answer_accuracy(final_state, shape, 0, answers);
    const curve_point point{step, loss, accuracy};
    result.curve.push_back(point);
    if (progress) progress(point);
    train::check_finite_loss(step, loss);
    // Done when the soft answers are right and so is the discrete choice: for every task, the
    // entry point most likely on average over its examples, run on the reference interpreter,
    // answers all of them.
    bool choices_right = accuracy >= options.target_accuracy;
    if (choices_right) {
      const matrix<S> choice = mean_choice_per_task(select);
      for (index b = 0; choices_right && b < B; ++b) {
        index best = 0;
        choice.row(examples[static_cast<std::size_t>(b)].task).maxCoeff(&best);
        const auto& in = inputs[static_cast<std::size_t>(b)];
        const auto state = reference.run(
            reference.initial_state(lib.entries[static_cast<std::size_t>(best)].line, in), shape.steps);
        choices_right = state.registers[0] == answers[static_cast<std::size_t>(b)];
      }
    }
    if (choices_right) {
      result.steps_to_target = step;
      break;
    }
    if (step == options.max_steps) break;
    auto dfinal = machine::zero_state<S>(shape, B);
    answer_loss_backward(dfinal, final_state, shape, 0, answers);
    auto grads = machine::machine_gradients<S>::zeros(shape, B, 0);  // the library is frozen
    machine.unroll_backward(grads, tape, dfinal);
    matrix<S> dselect = matrix<S>::Zero(B, entries), dlogits = matrix<S>::Zero(B, entries);
    select_backward(dselect, grads.initial.counter, lib);
    softmax_backward(dlogits, dselect, select);
    params.zero_grad();
    ncl::detail::product(matrix_map<S>(params.grad(weight).data(), features, entries), x.transpose(), dlogits, true);
    matrix_map<S>(params.grad(bias).data(), 1, entries) += dlogits.colwise().sum();
    optimizer.step(params);
  }
  result.task_choice = mean_choice_per_task(select);  // averaged over each task's examples
  return result;
}

}  // namespace ncl::library
