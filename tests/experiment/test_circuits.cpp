// ncl-circuits: the router's backward against finite differences (table and circuit ALUs, in
// double), the router's width independence, and the binary end to end: a --quick run's
// results and files, --save + --load + --eval, and bad input (exit 2, the problem named).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <ncl/core/file.hpp>
#include <ncl/core/gradcheck.hpp>
#include <ncl/core/rng.hpp>
#include <ncl/io/safetensors.hpp>

#include "../test_process.hpp"
#include "ncl-circuits/router.hpp"

namespace {

using ncl::alu::arithmetic_unit;
using ncl::alu::backend;
using ncl_circuits::router_batch;
using ncl_circuits::router_cache;
using ncl_circuits::router_weights;

router_batch random_batch(ncl::rng& random, ncl::index tasks, std::int64_t n, ncl::index size) {
  router_batch b;
  for (ncl::index i = 0; i < size; ++i) {
    b.task.push_back(random.integer(0, tasks));
    b.x0.push_back(random.integer(0, n));
    b.x1.push_back(random.integer(0, n));
  }
  return b;
}

}  // namespace

TEST_CASE("circuits: the router's backward matches finite differences, table and circuit ALUs",
          "[experiment][circuits][gradcheck]") {
  for (backend kind : {backend::table, backend::circuit}) {
    INFO("ALU " << ncl::alu::backend_name(kind));
    const std::int64_t n = 8;
    const ncl::index tasks = 3, B = 6;
    const arithmetic_unit<double> alu(n, kind);
    ncl::rng random(kind == backend::table ? 11 : 12);
    std::vector<double> ops(static_cast<std::size_t>(tasks * ncl_circuits::op_count)),
        slot(static_cast<std::size_t>(tasks * 4));
    for (auto& x : ops) x = random.normal();
    for (auto& x : slot) x = random.normal();
    const auto batch = random_batch(random, tasks, n, B);
    std::vector<std::int64_t> answers;
    for (ncl::index b = 0; b < B; ++b) answers.push_back(random.integer(0, n));
    auto forward = [&] {
      router_cache c;
      ncl_circuits::router_forward(c, {tasks, ops, slot}, alu, batch);
      return std::vector<double>{ncl_circuits::router_loss(c, answers)};
    };
    auto backward = [&](std::span<const double> dout) {
      router_cache c;
      const router_weights w{tasks, ops, slot};
      ncl_circuits::router_forward(c, w, alu, batch);
      std::vector<double> gops(ops.size(), 0.0), gslot(slot.size(), 0.0);
      ncl_circuits::router_backward({gops, gslot}, c, w, alu, batch, answers);
      for (auto& g : gops) g *= dout[0];
      for (auto& g : gslot) g *= dout[0];
      return std::vector<std::vector<double>>{gops, gslot};
    };
    const auto result = ncl::gradcheck({{"op_logits", ops}, {"slot_logits", slot}}, forward, backward,
                                       {.samples_per_input = 64, .min_checked = 20});
    INFO(result.report());
    CHECK(result.ok);
  }
}

TEST_CASE("circuits: one router's weights route the same at every width and, made hard, answer exactly",
          "[experiment][circuits]") {
  // A router that means: task 0 = SUB with a = x1, b = x0; task 1 = LT with a = x0, b = x1.
  const ncl::index tasks = 2;
  std::vector<double> ops(static_cast<std::size_t>(tasks * ncl_circuits::op_count), 0.0), slot(8, 0.0);
  ops[1] = 9;                              // table_ops[1] = SUB
  ops[ncl_circuits::op_count + 8] = 9;     // table_ops[8] = LT
  slot = {0, 7, 7, 0, 7, 0, 0, 7};
  const router_weights w{tasks, ops, slot};
  const auto hard_ops = ncl_circuits::hardened(ops, ncl_circuits::op_count);
  const auto hard_slot = ncl_circuits::hardened(slot, ncl_circuits::slots);
  const router_weights hard{tasks, hard_ops, hard_slot};
  CHECK(ncl_circuits::hard_routing(w, 0) == ncl_circuits::routing{1, 1, 0});
  CHECK(ncl_circuits::hard_routing(w, 1) == ncl_circuits::routing{8, 0, 1});
  CHECK(ncl_circuits::hard_routing(hard, 0) == ncl_circuits::hard_routing(w, 0));
  ncl::rng random(5);
  for (int bits : {4, 8, 12, 16}) {
    INFO(bits << " bits");
    const std::int64_t n = std::int64_t{1} << bits;
    const arithmetic_unit<double> alu(n, bits == 4 ? backend::table : backend::circuit);
    const auto batch = random_batch(random, tasks, n, 16);
    router_cache soft_cache, hard_cache;
    ncl_circuits::router_forward(soft_cache, w, alu, batch);
    ncl_circuits::router_forward(hard_cache, hard, alu, batch);
    const auto got = ncl_circuits::router_predictions(hard_cache);
    for (ncl::index b = 0; b < batch.size(); ++b) {
      const auto i = static_cast<std::size_t>(b);
      const std::int64_t want = batch.task[i] == 0 ? ncl::alu::apply(ncl::alu::opcode::SUB, batch.x1[i], batch.x0[i], n)
                                                   : ncl::alu::apply(ncl::alu::opcode::LT, batch.x0[i], batch.x1[i], n);
      CHECK(got[i] == want);
      CHECK(hard_cache.o(b, want) == Approx(1.0).margin(1e-12));
      // The soft router's routing weights are the same numbers at every width.
      CHECK(soft_cache.alpha(b, batch.task[i] == 0 ? 1 : 0) == Approx(1 / (1 + std::exp(-7.0))));
    }
  }
}

#ifdef NCL_HAVE_NCL_CIRCUITS

namespace {

const std::string circuits = NCL_BINARY_DIR "/examples/ncl-circuits/ncl-circuits";

std::filesystem::path scratch(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("ncl_test_circuits." + std::to_string(::getpid()) + "." + name);
}

ncl_test::cli_result run(const std::string& args) { return ncl_test::run_command(circuits + " " + args); }

}  // namespace

TEST_CASE("ncl-circuits --quick: the table learns in one epoch, the hard bootstrap is exact, --eval reproduces it",
          "[experiment][circuits]") {
  const auto dir = scratch("quick");
  const auto r = run("--quick --model table,circuit --wide-test 20 --out " + dir.string() + " --save " +
                     (dir / "router-").string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  for (const char* f : {"summary.json", "curves.csv", "bootstrap.csv", "accuracy.svg", "grad_norm.svg", "bootstrap.svg",
                        "train.tsv", "test.tsv", "train_8bit.tsv", "test_8bit.tsv", "test_12bit.tsv", "test_16bit.tsv"}) {
    CHECK(std::filesystem::exists(dir / f));
  }
  const auto summary = nlohmann::json::parse(ncl::read_file(dir / "summary.json"));
  CHECK(summary["experiment"] == "circuits");
  CHECK(summary["config"]["runs"] == nlohmann::json({"table", "circuit"}));
  int table_rows = 0, hard_rows = 0;
  for (const auto& row : summary["results"]) {
    CHECK(row["model"] == "minimal");
    CHECK(row["value"].get<double>() >= 0.0);
    CHECK(row["value"].get<double>() <= 1.0);
    const auto& s = row["setting"];
    if (s["alu"] == "table" && s["bits_train"] == 4 && !s.contains("bits_test") && !s.contains("op")) {
      ++table_rows;
      CHECK(row["epoch_reached"] == 1);  // the table: >= 99% test accuracy in the first epoch
    }
    if (s.contains("bits_test") && s["router"] == "hard" && s["alu"] == "table") {
      ++hard_rows;
      CHECK(row["value"].get<double>() >= 0.99);  // the swap to 8-, 12- and 16-bit circuits
    }
  }
  CHECK(table_rows == 1);
  CHECK(hard_rows == 3 * 8);  // three widths, overall and seven operations
  // The saved table router, evaluated on the 12-bit test set through the 12-bit circuit.
  const auto ev = run("--load " + (dir / "router-table.safetensors").string() + " --eval " +
                      (dir / "test_12bit.tsv").string() + " --alu circuit --bits 12");
  INFO(ev.err);
  REQUIRE(ev.status == 0);
  const auto j = nlohmann::json::parse(ev.out);
  CHECK(j["bits"] == 12);
  CHECK(j["alu"] == "circuit");
  double soft_12 = -1;
  for (const auto& row : summary["results"]) {
    const auto& s = row["setting"];
    if (s.value("bits_test", 0) == 12 && s["router"] == "soft" && s["alu"] == "table" && !s.contains("op")) {
      soft_12 = row["value"].get<double>();
    }
  }
  CHECK(j["accuracy"].get<double>() == soft_12);
  std::filesystem::remove_all(dir);
}

TEST_CASE("ncl-circuits rejects bad widths, routers of another shape and unknown operations with exit 2",
          "[experiment][circuits][cli]") {
  const auto dir = scratch("bad");
  std::filesystem::create_directories(dir);
  REQUIRE(run("--quick --model table --epochs 1 --wide-test 2 --train-8 2 --out " + dir.string() + " --save " +
              (dir / "r-").string())
              .status == 0);
  const std::string router = (dir / "r-table.safetensors").string();
  const auto eval_file = dir / "e.tsv";
  ncl::write_file_atomic(eval_file, "add 1 2\t3\n");
  {
    const auto r = run("--load " + router + " --eval " + eval_file.string() + " --bits 30");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--bits must be in [1, 24]"));
  }
  {
    const auto r = run("--load " + router + " --eval " + eval_file.string() + " --alu table --bits 16");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("the table ALU takes at most 10 bits"));
  }
  {
    ncl::write_file_atomic(dir / "unknown.tsv", "add 1 2\t3\n\npower 2 3\t8\n");
    const auto r = run("--load " + router + " --eval " + (dir / "unknown.tsv").string());
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown.tsv:3:1: error: unknown operation 'power'"));
  }
  {
    ncl::write_file_atomic(dir / "range.tsv", "add 1 20\t5\n");
    const auto r = run("--load " + router + " --eval " + (dir / "range.tsv").string() + " --bits 4");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("range.tsv:1:1"));
  }
  {
    // A router with another number of tasks: the same file with a (6, 9) op tensor.
    const auto file = ncl::io::safetensors::load(router);
    auto ops = file.read<double>("router.op_logits");
    auto slots = file.read<double>("router.slot_logits");
    ops.resize(6 * 9);
    const std::vector<ncl::io::tensor_view> views{ncl::io::make_view<double>("router.op_logits", {6, 9}, ops),
                                                  ncl::io::make_view<double>("router.slot_logits", {7, 4}, slots)};
    const std::string other = (dir / "other.safetensors").string();
    ncl::io::write_safetensors(other, views, file.metadata());
    const auto r = run("--load " + other + " --eval " + eval_file.string());
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("other.safetensors") && Catch::Contains("router.op_logits"));
  }
  {
    const auto r = run("--load " + (dir / "missing.safetensors").string() + " --eval " + eval_file.string());
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("missing.safetensors"));
  }
  {
    const auto r = run("--bits 8 --out " + dir.string());
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--alu and --bits go with --eval"));
  }
  {
    const auto r = run("--model tables --out " + dir.string());
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown model 'tables'"));
  }
  std::filesystem::remove_all(dir);
}

#endif
