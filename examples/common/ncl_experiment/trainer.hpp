// The training loop every sentence experiment shares: each step draws one batch from the
// shuffled training set and every model trains on it (forward, backward, AdamW with
// global-norm clipping, a warm-up + cosine schedule); a NaN or Inf loss stops the run with an
// error naming the model and the step. After each epoch (one pass over train.tsv) every model
// is evaluated on the whole test set, overall and per tag. A progress line shows the epoch,
// the step, each model's loss and running training accuracy, examples per second and the time
// left.
//
// Each step's batch is computed in `shards` parts whose gradients are summed along a fixed
// tree (ncl/train/data_parallel.hpp), so the result is the same bits for any thread count
// and for any number of MPI processes (`mpirun -np 2`): rank r computes its shards, the ranks
// exchange partial sums, every rank steps identically, and only rank 0 evaluates, prints and
// writes. With `checkpoint` set, the whole training state (weights, AdamW moments, the batch
// generator, the epoch's order, the records so far) is written there atomically every
// `checkpoint_every` steps and after every epoch, and a run that finds the file resumes from
// it to the same bits as a run never interrupted.
#pragma once

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <ncl/core/rng.hpp>
#include <ncl/io/safetensors.hpp>
#include <ncl/train/adamw.hpp>
#include <ncl/train/data_parallel.hpp>
#include <ncl/train/schedule.hpp>

#include "data.hpp"
#include "models.hpp"

namespace ncl_experiment {

struct train_options {
  std::int64_t epochs = 10;
  std::int64_t batch = 64;
  double lr = 2e-3;
  double min_lr_ratio = 0.1;       ///< the cosine ends at lr * this
  std::int64_t warmup_steps = 200; ///< at most a tenth of the run
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;
  std::uint64_t seed = 1;          ///< draws the batches
  double progress_seconds = 10;    ///< a progress line at most this often (and at each epoch's end)
  bool progress = true;
  int shards = 2;                  ///< a batch's parts (a power of two; MPI ranks must divide it)
  std::string checkpoint{};        ///< the training-state file: resume from it, save to it
  std::int64_t checkpoint_every = 0;  ///< steps between saves (0: after every epoch only)
};

/// One model's record after one epoch.
struct epoch_record {
  std::int64_t epoch = 0, step = 0;
  double loss = 0;            ///< mean training loss over the epoch
  double train_accuracy = 0;  ///< over the epoch's training batches, as the model answered them
  double test_accuracy = 0;
  std::vector<double> test_by_tag;  ///< in the order of the test set's tags
  double train_seconds = 0;         ///< cumulative: this model's forward, backward and step
};

struct model_result {
  std::string name;
  std::vector<epoch_record> epochs;
  /// First epoch whose test accuracy is >= threshold, or -1.
  std::int64_t epoch_reached(double threshold = 0.99) const {
    for (const auto& r : epochs) {
      if (r.test_accuracy >= threshold) return r.epoch;
    }
    return -1;
  }
  std::int64_t epoch_reached_tag(std::size_t tag, double threshold = 0.99) const {
    for (const auto& r : epochs) {
      if (r.test_by_tag.at(tag) >= threshold) return r.epoch;
    }
    return -1;
  }
};

/// Accuracy of a model on a set, overall and per tag; `predictions` gets every answer.
struct evaluation {
  double accuracy = 0;
  std::vector<double> by_tag;
  std::vector<std::int64_t> predictions;
  std::vector<std::vector<std::int64_t>> arguments;  ///< per argument register, its most likely value
};

inline evaluation evaluate(sentence_model& model, const token_set& set, index chunk = 512) {
  evaluation out;
  out.predictions.resize(static_cast<std::size_t>(set.count()));
  out.arguments.assign(model.arguments(), std::vector<std::int64_t>(static_cast<std::size_t>(set.count())));
  std::vector<double> right(set.tags.size(), 0), total(set.tags.size(), 0);
  batch b;
  std::vector<index> rows;
  for (index start = 0; start < set.count(); start += chunk) {
    rows.clear();
    for (index r = start; r < std::min(set.count(), start + chunk); ++r) rows.push_back(r);
    gather(set, rows, b);
    model.forward(b);
    model.predict(std::span<std::int64_t>(out.predictions.data() + start, rows.size()));
    for (std::size_t i = 0; i < out.arguments.size(); ++i) {
      model.predict_argument(i, std::span<std::int64_t>(out.arguments[i].data() + start, rows.size()));
    }
  }
  double all = 0;
  for (index r = 0; r < set.count(); ++r) {
    const bool ok = out.predictions[static_cast<std::size_t>(r)] == set.answers[static_cast<std::size_t>(r)].front();
    right[set.tag[static_cast<std::size_t>(r)]] += ok;
    total[set.tag[static_cast<std::size_t>(r)]] += 1;
    all += ok;
  }
  out.accuracy = set.count() ? all / static_cast<double>(set.count()) : 0;
  for (std::size_t t = 0; t < right.size(); ++t) out.by_tag.push_back(total[t] ? right[t] / total[t] : 0);
  return out;
}

inline std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s / 60 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  }
  return buf;
}


namespace detail {

// The training state between two steps: where the run is and everything it has counted.
struct loop_state {
  std::int64_t epoch = 1, batch_in_epoch = 0, step = 0;
  bool shuffled = false;  // this epoch's order is drawn
  std::vector<double> loss_sum, right, seconds;
  double seen = 0, eval_seconds = 0;
};

inline std::string fingerprint(const std::vector<std::unique_ptr<sentence_model>>& models, const token_set& train,
                               const train_options& o) {
  std::string names;
  for (const auto& m : models) names += (names.empty() ? "" : ",") + m->name() + "(" + std::to_string(m->params().total_size()) + ")";
  return ncl::detail::concat("models ", names, "; training sentences ", train.count(), "; --seed ", o.seed, "; --epochs ",
                             o.epochs, "; --batch ", o.batch, "; --lr ", o.lr, "; shards ", o.shards, "; warm-up ",
                             o.warmup_steps, "; decay ", o.weight_decay, "; clip ", o.max_grad_norm);
}

inline std::string bits_of(double x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, 8);
  return std::to_string(u);
}

inline std::uint64_t u64_of(const ncl::io::safetensors& f, const std::string& key) {
  const auto it = f.metadata().find(key);
  if (it == f.metadata().end()) throw ncl::io_error(ncl::detail::concat(f.source(), ": not a training state (no metadata '", key, "')"));
  std::uint64_t x = 0;
  const auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), x);
  if (ec != std::errc() || ptr != it->second.data() + it->second.size()) {
    throw ncl::io_error(ncl::detail::concat(f.source(), ": metadata ", key, " = '", it->second, "' is not an unsigned integer"));
  }
  return x;
}

inline double double_of(const ncl::io::safetensors& f, const std::string& key) {
  const std::uint64_t u = u64_of(f, key);
  double x = 0;
  std::memcpy(&x, &u, 8);
  return x;
}

inline void save_state(const std::string& path, const std::vector<std::unique_ptr<sentence_model>>& models,
                       const std::vector<std::unique_ptr<ncl::train::adamw<float>>>& optimizers,
                       const std::vector<model_result>& results, const std::vector<index>& order, const ncl::rng& random,
                       const loop_state& st, const std::string& print) {
  std::vector<ncl::io::tensor_view> views;
  std::map<std::string, std::string> meta{{"format", "ncl"}, {"ncl.train_state", print}};
  for (std::size_t k = 0; k < models.size(); ++k) {
    const auto& params = models[k]->params();
    const auto& opt = *optimizers[k];
    const std::string prefix = models[k]->name() + "/";
    for (std::size_t p = 0; p < params.count(); ++p) {
      const auto& in = params.info(p);
      const std::vector<std::int64_t> shape(in.shape.begin(), in.shape.end());
      views.push_back(ncl::io::make_view<float>(prefix + in.name, shape, params.value(p)));
      views.push_back(ncl::io::make_view<float>(prefix + "exp_avg." + in.name, shape, opt.exp_avg().subspan(in.offset, in.size)));
      views.push_back(ncl::io::make_view<float>(prefix + "exp_avg_sq." + in.name, shape, opt.exp_avg_sq().subspan(in.offset, in.size)));
    }
    meta[prefix + "adamw.step"] = std::to_string(opt.step_count());
    nlohmann::json records = nlohmann::json::array();
    for (const auto& r : results[k].epochs) {
      nlohmann::json by_tag = nlohmann::json::array();
      for (double x : r.test_by_tag) by_tag.push_back(bits_of(x));
      records.push_back({r.epoch, r.step, bits_of(r.loss), bits_of(r.train_accuracy), bits_of(r.test_accuracy), by_tag,
                         bits_of(r.train_seconds)});
    }
    meta[prefix + "records"] = records.dump();
    meta[prefix + "loss_sum"] = bits_of(st.loss_sum[k]);
    meta[prefix + "right"] = bits_of(st.right[k]);
    meta[prefix + "seconds"] = bits_of(st.seconds[k]);
  }
  views.push_back(ncl::io::make_view<std::int64_t>("trainer.order", {static_cast<std::int64_t>(order.size())},
                                                   std::span<const std::int64_t>(order.data(), order.size())));
  const auto rs = random.save();
  for (int i = 0; i < 4; ++i) meta["trainer.rng." + std::to_string(i)] = std::to_string(rs.words[i]);
  meta["trainer.rng.spare"] = bits_of(rs.spare_normal);
  meta["trainer.rng.has_spare"] = rs.has_spare_normal ? "1" : "0";
  meta["trainer.epoch"] = std::to_string(st.epoch);
  meta["trainer.batch_in_epoch"] = std::to_string(st.batch_in_epoch);
  meta["trainer.step"] = std::to_string(st.step);
  meta["trainer.shuffled"] = st.shuffled ? "1" : "0";
  meta["trainer.seen"] = bits_of(st.seen);
  meta["trainer.eval_seconds"] = bits_of(st.eval_seconds);
  ncl::io::write_safetensors(path, views, meta);
}

inline void load_state(const std::string& path, std::vector<std::unique_ptr<sentence_model>>& models,
                       std::vector<std::unique_ptr<ncl::train::adamw<float>>>& optimizers,
                       std::vector<model_result>& results, std::vector<index>& order, ncl::rng& random, loop_state& st,
                       const std::string& print) {
  const auto f = ncl::io::safetensors::load(path);
  const auto it = f.metadata().find("ncl.train_state");
  if (it == f.metadata().end()) throw ncl::io_error(path + ": not a training state of an ncl experiment (no metadata 'ncl.train_state')");
  if (it->second != print) {
    throw ncl::io_error(ncl::detail::concat(path, ": a training state of another run (", it->second, "); this run: ", print,
                                            " (delete the file to start afresh)"));
  }
  for (std::size_t k = 0; k < models.size(); ++k) {
    auto& params = models[k]->params();
    auto& opt = *optimizers[k];
    const std::string prefix = models[k]->name() + "/";
    for (std::size_t p = 0; p < params.count(); ++p) {
      const auto& in = params.info(p);
      const std::vector<std::int64_t> shape(in.shape.begin(), in.shape.end());
      f.read_into<float>(prefix + in.name, params.value(p), shape);
      f.read_into<float>(prefix + "exp_avg." + in.name, opt.exp_avg().subspan(in.offset, in.size), shape);
      f.read_into<float>(prefix + "exp_avg_sq." + in.name, opt.exp_avg_sq().subspan(in.offset, in.size), shape);
    }
    opt.set_step_count(static_cast<std::int64_t>(u64_of(f, prefix + "adamw.step")));
    results[k].epochs.clear();
    try {
      auto bits = [](const nlohmann::json& j) {
        const std::uint64_t u = std::stoull(j.get<std::string>());
        double x = 0;
        std::memcpy(&x, &u, 8);
        return x;
      };
      for (const auto& r : nlohmann::json::parse(f.metadata().at(prefix + "records"))) {
        epoch_record e;
        e.epoch = r.at(0).get<std::int64_t>();
        e.step = r.at(1).get<std::int64_t>();
        e.loss = bits(r.at(2));
        e.train_accuracy = bits(r.at(3));
        e.test_accuracy = bits(r.at(4));
        for (const auto& x : r.at(5)) e.test_by_tag.push_back(bits(x));
        e.train_seconds = bits(r.at(6));
        results[k].epochs.push_back(std::move(e));
      }
    } catch (const std::exception& e) {
      throw ncl::io_error(ncl::detail::concat(path, ": metadata ", prefix, "records is not a list of epoch records (", e.what(), ")"));
    }
    st.loss_sum[k] = double_of(f, prefix + "loss_sum");
    st.right[k] = double_of(f, prefix + "right");
    st.seconds[k] = double_of(f, prefix + "seconds");
  }
  const auto saved_order = f.read_integers("trainer.order");
  if (saved_order.size() != order.size()) throw ncl::io_error(path + ": trainer.order does not cover the training set");
  std::vector<std::uint8_t> hit(order.size(), 0);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const auto v = saved_order[i];
    if (v < 0 || static_cast<std::size_t>(v) >= order.size() || hit[static_cast<std::size_t>(v)]++) {
      throw ncl::io_error(path + ": trainer.order is not a permutation of the training set");
    }
    order[i] = static_cast<index>(v);
  }
  ncl::rng::snapshot rs;
  for (int i = 0; i < 4; ++i) rs.words[i] = u64_of(f, "trainer.rng." + std::to_string(i));
  rs.spare_normal = double_of(f, "trainer.rng.spare");
  rs.has_spare_normal = u64_of(f, "trainer.rng.has_spare") != 0;
  random.restore(rs);
  st.epoch = static_cast<std::int64_t>(u64_of(f, "trainer.epoch"));
  st.batch_in_epoch = static_cast<std::int64_t>(u64_of(f, "trainer.batch_in_epoch"));
  st.step = static_cast<std::int64_t>(u64_of(f, "trainer.step"));
  st.shuffled = u64_of(f, "trainer.shuffled") != 0;
  st.seen = double_of(f, "trainer.seen");
  st.eval_seconds = double_of(f, "trainer.eval_seconds");
}

// One model's step on the global batch `rows`: its shards' gradients, summed along the tree
// across the ranks, replace the model's gradient. Returns the batch's summed loss and right
// answers (the same on every rank).
struct step_outcome {
  double loss_sum = 0, right = 0;
  bool finite = true;
};

inline step_outcome sharded_step(sentence_model& model, const token_set& train, std::span<const index> rows, int shards,
                                 const ncl::train::communicator& comm, batch& b, std::vector<std::int64_t>& predicted) {
  const auto count = static_cast<index>(rows.size());
  const auto [first, last] = ncl::train::owned_shards(shards, comm.rank(), comm.size());
  ncl::train::tree_sum<float> tree;
  std::vector<double> stats;  // per owned shard: loss * size and right answers
  auto& params = model.params();
  for (int i = first; i < last; ++i) {
    const index lo = count * i / shards, hi = count * (i + 1) / shards;
    double loss = 0, right = 0;
    params.zero_grad();
    if (hi > lo) {
      gather(train, rows.subspan(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi - lo)), b);
      loss = model.forward(b);
      predicted.resize(static_cast<std::size_t>(b.B));
      model.predict(predicted);
      for (index r = 0; r < b.B; ++r) right += predicted[static_cast<std::size_t>(r)] == b.answers[static_cast<std::size_t>(r)];
      if (std::isfinite(loss)) model.backward();
    }
    ncl::train::gradient_copy<float> g;
    g.capture(params);
    g.scale(static_cast<float>(static_cast<double>(hi - lo) / static_cast<double>(count)));
    tree.push(std::move(g));
    const double weighted = loss * static_cast<double>(hi - lo);
    stats.push_back(weighted);
    stats.push_back(right);
  }
  step_outcome out;
  const auto all = ncl::train::finish_sharded_step(tree, stats, shards, comm, params);
  for (std::size_t at = 0; at + 1 < all.size(); at += 2) {
    out.loss_sum += all[at];
    out.right += all[at + 1];
    out.finite = out.finite && std::isfinite(all[at]);
  }
  return out;
}

}  // namespace detail

/// Trains every model on the same batches for options.epochs passes over `train`, evaluating
/// on `test` after each; returns each model's record (on rank 0; other ranks' records hold
/// no test accuracies).
inline std::vector<model_result> train_models(std::vector<std::unique_ptr<sentence_model>>& models,
                                              const token_set& train, const token_set& test,
                                              const train_options& o) {
  using clock = std::chrono::steady_clock;
  if (train.count() == 0) throw ncl::value_error("train_models: the training set is empty");
  const auto& comm = ncl::train::communicator::world();
  ncl::train::check_sharding(o.shards, comm.size());
  const bool root = comm.root();
  const std::int64_t per_epoch = (train.count() + o.batch - 1) / o.batch;
  const std::int64_t total_steps = per_epoch * o.epochs;
  const ncl::train::warmup_cosine schedule{.max_lr = o.lr, .min_lr = o.lr * o.min_lr_ratio,
                                           .warmup_steps = std::min<std::int64_t>(o.warmup_steps, total_steps / 10),
                                           .total_steps = total_steps};
  std::vector<std::unique_ptr<ncl::train::adamw<float>>> optimizers;
  std::vector<model_result> results;
  for (auto& m : models) {
    optimizers.push_back(std::make_unique<ncl::train::adamw<float>>(
        m->params(), ncl::train::adamw_options{.weight_decay = o.weight_decay, .max_grad_norm = o.max_grad_norm}));
    results.push_back({m->name(), {}});
  }
  const std::size_t M = models.size();
  ncl::rng random(o.seed);
  std::vector<index> order(static_cast<std::size_t>(train.count()));
  std::iota(order.begin(), order.end(), index{0});
  detail::loop_state st;
  st.loss_sum.assign(M, 0);
  st.right.assign(M, 0);
  st.seconds.assign(M, 0);
  const std::string print = detail::fingerprint(models, train, o);
  if (!o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
    detail::load_state(o.checkpoint, models, optimizers, results, order, random, st, print);
    if (root && o.progress) {
      std::printf("resuming from %s: epoch %lld, step %lld of %lld\n", o.checkpoint.c_str(), static_cast<long long>(st.epoch),
                  static_cast<long long>(st.step), static_cast<long long>(total_steps));
      std::fflush(stdout);
    }
  }
  auto save = [&] {
    if (root && !o.checkpoint.empty()) detail::save_state(o.checkpoint, models, optimizers, results, order, random, st, print);
  };
  batch b;
  std::vector<std::int64_t> predicted;
  const auto start = clock::now();
  const std::int64_t first_step = st.step;
  auto last_print = start;
  double eval_this_run = 0;
  for (; st.epoch <= o.epochs; ++st.epoch) {
    if (!st.shuffled) {
      for (std::size_t i = order.size(); i > 1; --i) {  // a new order every epoch
        std::swap(order[i - 1], order[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i)))]);
      }
      st.shuffled = true;
      st.batch_in_epoch = 0;
      std::fill(st.loss_sum.begin(), st.loss_sum.end(), 0.0);
      std::fill(st.right.begin(), st.right.end(), 0.0);
      st.seen = 0;
    }
    for (; st.batch_in_epoch < per_epoch; ++st.batch_in_epoch, ++st.step) {
      const index first = st.batch_in_epoch * o.batch, count = std::min<index>(o.batch, train.count() - first);
      const std::span<const index> rows(order.data() + first, static_cast<std::size_t>(count));
      const double lr = schedule(st.step);
      for (std::size_t k = 0; k < M; ++k) {
        const auto t0 = clock::now();
        const auto r = detail::sharded_step(*models[k], train, rows, o.shards, comm, b, predicted);
        const double loss = r.loss_sum / static_cast<double>(count);
        if (!r.finite || !std::isfinite(loss)) {
          throw ncl::train::nonfinite_error(st.step + 1, "loss", ncl::detail::concat("model ", models[k]->name(), ": the loss is ", loss,
                                                                   " at step ", st.step + 1, " (epoch ", st.epoch, ")"));
        }
        st.right[k] += r.right;
        optimizers[k]->step(models[k]->params(), lr);
        st.seconds[k] += std::chrono::duration<double>(clock::now() - t0).count();
        st.loss_sum[k] += r.loss_sum;
      }
      st.seen += static_cast<double>(count);
      const auto now = clock::now();
      const bool end_of_epoch = st.batch_in_epoch + 1 == per_epoch;
      if (root && o.progress && (end_of_epoch || std::chrono::duration<double>(now - last_print).count() >= o.progress_seconds)) {
        last_print = now;
        const double elapsed = std::chrono::duration<double>(now - start).count();
        const double train_elapsed = elapsed - eval_this_run;
        const double rate = static_cast<double>(st.step + 1 - first_step) * static_cast<double>(o.batch) / std::max(1e-9, train_elapsed);
        const double eval_each = st.epoch > 1 ? st.eval_seconds / static_cast<double>(st.epoch - 1) : 0;
        const double left = static_cast<double>(total_steps - st.step - 1) * static_cast<double>(o.batch) / rate +
                            eval_each * static_cast<double>(o.epochs - st.epoch + 1);
        std::printf("epoch %lld/%lld  step %lld/%lld ", static_cast<long long>(st.epoch), static_cast<long long>(o.epochs),
                    static_cast<long long>(st.step + 1), static_cast<long long>(total_steps));
        for (std::size_t k = 0; k < M; ++k) {
          std::printf(" | %s loss %.4f acc %.3f", models[k]->name().c_str(), st.loss_sum[k] / st.seen, st.right[k] / st.seen);
        }
        std::printf(" | %.0f examples/s | %s left\n", rate, format_duration(left).c_str());
        std::fflush(stdout);
      }
      if (o.checkpoint_every > 0 && (st.step + 1) % o.checkpoint_every == 0 && !end_of_epoch) {
        ++st.batch_in_epoch;  // the state after this step
        ++st.step;
        save();
        --st.batch_in_epoch;
        --st.step;
      }
    }
    const auto e0 = clock::now();
    for (std::size_t k = 0; k < M; ++k) {
      epoch_record r;
      r.epoch = st.epoch;
      r.step = st.step;
      r.loss = st.loss_sum[k] / st.seen;
      r.train_accuracy = st.right[k] / st.seen;
      if (root) {  // only rank 0 reports, so only rank 0 evaluates
        const auto ev = evaluate(*models[k], test);
        r.test_accuracy = ev.accuracy;
        r.test_by_tag = ev.by_tag;
      }
      r.train_seconds = st.seconds[k];
      results[k].epochs.push_back(r);
    }
    const double eval_seconds = std::chrono::duration<double>(clock::now() - e0).count();
    st.eval_seconds += eval_seconds;
    eval_this_run += eval_seconds;
    if (root && o.progress) {
      std::printf("epoch %lld test accuracy:", static_cast<long long>(st.epoch));
      for (std::size_t k = 0; k < M; ++k) {
        std::printf(" %s %.4f", models[k]->name().c_str(), results[k].epochs.back().test_accuracy);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
    st.shuffled = false;
    ++st.epoch;
    save();  // the state at the start of the next epoch
    --st.epoch;
  }
  return results;
}

}  // namespace ncl_experiment
