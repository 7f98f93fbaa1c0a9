// The experiment harness's parts on their own: splits, templates, the TSV reader's checks,
// tokenized batches, the summary's schema, the trainer on a tiny model.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "ncl_experiment/experiment.hpp"

namespace xp = ncl_experiment;

namespace {

std::filesystem::path temp_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("ncl_test_experiment." + std::to_string(::getpid()) + "." + name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// The error read_tsv gives for `text`, or "" when it reads.
std::string tsv_error(const std::string& text, const xp::tsv_rules& rules = {.answer_count = 1, .answer_limit = 128,
                                                                            .number_limit = 128}) {
  const auto path = temp_file("bad.tsv", text);
  std::string message;
  try {
    xp::read_tsv(path, rules);
  } catch (const ncl::parse_error& e) {
    message = e.what();
  }
  std::filesystem::remove(path);
  return message;
}

// One tiny transformer over the byte tokenizer answering 2 values from 1-token sentences.
std::vector<std::unique_ptr<xp::sentence_model>> tiny_transformer(const xp::sentence_encoder& bytes) {
  ncl::nn::llama_config c;
  c.dim = 16;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.ffn_dim = 32;
  c.vocab_size = bytes.vocab_size();
  c.output_size = 2;
  c.max_seq_len = 1;
  std::vector<std::unique_ptr<xp::sentence_model>> models;
  models.push_back(xp::make_model({"transformer", c, {}, nullptr}));
  ncl::rng init(1);
  models[0]->init(init);
  return models;
}

}  // namespace

TEST_CASE("choose_held_out holds out an exact fraction, the same for a seed", "[experiment][harness]") {
  ncl::rng a(5), b(5), c(6);
  const auto x = xp::choose_held_out(1001, 0.2, a), y = xp::choose_held_out(1001, 0.2, b),
             z = xp::choose_held_out(1001, 0.2, c);
  CHECK(std::count(x.begin(), x.end(), true) == 200);
  CHECK(x == y);
  CHECK(x != z);
  CHECK(std::count(z.begin(), z.end(), true) == 200);
  ncl::rng d(1);
  CHECK_THROWS_AS(xp::choose_held_out(10, 1.5, d), ncl::value_error);
}

TEST_CASE("says_number finds whole numbers in a sentence and model seeds depend on the name alone", "[experiment][harness]") {
  using ncl_experiment::says_number;
  CHECK(says_number("Add 3 and 41.", 3));
  CHECK(says_number("Add 3 and 41.", 41));
  CHECK_FALSE(says_number("Add 3 and 41.", 4));   // a digit of 41, not a number of the sentence
  CHECK_FALSE(says_number("Add 3 and 41.", 1));
  CHECK(says_number("107", 107));
  CHECK_FALSE(says_number("no numbers", 0));
  CHECK_FALSE(says_number("99999999999999999999999", 0));  // too long: no overflow, no match
  using ncl_experiment::detail::model_seed;
  CHECK(model_seed(1, "computer-value") == model_seed(1, "computer-value"));
  CHECK(model_seed(1, "computer-value") != model_seed(2, "computer-value"));
  CHECK(model_seed(1, "computer-value") != model_seed(1, "computer-pointer"));
}

TEST_CASE("fill_template replaces every placeholder and subsample keeps the mix", "[experiment][harness]") {
  CHECK(xp::fill_template("Add {a} and {b}, then {a}.", {{"a", 3}, {"b", 40}}) == "Add 3 and 40, then 3.");
  std::vector<xp::example> set;
  for (int i = 0; i < 100; ++i) set.push_back({"x", {i}, i < 50 ? "first" : "second"});
  const auto small = xp::subsample(set, 10);
  REQUIRE(small.size() == 10);
  CHECK(std::count_if(small.begin(), small.end(), [](const auto& e) { return e.tag == "first"; }) == 5);
  CHECK(xp::subsample(set, 1000).size() == 100);
}

TEST_CASE("TSV files round-trip and every bad line is named", "[experiment][harness][tsv]") {
  const std::vector<xp::example> set{{"Add 3 and 4.", {7}, ""}, {"Sort 5, 3.", {3, 5}, ""}};
  const auto path = std::filesystem::temp_directory_path() / ("ncl_test_experiment." + std::to_string(::getpid()) + ".tsv");
  xp::write_tsv(path, set);
  const auto back = xp::read_tsv(path, {.answer_count = 0});
  REQUIRE(back.size() == 2);
  CHECK(back[0].input == "Add 3 and 4.");
  CHECK(back[1].answer == std::vector<std::int64_t>{3, 5});
  std::filesystem::remove(path);

  CHECK(tsv_error("Add 3 and 4.\t7\nWhat is 2 plus 2?\t4\n").empty());
  CHECK(tsv_error("Add 3 and 4.\t7\r\n").empty());  // CRLF files read
  CHECK_THAT(tsv_error("Add 3 and 4.\t7\nno tab here\n"), Catch::Contains(":2:1: error: no tab"));
  CHECK_THAT(tsv_error("a\tb\t7\n"), Catch::Contains(":1:1: error: more than one tab"));
  CHECK_THAT(tsv_error("Add 3 and 4.\t7\nAdd 200 and 4.\t3\n"),
             Catch::Contains(":2:1: error: the number 200 in the input is outside [0, 128)"));
  CHECK_THAT(tsv_error("Add 3 and 4.\t128\n"), Catch::Contains(":1:1: error: the answer 128 is outside [0, 128)"));
  CHECK_THAT(tsv_error("Add 3 and 4.\t-1\n"), Catch::Contains(":1:1: error: the answer -1"));
  CHECK_THAT(tsv_error("Add 3 and 4.\tseven\n"), Catch::Contains("is not a list of integers"));
  CHECK_THAT(tsv_error("Add 3 and 4.\t7x\n"), Catch::Contains("is not a list of integers"));
  CHECK_THAT(tsv_error("Add 3 and 4.\t3 4\n"), Catch::Contains("expected 1 answer, got 2"));
  CHECK_THAT(tsv_error("Add 3 and 4.\t\n"), Catch::Contains("no answer after the tab"));
  CHECK_THAT(tsv_error("\t7\n"), Catch::Contains("the input is empty"));
  CHECK_THAT(tsv_error("Add \xff and 4.\t7\n"), Catch::Contains("invalid UTF-8"));
  CHECK_THAT(tsv_error("Add 99999999999999999999999 and 4.\t7\n"), Catch::Contains("outside [0, 128)"));
  CHECK_THAT(tsv_error(""), Catch::Contains("no examples in the file"));
  CHECK_THAT(tsv_error(std::string(5000, 'a') + "\t1\n"), Catch::Contains("bytes long"));
  CHECK_THROWS_AS(xp::read_tsv("/nonexistent/file.tsv", {}), ncl::io_error);
}

TEST_CASE("sentences are left-padded to T and a longer one is an error naming it", "[experiment][harness]") {
  const xp::sentence_encoder bytes("bytes");
  const std::vector<xp::example> set{{"ab", {1}, "x"}, {"abcd", {2}, "y"}};
  const auto T = xp::longest(bytes, {&set});
  CHECK(T == 4);
  const auto tokens = xp::tokenize(bytes, set, 5);
  REQUIRE(tokens.count() == 2);
  CHECK(tokens.tokens[0] == bytes.pad());
  CHECK(tokens.tokens[4] == 'b');  // every sentence ends at T - 1
  CHECK(tokens.tokens[9] == 'd');
  CHECK(tokens.tags == std::vector<std::string>{"x", "y"});
  xp::batch b;
  const std::vector<xp::index> rows{1};
  xp::gather(tokens, rows, b);
  CHECK(b.B == 1);
  CHECK(b.answers == std::vector<std::int64_t>{2});
  CHECK_THROWS_WITH(xp::tokenize(bytes, set, 3, "eval.tsv"), Catch::Contains("eval.tsv: example 2 ('abcd') is 4 tokens"));
  CHECK_THROWS_AS(xp::sentence_encoder("/nonexistent/tokenizer.json"), ncl::io_error);
}

TEST_CASE("the trainer trains every model on the same batches and the summary has the schema",
          "[experiment][harness][trainer]") {
  // A two-value task on the byte tokenizer: "a" -> 0, "b" -> 1, learned by a tiny transformer.
  const xp::sentence_encoder bytes("bytes");
  std::vector<xp::example> train, test;
  for (int i = 0; i < 32; ++i) train.push_back({i % 2 ? "b" : "a", {i % 2}, i % 2 ? "b" : "a"});
  test = {{"a", {0}, "a"}, {"b", {1}, "b"}};
  auto models = tiny_transformer(bytes);
  const auto results = xp::train_models(models, xp::tokenize(bytes, train, 1), xp::tokenize(bytes, test, 1),
                                        {.epochs = 5, .batch = 8, .lr = 1e-2, .progress = false});
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].epochs.size() == 5);
  CHECK(results[0].epochs.back().test_accuracy == 1.0);
  CHECK(results[0].epochs.back().step == 20);
  CHECK(results[0].epochs.back().loss < results[0].epochs.front().loss);
  CHECK(results[0].epoch_reached() >= 1);

  const auto rows = xp::rows_of(results[0], {"a", "b"}, {{"split", "random"}}, "op");
  REQUIRE(rows.size() == 3);
  const auto dir = std::filesystem::temp_directory_path() / ("ncl_test_experiment." + std::to_string(::getpid()) + ".out");
  xp::make_out_dir(dir);
  xp::write_summary(dir, "toy", 3, {{"n", 2}}, rows, 1.5);
  const auto summary = nlohmann::json::parse(ncl::read_file(dir / "summary.json"));
  CHECK(summary["experiment"] == "toy");
  CHECK(summary["seed"] == 3);
  CHECK(summary["config"]["n"] == 2);
  CHECK(summary["seconds"] == 1.5);
  REQUIRE(summary["results"].size() == 3);
  for (const auto& row : summary["results"]) {
    CHECK(row["model"] == "transformer");
    CHECK(row["metric"] == "test_accuracy");
    CHECK(row["value"].get<double>() >= 0);
    CHECK(row["value"].get<double>() <= 1);
    CHECK((row["epoch_reached"].is_null() || row["epoch_reached"].is_number_integer()));
    CHECK(row["epochs"] == 5);
    CHECK(row["train_seconds"].get<double>() >= 0);
    CHECK(row["setting"]["split"] == "random");
  }
  CHECK(summary["results"][1]["setting"]["op"] == "a");
  std::filesystem::remove_all(dir);
  CHECK_THROWS_AS(xp::make_out_dir("/dev/null/sub"), ncl::io_error);
}

TEST_CASE("a NaN loss stops training with an error naming the model and the step", "[experiment][harness][trainer]") {
  const xp::sentence_encoder bytes("bytes");
  const std::vector<xp::example> set{{"a", {0}, ""}, {"b", {1}, ""}};
  auto models = tiny_transformer(bytes);
  auto v = models[0]->params().value(models[0]->params().require("lm_head.weight"));
  v[0] = std::numeric_limits<float>::quiet_NaN();
  const auto tokens = xp::tokenize(bytes, set, 1);
  CHECK_THROWS_WITH(xp::train_models(models, tokens, tokens, {.epochs = 1, .batch = 2, .progress = false}),
                    Catch::Contains("model transformer: the loss is nan at step 1"));
}
