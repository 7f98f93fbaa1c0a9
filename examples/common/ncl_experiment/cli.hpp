// The command line every experiment binary shares (shared/EXPERIMENTS.md), on CLI11:
// --seed --out --epochs --threads --quick --model --save --load --eval --help, plus the
// training knobs (--batch --lr) and whatever the experiment adds to the same CLI::App.
//
//   CLI::App app{"ncl-arith: ..."};
//   ncl_experiment::common_options common{.epochs = 10};
//   ncl_experiment::add_common_options(app, common, {"computer-value", "computer-pointer", "transformer"});
//   app.add_option("--split", split, "...");
//   if (int status = ncl_experiment::parse(app, argc, argv); status >= 0) return status;
//   ncl_experiment::check_common_options(common);   // throws usage_error (exit 2)
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include <ncl/core/error.hpp>
#include <ncl/train/data_parallel.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ncl_experiment {

/// A bad flag or flag value: a message naming it, exit status 2.
struct usage_error : ncl::error {
  using ncl::error::error;
};

struct common_options {
  std::uint64_t seed = 1;
  std::string out;                  ///< the experiment sets its default (results/<name>)
  std::int64_t epochs = 10;
  int threads = 0;                  ///< 0: every core
  bool quick = false;
  std::vector<std::string> models;  ///< empty: all of the experiment's models
  std::string save, load, eval;
  std::int64_t batch = 64;
  double lr = 2e-3;
  std::string tokenizer;            ///< empty: the cached LLaMA 3 tokenizer.json
  bool data_only = false;           ///< write train.tsv and test.tsv, train nothing
  int shards = 2;                   ///< a batch's parts, summed in a fixed tree (MPI ranks divide it)
  std::string checkpoint;           ///< the training-state file to resume from and save to
  std::int64_t checkpoint_every = 0;  ///< steps between training-state saves (0: each epoch)
  std::vector<std::string> known_models;  ///< filled by add_common_options
};

inline void add_common_options(CLI::App& app, common_options& o, std::vector<std::string> models) {
  o.known_models = std::move(models);
  std::string names;
  for (const auto& m : o.known_models) names += (names.empty() ? "" : ",") + m;
  app.add_option("--seed", o.seed, "draws the weights, the batches and, where a split is random, the split")
      ->capture_default_str();
  app.add_option("--out", o.out, "where everything is written (created if missing)")->capture_default_str();
  app.add_option("--epochs", o.epochs, "passes over train.tsv")->capture_default_str();
  app.add_option("--threads", o.threads, "worker threads (0: every core)")->capture_default_str();
  app.add_flag("--quick", o.quick, "a small budget (about a minute) on the same code path");
  app.add_option("--model", o.models, "models to train, comma-separated: " + names + " (default: all)")
      ->delimiter(',');
  app.add_option("--save", o.save, "after training, write each model to PREFIX<model>.safetensors");
  app.add_option("--load", o.load, "load one saved model (kind and configuration read from the file)");
  app.add_option("--eval", o.eval, "with --load: evaluate on FILE (INPUT<TAB>ANSWER lines), print JSON");
  app.add_option("--batch", o.batch, "examples per training step")->capture_default_str();
  app.add_option("--lr", o.lr, "peak learning rate (warm-up, then cosine decay to a tenth)")->capture_default_str();
  app.add_option("--shards", o.shards,
                 "a batch is computed in this many parts whose gradients are summed in a fixed order "
                 "(a power of two; the same bits for any thread count and for any MPI rank count dividing it)")
      ->capture_default_str();
  app.add_option("--checkpoint", o.checkpoint,
                 "the training-state file: saved atomically after every epoch (and every "
                 "--checkpoint-every steps); a run that finds it resumes from it, to the same bits");
  app.add_option("--checkpoint-every", o.checkpoint_every, "steps between training-state saves (0: each epoch only)")
      ->capture_default_str();
  app.add_flag("--data-only", o.data_only, "write train.tsv and test.tsv to --out and stop");
  app.add_option("--tokenizer", o.tokenizer,
                 "a tokenizer.json (default: the LLaMA 3 file cmake/fetch_tokenizer.sh caches; "
                 "$NCL_TOKENIZER overrides)");
}

/// Parses; returns -1 to go on, or the exit status: 0 after --help, 2 on a usage error (the
/// message and a hint on stderr).
inline int parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", app.help().c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s\nrun with --help for the options\n", app.get_name().c_str(), e.what());
    return 2;
  }
  return -1;
}

/// Checks the shared flags' values and applies --threads.
inline void check_common_options(common_options& o) {
  auto fail = [](const auto&... parts) { throw usage_error(ncl::detail::concat(parts...)); };
  if (o.epochs < 1) fail("--epochs must be >= 1, got ", o.epochs);
  if (o.threads < 0) fail("--threads must be >= 0, got ", o.threads);
  if (o.batch < 1) fail("--batch must be >= 1, got ", o.batch);
  if (!(o.lr > 0) || !(o.lr < 1e3)) fail("--lr must be a positive number, got ", o.lr);
  if (!o.eval.empty() && o.load.empty()) fail("--eval needs --load (the model to evaluate)");
  if (!o.load.empty() && o.eval.empty()) fail("--load needs --eval (the file to evaluate on)");
  if (o.data_only && !o.load.empty()) fail("--data-only and --load exclude each other");
  if (o.out.empty()) fail("--out must not be empty");
  if (o.shards < 1 || o.shards > 1024 || (o.shards & (o.shards - 1)) != 0) fail("--shards must be a power of two in [1, 1024], got ", o.shards);
  try {  // under mpirun, the ranks must divide the shards
    ncl::train::check_sharding(o.shards, ncl::train::communicator::world().size());
  } catch (const ncl::value_error& e) {
    fail(e.what());
  }
  if (o.checkpoint_every < 0) fail("--checkpoint-every must be >= 0, got ", o.checkpoint_every);
  if (o.checkpoint_every > 0 && o.checkpoint.empty()) fail("--checkpoint-every needs --checkpoint FILE");
  if (o.models.empty()) o.models = o.known_models;
  for (const auto& m : o.models) {
    bool known = false;
    for (const auto& k : o.known_models) known = known || k == m;
    if (!known) {
      std::string names;
      for (const auto& k : o.known_models) names += (names.empty() ? "" : ", ") + k;
      fail("--model: unknown model '", m, "' (expected ", names, ")");
    }
  }
  for (std::size_t i = 0; i < o.models.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (o.models[i] == o.models[j]) fail("--model: '", o.models[i], "' is listed twice");
    }
  }
  // A directory given as a file is refused by name here: the safetensors reader would try to
  // buffer the 2^63 - 1 bytes its stream claims (and report "out of memory", exit 1).
  for (const auto& [flag, path] : {std::pair<const char*, const std::string*>{"--load", &o.load},
                                   {"--checkpoint", &o.checkpoint}, {"--eval", &o.eval}}) {
    std::error_code ec;
    if (!path->empty() && std::filesystem::is_directory(*path, ec)) {
      throw ncl::io_error(ncl::detail::concat(*path, ": is a directory, not a file (", flag, ")"));
    }
  }
#if defined(_OPENMP)
  if (o.threads > 0) omp_set_num_threads(o.threads);
#endif
}

/// Threads the run uses (for the summary).
inline int threads_in_use(const common_options& o) {
#if defined(_OPENMP)
  return o.threads > 0 ? o.threads : omp_get_max_threads();
#else
  (void)o;
  return 1;
#endif
}

}  // namespace ncl_experiment
