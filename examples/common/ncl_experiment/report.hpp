// What an experiment writes (shared/EXPERIMENTS.md): summary.json, curves.csv and SVG figures,
// each written atomically; the JSON an --eval run prints; and the guard every experiment's
// main runs in, which turns every error into a message and an exit status.
#pragma once

#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <ncl/core/error.hpp>
#include <ncl/core/file.hpp>
#include <ncl/core/plot.hpp>
#include <ncl/train/adamw.hpp>

#include "../example_main.hpp"
#include "cli.hpp"
#include "data.hpp"
#include "trainer.hpp"

namespace ncl_experiment {

using json = nlohmann::ordered_json;

using ::example::make_out_dir;

/// One row of summary.json's results.
struct summary_row {
  std::string model;
  json setting = json::object();
  std::string metric = "test_accuracy";
  double value = 0;
  std::optional<std::int64_t> epoch_reached;
  std::int64_t epochs = 0;
  double train_seconds = 0;
};

inline json to_json(const summary_row& r) {
  return json{{"model", r.model},
              {"setting", r.setting},
              {"metric", r.metric},
              {"value", r.value},
              {"epoch_reached", r.epoch_reached ? json(*r.epoch_reached) : json(nullptr)},
              {"epochs", r.epochs},
              {"train_seconds", r.train_seconds}};
}

/// The rows of one trained model: the overall test accuracy after the last epoch (with
/// `setting`), then one per tag with setting[tag_key] = the tag (when tag_key is not empty).
inline std::vector<summary_row> rows_of(const model_result& result, const std::vector<std::string>& tags,
                                        const json& setting, const std::string& tag_key) {
  std::vector<summary_row> rows;
  const auto& last = result.epochs.back();
  auto reached = [](std::int64_t e) { return e < 0 ? std::nullopt : std::optional<std::int64_t>(e); };
  rows.push_back({result.name, setting, "test_accuracy", last.test_accuracy, reached(result.epoch_reached()),
                  last.epoch, last.train_seconds});
  if (!tag_key.empty()) {
    for (std::size_t t = 0; t < tags.size(); ++t) {
      json s = setting;
      s[tag_key] = tags[t];
      rows.push_back({result.name, s, "test_accuracy", last.test_by_tag[t], reached(result.epoch_reached_tag(t)),
                      last.epoch, last.train_seconds});
    }
  }
  return rows;
}

inline void write_summary(const std::filesystem::path& dir, const std::string& experiment, std::uint64_t seed,
                          const json& config, const std::vector<summary_row>& rows, double seconds) {
  json results = json::array();
  for (const auto& r : rows) results.push_back(to_json(r));
  const json summary{{"experiment", experiment}, {"seed", seed}, {"config", config}, {"results", results},
                     {"seconds", seconds}};
  ncl::write_file_atomic(dir / "summary.json", summary.dump(2) + "\n");
}

/// curves.csv: one row per model and epoch (the test accuracy per tag in the last columns),
/// with `setting_columns` (name, value) in front for experiments that run several settings.
inline std::string curves_csv(const std::vector<model_result>& results, const std::vector<std::string>& tags,
                              const std::vector<std::pair<std::string, std::string>>& setting_columns = {},
                              bool header = true) {
  std::ostringstream csv;
  csv.precision(6);
  if (header) {
    for (const auto& [name, value] : setting_columns) csv << name << ",";
    csv << "epoch,step,model,loss,train_accuracy,test_accuracy,train_seconds";
    for (const auto& t : tags) csv << ",test_accuracy_" << t;
    csv << "\n";
  }
  for (const auto& r : results) {
    for (const auto& e : r.epochs) {
      for (const auto& [name, value] : setting_columns) csv << value << ",";
      csv << e.epoch << "," << e.step << "," << r.name << "," << e.loss << "," << e.train_accuracy << ","
          << e.test_accuracy << "," << e.train_seconds;
      for (double a : e.test_by_tag) csv << "," << a;
      csv << "\n";
    }
  }
  return csv.str();
}

/// Test accuracy and training loss by epoch, one series per model (`prefix` names the files:
/// PREFIXaccuracy.svg, PREFIXloss.svg).
inline void write_figures(const std::filesystem::path& dir, const std::string& prefix, const std::string& title,
                          const std::vector<model_result>& results) {
  std::vector<ncl::plot_series> accuracy, loss;
  for (const auto& r : results) {
    ncl::plot_series a{r.name, {}, {}}, l{r.name, {}, {}};
    for (const auto& e : r.epochs) {
      a.x.push_back(static_cast<double>(e.epoch));
      a.y.push_back(e.test_accuracy);
      l.x.push_back(static_cast<double>(e.epoch));
      l.y.push_back(e.loss);
    }
    accuracy.push_back(a);
    loss.push_back(l);
  }
  ncl::line_chart{title + ": test accuracy", "epoch", "test accuracy", false, accuracy}
      .write((dir / (prefix + "accuracy.svg")).string());
  ncl::line_chart{title + ": training loss", "epoch", "loss", true, loss}.write((dir / (prefix + "loss.svg")).string());
}

/// Evaluates `model` on the examples of an --eval file and returns the JSON to print:
/// {"examples", "accuracy", "wrong": the first few {"input", "answer", "got"}} and, for a
/// model with a computer, "arguments_in_sentence": per argument register, the fraction of
/// the lines whose most likely argument is a number the sentence says.
inline json eval_json(sentence_model& model, const std::vector<example>& examples, const token_set& set,
                      std::size_t show_wrong = 10) {
  const auto ev = evaluate(model, set);
  json wrong = json::array();
  for (std::size_t i = 0; i < examples.size() && wrong.size() < show_wrong; ++i) {
    if (ev.predictions[i] != examples[i].answer.front()) {
      wrong.push_back({{"input", examples[i].input}, {"answer", examples[i].answer.front()}, {"got", ev.predictions[i]}});
    }
  }
  json result{{"examples", examples.size()}, {"accuracy", ev.accuracy}, {"wrong", wrong}};
  if (!ev.arguments.empty()) {
    // For the computer models: how often each argument head's most likely value is one of the
    // numbers written in the sentence (the paper's value heads may name any value).
    json named = json::array();
    for (const auto& arg : ev.arguments) {
      double hits = 0;
      for (std::size_t i = 0; i < examples.size(); ++i) hits += says_number(examples[i].input, arg[i]);
      named.push_back(examples.empty() ? 0.0 : hits / static_cast<double>(examples.size()));
    }
    result["arguments_in_sentence"] = named;
  }
  return result;
}

/// Runs an experiment's body under example::guarded_main (../example_main.hpp: exit 2 for
/// usage and input errors, 1 when training fails or memory runs out); a usage error adds a
/// pointer to --help.
inline int guarded_main(const char* name, const std::function<int()>& body) {
  return ::example::guarded_main(name, [&] {
    try {
      return body();
    } catch (const usage_error& e) {
      std::fprintf(stderr, "%s: error: %s\nrun with --help for the options\n", name, e.what());
      return 2;
    }
  });
}

}  // namespace ncl_experiment
