// The models the sentence experiments compare, behind one interface, trained on the same
// batches by the trainer (trainer.hpp):
//   computer-value    the LLaMA with the computer after block k, the paper's value heads
//   computer-value-masked  the value heads over the sentence's numbers only (ours: the
//                     paper's heads can hand the ALU any split of the answer instead)
//   computer-pointer  the same with pointer heads (ours)
//   transformer       the same LLaMA with an answer head over the n values and no computer
// and their checkpoints: safetensors with Hugging Face names, the model's name and whole
// configuration in the metadata, so --load rebuilds the model from the file alone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <ncl/core/error.hpp>
#include <ncl/io/safetensors.hpp>
#include <ncl/library/linker.hpp>
#include <ncl/nn/computer.hpp>
#include <ncl/nn/llama.hpp>
#include <ncl/train/checkpoint.hpp>

#include "data.hpp"

namespace ncl_experiment {

/// A model that reads a batch of sentences and answers one of n values at the last token.
class sentence_model {
 public:
  virtual ~sentence_model() = default;
  virtual const std::string& name() const = 0;
  virtual ncl::train::parameter_set<float>& params() = 0;
  /// Norm weights 1, every matrix N(0, 0.02^2).
  virtual void init(ncl::rng& random) = 0;
  /// The mean loss of the batch against its answers; keeps what backward and predict need.
  virtual double forward(const batch& b) = 0;
  virtual void backward() = 0;
  /// out[i] = the most likely answer of row i of the last forward.
  virtual void predict(std::span<std::int64_t> out) const = 0;
  /// Argument registers the model writes before it runs the machine (0 without a computer).
  virtual std::size_t arguments() const { return 0; }
  /// out[r] = the most likely value of argument register i for row r of the last forward.
  virtual void predict_argument(std::size_t /*i*/, std::span<std::int64_t> /*out*/) const {}
  /// Every setting that rebuilds the model (written to the checkpoint's metadata).
  virtual std::map<std::string, std::string> metadata() const = 0;
};

/// What builds a sentence model: the transformer's configuration, and for the computer
/// models the computer's and the library.
struct model_spec {
  std::string name;  ///< computer-value, computer-value-masked, computer-pointer or transformer
  ncl::nn::llama_config llama;
  ncl::nn::computer_config computer;          ///< for computer-*; arguments set from the name
  std::shared_ptr<const ncl::library::program_library> library;  ///< for computer-*
};

namespace detail {

inline std::int64_t argmax(const float* row, index n) {
  return static_cast<std::int64_t>(std::max_element(row, row + n) - row);
}

inline std::map<std::string, std::string> llama_metadata(const std::string& name, const ncl::nn::llama_config& c) {
  return {{"ncl.model", name},
          {"ncl.dim", std::to_string(c.dim)},
          {"ncl.n_layers", std::to_string(c.n_layers)},
          {"ncl.n_heads", std::to_string(c.n_heads)},
          {"ncl.n_kv_heads", std::to_string(c.n_kv_heads)},
          {"ncl.ffn_dim", std::to_string(c.ffn_dim)},
          {"ncl.vocab_size", std::to_string(c.vocab_size)},
          {"ncl.output_size", std::to_string(c.output_size)},
          {"ncl.max_seq_len", std::to_string(c.max_seq_len)}};
}

// The computer models, by name, and their argument heads.
inline const std::map<std::string, ncl::nn::argument_head>& computer_models() {
  static const std::map<std::string, ncl::nn::argument_head> models{
      {"computer-value", ncl::nn::argument_head::value},
      {"computer-value-masked", ncl::nn::argument_head::sentence_value},
      {"computer-pointer", ncl::nn::argument_head::pointer}};
  return models;
}

}  // namespace detail

/// The argument heads of the computer model `name`; value_error for any other name.
inline ncl::nn::argument_head argument_heads(const std::string& name) {
  const auto it = detail::computer_models().find(name);
  if (it == detail::computer_models().end()) throw ncl::value_error("not a computer model: '" + name + "'");
  return it->second;
}

class transformer_model final : public sentence_model {
 public:
  explicit transformer_model(const model_spec& spec) : name_(spec.name), model_(spec.llama, params_) {}
  const std::string& name() const override { return name_; }
  ncl::train::parameter_set<float>& params() override { return params_; }
  void init(ncl::rng& random) override { model_.init(random); }
  ncl::nn::llama<float>& llama() { return model_; }
  double forward(const batch& b) override {
    targets_.assign(b.answers.begin(), b.answers.end());
    return model_.forward(b.tokens, targets_, b.B, b.T);
  }
  void backward() override { model_.backward(); }
  void predict(std::span<std::int64_t> out) const override {
    const index n = model_.config().output_size;
    const auto logits = model_.logits();
    for (std::size_t b = 0; b < out.size(); ++b) out[b] = detail::argmax(logits.data() + static_cast<index>(b) * n, n);
  }
  std::map<std::string, std::string> metadata() const override {
    return detail::llama_metadata(name_, model_.config());
  }

 private:
  std::string name_;
  ncl::train::parameter_set<float> params_;
  ncl::nn::llama<float> model_;
  std::vector<std::int32_t> targets_;
};

class computer_model final : public sentence_model {
 public:
  explicit computer_model(const model_spec& spec)
      : name_(spec.name), model_(spec.llama, with_heads(spec), *spec.library, params_) {}
  const std::string& name() const override { return name_; }
  ncl::train::parameter_set<float>& params() override { return params_; }
  void init(ncl::rng& random) override { model_.init(random); }
  ncl::nn::llama_computer<float>& computer() { return model_; }
  double forward(const batch& b) override { return model_.forward(b.tokens, {}, b.answers, b.B, b.T); }
  void backward() override { model_.backward(); }
  void predict(std::span<std::int64_t> out) const override {
    const auto& answer = model_.answer();
    for (std::size_t b = 0; b < out.size(); ++b) {
      out[b] = detail::argmax(answer.row(static_cast<index>(b)).data(), answer.cols());
    }
  }
  std::size_t arguments() const override { return model_.config().argument_registers.size(); }
  void predict_argument(std::size_t i, std::span<std::int64_t> out) const override {
    const auto& arg = model_.argument(i);
    for (std::size_t b = 0; b < out.size(); ++b) {
      out[b] = detail::argmax(arg.row(static_cast<index>(b)).data(), arg.cols());
    }
  }
  std::map<std::string, std::string> metadata() const override {
    auto m = detail::llama_metadata(name_, model_.transformer().config());
    const auto& c = model_.config();
    std::string entries;
    for (const auto& e : model_.library().entries) entries += (entries.empty() ? "" : ",") + e.name;
    m["ncl.computer.after_block"] = std::to_string(c.after_block);
    m["ncl.computer.steps"] = std::to_string(c.steps);
    m["ncl.computer.n"] = std::to_string(model_.library().shape.n);
    m["ncl.computer.library"] = entries;
    return m;
  }

 private:
  static ncl::nn::computer_config with_heads(const model_spec& spec) {
    if (!spec.library) throw ncl::value_error("computer_model: no library given for " + spec.name);
    auto c = spec.computer;
    c.arguments = argument_heads(spec.name);
    if (c.arguments == ncl::nn::argument_head::value) {
      c.token_values.clear();
    } else if (c.token_values.empty()) {
      throw ncl::value_error("computer_model: " + spec.name + " needs token_values");
    }
    return c;
  }
  // Declared before model_, which adds its parameters to it.
  std::string name_;
  ncl::train::parameter_set<float> params_;
  ncl::nn::llama_computer<float> model_;
};

/// Whether make_model builds a model of this name.
inline bool known_model(const std::string& name) {
  return name == "transformer" || detail::computer_models().contains(name);
}

/// Builds the model `spec.name` names.
inline std::unique_ptr<sentence_model> make_model(const model_spec& spec) {
  if (!known_model(spec.name)) throw ncl::value_error("make_model: unknown model '" + spec.name + "'");
  if (spec.name == "transformer") return std::make_unique<transformer_model>(spec);
  return std::make_unique<computer_model>(spec);
}

// ---- checkpoints --------------------------------------------------------------------------

/// Writes the model's parameters to `path` (atomically) with its metadata and the
/// experiment's (name, seed and its own settings).
inline void save_model(const std::string& path, sentence_model& model,
                       const std::map<std::string, std::string>& experiment_metadata) {
  std::vector<ncl::io::tensor_view> views;
  auto& params = model.params();
  for (std::size_t p = 0; p < params.count(); ++p) {
    const auto& in = params.info(p);
    views.push_back(ncl::io::make_view<float>(in.name, std::vector<std::int64_t>(in.shape.begin(), in.shape.end()),
                                              std::span<const float>(params.value(p))));
  }
  auto meta = model.metadata();
  meta["format"] = "ncl";
  for (const auto& [k, v] : experiment_metadata) meta[k] = v;
  ncl::io::write_safetensors(path, views, meta);
}

/// A checkpoint's metadata value, or an io_error naming the file and the key.
inline std::string metadata_value(const ncl::io::safetensors& file, const std::string& key) {
  const auto it = file.metadata().find(key);
  if (it == file.metadata().end()) {
    throw ncl::io_error(ncl::detail::concat(file.source(), ": not a checkpoint of an ncl experiment (no metadata '", key, "')"));
  }
  return it->second;
}

inline std::int64_t metadata_integer(const ncl::io::safetensors& file, const std::string& key) {
  const std::string v = metadata_value(file, key);
  std::int64_t x = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || ptr != v.data() + v.size() || x < 0 || x > (std::int64_t{1} << 40)) {
    throw ncl::io_error(ncl::detail::concat(file.source(), ": metadata ", key, " = '", v, "' is not a size"));
  }
  return x;
}

/// The LLaMA configuration a checkpoint was saved with.
inline ncl::nn::llama_config llama_config_of(const ncl::io::safetensors& file) {
  ncl::nn::llama_config c;
  c.dim = metadata_integer(file, "ncl.dim");
  c.n_layers = metadata_integer(file, "ncl.n_layers");
  c.n_heads = metadata_integer(file, "ncl.n_heads");
  c.n_kv_heads = metadata_integer(file, "ncl.n_kv_heads");
  c.ffn_dim = metadata_integer(file, "ncl.ffn_dim");
  c.vocab_size = metadata_integer(file, "ncl.vocab_size");
  c.output_size = metadata_integer(file, "ncl.output_size");
  c.max_seq_len = metadata_integer(file, "ncl.max_seq_len");
  try {
    c.validate();
  } catch (const ncl::error& e) {
    throw ncl::io_error(ncl::detail::concat(file.source(), ": ", e.what()));
  }
  return c;
}

/// Loads every parameter of `model` from `file` (shapes must match the configuration).
inline void load_model_parameters(const ncl::io::safetensors& file, sentence_model& model) {
  try {
    ncl::train::load_parameters(file, model.params());
  } catch (const ncl::error& e) {
    throw ncl::io_error(ncl::detail::concat(file.source(), ": does not fit the model '", model.name(), "': ", e.what()));
  }
}

}  // namespace ncl_experiment
