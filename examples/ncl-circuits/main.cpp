// ncl-circuits: tables against circuits (the paper's Figure 3) and the bootstrap. A minimal
// network, the router of router.hpp, learns to use the arithmetic unit for seven tasks (add,
// subtract, multiply, divide, min, max, less-than): from a task id and two numbers in input
// slots it must pick the ALU operation (of the nine the ALU has) and route the slots to the
// operands, in an order drawn by the seed for each task. Only the answer supervises it.
//
// Runs (--model), all on the same batches where they share a width:
//   table      the lookup-table ALU at 4 bits (n = 16)
//   circuit    the circuit ALU at 4 bits, from scratch
//   circuit-8  the circuit ALU at 8 bits (n = 256), from scratch
// After training, every run's router is evaluated unchanged on the circuit ALU at 8, 12 and 16
// bits (the bootstrap: learn with a table, compute wider numbers with a circuit), both as
// trained ("soft") and with its choices made one-hot ("hard").
//
// Data: at 4 bits every (task, x0, x1) (divide: a non-zero divisor), 20% held out by the
// seed; at 8, 12 and 16 bits, test sets of sampled pairs with an operand >= 16 (outside the
// 4-bit range), and an 8-bit training set (for circuit-8) that avoids the 8-bit test pairs.
// An input is "TASK X0 X1", e.g. "subtract 3 12". Writes summary.json, curves.csv,
// bootstrap.csv, accuracy.svg, grad_norm.svg, bootstrap.svg and the data files to --out.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <ncl/core/parallel.hpp>
#include <ncl/core/plot.hpp>
#include <ncl/core/rng.hpp>
#include <ncl/io/safetensors.hpp>
#include <ncl/train/adamw.hpp>
#include <ncl/train/data_parallel.hpp>
#include <ncl/train/parameters.hpp>

#include "ncl_experiment/cli.hpp"
#include "ncl_experiment/data.hpp"
#include "ncl_experiment/report.hpp"
#include "router.hpp"

namespace {

namespace xp = ncl_experiment;
using ncl::index;
using ncl::alu::backend;
using ncl::alu::opcode;
using ncl_circuits::router_batch;
using ncl_circuits::router_cache;
using ncl_circuits::router_weights;
using json = nlohmann::ordered_json;

struct task_info {
  std::string name;
  opcode op;
};

const std::vector<task_info>& tasks() {
  static const std::vector<task_info> t{{"add", opcode::ADD}, {"subtract", opcode::SUB}, {"multiply", opcode::MUL},
                                        {"divide", opcode::DIV}, {"min", opcode::MIN}, {"max", opcode::MAX},
                                        {"less_than", opcode::LT}};
  return t;
}

std::vector<std::string> task_names() {
  std::vector<std::string> out;
  for (const auto& t : tasks()) out.push_back(t.name);
  return out;
}

std::string joined(const std::vector<std::string>& v, const char* sep = ",") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

/// One problem: task, the two slots, the answer at the width it was drawn for.
struct item {
  index task = 0;
  std::int64_t x0 = 0, x1 = 0, answer = 0;
};

/// The data of a run: which operand each task reads from which slot (drawn by the seed) and
/// every set, fixed before any model exists.
struct dataset {
  std::vector<int> swapped;  // per task: 1 when operand a is slot x1 (and b is x0)
  std::vector<item> train4, test4, train8;
  std::map<int, std::vector<item>> wide_test;  // bits -> test set
};

std::int64_t answer_of(const dataset& d, index task, std::int64_t x0, std::int64_t x1, std::int64_t n) {
  const bool swap = d.swapped[static_cast<std::size_t>(task)] != 0;
  return ncl::alu::apply(tasks()[static_cast<std::size_t>(task)].op, swap ? x1 : x0, swap ? x0 : x1, n);
}

bool divisor_zero(const dataset& d, index task, std::int64_t x0, std::int64_t x1) {
  const bool swap = d.swapped[static_cast<std::size_t>(task)] != 0;
  return tasks()[static_cast<std::size_t>(task)].op == opcode::DIV && (swap ? x0 : x1) == 0;
}

dataset make_data(std::uint64_t seed, std::int64_t wide_per_task, std::int64_t train8_per_task) {
  dataset d;
  ncl::rng order_random(seed * 7919 + 11), split_random(seed * 104729 + 13), wide_random(seed * 15485863 + 17);
  const auto T = static_cast<index>(tasks().size());
  for (index t = 0; t < T; ++t) d.swapped.push_back(static_cast<int>(order_random.integer(0, 2)));
  std::vector<item> all;
  for (index t = 0; t < T; ++t) {
    for (std::int64_t x0 = 0; x0 < 16; ++x0) {
      for (std::int64_t x1 = 0; x1 < 16; ++x1) {
        if (!divisor_zero(d, t, x0, x1)) all.push_back({t, x0, x1, answer_of(d, t, x0, x1, 16)});
      }
    }
  }
  const auto held = xp::choose_held_out(all.size(), 0.2, split_random);
  for (std::size_t i = 0; i < all.size(); ++i) (held[i] ? d.test4 : d.train4).push_back(all[i]);
  // Wide test sets: pairs with an operand outside the 4-bit range, distinct within a set.
  for (int bits : {8, 12, 16}) {
    const std::int64_t n = std::int64_t{1} << bits;
    auto& set = d.wide_test[bits];
    for (index t = 0; t < T; ++t) {
      std::set<std::pair<std::int64_t, std::int64_t>> seen;
      while (static_cast<std::int64_t>(seen.size()) < wide_per_task) {
        const std::int64_t x0 = wide_random.integer(0, n), x1 = wide_random.integer(0, n);
        if (std::max(x0, x1) < 16 || divisor_zero(d, t, x0, x1) || !seen.insert({x0, x1}).second) continue;
        set.push_back({t, x0, x1, answer_of(d, t, x0, x1, n)});
      }
    }
  }
  // The 8-bit training set of circuit-8: any pairs but the 8-bit test set's.
  std::set<std::tuple<index, std::int64_t, std::int64_t>> test8;
  for (const auto& e : d.wide_test[8]) test8.insert({e.task, e.x0, e.x1});
  for (index t = 0; t < T; ++t) {
    std::set<std::pair<std::int64_t, std::int64_t>> seen;
    while (static_cast<std::int64_t>(seen.size()) < train8_per_task) {
      const std::int64_t x0 = wide_random.integer(0, 256), x1 = wide_random.integer(0, 256);
      if (divisor_zero(d, t, x0, x1) || test8.contains({t, x0, x1}) || !seen.insert({x0, x1}).second) continue;
      d.train8.push_back({t, x0, x1, answer_of(d, t, x0, x1, 256)});
    }
  }
  return d;
}

xp::example to_example(const item& e) {
  const auto& name = tasks()[static_cast<std::size_t>(e.task)].name;
  return {name + " " + std::to_string(e.x0) + " " + std::to_string(e.x1), {e.answer}, name};
}

void write_items(const std::filesystem::path& path, const std::vector<item>& set) {
  std::vector<xp::example> out;
  for (const auto& e : set) out.push_back(to_example(e));
  xp::write_tsv(path, out);
}

// ---- the router's weights and their training ---------------------------------------------------

struct router_model {
  ncl::train::parameter_set<double> params;
  ncl::train::parameter_set<double>::id op_id{}, slot_id{};

  router_model() {
    const auto T = static_cast<index>(tasks().size());
    op_id = params.add("router.op_logits", {T, ncl_circuits::op_count});
    slot_id = params.add("router.slot_logits", {T, ncl_circuits::operands * ncl_circuits::slots});
  }
  router_weights weights() const {
    return {static_cast<index>(tasks().size()), params.value(op_id), params.value(slot_id)};
  }
};

router_batch batch_of(const std::vector<item>& set, std::span<const std::size_t> order) {
  router_batch b;
  for (auto i : order) {
    b.task.push_back(set[i].task);
    b.x0.push_back(set[i].x0);
    b.x1.push_back(set[i].x1);
  }
  return b;
}

struct accuracy_result {
  double overall = 0;
  std::vector<double> by_task;
  std::vector<std::int64_t> predictions;  // per problem, its most likely answer
};

/// Accuracy of `w` on `set` through `alu` (chunks shared out among the threads; the result
/// does not depend on their number).
accuracy_result evaluate(const router_weights& w, const ncl::alu::arithmetic_unit<double>& alu,
                         const std::vector<item>& set) {
  const index chunk = alu.n() >= 4096 ? 32 : 256;
  const auto chunks = static_cast<index>((set.size() + static_cast<std::size_t>(chunk) - 1) / static_cast<std::size_t>(chunk));
  std::vector<std::int64_t> predictions(set.size(), -1);
  ncl::detail::parallel_for<index>(chunks, true, [&](index c) {
    const std::size_t first = static_cast<std::size_t>(c * chunk);
    const std::size_t last = std::min(set.size(), first + static_cast<std::size_t>(chunk));
    std::vector<std::size_t> order(last - first);
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = first + i;
    router_cache cache;
    ncl_circuits::router_forward(cache, w, alu, batch_of(set, order));
    const auto got = ncl_circuits::router_predictions(cache);
    for (std::size_t i = 0; i < order.size(); ++i) predictions[first + i] = got[i];
  });
  accuracy_result out;
  std::vector<char> right(set.size(), 0);
  for (std::size_t i = 0; i < set.size(); ++i) right[i] = predictions[i] == set[i].answer;
  out.predictions = std::move(predictions);
  std::vector<double> hits(tasks().size(), 0), total(tasks().size(), 0);
  for (std::size_t i = 0; i < set.size(); ++i) {
    hits[static_cast<std::size_t>(set[i].task)] += right[i];
    total[static_cast<std::size_t>(set[i].task)] += 1;
    out.overall += right[i];
  }
  out.overall /= static_cast<double>(std::max<std::size_t>(1, set.size()));
  for (std::size_t t = 0; t < hits.size(); ++t) out.by_task.push_back(total[t] > 0 ? hits[t] / total[t] : 0.0);
  return out;
}

struct run_spec {
  std::string name;
  backend alu;
  int bits;
};

struct epoch_stats {
  xp::epoch_record record;
  double grad_norm_op = 0, grad_norm_slots = 0;
};

struct run_result {
  run_spec spec;
  std::vector<epoch_stats> epochs;
  std::vector<double> op_logits, slot_logits;  // the trained weights
  double train_seconds = 0;
};

double norm(std::span<const double> v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

/// Plain stochastic gradient descent (the --optimizer sgd ablation): x -= lr * grad.
void sgd_step(ncl::train::parameter_set<double>& params, double lr) {
  auto values = params.values();
  const auto grads = std::as_const(params).grads();
  for (std::size_t i = 0; i < values.size(); ++i) values[i] -= lr * grads[i];
}

// One step's gradient on the batch `part`, computed in `shards` parts (a power of two) whose
// gradients, each scaled by its share of the batch, are summed along a fixed binary tree
// (ncl/train/data_parallel.hpp); with MPI, rank r computes its shards and the ranks exchange
// their partial sums, so every rank holds the gradient one process computes, bit for bit.
// Leaves the gradient in model.params; returns the batch's summed loss and right answers.
struct step_outcome {
  double loss_sum = 0, right = 0;
};

step_outcome sharded_step(router_model& model, const ncl::alu::arithmetic_unit<double>& alu,
                          const std::vector<item>& train, std::span<const std::size_t> part, int shards) {
  const auto& comm = ncl::train::communicator::world();
  const auto [first, last] = ncl::train::owned_shards(shards, comm.rank(), comm.size());
  const auto count = static_cast<std::size_t>(part.size());
  ncl::train::tree_sum<double> tree;
  std::vector<double> stats;  // per owned shard: its summed loss and right answers
  for (int i = first; i < last; ++i) {
    const std::size_t lo = count * static_cast<std::size_t>(i) / static_cast<std::size_t>(shards),
                      hi = count * static_cast<std::size_t>(i + 1) / static_cast<std::size_t>(shards);
    double loss = 0, right = 0;
    model.params.zero_grad();
    if (hi > lo) {
      const auto shard = part.subspan(lo, hi - lo);
      const auto batch = batch_of(train, shard);
      std::vector<std::int64_t> answers;
      for (auto k : shard) answers.push_back(train[k].answer);
      router_cache cache;
      const auto w = model.weights();
      ncl_circuits::router_forward(cache, w, alu, batch);
      loss = ncl_circuits::router_loss(cache, answers) * static_cast<double>(hi - lo);
      const auto got = ncl_circuits::router_predictions(cache);
      for (std::size_t k = 0; k < got.size(); ++k) right += got[k] == answers[k];
      if (std::isfinite(loss)) {
        ncl_circuits::router_backward({model.params.grad(model.op_id), model.params.grad(model.slot_id)}, cache, w,
                                      alu, batch, answers);
      }
    }
    ncl::train::gradient_copy<double> g;
    g.capture(model.params);
    g.scale(static_cast<double>(hi - lo) / static_cast<double>(count));
    tree.push(std::move(g));
    stats.push_back(loss);
    stats.push_back(right);
  }
  step_outcome out;
  const auto all = ncl::train::finish_sharded_step(tree, stats, shards, comm, model.params);
  for (std::size_t at = 0; at + 1 < all.size(); at += 2) {
    out.loss_sum += all[at];
    out.right += all[at + 1];
  }
  return out;
}

run_result train_run(const run_spec& spec, const dataset& data, const xp::common_options& common,
                     const std::string& optimizer) {
  const auto& train = spec.bits == 4 ? data.train4 : data.train8;
  const auto& test = spec.bits == 4 ? data.test4 : data.wide_test.at(8);
  const ncl::alu::arithmetic_unit<double> alu(std::int64_t{1} << spec.bits, spec.alu);
  router_model model;
  ncl::rng init(common.seed * 2654435761u + 5);  // the same initial router for every run of a seed
  for (auto& x : model.params.values()) x = 0.01 * init.normal();
  ncl::train::adamw<double> adam(model.params, {.weight_decay = 0.0});
  run_result result{spec, {}, {}, {}, 0};
  const bool root = ncl::train::communicator::world().root();  // only rank 0 evaluates and prints
  if (root) {
    std::printf("%-10s %s ALU, %d bits: %zu training and %zu test problems\n", spec.name.c_str(),
                std::string(ncl::alu::backend_name(spec.alu)).c_str(), spec.bits, train.size(), test.size());
  }
  std::int64_t step = 0;
  for (std::int64_t epoch = 1; epoch <= common.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    ncl::rng shuffle(common.seed * 1000003 + static_cast<std::uint64_t>(epoch) * 7 + (spec.bits == 4 ? 0 : 1));
    std::vector<std::size_t> order(train.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (std::size_t i = order.size(); i > 1; --i) {
      std::swap(order[i - 1], order[static_cast<std::size_t>(shuffle.integer(0, static_cast<std::int64_t>(i)))]);
    }
    epoch_stats stats;
    double loss = 0, right = 0, steps = 0;
    for (std::size_t first = 0; first < order.size(); first += static_cast<std::size_t>(common.batch)) {
      const std::size_t last = std::min(order.size(), first + static_cast<std::size_t>(common.batch));
      const auto step_result = sharded_step(model, alu, train, std::span<const std::size_t>(order.data() + first, last - first),
                                            common.shards);
      const double l = step_result.loss_sum / static_cast<double>(last - first);
      ncl::train::check_finite_loss(step + 1, l);
      right += step_result.right;
      stats.grad_norm_op += norm(model.params.grad(model.op_id));
      stats.grad_norm_slots += norm(model.params.grad(model.slot_id));
      if (optimizer == "adam") {
        adam.step(model.params, common.lr);
      } else {
        sgd_step(model.params, common.lr);
      }
      loss += l;
      steps += 1;
      ++step;
    }
    result.train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto acc = root ? evaluate(model.weights(), alu, test) : accuracy_result{};
    stats.record = {epoch, step, loss / steps, right / static_cast<double>(train.size()), acc.overall, acc.by_task,
                    result.train_seconds};
    stats.grad_norm_op /= steps;
    stats.grad_norm_slots /= steps;
    result.epochs.push_back(stats);
    if (root) {
      std::printf("%-10s epoch %3lld  loss %.4f  train %.4f  test %.4f  |grad| op %.2e slots %.2e  %.1f s\n",
                  spec.name.c_str(), static_cast<long long>(epoch), stats.record.loss, stats.record.train_accuracy,
                  acc.overall, stats.grad_norm_op, stats.grad_norm_slots, result.train_seconds);
      std::fflush(stdout);
    }
  }
  result.op_logits.assign(model.params.value(model.op_id).begin(), model.params.value(model.op_id).end());
  result.slot_logits.assign(model.params.value(model.slot_id).begin(), model.params.value(model.slot_id).end());
  return result;
}

// ---- checkpoints -----------------------------------------------------------------------------------

void save_router(const std::string& path, const run_result& r, std::uint64_t seed) {
  const auto T = static_cast<std::int64_t>(tasks().size());
  const std::vector<ncl::io::tensor_view> views{
      ncl::io::make_view<double>("router.op_logits", {T, ncl_circuits::op_count}, r.op_logits),
      ncl::io::make_view<double>("router.slot_logits", {T, ncl_circuits::operands * ncl_circuits::slots}, r.slot_logits)};
  ncl::io::write_safetensors(path, views,
                             {{"ncl.experiment", "circuits"}, {"ncl.model", "minimal"}, {"ncl.run", r.spec.name},
                              {"ncl.alu", std::string(ncl::alu::backend_name(r.spec.alu))},
                              {"ncl.bits_train", std::to_string(r.spec.bits)}, {"ncl.tasks", joined(task_names())},
                              {"ncl.seed", std::to_string(seed)}});
}

struct loaded_router {
  std::vector<double> op_logits, slot_logits;
  backend alu = backend::table;
  int bits = 4;
};

loaded_router load_router(const std::string& path) {
  const auto file = ncl::io::safetensors::load(path);
  auto meta = [&](const std::string& key) {
    const auto it = file.metadata().find(key);
    if (it == file.metadata().end()) throw ncl::io_error(path + ": not an ncl-circuits router (no metadata '" + key + "')");
    return it->second;
  };
  if (meta("ncl.experiment") != "circuits") throw ncl::io_error(path + ": not an ncl-circuits router (ncl.experiment = '" + meta("ncl.experiment") + "')");
  if (meta("ncl.tasks") != joined(task_names())) {
    throw ncl::io_error(path + ": the router was trained for the tasks '" + meta("ncl.tasks") + "', this ncl-circuits has '" +
                        joined(task_names()) + "'");
  }
  loaded_router r;
  const auto T = static_cast<std::int64_t>(tasks().size());
  r.op_logits.resize(static_cast<std::size_t>(T * ncl_circuits::op_count));
  r.slot_logits.resize(static_cast<std::size_t>(T * ncl_circuits::operands * ncl_circuits::slots));
  const std::vector<std::int64_t> op_shape{T, ncl_circuits::op_count},
      slot_shape{T, ncl_circuits::operands * ncl_circuits::slots};
  file.read_into<double>("router.op_logits", std::span<double>(r.op_logits), op_shape);  // shapes checked
  file.read_into<double>("router.slot_logits", std::span<double>(r.slot_logits), slot_shape);
  for (double x : r.op_logits) if (!std::isfinite(x)) throw ncl::io_error(path + ": router.op_logits holds a non-finite value");
  for (double x : r.slot_logits) if (!std::isfinite(x)) throw ncl::io_error(path + ": router.slot_logits holds a non-finite value");
  r.alu = ncl::alu::backend_from_name(meta("ncl.alu"));
  r.bits = std::stoi(meta("ncl.bits_train"));
  return r;
}

/// The ALU for `bits`-bit numbers, or a usage error naming what the backend cannot take.
ncl::alu::arithmetic_unit<double> alu_for(backend kind, int bits) {
  if (bits < 1 || bits > 24) throw xp::usage_error(ncl::detail::concat("--bits must be in [1, 24], got ", bits));
  if (kind == backend::table && bits > 10) {
    throw xp::usage_error(ncl::detail::concat("--bits ", bits, ": the table ALU takes at most 10 bits (its tables grow as n^2); use --alu circuit"));
  }
  return ncl::alu::arithmetic_unit<double>(std::int64_t{1} << bits, kind);
}

/// --load FILE --eval FILE: one JSON object on stdout.
int evaluate_file(const xp::common_options& common, const std::string& alu_name, int bits) {
  const auto r = load_router(common.load);
  const backend kind = alu_name.empty() ? r.alu : ncl::alu::backend_from_name(alu_name == "dense" ? "dense_table" : alu_name);
  if (bits == 0) bits = r.bits;
  const auto alu = alu_for(kind, bits);
  const std::int64_t n = alu.n();
  const std::string text = ncl::read_file(common.eval);
  const auto examples = xp::parse_tsv(text, common.eval, {.answer_count = 1, .answer_limit = n, .number_limit = n});
  // Line numbers of the examples (parse_tsv skips empty lines only).
  std::vector<int> line_of;
  {
    int line = 0;
    std::istringstream in(text);
    for (std::string s; std::getline(in, s);) {
      ++line;
      if (!s.empty() && s.back() == '\r') s.pop_back();
      if (!s.empty()) line_of.push_back(line);
    }
  }
  std::vector<item> set;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    std::istringstream words(examples[i].input);
    std::string name, extra;
    std::int64_t x0 = -1, x1 = -1;
    words >> name >> x0 >> x1;
    if (!words || (words >> extra)) {
      throw ncl::parse_error(common.eval, line_of[i], 1, "expected 'TASK X0 X1', got '" + examples[i].input + "'");
    }
    const auto names = task_names();
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      throw ncl::parse_error(common.eval, line_of[i], 1, "unknown operation '" + name + "' (expected one of " + joined(names, ", ") + ")");
    }
    set.push_back({static_cast<index>(it - names.begin()), x0, x1, examples[i].answer.front()});
  }
  const router_weights w{static_cast<index>(tasks().size()), r.op_logits, r.slot_logits};
  const auto acc = evaluate(w, alu, set);  // the same path as the run's own evaluations
  json wrong = json::array();
  for (std::size_t i = 0; i < set.size() && wrong.size() < 10; ++i) {
    if (acc.predictions[i] != set[i].answer) {
      wrong.push_back({{"input", examples[i].input}, {"answer", set[i].answer}, {"got", acc.predictions[i]}});
    }
  }
  const json out{{"examples", set.size()}, {"accuracy", acc.overall},
                 {"wrong", wrong}, {"alu", std::string(ncl::alu::backend_name(kind))}, {"bits", bits}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- the report ----------------------------------------------------------------------------------

struct bootstrap_row {
  std::string run, router;
  int bits_test = 0;
  accuracy_result accuracy;
};

}  // namespace

int main(int argc, char** argv) {
  return xp::guarded_main("ncl-circuits", [&] {
    CLI::App app{"ncl-circuits: tables against circuits (paper Figure 3) and the bootstrap from a 4-bit table to "
                 "circuits of 8, 12 and 16 bits",
                 "ncl-circuits"};
    xp::common_options common;
    common.out = "results/circuits";
    common.epochs = 20;
    common.batch = 32;
    common.lr = 0.05;
    common.known_models = {"table", "circuit", "circuit-8"};
    app.add_option("--seed", common.seed, "draws the router's initial weights, the batches, the split and the operand orders")
        ->capture_default_str();
    app.add_option("--out", common.out, "where everything is written (created if missing)")->capture_default_str();
    app.add_option("--epochs", common.epochs, "passes over the training set")->capture_default_str();
    app.add_option("--threads", common.threads, "worker threads (0: every core; the numbers do not depend on it)")
        ->capture_default_str();
    app.add_flag("--quick", common.quick, "a small budget (about a minute) on the same code path");
    app.add_option("--model", common.models, "runs to train, comma-separated: table,circuit,circuit-8 (default: all)")
        ->delimiter(',');
    app.add_option("--save", common.save, "after training, write each run's router to PREFIX<run>.safetensors");
    app.add_option("--load", common.load, "load one saved router");
    app.add_option("--eval", common.eval, "with --load: evaluate on FILE ('TASK X0 X1<TAB>ANSWER' lines), print JSON");
    app.add_option("--batch", common.batch, "examples per training step")->capture_default_str();
    app.add_option("--lr", common.lr, "Adam's learning rate (constant)")->capture_default_str();
    app.add_option("--shards", common.shards,
                   "a batch's parts, their gradients summed in a fixed tree (a power of two; MPI ranks divide it)")
        ->capture_default_str();
    app.add_flag("--data-only", common.data_only, "write the data files to --out and stop");
    std::string eval_alu;
    int eval_bits = 0;
    app.add_option("--alu", eval_alu, "with --eval: the ALU to evaluate on (default: the one it trained with)")
        ->check(CLI::IsMember({"table", "dense", "circuit"}));
    app.add_option("--bits", eval_bits, "with --eval: the width of the numbers (default: the one it trained with)");
    std::string optimizer = "adam";
    app.add_option("--optimizer", optimizer, "adam, or plain sgd (the ablation)")
        ->check(CLI::IsMember({"adam", "sgd"}))
        ->capture_default_str();
    std::int64_t wide_per_task = 500, train8_per_task = 2000;
    app.add_option("--wide-test", wide_per_task, "test problems per task at 8, 12 and 16 bits")->capture_default_str();
    app.add_option("--train-8", train8_per_task, "training problems per task at 8 bits (circuit-8)")->capture_default_str();
    if (int status = xp::parse(app, argc, argv); status >= 0) return status;
    xp::check_common_options(common);
    if (wide_per_task < 1 || wide_per_task > 100000) throw xp::usage_error("--wide-test must be in [1, 100000]");
    if (train8_per_task < 1 || train8_per_task > 30000) throw xp::usage_error("--train-8 must be in [1, 30000]");
    if (common.eval.empty() && (!eval_alu.empty() || eval_bits != 0)) throw xp::usage_error("--alu and --bits go with --eval");
    if (!common.eval.empty()) return evaluate_file(common, eval_alu, eval_bits);

    const auto& comm = ncl::train::communicator::world();
    const bool root = comm.root();  // only rank 0 evaluates, prints and writes
    const auto started = std::chrono::steady_clock::now();
    const std::filesystem::path out(common.out);
    if (root) xp::make_out_dir(out);
    if (common.quick) {
      if (app.count("--epochs") == 0) common.epochs = 3;
      if (app.count("--wide-test") == 0) wide_per_task = 40;
      if (app.count("--train-8") == 0) train8_per_task = 200;
    }
    // The data, fixed before any model exists.
    const dataset data = make_data(common.seed, wide_per_task, train8_per_task);
    if (root) {
      write_items(out / "train.tsv", data.train4);
      write_items(out / "test.tsv", data.test4);
      write_items(out / "train_8bit.tsv", data.train8);
      for (const auto& [bits, set] : data.wide_test) write_items(out / ("test_" + std::to_string(bits) + "bit.tsv"), set);
      std::printf("ncl-circuits: %d threads", xp::threads_in_use(common));
      if (comm.size() > 1) std::printf(" x %d processes", comm.size());
      std::printf("; %d shards a batch\n", common.shards);
      std::fflush(stdout);
    }
    if (common.data_only) return 0;

    std::vector<run_result> runs;
    for (const auto& name : common.models) {
      const run_spec spec = name == "table" ? run_spec{name, backend::table, 4}
                            : name == "circuit" ? run_spec{name, backend::circuit, 4}
                                                : run_spec{name, backend::circuit, 8};
      runs.push_back(train_run(spec, data, common, optimizer));
      if (root && !common.save.empty()) save_router(common.save + name + ".safetensors", runs.back(), common.seed);
    }

    if (!root) return 0;

    // The bootstrap: every router, unchanged (soft) and one-hot (hard), on wider circuits.
    std::vector<bootstrap_row> boot;
    for (int bits : {8, 12, 16}) {
      const ncl::alu::arithmetic_unit<double> alu(std::int64_t{1} << bits, backend::circuit);
      for (const auto& r : runs) {
        if (bits < r.spec.bits) continue;
        const auto hard_ops = ncl_circuits::hardened(r.op_logits, ncl_circuits::op_count);
        const auto hard_slots = ncl_circuits::hardened(r.slot_logits, ncl_circuits::slots);
        const auto T = static_cast<ncl::index>(tasks().size());
        for (const char* router : {"soft", "hard"}) {
          const bool hard = std::string(router) == "hard";
          const router_weights w{T, hard ? std::span<const double>(hard_ops) : std::span<const double>(r.op_logits),
                                 hard ? std::span<const double>(hard_slots) : std::span<const double>(r.slot_logits)};
          const auto t0 = std::chrono::steady_clock::now();
          boot.push_back({r.spec.name, router, bits, evaluate(w, alu, data.wide_test.at(bits))});
          std::printf("bootstrap  %-10s %s router on the %2d-bit circuit: test %.4f  (%.1f s)\n", r.spec.name.c_str(),
                      router, bits, boot.back().accuracy.overall,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          std::fflush(stdout);
        }
      }
    }

    // summary.json
    const auto names = task_names();
    std::vector<xp::summary_row> rows;
    for (const auto& r : runs) {
      const json setting{{"alu", std::string(ncl::alu::backend_name(r.spec.alu))}, {"bits_train", r.spec.bits}};
      xp::model_result mr{"minimal", {}};
      for (const auto& e : r.epochs) mr.epochs.push_back(e.record);
      for (auto row : xp::rows_of(mr, names, setting, "op")) rows.push_back(row);
    }
    for (const auto& b : boot) {
      const run_result* r = nullptr;
      for (const auto& x : runs) if (x.spec.name == b.run) r = &x;
      json setting{{"alu", std::string(ncl::alu::backend_name(r->spec.alu))}, {"bits_train", r->spec.bits},
                   {"bits_test", b.bits_test}, {"test_alu", "circuit"}, {"router", b.router}};
      rows.push_back({"minimal", setting, "test_accuracy", b.accuracy.overall, std::nullopt, common.epochs, r->train_seconds});
      for (std::size_t t = 0; t < names.size(); ++t) {
        json s = setting;
        s["op"] = names[t];
        rows.push_back({"minimal", s, "test_accuracy", b.accuracy.by_task[t], std::nullopt, common.epochs, r->train_seconds});
      }
    }
    json orders = json::object();
    for (std::size_t t = 0; t < names.size(); ++t) orders[names[t]] = data.swapped[t] ? "a = x1, b = x0" : "a = x0, b = x1";
    const json config{{"tasks", names}, {"operand_order", orders}, {"alu_ops", "ADD SUB MUL DIV MOD MIN MAX EQ LT"},
                      {"runs", common.models}, {"epochs", common.epochs}, {"batch", common.batch}, {"lr", common.lr},
                      {"optimizer", optimizer == "adam" ? "Adam, no weight decay, constant learning rate" : "plain SGD, constant learning rate"}, {"held_out", 0.2},
                      {"train_4bit", data.train4.size()}, {"test_4bit", data.test4.size()},
                      {"train_8bit", data.train8.size()}, {"wide_test_per_task", wide_per_task},
                      {"bootstrap_bits", {8, 12, 16}}, {"quick", common.quick}, {"threads", xp::threads_in_use(common)},
                      {"shards", common.shards}, {"processes", comm.size()}};

    // curves.csv, bootstrap.csv and the figures.
    std::ostringstream curves;
    curves.precision(6);
    curves << "epoch,step,model,alu,bits_train,loss,train_accuracy,test_accuracy,train_seconds,grad_norm_op,grad_norm_slots";
    for (const auto& t : names) curves << ",test_accuracy_" << t;
    curves << "\n";
    std::vector<ncl::plot_series> accuracy, grads;
    for (const auto& r : runs) {
      ncl::plot_series a{r.spec.name, {}, {}}, gop{r.spec.name + " op", {}, {}}, gslot{r.spec.name + " slots", {}, {}};
      for (const auto& e : r.epochs) {
        curves << e.record.epoch << "," << e.record.step << "," << r.spec.name << ","
               << ncl::alu::backend_name(r.spec.alu) << "," << r.spec.bits << "," << e.record.loss << ","
               << e.record.train_accuracy << "," << e.record.test_accuracy << "," << e.record.train_seconds << ","
               << e.grad_norm_op << "," << e.grad_norm_slots;
        for (double x : e.record.test_by_tag) curves << "," << x;
        curves << "\n";
        const auto ep = static_cast<double>(e.record.epoch);
        a.x.push_back(ep);
        a.y.push_back(e.record.test_accuracy);
        gop.x.push_back(ep);
        gop.y.push_back(e.grad_norm_op);
        gslot.x.push_back(ep);
        gslot.y.push_back(e.grad_norm_slots);
      }
      accuracy.push_back(a);
      grads.push_back(gop);
      grads.push_back(gslot);
    }
    std::ostringstream bcsv;
    bcsv.precision(6);
    bcsv << "model,alu,bits_train,router,bits_test,test_accuracy";
    for (const auto& t : names) bcsv << ",test_accuracy_" << t;
    bcsv << "\n";
    std::vector<ncl::plot_series> boot_series;
    for (const auto& r : runs) {
      for (const char* router : {"soft", "hard"}) {
        ncl::plot_series s{r.spec.name + " (" + router + ")", {}, {}};
        for (const auto& b : boot) {
          if (b.run != r.spec.name || b.router != router) continue;
          bcsv << r.spec.name << "," << ncl::alu::backend_name(r.spec.alu) << "," << r.spec.bits << "," << router << ","
               << b.bits_test << "," << b.accuracy.overall;
          for (double x : b.accuracy.by_task) bcsv << "," << x;
          bcsv << "\n";
          s.x.push_back(b.bits_test);
          s.y.push_back(b.accuracy.overall);
        }
        boot_series.push_back(s);
      }
    }
    ncl::write_file_atomic(out / "curves.csv", curves.str());
    ncl::write_file_atomic(out / "bootstrap.csv", bcsv.str());
    ncl::line_chart{"ncl-circuits (seed " + std::to_string(common.seed) + "): test accuracy", "epoch", "test accuracy",
                    false, accuracy}
        .write((out / "accuracy.svg").string());
    ncl::line_chart{"ncl-circuits: mean gradient norm at the router", "epoch", "|gradient|", true, grads}
        .write((out / "grad_norm.svg").string());
    ncl::line_chart{"ncl-circuits: routers on wider circuits, unchanged", "bits of the circuit ALU", "test accuracy",
                    false, boot_series}
        .write((out / "bootstrap.svg").string());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    xp::write_summary(out, "circuits", common.seed, config, rows, seconds);
    std::printf("wrote %s (summary.json, curves.csv, bootstrap.csv, accuracy.svg, grad_norm.svg, bootstrap.svg) in %.1f s\n",
                out.string().c_str(), seconds);
    return 0;
  });
}
