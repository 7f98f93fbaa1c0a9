// A LLaMA-3-style decoder (Dubey et al. 2024; Touvron et al. 2023) with a hand-written backward:
// token embedding, n_layers pre-norm blocks (RMSNorm, causal grouped-query attention with RoPE,
// residual, RMSNorm, SwiGLU feed-forward, residual), a final RMSNorm and a linear head read at
// the last position of each sequence (the paper supervises the answer there), trained with a
// mean cross-entropy loss. The model also runs block by block (embed, forward_block,
// head_forward and their backward), so a layer can read and write the residual stream between
// blocks: the differentiable computer (ncl/nn/computer.hpp) does.
//
// Parameters live in a train::parameter_set under Hugging Face's LLaMA names
// (model.embed_tokens.weight, model.layers.{i}.self_attn.q_proj.weight, ..., lm_head.weight),
// so checkpoints interchange with PyTorch. Since the loss reads only the last position, the
// final layer computes everything after its attention (output projection, residual,
// feed-forward) for the B last-position rows alone; keys and values still span every position.
// The results are those of the full computation (tests/nn/test_llama.cpp checks against PyTorch). The embedding is a sparse_rows parameter: its
// gradient touches only the rows of tokens in the batch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ncl/core/buffer.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/core/tensor.hpp"
#include "ncl/nn/attention.hpp"
#include "ncl/nn/cross_entropy.hpp"
#include "ncl/nn/embedding.hpp"
#include "ncl/nn/linear.hpp"
#include "ncl/nn/rmsnorm.hpp"
#include "ncl/nn/rope.hpp"
#include "ncl/nn/swiglu.hpp"
#include "ncl/train/parameters.hpp"

namespace ncl::nn {

/// The model's hyper-parameters, named as in LLaMA 3's params.json. Defaults: LLaMA 3 8B.
struct llama_config {
  index dim = 4096;
  index n_layers = 32;
  index n_heads = 32;
  index n_kv_heads = 8;
  index ffn_dim = 14336;
  index vocab_size = 128256;
  index output_size = 128256;  ///< classes of the linear head at the last position
  double norm_eps = 1e-5;
  double rope_theta = 500000.0;
  index max_seq_len = 8192;
  /// Embedding gradient in touched rows only (lazy AdamW on it); false: a dense parameter.
  bool sparse_embedding = true;

  index head_dim() const { return dim / n_heads; }
  void validate() const {
    if (dim <= 0 || n_layers <= 0 || n_heads <= 0 || n_kv_heads <= 0 || ffn_dim <= 0 ||
        vocab_size <= 0 || output_size <= 0 || max_seq_len <= 0) {
      throw value_error("llama_config: every size must be > 0");
    }
    if (dim % n_heads != 0 || (dim / n_heads) % 2 != 0) {
      throw value_error(ncl::detail::concat("llama_config: dim ", dim, " must split into ", n_heads,
                                            " heads of even size"));
    }
    if (n_heads % n_kv_heads != 0) {
      throw value_error(ncl::detail::concat("llama_config: n_kv_heads ", n_kv_heads,
                                            " must divide n_heads ", n_heads));
    }
    if (!(norm_eps > 0) || !(rope_theta > 0)) {
      throw value_error("llama_config: norm_eps and rope_theta must be > 0");
    }
  }
};

/// Parameter ids of one block.
struct llama_layer_ids {
  std::size_t attn_norm, q, k, v, o, ffn_norm, gate, up, down;
};

template <class S>
class llama {
 public:
  using params_type = train::parameter_set<S>;

  /// Adds the model's parameters to `params` (zero; call init() or load a checkpoint).
  llama(const llama_config& config, params_type& params)
      : config_(config), params_(params),
        rope_((config.validate(), config.head_dim()), config.max_seq_len, config.rope_theta) {
    const index C = config.dim, D = config.head_dim(), F = config.ffn_dim;
    const index Q = config.n_heads * D, KVD = config.n_kv_heads * D;
    embed_ = params.add("model.embed_tokens.weight", {config.vocab_size, C},
                        {.sparse_rows = config.sparse_embedding});
    for (index l = 0; l < config.n_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      llama_layer_ids ids{};
      ids.attn_norm = params.add(p + "input_layernorm.weight", {C});
      // q, k, v added back to back form one ((H + 2 KV) D, C) matrix: one GEMM; same for gate, up.
      ids.q = params.add(p + "self_attn.q_proj.weight", {Q, C});
      ids.k = params.add(p + "self_attn.k_proj.weight", {KVD, C});
      ids.v = params.add(p + "self_attn.v_proj.weight", {KVD, C});
      ids.o = params.add(p + "self_attn.o_proj.weight", {C, Q});
      ids.ffn_norm = params.add(p + "post_attention_layernorm.weight", {C});
      ids.gate = params.add(p + "mlp.gate_proj.weight", {F, C});
      ids.up = params.add(p + "mlp.up_proj.weight", {F, C});
      ids.down = params.add(p + "mlp.down_proj.weight", {C, F});
      layers_.push_back(ids);
    }
    norm_ = params.add("model.norm.weight", {C});
    head_ = params.add("lm_head.weight", {config.output_size, C});
  }

  const llama_config& config() const { return config_; }
  params_type& params() { return params_; }
  const std::vector<llama_layer_ids>& layer_ids() const { return layers_; }

  /// Norm weights 1, every matrix N(0, std^2).
  void init(ncl::rng& random, double std = 0.02) {
    for (std::size_t p = 0; p < params_.count(); ++p) {
      auto v = params_.value(p);
      if (params_.info(p).shape.size() == 1) {
        std::fill(v.begin(), v.end(), S(1));
      } else {
        random.fill_normal(v, 0.0, std);
      }
    }
  }

  /// Runs the model on tokens (B, T) and returns the mean cross-entropy of the head's logits
  /// (B, output_size) at the last position against targets (B). Keeps what backward needs.
  /// The same as embed(), forward_block() for every block (the final one on the last
  /// position only) and head_forward().
  S forward(std::span<const std::int32_t> tokens, std::span<const std::int32_t> targets, index B,
            index T) {
    embed(tokens, B, T);
    for (index l = 0; l < config_.n_layers; ++l) forward_block(l, l == config_.n_layers - 1 ? 1 : T);
    return head_forward(targets);
  }

  /// Adds d loss / d parameter into params().grads() (zero them first) for the last forward,
  /// scaled by dloss; marks the embedding rows it touches.
  void backward(S dloss = S(1)) {
    if (!have_head_) throw value_error("llama::backward: no successful forward to differentiate");
    begin_backward(config_.n_layers);
    head_backward(dloss);
    for (index l = config_.n_layers - 1; l >= 0; --l) backward_block(l);
    embed_backward();
  }

  // ---- the model block by block (the computer layer reads and writes between blocks) --------
  //
  // Forward: embed(), then forward_block(l, rows) for l = 0, 1, ... in order, then optionally
  // head_forward(). Block l's output exists at the last `rows` positions of each sequence
  // (rows = T: all of them); only the last block run may have rows < T, since a later
  // block's attention reads every position. residual(l) is the stream after l blocks, which a
  // caller may read and add into before running block l. Backward mirrors it:
  // begin_backward(blocks), then head_backward() if the head ran, then backward_block(l) from
  // l = blocks - 1 down to 0, then embed_backward(); residual_grad() is d loss / d the stream
  // at the current level, which a caller may read and add into.

  /// Checks tokens (B, T) and embeds them: the residual stream before block 0.
  void embed(std::span<const std::int32_t> tokens, index B, index T) {
    const llama_config& c = config_;
    if (B <= 0 || T <= 0 || T > c.max_seq_len) {
      throw value_error(ncl::detail::concat("llama::forward: need B > 0 and 0 < T <= max_seq_len ",
                                            c.max_seq_len, ", got B ", B, ", T ", T));
    }
    if (static_cast<index>(tokens.size()) != B * T) {
      throw shape_error(ncl::detail::concat("llama::forward: tokens has ", tokens.size(),
                                            " entries, expected B*T = ", B * T));
    }
    have_head_ = false;
    blocks_run_ = -1;
    grad_level_ = -1;
    resize(B, T);
    tokens_.assign(tokens.begin(), tokens.end());
    embedding_forward(resid_.data(), tokens_.data(), w(embed_), B * T, c.dim, c.vocab_size);
    blocks_run_ = 0;
    std::fill(rows_.begin(), rows_.end(), index{0});
  }

  /// Runs block l (the next one) on the residual stream; its output is computed at the last
  /// `query_rows` positions of each sequence only (T: every position).
  void forward_block(index l, index query_rows) {
    const llama_config& c = config_;
    const index B = B_, T = T_;
    if (blocks_run_ < 0 || l != blocks_run_ || l >= c.n_layers) {
      throw value_error(ncl::detail::concat("llama::forward_block: block ", l, " is not next (",
                                            blocks_run_ < 0 ? index{0} : blocks_run_, " of ",
                                            c.n_layers, " run; call embed() first)"));
    }
    if (l > 0 && rows_[static_cast<std::size_t>(l - 1)] != T) {
      throw value_error(ncl::detail::concat("llama::forward_block: block ", l - 1,
                                            " ran on the last positions only; no block can follow it"));
    }
    if (query_rows < 1 || query_rows > T) {
      throw value_error(ncl::detail::concat("llama::forward_block: query_rows ", query_rows,
                                            " is outside [1, T = ", T, "]"));
    }
    have_head_ = false;
    grad_level_ = -1;
    const index N = B * T, C = c.dim, F = c.ffn_dim, H = c.n_heads, D = c.head_dim();
    const index QKV = (H + 2 * c.n_kv_heads) * D;
    const S eps = static_cast<S>(c.norm_eps);
    const auto& ids = layers_[static_cast<std::size_t>(l)];
    // After the attention (whose keys and values need every position) only the last Tq
    // positions' rows are computed.
    const index Tq = query_rows, R = B * Tq;  // rows after attention
    S* x = resid_.data() + l * N * C;  // (N, C) block input
    S* xn1 = xn1_.data() + l * N * C;
    S* qkv = qkv_.data() + l * N * QKV;  // (N, QKV), q and k rotated
    S* att = att_.data() + l * B * H * T * T;  // (B, H, Tq, T)
    S* y = y_.data() + l * N * H * D;  // (R, H D)
    S* mid = mid_.data() + l * N * C;  // (R, C) after the attention residual
    S* xn2 = xn2_.data() + l * N * C;  // (R, C)
    S* gu = gu_.data() + l * N * 2 * F;  // (R, 2F)
    S* h = h_.data() + l * N * F;  // (R, F)
    S* out = resid_.data() + (l + 1) * N * C;  // (R, C)
    rmsnorm_forward(xn1, rstd1_.data() + l * N, x, w(ids.attn_norm), N, C, eps);
    linear_forward(qkv, xn1, w(ids.q), N, C, QKV);
    rope_forward(qkv, qkv, rope_, N, T, H + c.n_kv_heads, QKV);
    attention_forward(y, att, qkv, attention_shape{B, T, H, c.n_kv_heads, D, Tq});
    linear_forward(mid, y, w(ids.o), R, H * D, C);
    add_query_rows(mid, x, B, T, Tq, C);
    rmsnorm_forward(xn2, rstd2_.data() + l * N, mid, w(ids.ffn_norm), R, C, eps);
    linear_forward(gu, xn2, w(ids.gate), R, C, 2 * F);
    swiglu_forward(h, gu, R, F);
    linear_forward(out, h, w(ids.down), R, F, C);
    for (index i = 0; i < R * C; ++i) out[i] += mid[i];
    rows_[static_cast<std::size_t>(l)] = Tq;
    blocks_run_ = l + 1;
  }

  /// Positions per sequence held in the residual stream after `blocks` blocks (the last ones).
  index residual_rows(index blocks) const {
    check_level("llama::residual_rows", blocks, blocks_run_);
    return blocks == 0 ? T_ : rows_[static_cast<std::size_t>(blocks - 1)];
  }

  /// The residual stream after `blocks` blocks, (B * rows, C): row b * rows + i is position
  /// T - rows + i of sequence b, rows = residual_rows(blocks).
  std::span<S> residual(index blocks) {
    const index rows = residual_rows(blocks);
    return {resid_.data() + blocks * B_ * T_ * config_.dim,
            static_cast<std::size_t>(B_ * rows * config_.dim)};
  }

  /// Final norm and head at the last position of each sequence after every block; returns
  /// the mean cross-entropy against targets (B).
  S head_forward(std::span<const std::int32_t> targets) {
    const llama_config& c = config_;
    const index B = B_, C = c.dim, O = c.output_size;
    if (blocks_run_ != c.n_layers) {
      throw value_error(ncl::detail::concat("llama::head_forward: ", blocks_run_ < 0 ? index{0} : blocks_run_,
                                            " of ", c.n_layers, " blocks have run"));
    }
    if (static_cast<index>(targets.size()) != B) {
      throw shape_error(ncl::detail::concat("llama::forward: targets has ", targets.size(),
                                            " entries, expected B = ", B));
    }
    targets_.assign(targets.begin(), targets.end());
    const index rows = residual_rows(c.n_layers);
    const S* top = residual(c.n_layers).data();
    for (index b = 0; b < B; ++b) std::copy_n(top + (b * rows + rows - 1) * C, C, last_.data() + b * C);
    rmsnorm_forward(lastn_.data(), rstdf_.data(), last_.data(), w(norm_), B, C, static_cast<S>(c.norm_eps));
    linear_forward(logits_.data(), lastn_.data(), w(head_), B, C, O);  // (B, O)
    const S loss = cross_entropy_forward(probs_.data(), logits_.data(), targets_.data(), B, O);
    have_head_ = true;
    return loss;
  }

  /// The head's logits (B, output_size) of the last forward.
  std::span<const S> logits() const { return logits_; }

  /// Starts a backward pass at the stream after `blocks` blocks (those run by the forward):
  /// its gradient is set to zero.
  void begin_backward(index blocks) {
    check_level("llama::begin_backward", blocks, blocks_run_);
    grad_level_ = blocks;
    zero(dresid_);
  }

  /// d loss / d the residual stream at the backward's current level, laid out as residual().
  std::span<S> residual_grad() {
    if (grad_level_ < 0) throw value_error("llama::residual_grad: no backward pass in progress");
    const index rows = grad_level_ == 0 ? T_ : rows_[static_cast<std::size_t>(grad_level_ - 1)];
    return {dresid_.data(), static_cast<std::size_t>(B_ * rows * config_.dim)};
  }

  /// Adds the head's part, scaled by dloss, into the parameters and the stream's gradient.
  void head_backward(S dloss = S(1)) {
    const llama_config& c = config_;
    const index B = B_, C = c.dim, O = c.output_size;
    if (!have_head_ || grad_level_ != c.n_layers) {
      throw value_error("llama::head_backward: needs head_forward() and begin_backward(n_layers)");
    }
    std::fill(dlogits_.begin(), dlogits_.end(), S(0));
    cross_entropy_backward(dlogits_.data(), probs_.data(), targets_.data(), B, O, dloss);
    std::fill(dlastn_.begin(), dlastn_.end(), S(0));
    linear_backward(dlastn_.data(), g(head_), dlogits_.data(), lastn_.data(), w(head_), B, C, O);
    std::fill(dlast_.begin(), dlast_.end(), S(0));
    rmsnorm_backward(dlast_.data(), g(norm_), dlastn_.data(), last_.data(), w(norm_), rstdf_.data(), B, C);
    const index rows = residual_rows(c.n_layers);
    for (index b = 0; b < B; ++b) {
      S* d = dresid_.data() + (b * rows + rows - 1) * C;
      for (index i = 0; i < C; ++i) d[i] += dlast_[static_cast<std::size_t>(b * C + i)];
    }
  }

  /// Back through block l: residual_grad() goes from the block's output to its input.
  void backward_block(index l) {
    const llama_config& c = config_;
    const index B = B_, T = T_;
    if (grad_level_ != l + 1 || l < 0) {
      throw value_error(ncl::detail::concat("llama::backward_block: block ", l,
                                            " is not next; the backward is at level ", grad_level_));
    }
    const index N = B * T, C = c.dim, F = c.ffn_dim, H = c.n_heads, D = c.head_dim();
    const index QKV = (H + 2 * c.n_kv_heads) * D;
    const auto& ids = layers_[static_cast<std::size_t>(l)];
    const index Tq = rows_[static_cast<std::size_t>(l)], R = B * Tq;
    const S* x = resid_.data() + l * N * C;
    const S* xn1 = xn1_.data() + l * N * C;
    const S* qkv = qkv_.data() + l * N * QKV;
    const S* att = att_.data() + l * B * H * T * T;
    const S* y = y_.data() + l * N * H * D;
    const S* mid = mid_.data() + l * N * C;
    const S* xn2 = xn2_.data() + l * N * C;
    const S* gu = gu_.data() + l * N * 2 * F;
    const S* h = h_.data() + l * N * F;
    // feed-forward: out = mid + down(swiglu(gate_up(norm(mid)))); dresid holds d out (R, C)
    zero(dh_);
    linear_backward(dh_.data(), g(ids.down), dresid_.data(), h, w(ids.down), R, F, C);
    zero(dgu_);
    swiglu_backward(dgu_.data(), dh_.data(), gu, R, F);
    zero(dxn_);
    linear_backward(dxn_.data(), g(ids.gate), dgu_.data(), xn2, w(ids.gate), R, C, 2 * F);
    rmsnorm_backward(dresid_.data(), g(ids.ffn_norm), dxn_.data(), mid, w(ids.ffn_norm),
                     rstd2_.data() + l * N, R, C);
    // attention: mid = x + o(attention(rope(qkv(norm(x))))); dresid holds d mid (R, C)
    zero(dy_);
    linear_backward(dy_.data(), g(ids.o), dresid_.data(), y, w(ids.o), R, H * D, C);
    zero(dqkv_rot_);
    attention_backward(dqkv_rot_.data(), dy_.data(), qkv, att,
                       attention_shape{B, T, H, c.n_kv_heads, D, Tq});
    zero(dqkv_);
    rope_backward(dqkv_.data(), dqkv_rot_.data(), rope_, N, T, H + c.n_kv_heads, QKV);
    const index v_begin = (H + c.n_kv_heads) * D;
    for (index n = 0; n < N; ++n) {
      std::copy_n(dqkv_rot_.data() + n * QKV + v_begin, QKV - v_begin, dqkv_.data() + n * QKV + v_begin);
    }
    zero(dxn_);
    linear_backward(dxn_.data(), g(ids.q), dqkv_.data(), xn1, w(ids.q), N, C, QKV);
    // d x (N, C) = the residual's d mid at the query rows + the attention norm's part
    zero(dnext_);
    add_query_rows_backward(dnext_.data(), dresid_.data(), B, T, Tq, C);
    rmsnorm_backward(dnext_.data(), g(ids.attn_norm), dxn_.data(), x, w(ids.attn_norm),
                     rstd1_.data() + l * N, N, C);
    std::swap(dresid_, dnext_);
    grad_level_ = l;
  }

  /// Adds the stream's gradient at level 0 into the embedding rows of the batch's tokens.
  void embed_backward() {
    if (grad_level_ != 0) {
      throw value_error(ncl::detail::concat("llama::embed_backward: the backward is at level ",
                                            grad_level_, ", not 0"));
    }
    embedding_backward(g(embed_), dresid_.data(), tokens_.data(), B_ * T_, config_.dim);
    if (config_.sparse_embedding) {
      for (std::int32_t token : tokens_) params_.touch_row(embed_, static_cast<std::size_t>(token));
    }
    grad_level_ = -1;
  }

 private:
  S* w(std::size_t p) { return params_.value(p).data(); }
  S* g(std::size_t p) { return params_.grad(p).data(); }
  static void zero(buffer<S>& v) { std::fill(v.begin(), v.end(), S(0)); }
  static void check_level(const char* op, index blocks, index run) {
    if (run < 0 || blocks < 0 || blocks > run) {
      throw value_error(ncl::detail::concat(op, ": level ", blocks, " is outside [0, ",
                                            run < 0 ? index{0} : run, "], the blocks run"));
    }
  }
  // out (B Tq, C) += x at the last Tq positions of each sequence, x (B T, C).
  static void add_query_rows(S* out, const S* x, index B, index T, index Tq, index C) {
    for (index b = 0; b < B; ++b) {
      const S* src = x + (b * T + T - Tq) * C;
      S* dst = out + b * Tq * C;
      for (index i = 0; i < Tq * C; ++i) dst[i] += src[i];
    }
  }
  // dx (B T, C) += dout (B Tq, C) at the last Tq positions of each sequence.
  static void add_query_rows_backward(S* dx, const S* dout, index B, index T, index Tq, index C) {
    for (index b = 0; b < B; ++b) {
      const S* src = dout + b * Tq * C;
      S* dst = dx + (b * T + T - Tq) * C;
      for (index i = 0; i < Tq * C; ++i) dst[i] += src[i];
    }
  }

  // The fused GEMMs need q|k|v and gate|up back to back in the parameter buffer.
  void check_fused_layout() const {
    for (const auto& ids : layers_) {
      const auto& q = params_.info(ids.q);
      const auto& k = params_.info(ids.k);
      const auto& v = params_.info(ids.v);
      const auto& gate = params_.info(ids.gate);
      const auto& up = params_.info(ids.up);
      if (q.offset + q.size != k.offset || k.offset + k.size != v.offset ||
          gate.offset + gate.size != up.offset) {
        throw value_error("llama: q/k/v or gate/up projections are not contiguous in the parameter set");
      }
    }
  }

  void resize(index B, index T) {
    check_fused_layout();
    const llama_config& c = config_;
    if (B == B_ && T == T_) return;
    B_ = B;
    T_ = T;
    const index L = c.n_layers, N = B * T, C = c.dim, F = c.ffn_dim, H = c.n_heads;
    const index D = c.head_dim(), QKV = (H + 2 * c.n_kv_heads) * D, O = c.output_size;
    auto size = [](buffer<S>& v, index n) { v.assign(static_cast<std::size_t>(n), S(0)); };
    size(resid_, (L + 1) * N * C);
    size(xn1_, L * N * C);
    size(rstd1_, L * N);
    size(qkv_, L * N * QKV);
    size(att_, L * B * H * T * T);
    size(y_, L * N * H * D);
    size(mid_, L * N * C);
    size(xn2_, L * N * C);
    size(rstd2_, L * N);
    size(gu_, L * N * 2 * F);
    size(h_, L * N * F);
    size(last_, B * C);
    size(lastn_, B * C);
    size(dlast_, B * C);
    rows_.assign(static_cast<std::size_t>(L), 0);
    size(rstdf_, B);
    size(logits_, B * O);
    size(probs_, B * O);
    size(dlogits_, B * O);
    size(dlastn_, B * C);
    size(dresid_, N * C);
    size(dnext_, N * C);
    size(dh_, N * F);
    size(dgu_, N * 2 * F);
    size(dxn_, N * C);
    size(dy_, N * H * D);
    size(dqkv_rot_, N * QKV);
    size(dqkv_, N * QKV);
  }

  llama_config config_;
  params_type& params_;
  rope_table<S> rope_;
  std::size_t embed_ = 0, norm_ = 0, head_ = 0;
  std::vector<llama_layer_ids> layers_;

  // run state of the last forward (per layer, layer-major), then backward scratch
  index B_ = 0, T_ = 0;
  index blocks_run_ = -1;   // blocks of the current forward; -1: none since the last embed
  index grad_level_ = -1;   // the backward's level (residual_grad is d resid after it); -1: none
  bool have_head_ = false;
  std::vector<index> rows_;  // query positions per sequence of each block run
  std::vector<std::int32_t> tokens_, targets_;
  buffer<S> resid_, xn1_, rstd1_, qkv_, att_, y_, mid_, xn2_, rstd2_, gu_, h_;
  buffer<S> last_, lastn_, rstdf_, logits_, probs_;
  buffer<S> dlogits_, dlast_, dlastn_, dresid_, dnext_, dh_, dgu_, dxn_, dy_, dqkv_rot_, dqkv_;
};

}  // namespace ncl::nn
