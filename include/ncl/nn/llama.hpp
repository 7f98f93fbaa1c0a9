// A LLaMA-3-style decoder (Dubey et al. 2024; Touvron et al. 2023) with a hand-written backward:
// token embedding, n_layers pre-norm blocks (RMSNorm, causal grouped-query attention with RoPE,
// residual, RMSNorm, SwiGLU feed-forward, residual), a final RMSNorm and a linear head read at
// the last position of each sequence (the paper supervises the answer there), trained with a
// mean cross-entropy loss.
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
  S forward(std::span<const std::int32_t> tokens, std::span<const std::int32_t> targets, index B,
            index T) {
    const llama_config& c = config_;
    if (B <= 0 || T <= 0 || T > c.max_seq_len) {
      throw value_error(ncl::detail::concat("llama::forward: need B > 0 and 0 < T <= max_seq_len ",
                                            c.max_seq_len, ", got B ", B, ", T ", T));
    }
    if (static_cast<index>(tokens.size()) != B * T || static_cast<index>(targets.size()) != B) {
      throw shape_error(ncl::detail::concat("llama::forward: tokens has ", tokens.size(),
                                            " entries, expected B*T = ", B * T, "; targets has ",
                                            targets.size(), ", expected B = ", B));
    }
    have_forward_ = false;
    resize(B, T);
    tokens_.assign(tokens.begin(), tokens.end());
    targets_.assign(targets.begin(), targets.end());
    const index N = B * T, C = c.dim, F = c.ffn_dim, H = c.n_heads, D = c.head_dim();
    const index QKV = (H + 2 * c.n_kv_heads) * D, O = c.output_size;
    const S eps = static_cast<S>(c.norm_eps);

    embedding_forward(resid_.data(), tokens_.data(), w(embed_), N, C, c.vocab_size);  // (N, C)
    for (index l = 0; l < c.n_layers; ++l) {
      const auto& ids = layers_[static_cast<std::size_t>(l)];
      // The loss reads the last position only, so after the final layer's attention (whose
      // keys and values need every position) only the B last-position rows are computed.
      const index Tq = (l == c.n_layers - 1) ? 1 : T, R = B * Tq;  // rows after attention
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
    }
    // the final layer's output: (B, C), one row per sequence's last position
    const S* last = resid_.data() + c.n_layers * N * C;
    rmsnorm_forward(lastn_.data(), rstdf_.data(), last, w(norm_), B, C, eps);
    linear_forward(logits_.data(), lastn_.data(), w(head_), B, C, O);  // (B, O)
    const S loss = cross_entropy_forward(probs_.data(), logits_.data(), targets_.data(), B, O);
    have_forward_ = true;
    return loss;
  }

  /// The head's logits (B, output_size) of the last forward.
  std::span<const S> logits() const { return logits_; }

  /// Adds d loss / d parameter into params().grads() (zero them first) for the last forward,
  /// scaled by dloss; marks the embedding rows it touches.
  void backward(S dloss = S(1)) {
    const llama_config& c = config_;
    const index B = B_, T = T_;
    if (!have_forward_) throw value_error("llama::backward: no successful forward to differentiate");
    const index N = B * T, C = c.dim, F = c.ffn_dim, H = c.n_heads, D = c.head_dim();
    const index QKV = (H + 2 * c.n_kv_heads) * D, O = c.output_size;

    std::fill(dlogits_.begin(), dlogits_.end(), S(0));
    cross_entropy_backward(dlogits_.data(), probs_.data(), targets_.data(), B, O, dloss);
    std::fill(dlastn_.begin(), dlastn_.end(), S(0));
    linear_backward(dlastn_.data(), g(head_), dlogits_.data(), lastn_.data(), w(head_), B, C, O);
    zero(dresid_);  // d loss / d the current layer's output, (R, C)
    rmsnorm_backward(dresid_.data(), g(norm_), dlastn_.data(), resid_.data() + c.n_layers * N * C,
                     w(norm_), rstdf_.data(), B, C);
    for (index l = c.n_layers - 1; l >= 0; --l) {
      const auto& ids = layers_[static_cast<std::size_t>(l)];
      const index Tq = (l == c.n_layers - 1) ? 1 : T, R = B * Tq;
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
    }
    embedding_backward(g(embed_), dresid_.data(), tokens_.data(), N, C);
    if (config_.sparse_embedding) {
      for (std::int32_t token : tokens_) params_.touch_row(embed_, static_cast<std::size_t>(token));
    }
  }

 private:
  S* w(std::size_t p) { return params_.value(p).data(); }
  S* g(std::size_t p) { return params_.grad(p).data(); }
  static void zero(std::vector<S>& v) { std::fill(v.begin(), v.end(), S(0)); }
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
    auto size = [](std::vector<S>& v, index n) { v.assign(static_cast<std::size_t>(n), S(0)); };
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
    size(lastn_, B * C);
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
  bool have_forward_ = false;
  std::vector<std::int32_t> tokens_, targets_;
  std::vector<S> resid_, xn1_, rstd1_, qkv_, att_, y_, mid_, xn2_, rstd2_, gu_, h_;
  std::vector<S> lastn_, rstdf_, logits_, probs_;
  std::vector<S> dlogits_, dlastn_, dresid_, dnext_, dh_, dgu_, dxn_, dy_, dqkv_rot_, dqkv_;
};

}  // namespace ncl::nn
