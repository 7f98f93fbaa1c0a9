// ncl's experiment harness: what every experiment binary of shared/EXPERIMENTS.md shares.
//
//   cli.hpp      the common flags (--seed --out --epochs --threads --quick --model --save
//                --load --eval --batch --lr --tokenizer), on CLI11; usage errors exit 2
//   data.hpp     examples from templates, exact held-out fractions, train.tsv/test.tsv written
//                and read (every line checked, errors "FILE:LINE:1: error: ..."), sentences
//                tokenized into left-padded batches
//   models.hpp   computer-value, computer-pointer and transformer behind one interface;
//                checkpoints with the model's configuration in their metadata
//   trainer.hpp  the loop: the same batches for every model, AdamW, warm-up + cosine,
//                clipping, NaN/Inf stop, a test evaluation per epoch, the progress line
//   report.hpp   summary.json, curves.csv, SVG figures, the --eval JSON, guarded_main
//
// A sentence experiment describes its data and library in a sentence_task and hands it to
// run_sentence_experiment, which does the rest: the --load/--eval path, the data files, the
// models, training, the results and the checkpoints. ncl-arith's main is the example.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ncl/nn/computer.hpp>

#include "cli.hpp"
#include "data.hpp"
#include "models.hpp"
#include "report.hpp"
#include "trainer.hpp"

namespace ncl_experiment {

/// The transformer's size, shared by the three sentence models.
struct sentence_model_options {
  std::int64_t dim = 128, layers = 2, heads = 4, kv_heads = 2, after_block = 1;
};

inline void add_model_options(CLI::App& app, sentence_model_options& o) {
  app.add_option("--dim", o.dim, "the transformer's width")->capture_default_str();
  app.add_option("--layers", o.layers, "transformer blocks")->capture_default_str();
  app.add_option("--heads", o.heads, "attention heads")->capture_default_str();
  app.add_option("--kv-heads", o.kv_heads, "key/value heads (grouped-query attention)")->capture_default_str();
  app.add_option("--after-block", o.after_block, "the computer reads the stream after this block")
      ->capture_default_str();
}

/// What a sentence experiment supplies.
struct sentence_task {
  std::string name;                       ///< "arith": summary.json's experiment, checkpoints' ncl.experiment
  std::int64_t n = 0;                     ///< answers (and numbers in inputs) in [0, n)
  std::vector<example> train, test;       ///< fixed before any model is built
  json setting = json::object();          ///< summary rows' setting ({"split": "random"})
  std::string tag_key;                    ///< per-tag rows carry setting[tag_key] = the tag ("op")
  json config = json::object();           ///< the experiment's own settings, for summary.json
  /// Settings a checkpoint must carry to be rebuilt (written as metadata, read back on --load).
  std::map<std::string, std::string> metadata;
  /// The computer for a model, from the settings in `metadata` (a fresh run's, or a loaded
  /// checkpoint's): the library and the computer_config (steps, registers, ...).
  std::function<std::pair<std::shared_ptr<const ncl::library::program_library>, ncl::nn::computer_config>(
      const std::map<std::string, std::string>& metadata)>
      computer;
  std::string title;                      ///< figure titles
};

namespace detail {

// The seed of a model's initial weights: the run's seed and the model's name (FNV-1a).
inline std::uint64_t model_seed(std::uint64_t seed, const std::string& name) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return seed * 1000003ull + h;
}

inline model_spec spec_for(const std::string& model, const ncl::nn::llama_config& llama, const sentence_task& task,
                           const std::map<std::string, std::string>& metadata, const sentence_encoder& enc) {
  model_spec spec{model, llama, {}, nullptr};
  if (model != "transformer") {
    auto [lib, cc] = task.computer(metadata);
    spec.library = lib;
    spec.computer = cc;
    if (argument_heads(model) != ncl::nn::argument_head::value) {  // they read the sentence's numbers
      spec.computer.token_values = ncl::nn::token_number_values(
          static_cast<std::size_t>(enc.vocab_size()), task.n,
          [&](std::int32_t id) { return enc.tokenizer().decode(std::span<const ncl::token_id>(&id, 1)); });
    }
  }
  return spec;
}

// --load FILE --eval FILE: rebuild the model from the checkpoint, answer every line, print JSON.
// The --eval file is read first: a bad one is reported before the model is built.
inline int load_and_eval(const common_options& common, const sentence_task& task, const sentence_encoder& enc) {
  const auto examples = read_tsv(common.eval, {.answer_count = 1, .answer_limit = task.n, .number_limit = task.n});
  const auto file = ncl::io::safetensors::load(common.load);
  const std::string experiment = metadata_value(file, "ncl.experiment");
  if (experiment != task.name) {
    throw ncl::io_error(ncl::detail::concat(common.load, ": a checkpoint of the experiment '", experiment, "', not '",
                                            task.name, "'"));
  }
  const std::string model = metadata_value(file, "ncl.model");
  const auto llama = llama_config_of(file);
  if (llama.vocab_size != enc.vocab_size()) {
    throw ncl::io_error(ncl::detail::concat(common.load, ": saved with a tokenizer of ", llama.vocab_size,
                                            " tokens; this one (", enc.name(), ") has ", enc.vocab_size()));
  }
  if (llama.output_size != task.n && model == "transformer") {
    throw ncl::io_error(ncl::detail::concat(common.load, ": answers ", llama.output_size, " values, the experiment ", task.n));
  }
  std::map<std::string, std::string> settings;
  for (const auto& [key, value] : task.metadata) settings[key] = metadata_value(file, key);
  if (!known_model(model)) {
    throw ncl::io_error(ncl::detail::concat(common.load, ": unknown model '", model, "'"));
  }
  auto m = make_model(spec_for(model, llama, task, settings, enc));
  load_model_parameters(file, *m);
  const auto set = tokenize(enc, examples, llama.max_seq_len, common.eval);
  std::printf("%s\n", eval_json(*m, examples, set).dump().c_str());
  return 0;
}

}  // namespace detail

/// The whole run of a sentence experiment after its flags are parsed and its data made:
/// train.tsv/test.tsv, the models on the same batches, curves.csv, the figures,
/// summary.json and, with --save, the checkpoints. Returns the exit status.
inline int run_sentence_experiment(common_options& common, const sentence_model_options& mo, const sentence_task& task,
                                   const train_options& training_defaults) {
  const auto start = std::chrono::steady_clock::now();
  const sentence_encoder enc(common.tokenizer);
  if (!common.load.empty()) return detail::load_and_eval(common, task, enc);
  if (task.train.empty() || task.test.empty()) throw ncl::value_error(task.name + ": the training or the test set is empty");

  ncl::nn::llama_config llama;
  llama.dim = mo.dim;
  llama.n_layers = mo.layers;
  llama.n_heads = mo.heads;
  llama.n_kv_heads = mo.kv_heads;
  llama.ffn_dim = (8 * mo.dim / 3 + 31) / 32 * 32;
  llama.vocab_size = enc.vocab_size();
  llama.output_size = task.n;
  llama.max_seq_len = longest(enc, {&task.train, &task.test});
  try {
    llama.validate();
  } catch (const ncl::error& e) {
    throw usage_error(e.what());
  }
  if (mo.after_block < 1 || mo.after_block > mo.layers) {
    throw usage_error(ncl::detail::concat("--after-block ", mo.after_block, " is outside [1, --layers = ", mo.layers, "]"));
  }
  const auto train_set = tokenize(enc, task.train, llama.max_seq_len, "train.tsv");
  const auto test_set = tokenize(enc, task.test, llama.max_seq_len, "test.tsv");

  const std::filesystem::path out = common.out;
  if (common.data_only) {
    make_out_dir(out);
    write_tsv(out / "train.tsv", task.train);
    write_tsv(out / "test.tsv", task.test);
    std::printf("wrote %s/train.tsv (%zu sentences) and test.tsv (%zu)\n", out.string().c_str(), task.train.size(),
                task.test.size());
    return 0;
  }

  std::vector<std::unique_ptr<sentence_model>> models;
  for (const auto& name : common.models) {
    auto spec = detail::spec_for(name, llama, task, task.metadata, enc);
    spec.computer.after_block = mo.after_block;
    models.push_back(make_model(spec));
    // Each model's weights are drawn by the seed and its name alone, so --model X trains the
    // same X as the run of all models: norms 1, matrices N(0, 0.02^2).
    ncl::rng init(detail::model_seed(common.seed, name));
    models.back()->init(init);
  }

  // With MPI, every rank trains and only rank 0 writes and prints.
  const auto& comm = ncl::train::communicator::world();
  if (comm.root()) {
    make_out_dir(out);
    write_tsv(out / "train.tsv", task.train);
    write_tsv(out / "test.tsv", task.test);
    std::printf("%s: %zu training and %zu test sentences, T = %lld tokens (%s); models:", task.name.c_str(),
                task.train.size(), task.test.size(), static_cast<long long>(llama.max_seq_len), enc.name().c_str());
    for (const auto& m : models) std::printf(" %s", m->name().c_str());
    std::printf("; %d threads", threads_in_use(common));
    if (comm.size() > 1) std::printf(" x %d processes", comm.size());
    std::printf("; %d shards a batch\n", common.shards);
    std::fflush(stdout);
  }

  train_options o = training_defaults;
  o.epochs = common.epochs;
  o.batch = common.batch;
  o.lr = common.lr;
  o.seed = common.seed;
  o.shards = common.shards;
  o.checkpoint = common.checkpoint;
  o.checkpoint_every = common.checkpoint_every;
  o.progress = o.progress && comm.root();
  const auto results = train_models(models, train_set, test_set, o);
  if (!comm.root()) return 0;

  std::vector<summary_row> rows;
  for (const auto& r : results) {
    for (auto& row : rows_of(r, test_set.tags, task.setting, task.tag_key)) rows.push_back(std::move(row));
  }
  ncl::write_file_atomic(out / "curves.csv", curves_csv(results, test_set.tags));
  write_figures(out, "", task.title, results);
  json config = task.config;
  config["models"] = common.models;
  config["epochs"] = common.epochs;
  config["batch"] = common.batch;
  config["lr"] = common.lr;
  config["threads"] = threads_in_use(common);
  config["quick"] = common.quick;
  config["shards"] = common.shards;
  config["processes"] = comm.size();
  config["dim"] = mo.dim;
  config["layers"] = mo.layers;
  config["heads"] = mo.heads;
  config["kv_heads"] = mo.kv_heads;
  config["after_block"] = mo.after_block;
  config["tokenizer"] = enc.name();
  config["train_examples"] = task.train.size();
  config["test_examples"] = task.test.size();
  config["seq_len"] = llama.max_seq_len;
  if (!common.save.empty()) {
    for (auto& m : models) {
      auto meta = task.metadata;
      meta["ncl.experiment"] = task.name;
      meta["ncl.seed"] = std::to_string(common.seed);
      const std::string path = common.save + m->name() + ".safetensors";
      save_model(path, *m, meta);
      std::printf("wrote %s\n", path.c_str());
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_summary(out, task.name, common.seed, config, rows, seconds);
  std::printf("\n%-18s %10s %10s %14s\n", "model", "test acc", "epoch>=99%", "train seconds");
  for (const auto& r : results) {
    const auto e = r.epoch_reached();
    std::printf("%-18s %10.4f %10s %14.1f\n", r.name.c_str(), r.epochs.back().test_accuracy,
                e < 0 ? "-" : std::to_string(e).c_str(), r.epochs.back().train_seconds);
  }
  std::printf("wrote %s/summary.json, curves.csv, accuracy.svg, loss.svg, train.tsv, test.tsv (%.0f s)\n",
              out.string().c_str(), seconds);
  return 0;
}

}  // namespace ncl_experiment
