// The whole LLaMA model: agreement with PyTorch (the committed fixture written by
// scripts/torch_fixture/make_llama_fixture.py), a finite-difference gradient check of a tiny
// model, sparse embedding gradients, checkpoints and resuming training.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "ncl/core/gradcheck.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/io/safetensors.hpp"
#include "ncl/nn/llama.hpp"
#include "ncl/train/adamw.hpp"
#include "ncl/train/checkpoint.hpp"
#include "ncl/train/parameters.hpp"

#include "nn_test_util.hpp"

using Index = ncl::index;

namespace {

const std::string fixture_path = std::string(NCL_SOURCE_DIR) + "/tests/nn/data/llama_tiny.safetensors";

ncl::nn::llama_config fixture_config(const ncl::io::safetensors& f) {
  const auto& m = f.metadata();
  ncl::nn::llama_config c;
  c.dim = std::stol(m.at("dim"));
  c.n_layers = std::stol(m.at("n_layers"));
  c.n_heads = std::stol(m.at("n_heads"));
  c.n_kv_heads = std::stol(m.at("n_kv_heads"));
  c.ffn_dim = std::stol(m.at("ffn_dim"));
  c.vocab_size = std::stol(m.at("vocab_size"));
  c.output_size = std::stol(m.at("output_size"));
  c.norm_eps = std::stod(m.at("norm_eps"));
  c.rope_theta = std::stod(m.at("rope_theta"));
  c.max_seq_len = std::stol(m.at("seq"));
  return c;
}

std::vector<std::int32_t> as_int32(const std::vector<std::int64_t>& v) {
  return std::vector<std::int32_t>(v.begin(), v.end());
}

ncl::nn::llama_config tiny_config() { return nn_test::tiny_config(5); }

// Compares every value of the model run on the fixture with PyTorch's, within rtol.
template <class S>
void check_against_torch(double rtol, double atol) {
  const auto f = ncl::io::safetensors::load(fixture_path);
  const auto config = fixture_config(f);
  ncl::train::parameter_set<S> params;
  ncl::nn::llama<S> model(config, params);
  ncl::train::load_parameters(f, params);
  const auto tokens = as_int32(f.read_integers("input.tokens"));
  const auto targets = as_int32(f.read_integers("input.targets"));
  const Index B = f.at("input.tokens").shape[0], T = f.at("input.tokens").shape[1];

  const S loss = model.forward(tokens, targets, B, T);
  CHECK(static_cast<double>(loss) == Approx(f.read<double>("output.loss")[0]).epsilon(rtol));
  const auto logits = f.read<double>("output.logits");
  REQUIRE(logits.size() == model.logits().size());
  for (std::size_t i = 0; i < logits.size(); ++i) {
    CHECK(static_cast<double>(model.logits()[i]) == Approx(logits[i]).epsilon(rtol).margin(atol));
  }
  params.zero_grad();
  model.backward();
  std::size_t compared = 0;
  for (std::size_t p = 0; p < params.count(); ++p) {
    const auto& in = params.info(p);
    const auto expected = f.read<double>("grad." + in.name);
    const auto got = params.grad(p);
    REQUIRE(expected.size() == got.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      INFO(in.name << "[" << i << "]");
      CHECK(static_cast<double>(got[i]) == Approx(expected[i]).epsilon(rtol).margin(atol));
      ++compared;
    }
  }
  CHECK(compared == params.total_size());
}

}  // namespace

TEST_CASE("llama: logits, loss and every gradient match PyTorch (double)", "[nn][llama][torch]") {
  check_against_torch<double>(1e-9, 1e-12);
}

TEST_CASE("llama: logits, loss and every gradient match PyTorch (float)", "[nn][llama][torch]") {
  check_against_torch<float>(2e-4, 2e-6);
}

TEST_CASE("llama: the fixture's F16 and BF16 tensors read as PyTorch converts them", "[nn][llama][torch]") {
  const auto f = ncl::io::safetensors::load(fixture_path);
  CHECK(f.read<double>("convert.f16") == f.read<double>("convert.f16_as_f64"));
  CHECK(f.read<double>("convert.bf16") == f.read<double>("convert.bf16_as_f64"));
  const auto f32 = f.read<float>("convert.f32");
  const auto f64 = f.read<double>("model.layers.0.mlp.up_proj.weight");
  for (std::size_t i = 0; i < f64.size(); ++i) CHECK(f32[i] == static_cast<float>(f64[i]));
}

TEST_CASE("llama: whole-model finite-difference gradient check", "[nn][llama][gradcheck]") {
  const auto config = tiny_config();
  ncl::train::parameter_set<double> params;
  ncl::nn::llama<double> model(config, params);
  ncl::rng random(7);
  model.init(random, 0.4);
  for (std::size_t p = 0; p < params.count(); ++p) {  // norm weights away from 1
    if (params.info(p).shape.size() == 1) {
      for (auto& x : params.value(p)) x += random.uniform(-0.3, 0.3);
    }
  }
  const Index B = 2, T = 5;
  const std::vector<std::int32_t> tokens{1, 4, 4, 9, 0, 10, 3, 2, 7, 3};
  const std::vector<std::int32_t> targets{2, 4};
  const auto r = nn_test::check_parameter_gradients(
      params, [&] { return model.forward(tokens, targets, B, T); }, [&](double d) { model.backward(d); }, 12);
  INFO(r.report());
  CHECK(r.ok);
  CHECK(r.checked > 150);
}

TEST_CASE("llama: embedding gradient touches only the batch's rows", "[nn][llama][sparse]") {
  const auto config = tiny_config();
  ncl::train::parameter_set<float> params;
  ncl::nn::llama<float> model(config, params);
  ncl::rng random(3);
  model.init(random);
  const std::vector<std::int32_t> tokens{5, 2, 5, 8};
  const std::vector<std::int32_t> targets{0, 3};
  model.forward(tokens, targets, 2, 2);
  params.zero_grad();
  model.backward();
  const auto embed = params.require("model.embed_tokens.weight");
  const auto rows = params.touched_rows(embed);
  CHECK(std::set<std::size_t>(rows.begin(), rows.end()) == std::set<std::size_t>{2, 5, 8});
  const auto g = params.grad(embed);
  for (Index r = 0; r < config.vocab_size; ++r) {
    float norm = 0;
    for (Index c = 0; c < config.dim; ++c) norm += std::abs(g[static_cast<std::size_t>(r * config.dim + c)]);
    if (r == 2 || r == 5 || r == 8) CHECK(norm > 0);
    else CHECK(norm == 0);
  }
  params.zero_grad();
  CHECK(params.touched_rows(embed).empty());
  CHECK(std::all_of(g.begin(), g.end(), [](float x) { return x == 0; }));
}

TEST_CASE("llama: bad inputs are rejected", "[nn][llama]") {
  auto config = tiny_config();
  ncl::train::parameter_set<float> params;
  ncl::nn::llama<float> model(config, params);
  const std::vector<std::int32_t> tokens{1, 2, 3, 4};
  const std::vector<std::int32_t> targets{0, 1};
  CHECK_THROWS_AS(model.forward(tokens, targets, 2, 3), ncl::shape_error);
  CHECK_THROWS_AS(model.forward(std::vector<std::int32_t>{1, 2, 3, 11}, targets, 2, 2), ncl::value_error);
  CHECK_THROWS_AS(model.forward(tokens, std::vector<std::int32_t>{0, 5}, 2, 2), ncl::value_error);
  CHECK_THROWS_AS(model.forward(std::vector<std::int32_t>(18, 0), targets, 2, 9), ncl::value_error);
  CHECK_THROWS_AS(model.backward(), ncl::value_error);
  config.n_kv_heads = 3;
  ncl::train::parameter_set<float> other;
  CHECK_THROWS_AS(ncl::nn::llama<float>(config, other), ncl::value_error);
}

TEST_CASE("llama: training from a checkpoint with optimizer state resumes bit for bit", "[nn][llama][checkpoint]") {
  const auto config = tiny_config();
  const Index B = 3, T = 4;
  ncl::rng data(11);
  std::vector<std::vector<std::int32_t>> batches, answers;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::int32_t> tok(B * T), ans(B);
    for (auto& t : tok) t = static_cast<std::int32_t>(data.integer(0, config.vocab_size));
    for (auto& a : ans) a = static_cast<std::int32_t>(data.integer(0, config.output_size));
    batches.push_back(tok);
    answers.push_back(ans);
  }
  ncl::train::adamw_options opt;
  opt.max_grad_norm = 1.0;
  auto train = [&](ncl::nn::llama<float>& model, ncl::train::adamw<float>& adam, int from, int to) {
    float loss = 0;
    for (int i = from; i < to; ++i) {
      loss = model.forward(batches[i], answers[i], B, T);
      model.params().zero_grad();
      model.backward();
      adam.step(model.params(), 1e-2);
    }
    return loss;
  };
  ncl::train::parameter_set<float> params;
  ncl::nn::llama<float> model(config, params);
  ncl::rng random(5);
  model.init(random, 0.1);
  ncl::train::adamw<float> adam(params, opt);
  const float first = model.forward(batches[0], answers[0], B, T);
  train(model, adam, 0, 5);
  const auto path = std::filesystem::temp_directory_path() / "ncl_test_llama_resume.safetensors";
  ncl::train::save_checkpoint(path.string(), params, &adam);
  train(model, adam, 5, 10);

  ncl::train::parameter_set<float> params2;
  ncl::nn::llama<float> model2(config, params2);
  ncl::train::adamw<float> adam2(params2, opt);
  const auto file = ncl::io::safetensors::load(path.string());
  ncl::train::load_parameters(file, params2);
  ncl::train::load_optimizer(file, params2, adam2);
  CHECK(adam2.step_count() == 5);
  train(model2, adam2, 5, 10);
  CHECK(std::equal(params.values().begin(), params.values().end(), params2.values().begin()));
  CHECK(std::equal(adam.exp_avg_sq().begin(), adam.exp_avg_sq().end(), adam2.exp_avg_sq().begin()));
  // the checkpoint holds Hugging Face names and the optimizer's moments
  CHECK(file.find("model.layers.1.self_attn.k_proj.weight") != nullptr);
  CHECK(file.at("model.layers.1.self_attn.k_proj.weight").shape == std::vector<std::int64_t>{4, 8});
  CHECK(file.find("optimizer.exp_avg.lm_head.weight") != nullptr);
  // and training did something
  CHECK(model.forward(batches[0], answers[0], B, T) < first);
  std::filesystem::remove(path);

  ncl::train::adamw<float> fresh(params2, opt);
  const auto no_state = std::filesystem::temp_directory_path() / "ncl_test_llama_nostate.safetensors";
  ncl::train::save_checkpoint(no_state.string(), params2);
  CHECK_THROWS_AS(ncl::train::load_optimizer(ncl::io::safetensors::load(no_state.string()), params2, fresh),
                  ncl::io_error);
  std::filesystem::remove(no_state);
}

TEST_CASE("llama: the fixture's weights written by ncl (F32) read back exactly", "[nn][llama][checkpoint]") {
  // Leaves NCL_BINARY_DIR/llama_tiny_ncl.safetensors for the PyTorch side:
  //   /usr/bin/python3 scripts/torch_fixture/make_llama_fixture.py --check <that file>
  const auto f = ncl::io::safetensors::load(fixture_path);
  const auto config = fixture_config(f);
  ncl::train::parameter_set<float> params;
  ncl::nn::llama<float> model(config, params);
  ncl::train::load_parameters(f, params);
  const std::string path = std::string(NCL_BINARY_DIR) + "/llama_tiny_ncl.safetensors";
  ncl::train::save_checkpoint(path, params);
  const auto back = ncl::io::safetensors::load(path);
  CHECK(back.metadata().at("format") == "ncl");
  ncl::train::parameter_set<float> params2;
  ncl::nn::llama<float> model2(config, params2);
  ncl::train::load_parameters(back, params2);
  CHECK(std::equal(params.values().begin(), params.values().end(), params2.values().begin()));
  for (const auto& t : back.tensors()) CHECK(t.type == ncl::io::dtype::F32);
}
