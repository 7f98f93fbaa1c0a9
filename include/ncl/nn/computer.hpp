// The computer layer (paper section 3): a LLaMA-style model that calls the differentiable
// computer from an intermediate layer. After block k, the residual stream at one chosen
// position per sequence (the last by default) is normalised and read by linear heads:
//   select  = softmax(W_sel h)       (B, E)  a distribution over the library's entry points
//                                            (a library of one-instruction programs makes
//                                            it a distribution over opcodes: opcode_library)
//   arg_i   = softmax(W_arg_i h)     (B, n)  the input distribution of argument register i
// These become the machine's initial state (the counter c0 = select E, the argument
// registers; library/linker.hpp), the soft machine runs T steps over the frozen compiled
// library, and the answer register's distribution is the answer: the loss is its
// cross-entropy. Optionally (project_back) the answer is mapped back into the residual stream,
// h += W_out answer at the same position, the remaining blocks run, and the final head's
// cross-entropy at the last position joins the loss:
//   loss = machine_loss_weight * CE(answer) + head_loss_weight * CE(head logits)
// Backward runs the same path in reverse: the remaining blocks, W_out, the machine through
// time (machine/interpreter.hpp), the heads, the norm, the first k blocks, the embedding, so
// every transformer weight is trained by the answer alone.
//
//   train::parameter_set<float> params;
//   auto lib = library::link_stdlib(shape, {"power", "absdiff", "gcd"});
//   nn::llama_computer<float> model(llama_cfg, {.after_block = 1, .steps = 24}, lib, params);
//   float loss = model.forward(tokens, {}, answers, B, T);   // positions {}: the last ones
//   params.zero_grad(); model.backward(); optimizer.step(params);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "ncl/alu/alu.hpp"
#include "ncl/core/buffer.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/core/softmax.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/library/learn.hpp"
#include "ncl/library/linker.hpp"
#include "ncl/machine/interpreter.hpp"
#include "ncl/nn/linear.hpp"
#include "ncl/nn/llama.hpp"
#include "ncl/nn/rmsnorm.hpp"

namespace ncl::nn {

/// How an argument register's distribution is read from the stream.
///   value:   arg = softmax(W h), a distribution over the n values (the paper's heads)
///   pointer: arg = sum_t a_t onehot(value(token_t)), a = softmax_t((W_q h) . (W_k h_t) / sqrt(C)
///            + w[p - t]) over the number tokens t up to the read position p (the numbers
///            from computer_config::token_values), with a learned bias w per distance;
///            uniform when there is no number: the head learns where the argument is, and
///            the tokenizer says what number it is
///   sentence_value: the value heads' softmax(W h), over the values the sentence's number
///            tokens up to the read position spell (computer_config::token_values; all n when
///            there is none). The paper's heads can hand the ALU any split of the answer
///            (a + c and b - c add up as well as a and b); these can only name the sentence's
///            numbers
enum class argument_head { value, sentence_value, pointer };

/// Where and how the model calls the machine.
struct computer_config {
  index after_block = 1;                          ///< k: read the stream after block k, 1 <= k <= n_layers
  std::vector<index> argument_registers{0, 1};    ///< registers the argument heads write, in order
  index answer_register = 0;                      ///< its final distribution is the answer
  std::int64_t steps = 16;                        ///< T machine steps (early stop once every element halted)
  /// (d): add W_out answer into the stream at the read position, run the remaining blocks and
  /// the final head at the last position; its cross-entropy against the answers joins the loss.
  bool project_back = false;
  double machine_loss_weight = 1.0;
  double head_loss_weight = 1.0;                  ///< only with project_back
  double answer_eps = 1e-6;                       ///< CE(answer) = -log(p + eps)
  machine::control_mode control = machine::control_mode::per_line;
  alu::backend alu = alu::backend::table;
  /// The machine's batch slices, stepped on ncl's threads (soft_interpreter::set_slices).
  /// 0, the default, lets the interpreter choose (threads for a large enough batch); 1 runs
  /// the machine on the calling thread, better when the cores are shared with other work,
  /// where the threads' per-step synchronisation stalls.
  index machine_slices = 0;
  argument_head arguments = argument_head::value;
  /// For pointer and sentence_value arguments: the number each token id spells, -1 (or >= n) for none; one
  /// entry per token of the vocabulary (see token_number_values).
  std::vector<std::int64_t> token_values{};
};

/// The number each token of a vocabulary spells: decode(id) is one to three decimal digits,
/// after at most one leading space, giving a value below `limit`; -1 otherwise.
template <class Decode>
std::vector<std::int64_t> token_number_values(std::size_t vocab_size, std::int64_t limit, Decode&& decode) {
  std::vector<std::int64_t> values(vocab_size, -1);
  for (std::size_t id = 0; id < vocab_size; ++id) {
    std::string text = decode(static_cast<std::int32_t>(id));
    if (!text.empty() && text.front() == ' ') text.erase(0, 1);
    if (text.empty() || text.size() > 3 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (text.size() > 1 && text.front() == '0') continue;  // "07" is not how a number is written
    const std::int64_t v = std::stoll(text);
    if (v < limit) values[id] = v;
  }
  return values;
}

template <class S>
class llama_computer {
 public:
  using params_type = train::parameter_set<S>;

  /// Adds the transformer's parameters and the computer's (computer.norm.weight,
  /// computer.select.weight (E, C), per argument computer.args.{i}.weight (n, C) (value and sentence_value) or, for
  /// pointer heads, computer.args.{i}.q_proj.weight and .k_proj.weight (C, C) and
  /// .distance_bias (max_seq_len), and with
  /// project_back computer.out_proj.weight (C, n)) to `params`, all zero: call init() or load them.
  llama_computer(const llama_config& model_config, const computer_config& config,
                 library::program_library lib, params_type& params)
      : config_(validated(model_config, config, lib)), lib_(std::move(lib)), params_(params),
        model_(model_config, params),
        machine_(lib_.shape, config.alu, config.control),
        program_(lib_.compile<S>()) {
    machine_.set_slices(config_.machine_slices);
    const index C = model_config.dim, n = lib_.shape.n, E = entries();
    norm_w_ = params.add("computer.norm.weight", {C});
    select_w_ = params.add("computer.select.weight", {E, C});
    for (std::size_t i = 0; i < config_.argument_registers.size(); ++i) {
      const std::string p = "computer.args." + std::to_string(i);
      if (config_.arguments != argument_head::pointer) {
        arg_w_.push_back(params.add(p + ".weight", {n, C}));
      } else {
        arg_w_.push_back(params.add(p + ".q_proj.weight", {C, C}));
        arg_k_.push_back(params.add(p + ".k_proj.weight", {C, C}));
        arg_bias_.push_back(params.add(p + ".distance_bias", {model_config.max_seq_len},
                                       {.sparse_rows = false, .weight_decay = false}));
      }
    }
    if (config_.project_back) out_w_ = params.add("computer.out_proj.weight", {C, n});
  }

  const computer_config& config() const { return config_; }
  const library::program_library& library() const { return lib_; }
  llama<S>& transformer() { return model_; }
  const llama<S>& transformer() const { return model_; }
  params_type& params() { return params_; }
  index entries() const { return static_cast<index>(lib_.entries.size()); }

  /// Every parameter in the set: norm weights 1, every matrix N(0, std^2).
  void init(ncl::rng& random, double std = 0.02) { model_.init(random, std); }

  /// Runs the model on tokens (B, T), reading the stream after block k at positions[b] of
  /// each sequence (empty: T - 1), and returns the loss against answers (B, values in
  /// [0, n)). Keeps what backward needs.
  S forward(std::span<const std::int32_t> tokens, std::span<const index> positions,
            std::span<const std::int64_t> answers, index B, index T) {
    have_forward_ = false;
    const llama_config& mc = model_.config();
    const machine::machine_shape& shape = lib_.shape;
    const index L = mc.n_layers, k = config_.after_block, C = mc.dim, n = shape.n, E = entries();
    check_batch(positions, answers, B, T);
    positions_.resize(static_cast<std::size_t>(B));
    for (index b = 0; b < B; ++b) {
      positions_[static_cast<std::size_t>(b)] = positions.empty() ? T - 1 : positions[static_cast<std::size_t>(b)];
    }
    answers_.assign(answers.begin(), answers.end());
    const index first = *std::min_element(positions_.begin(), positions_.end());
    const index top = config_.project_back ? L : k;  // blocks that run
    // Every block's output is needed at every position, except the last block run: the
    // machine (if it reads there) needs the positions from the earliest read one on, the
    // head the last one.
    // Pointer heads read every position up to the read one.
    const index needed = config_.arguments == argument_head::pointer ? T : T - first;
    auto rows_of = [&](index l) { return l != top - 1 ? T : (l + 1 == k ? needed : 1); };

    model_.embed(tokens, B, T);
    tokens_.assign(tokens.begin(), tokens.end());
    for (index l = 0; l < k; ++l) model_.forward_block(l, rows_of(l));

    // (a), (b): the heads on the normalised stream (a copy: project_back adds into it).
    const auto stream = model_.residual(k);
    rows_ = model_.residual_rows(k);
    stream_.assign(stream.begin(), stream.end());
    stream_norm_.resize(stream_.size());
    rstd_.resize(static_cast<std::size_t>(B * rows_));
    rmsnorm_forward(stream_norm_.data(), rstd_.data(), stream_.data(), w(norm_w_), B * rows_, C,
                    static_cast<S>(mc.norm_eps));
    hidden_norm_.resize(B, C);
    gather_rows(hidden_norm_, stream_norm_, rows_, T);
    select_logits_.resize(B, E);
    linear_forward(select_logits_.data(), hidden_norm_.data(), w(select_w_), B, C, E);
    softmax_forward(select_, select_logits_);
    arg_probs_.resize(arg_w_.size());
    pointers_.resize(arg_w_.size());
    matrix<S> logits(B, n);
    for (std::size_t i = 0; i < arg_w_.size(); ++i) {
      if (config_.arguments != argument_head::pointer) {
        linear_forward(logits.data(), hidden_norm_.data(), w(arg_w_[i]), B, C, n);
        if (config_.arguments == argument_head::sentence_value) mask_to_sentence(logits, T);
        softmax_forward(arg_probs_[i], logits);  // a masked value gets probability 0, and no gradient
      } else {
        pointer_forward(pointers_[i], arg_probs_[i], i, B, T);
      }
    }
    // The machine: c0 from the selection, the argument registers from the heads, every other
    // register and memory cell on 0.
    auto initial = machine::initial_state<S>(shape, B, 0);
    library::select_forward(initial.counter, select_, lib_);
    library::write_arguments(initial, shape, config_.argument_registers, arg_probs_);
    machine_.unroll_forward(tape_, initial, program_, config_.steps);
    const auto& final_state = tape_.final_state();
    answer_ = final_state.registers.block(0, config_.answer_register * n, B, n);
    machine_loss_ = library::answer_loss_forward(final_state, shape, config_.answer_register,
                                                 answers_, static_cast<S>(config_.answer_eps));
    S loss = static_cast<S>(config_.machine_loss_weight * machine_loss_);
    head_loss_ = 0;

    if (config_.project_back) {  // (d)
      matrix<S> z(B, C);
      linear_forward(z.data(), answer_.data(), w(out_w_), B, n, C);
      scatter_add_rows(model_.residual(k), model_.residual_rows(k), T, z);
      for (index l = k; l < L; ++l) model_.forward_block(l, rows_of(l));
      targets_.assign(answers_.begin(), answers_.end());
      head_loss_ = static_cast<double>(model_.head_forward(targets_));
      loss += static_cast<S>(config_.head_loss_weight * head_loss_);
    }
    T_ = T;
    have_forward_ = true;
    return loss;
  }

  /// Adds d loss / d parameter, scaled by dloss, into params().grads() (zero them first).
  void backward(S dloss = S(1)) {
    if (!have_forward_) throw value_error("llama_computer::backward: no successful forward to differentiate");
    const machine::machine_shape& shape = lib_.shape;
    const llama_config& mc = model_.config();
    const index L = mc.n_layers, k = config_.after_block, C = mc.dim, n = shape.n, E = entries();
    const index B = select_.rows(), T = T_;
    matrix<S> danswer = matrix<S>::Zero(B, n);
    if (config_.project_back) {
      model_.begin_backward(L);
      model_.head_backward(static_cast<S>(config_.head_loss_weight) * dloss);
      for (index l = L - 1; l >= k; --l) model_.backward_block(l);
      matrix<S> dz(B, C);
      gather_rows(dz, model_.residual_grad(), model_.residual_rows(k), T);
      linear_backward(danswer.data(), g(out_w_), dz.data(), answer_.data(), w(out_w_), B, n, C);
    } else {
      model_.begin_backward(k);
    }
    // Through the machine: d final answer register -> d initial counter and registers.
    auto dfinal = machine::zero_state<S>(shape, B);
    library::answer_loss_backward(dfinal, tape_.final_state(), shape, config_.answer_register,
                                  answers_, static_cast<S>(config_.answer_eps));
    dfinal.registers *= static_cast<S>(config_.machine_loss_weight) * dloss;
    dfinal.registers.block(0, config_.answer_register * n, B, n) += danswer;
    auto grads = machine::machine_gradients<S>::zeros(shape, B, 0);  // the library is frozen
    machine_.unroll_backward(grads, tape_, dfinal);
    // The heads and the norm.
    matrix<S> dselect = matrix<S>::Zero(B, E), dlogits = matrix<S>::Zero(B, E);
    library::select_backward(dselect, grads.initial.counter, lib_);
    softmax_backward(dlogits, dselect, select_);
    matrix<S> dhidden_norm = matrix<S>::Zero(B, C);
    linear_backward(dhidden_norm.data(), g(select_w_), dlogits.data(), hidden_norm_.data(), w(select_w_), B, C, E);
    std::vector<matrix<S>> dargs(arg_w_.size(), matrix<S>::Zero(B, n));
    library::write_arguments_backward(dargs, grads.initial.registers, shape, config_.argument_registers);
    buffer<S> dstream_norm(stream_norm_.size(), S(0));
    for (std::size_t i = 0; i < arg_w_.size(); ++i) {
      if (config_.arguments != argument_head::pointer) {
        matrix<S> dl = matrix<S>::Zero(B, n);
        softmax_backward(dl, dargs[i], arg_probs_[i]);
        linear_backward(dhidden_norm.data(), g(arg_w_[i]), dl.data(), hidden_norm_.data(), w(arg_w_[i]), B, C, n);
      } else {
        pointer_backward(dhidden_norm, dstream_norm, dargs[i], pointers_[i], i, B, T);
      }
    }
    scatter_add_rows(std::span<S>(dstream_norm), rows_, T, dhidden_norm);
    rmsnorm_backward(model_.residual_grad().data(), g(norm_w_), dstream_norm.data(), stream_.data(),
                     w(norm_w_), rstd_.data(), B * rows_, C);
    for (index l = k - 1; l >= 0; --l) model_.backward_block(l);
    model_.embed_backward();
  }

  // ---- the last forward's parts ----------------------------------------------------------
  const matrix<S>& selection() const { return select_; }                 ///< (B, E)
  const matrix<S>& argument(std::size_t i) const { return arg_probs_.at(i); }  ///< (B, n)
  const matrix<S>& answer() const { return answer_; }                    ///< (B, n)
  double machine_loss() const { return machine_loss_; }                  ///< CE(answer)
  double head_loss() const { return head_loss_; }                        ///< CE(head), project_back
  std::int64_t machine_steps() const { return tape_.steps; }             ///< steps the machine ran
  /// The final head's logits (B, output_size), with project_back.
  std::span<const S> head_logits() const { return model_.logits(); }

 private:
  // ---- sentence_value heads: the mask (the backward is the value heads': softmax gives a
  // masked logit probability 0 and gradient 0) ---------------------------------------------

  // logits (B, n): every value that no number token of sequence b up to its read position
  // spells is set to -inf, unless the sequence has no number.
  void mask_to_sentence(matrix<S>& logits, index T) const {
    const index n = logits.cols();
    std::vector<char> said(static_cast<std::size_t>(n));
    for (index b = 0; b < logits.rows(); ++b) {
      std::fill(said.begin(), said.end(), char{0});
      bool any = false;
      for (index t = 0; t <= positions_[static_cast<std::size_t>(b)]; ++t) {
        const std::int64_t v = token_value(tokens_[static_cast<std::size_t>(b * T + t)]);
        if (v >= 0) said[static_cast<std::size_t>(v)] = any = true;
      }
      if (!any) continue;
      for (index v = 0; v < n; ++v) {
        if (!said[static_cast<std::size_t>(v)]) logits(b, v) = -std::numeric_limits<S>::infinity();
      }
    }
  }

  // ---- pointer argument heads: forward and backward side by side --------------------------

  struct pointer_state {
    matrix<S> q;     // (B, C)       W_q h at the read positions
    matrix<S> keys;  // (B rows, C)  W_k h at every position in the stream
    matrix<S> att;   // (B, rows)    attention over the number tokens up to the read position
  };

  std::int64_t token_value(std::int32_t token) const {
    const std::int64_t v = config_.token_values[static_cast<std::size_t>(token)];
    return v >= 0 && v < lib_.shape.n ? v : -1;
  }
  // The stream rows of sequence b a pointer may choose: its number tokens up to the read
  // position, with their values.
  void pointer_candidates(std::vector<std::pair<index, std::int64_t>>& out, index b, index T) const {
    const index offset = T - rows_, last = positions_[static_cast<std::size_t>(b)] - offset;
    out.clear();
    for (index r = 0; r <= last; ++r) {
      const std::int64_t v = token_value(tokens_[static_cast<std::size_t>(b * T + r + offset)]);
      if (v >= 0) out.emplace_back(r, v);
    }
  }

  // arg (B, n) = sum_t att_t onehot(value_t), att = softmax_t(q . k_t / sqrt(C) + w[p - t]) over
  // the number tokens t up to the read position p; uniform when there is none.
  void pointer_forward(pointer_state& ps, matrix<S>& arg, std::size_t i, index B, index T) {
    const index C = model_.config().dim, n = lib_.shape.n, R = rows_, offset = T - rows_;
    const S scale = S(1) / std::sqrt(static_cast<S>(C));
    ps.q.resize(B, C);
    linear_forward(ps.q.data(), hidden_norm_.data(), w(arg_w_[i]), B, C, C);
    ps.keys.resize(B * R, C);
    linear_forward(ps.keys.data(), stream_norm_.data(), w(arg_k_[i]), B * R, C, C);
    ps.att = matrix<S>::Zero(B, R);
    arg = matrix<S>::Zero(B, n);
    const S* bias = w(arg_bias_[i]);
    std::vector<std::pair<index, std::int64_t>> candidates;
    buffer<S> scores;
    for (index b = 0; b < B; ++b) {
      pointer_candidates(candidates, b, T);
      if (candidates.empty()) {
        arg.row(b).setConstant(S(1) / static_cast<S>(n));
        continue;
      }
      const index last = positions_[static_cast<std::size_t>(b)] - offset;
      scores.resize(candidates.size());
      for (std::size_t c = 0; c < candidates.size(); ++c) {
        const index r = candidates[c].first;
        scores[c] = scale * ps.q.row(b).dot(ps.keys.row(b * R + r)) + bias[last - r];
      }
      softmax_row(scores.data(), scores.data(), static_cast<index>(scores.size()));
      for (std::size_t c = 0; c < candidates.size(); ++c) {
        ps.att(b, candidates[c].first) = scores[c];
        arg(b, candidates[c].second) += scores[c];
      }
    }
  }

  // From darg (B, n): dhidden_norm (B, C) and dstream_norm (B rows, C) += the gradients through
  // W_q and W_k; the gradients of W_q, W_k and the distance bias go into params().grads().
  void pointer_backward(matrix<S>& dhidden_norm, buffer<S>& dstream_norm, const matrix<S>& darg,
                        const pointer_state& ps, std::size_t i, index B, index T) {
    const index C = model_.config().dim, R = rows_, offset = T - rows_;
    const S scale = S(1) / std::sqrt(static_cast<S>(C));
    matrix<S> dq = matrix<S>::Zero(B, C), dkeys = matrix<S>::Zero(B * R, C);
    S* dbias = g(arg_bias_[i]);
    std::vector<std::pair<index, std::int64_t>> candidates;
    buffer<S> att, datt, ds;
    for (index b = 0; b < B; ++b) {
      pointer_candidates(candidates, b, T);
      if (candidates.empty()) continue;  // a constant: no gradient
      const index last = positions_[static_cast<std::size_t>(b)] - offset;
      const std::size_t m = candidates.size();
      att.resize(m);
      datt.resize(m);
      ds.assign(m, S(0));
      for (std::size_t c = 0; c < m; ++c) {
        att[c] = ps.att(b, candidates[c].first);
        datt[c] = darg(b, candidates[c].second);  // d att_t = darg . onehot(value_t)
      }
      softmax_row_backward(ds.data(), datt.data(), att.data(), static_cast<index>(m));
      for (std::size_t c = 0; c < m; ++c) {
        const index r = candidates[c].first;
        dbias[last - r] += ds[c];
        dq.row(b) += scale * ds[c] * ps.keys.row(b * R + r);
        dkeys.row(b * R + r) += scale * ds[c] * ps.q.row(b);
      }
    }
    linear_backward(dhidden_norm.data(), g(arg_w_[i]), dq.data(), hidden_norm_.data(), w(arg_w_[i]), B, C, C);
    linear_backward(dstream_norm.data(), g(arg_k_[i]), dkeys.data(), stream_norm_.data(), w(arg_k_[i]), B * R, C, C);
  }

  static const computer_config& validated(const llama_config& mc, const computer_config& config,
                                          const library::program_library& lib) {
    mc.validate();
    lib.shape.validate();
    auto fail = [](const auto&... parts) { throw value_error(ncl::detail::concat("llama_computer: ", parts...)); };
    if (config.after_block < 1 || config.after_block > mc.n_layers) {
      fail("after_block ", config.after_block, " is outside [1, n_layers = ", mc.n_layers, "]");
    }
    if (config.steps < 1) fail("steps ", config.steps, " must be >= 1");
    if (config.machine_slices < 0) fail("machine_slices ", config.machine_slices, " must be >= 0");
    if (config.arguments != argument_head::value) {
      if (static_cast<index>(config.token_values.size()) != mc.vocab_size) {
        fail("pointer and sentence_value arguments need token_values for every token: ", config.token_values.size(),
             " entries for a vocabulary of ", mc.vocab_size);
      }
      for (std::size_t t = 0; t < config.token_values.size(); ++t) {
        if (config.token_values[t] < -1) fail("token_values[", t, "] = ", config.token_values[t], " < -1");
      }
    }
    if (lib.entries.empty()) fail("the library has no entry points");
    auto check_register = [&](const char* what, index r) {
      if (r < 0 || r >= lib.shape.registers) fail(what, " register ", r, " is outside [0, R = ", lib.shape.registers, ")");
    };
    for (index r : config.argument_registers) check_register("argument", r);
    check_register("answer", config.answer_register);
    for (std::size_t i = 0; i < config.argument_registers.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (config.argument_registers[i] == config.argument_registers[j]) {
          fail("argument register ", config.argument_registers[i], " is listed twice");
        }
      }
    }
    if (!(config.machine_loss_weight >= 0) || !(config.head_loss_weight >= 0) || !(config.answer_eps >= 0)) {
      fail("loss weights and answer_eps must be >= 0");
    }
    if (config.project_back && mc.output_size < lib.shape.n) {
      fail("with project_back the head's output_size ", mc.output_size, " must cover the n = ",
           lib.shape.n, " answers");
    }
    return config;
  }

  void check_batch(std::span<const index> positions, std::span<const std::int64_t> answers, index B, index T) const {
    if (B <= 0 || T <= 0) {
      throw value_error(ncl::detail::concat("llama_computer::forward: need B > 0 and T > 0, got B ", B, ", T ", T));
    }
    if (!positions.empty() && static_cast<index>(positions.size()) != B) {
      throw shape_error(ncl::detail::concat("llama_computer::forward: positions has ", positions.size(),
                                            " entries, expected 0 (the last) or B = ", B));
    }
    for (std::size_t b = 0; b < positions.size(); ++b) {
      if (positions[b] < 0 || positions[b] >= T) {
        throw value_error(ncl::detail::concat("llama_computer::forward: positions[", b, "] = ",
                                              positions[b], " is outside [0, T = ", T, ")"));
      }
    }
    if (static_cast<index>(answers.size()) != B) {
      throw shape_error(ncl::detail::concat("llama_computer::forward: answers has ", answers.size(),
                                            " entries, expected B = ", B));
    }
    for (std::size_t b = 0; b < answers.size(); ++b) {
      if (answers[b] < 0 || answers[b] >= lib_.shape.n) {
        throw value_error(ncl::detail::concat("llama_computer::forward: answers[", b, "] = ",
                                              answers[b], " is outside [0, n = ", lib_.shape.n, ")"));
      }
    }
  }

  // out (B, C) = the stream's rows at positions_ (stream: B * rows positions T - rows ..).
  void gather_rows(matrix<S>& out, std::span<const S> stream, index rows, index T) const {
    const index C = out.cols();
    for (index b = 0; b < out.rows(); ++b) {
      const index r = b * rows + positions_[static_cast<std::size_t>(b)] - (T - rows);
      std::copy_n(stream.data() + r * C, C, out.row(b).data());
    }
  }
  // The stream's rows at positions_ += x (B, C).
  void scatter_add_rows(std::span<S> stream, index rows, index T, const matrix<S>& x) const {
    const index C = x.cols();
    for (index b = 0; b < x.rows(); ++b) {
      S* dst = stream.data() + (b * rows + positions_[static_cast<std::size_t>(b)] - (T - rows)) * C;
      for (index c = 0; c < C; ++c) dst[c] += x(b, c);
    }
  }

  S* w(std::size_t p) { return params_.value(p).data(); }
  S* g(std::size_t p) { return params_.grad(p).data(); }

  computer_config config_;
  library::program_library lib_;
  params_type& params_;
  llama<S> model_;
  machine::soft_interpreter<S> machine_;
  machine::soft_program<S> program_;  // the compiled library, frozen
  std::size_t norm_w_ = 0, select_w_ = 0, out_w_ = 0;  // parameter ids
  std::vector<std::size_t> arg_w_;  // value heads' W, or pointer heads' W_q
  std::vector<std::size_t> arg_k_;  // pointer heads' W_k
  std::vector<std::size_t> arg_bias_;  // pointer heads' distance bias

  // the last forward
  bool have_forward_ = false;
  index T_ = 0;
  std::vector<index> positions_;
  std::vector<std::int64_t> answers_;
  std::vector<std::int32_t> targets_;
  index rows_ = 0;                    // positions per sequence in the stream after block k
  std::vector<std::int32_t> tokens_;
  buffer<S> stream_, stream_norm_, rstd_;  // (B rows, C) the stream after block k, normalised
  matrix<S> hidden_norm_, select_logits_, select_, answer_;  // hidden_norm_: at the read rows
  std::vector<pointer_state> pointers_;
  std::vector<matrix<S>> arg_probs_;
  machine::machine_tape<S> tape_;
  double machine_loss_ = 0, head_loss_ = 0;
};

}  // namespace ncl::nn
