// The training loop every sentence experiment shares: each step draws one batch from the
// shuffled training set and every model trains on it (forward, backward, AdamW with
// global-norm clipping, a warm-up + cosine schedule); a NaN or Inf loss stops the run with an
// error naming the model and the step. After each epoch (one pass over train.tsv) every model
// is evaluated on the whole test set, overall and per tag. A progress line shows the epoch,
// the step, each model's loss and running training accuracy, examples per second and the time
// left.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ncl/train/adamw.hpp>
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

/// Trains every model on the same batches for options.epochs passes over `train`, evaluating
/// on `test` after each; returns each model's record.
inline std::vector<model_result> train_models(std::vector<std::unique_ptr<sentence_model>>& models,
                                              const token_set& train, const token_set& test,
                                              const train_options& o) {
  using clock = std::chrono::steady_clock;
  if (train.count() == 0) throw ncl::value_error("train_models: the training set is empty");
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
  std::vector<double> seconds(M, 0);
  ncl::rng random(o.seed);
  std::vector<index> order(static_cast<std::size_t>(train.count()));
  std::iota(order.begin(), order.end(), index{0});
  batch b;
  std::vector<std::int64_t> predicted;
  const auto start = clock::now();
  auto last_print = start;
  double eval_seconds = 0;
  std::int64_t step = 0;
  for (std::int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    for (std::size_t i = order.size(); i > 1; --i) {  // a new order every epoch
      std::swap(order[i - 1], order[static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i)))]);
    }
    std::vector<double> loss_sum(M, 0), right(M, 0);
    double seen = 0;
    for (std::int64_t s = 0; s < per_epoch; ++s, ++step) {
      const index first = s * o.batch, count = std::min<index>(o.batch, train.count() - first);
      gather(train, std::span<const index>(order.data() + first, static_cast<std::size_t>(count)), b);
      const double lr = schedule(step);
      for (std::size_t k = 0; k < M; ++k) {
        const auto t0 = clock::now();
        const double loss = models[k]->forward(b);
        if (!std::isfinite(loss)) {
          throw ncl::train::nonfinite_error(step + 1, "loss", ncl::detail::concat("model ", models[k]->name(), ": the loss is ", loss,
                                                                " at step ", step + 1, " (epoch ", epoch, ")"));
        }
        predicted.resize(static_cast<std::size_t>(b.B));
        models[k]->predict(predicted);
        for (index r = 0; r < b.B; ++r) right[k] += predicted[static_cast<std::size_t>(r)] == b.answers[static_cast<std::size_t>(r)];
        models[k]->params().zero_grad();
        models[k]->backward();
        optimizers[k]->step(models[k]->params(), lr);
        seconds[k] += std::chrono::duration<double>(clock::now() - t0).count();
        loss_sum[k] += loss * static_cast<double>(b.B);
      }
      seen += static_cast<double>(b.B);
      const auto now = clock::now();
      const bool end_of_epoch = s + 1 == per_epoch;
      if (o.progress && (end_of_epoch || std::chrono::duration<double>(now - last_print).count() >= o.progress_seconds)) {
        last_print = now;
        const double elapsed = std::chrono::duration<double>(now - start).count();
        const double train_elapsed = elapsed - eval_seconds;
        const double rate = static_cast<double>(step + 1) * static_cast<double>(o.batch) / std::max(1e-9, train_elapsed);
        const double eval_each = epoch > 1 ? eval_seconds / static_cast<double>(epoch - 1) : 0;
        const double left = static_cast<double>(total_steps - step - 1) * static_cast<double>(o.batch) / rate +
                            eval_each * static_cast<double>(o.epochs - epoch + 1);
        std::printf("epoch %lld/%lld  step %lld/%lld ", static_cast<long long>(epoch), static_cast<long long>(o.epochs),
                    static_cast<long long>(step + 1), static_cast<long long>(total_steps));
        for (std::size_t k = 0; k < M; ++k) {
          std::printf(" | %s loss %.4f acc %.3f", models[k]->name().c_str(), loss_sum[k] / seen, right[k] / seen);
        }
        std::printf(" | %.0f examples/s | %s left\n", rate, format_duration(left).c_str());
        std::fflush(stdout);
      }
    }
    const auto e0 = clock::now();
    for (std::size_t k = 0; k < M; ++k) {
      const auto ev = evaluate(*models[k], test);
      epoch_record r;
      r.epoch = epoch;
      r.step = step;
      r.loss = loss_sum[k] / seen;
      r.train_accuracy = right[k] / seen;
      r.test_accuracy = ev.accuracy;
      r.test_by_tag = ev.by_tag;
      r.train_seconds = seconds[k];
      results[k].epochs.push_back(r);
    }
    eval_seconds += std::chrono::duration<double>(clock::now() - e0).count();
    if (o.progress) {
      std::printf("epoch %lld test accuracy:", static_cast<long long>(epoch));
      for (std::size_t k = 0; k < M; ++k) {
        std::printf(" %s %.4f", models[k]->name().c_str(), results[k].epochs.back().test_accuracy);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  return results;
}

}  // namespace ncl_experiment
