// One training step (forward, backward, AdamW) of the LLaMA-style model of
// /work/shared/bench/torch_llama.py: d 128 or 256, 2 layers, 4 heads (4 or 2 kv heads), ffn
// 64 * ceil(8d/3 / 64), sequence 24, batch 32, LLaMA 3's 128256-token embedding, a 128-way
// answer head at the last position, AdamW(lr 1e-3, weight decay 0.01).
//
//   BM_llama_train_step/<dim>        4 kv heads, sparse embedding gradient + lazy AdamW rows
//   BM_llama_train_step_gqa/<dim>    the same with 2 kv heads
//   BM_llama_train_step_dense/<dim>  the plain reference: the embedding a dense parameter, so
//                                    zero_grad and AdamW sweep all 128256 rows (torch's `train`)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/nn/llama.hpp"
#include "ncl/train/adamw.hpp"
#include "ncl/train/parameters.hpp"

namespace {

constexpr ncl::index B = 32, T = 24;

void train_step(benchmark::State& state, ncl::index kv_heads, bool sparse) {
  const ncl::index dim = state.range(0);
  ncl::nn::llama_config c;
  c.dim = dim;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = kv_heads;
  c.ffn_dim = 64 * ((8 * dim / 3 + 63) / 64);
  c.vocab_size = 128256;
  c.output_size = 128;
  c.max_seq_len = T;
  c.sparse_embedding = sparse;
  ncl::train::parameter_set<float> params;
  ncl::nn::llama<float> model(c, params);
  ncl::rng random(1);
  model.init(random);
  ncl::train::adamw<float> adam(params);
  std::vector<std::int32_t> tokens(B * T), targets(B);
  for (auto& t : tokens) t = static_cast<std::int32_t>(random.integer(0, c.vocab_size));
  for (auto& t : targets) t = static_cast<std::int32_t>(random.integer(0, c.output_size));
  for (auto _ : state) {
    const float loss = model.forward(tokens, targets, B, T);
    params.zero_grad();
    model.backward();
    adam.step(params, 1e-3);
    benchmark::DoNotOptimize(loss);
  }
  state.counters["tokens_per_second"] =
      benchmark::Counter(static_cast<double>(B * T), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["params_M"] = static_cast<double>(params.total_size()) / 1e6;
}

void BM_llama_train_step(benchmark::State& state) { train_step(state, 4, true); }
void BM_llama_train_step_gqa(benchmark::State& state) { train_step(state, 2, true); }
void BM_llama_train_step_dense(benchmark::State& state) { train_step(state, 4, false); }

}  // namespace

BENCHMARK(BM_llama_train_step)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_llama_train_step_gqa)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_llama_train_step_dense)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
