// One training step (forward, backward, AdamW) of the LLaMA-style model of
// /work/shared/bench/torch_llama.py: d 128 or 256, 2 layers, 4 heads (4 or 2 kv heads), ffn
// 64 * ceil(8d/3 / 64), sequence 24, batch 32, LLaMA 3's 128256-token embedding, a 128-way
// answer head at the last position, AdamW(lr 1e-3, weight decay 0.01).
//
//   BM_llama_train_step/<dim>        4 kv heads, sparse embedding gradient + lazy AdamW rows
//   BM_llama_train_step_gqa/<dim>    the same with 2 kv heads
//   BM_llama_train_step_dense/<dim>  the plain reference: the embedding a dense parameter, so
//                                    zero_grad and AdamW sweep all 128256 rows (torch's `train`)
//   BM_computer_train_step/<dim>/<T>/<slices>  the same transformer calling the machine
//                                    after block 1 (nn/computer.hpp): 8 library programs
//                                    (n = 32, L = 32, R = 6, M = 4), T machine steps, the loss
//                                    on the answer; the machine serial (1) or threaded (0)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/library/linker.hpp"
#include "ncl/nn/computer.hpp"
#include "ncl/nn/llama.hpp"
#include "ncl/train/adamw.hpp"
#include "ncl/train/parameters.hpp"

namespace {

constexpr ncl::index B = 32, T = 24;

// torch_llama.py's model: 2 layers, 4 heads, ffn 64 * ceil(8d/3 / 64), LLaMA 3's vocabulary.
ncl::nn::llama_config bench_config(ncl::index dim, ncl::index kv_heads, ncl::index output_size) {
  ncl::nn::llama_config c;
  c.dim = dim;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = kv_heads;
  c.ffn_dim = 64 * ((8 * dim / 3 + 63) / 64);
  c.vocab_size = 128256;
  c.output_size = output_size;
  c.max_seq_len = T;
  return c;
}

void train_step(benchmark::State& state, ncl::index kv_heads, bool sparse) {
  ncl::nn::llama_config c = bench_config(state.range(0), kv_heads, 128);
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

// The transformer above with the machine after block 1 instead of the answer head.
void BM_computer_train_step(benchmark::State& state) {
  const ncl::nn::llama_config c = bench_config(state.range(0), 4, 32);
  ncl::machine::machine_shape shape;
  shape.n = 32;
  shape.registers = 6;
  shape.memory = 4;
  shape.lines = 32;
  const std::vector<ncl::alu::opcode> ops{ncl::alu::opcode::ADD, ncl::alu::opcode::SUB, ncl::alu::opcode::MUL,
                                          ncl::alu::opcode::MIN, ncl::alu::opcode::MAX};
  const auto lib = ncl::library::opcode_library(shape, ops, {"absdiff", "power", "gcd"});
  ncl::train::parameter_set<float> params;
  ncl::nn::llama_computer<float> model(c, {.after_block = 1, .steps = state.range(1), .machine_slices = state.range(2)},
                                       lib, params);
  ncl::rng random(1);
  model.init(random);
  ncl::train::adamw<float> adam(params);
  std::vector<std::int32_t> tokens(B * T);
  std::vector<std::int64_t> answers(B);
  for (auto& t : tokens) t = static_cast<std::int32_t>(random.integer(0, c.vocab_size));
  for (auto& a : answers) a = random.integer(0, shape.n);
  for (auto _ : state) {
    const float loss = model.forward(tokens, {}, answers, B, T);
    params.zero_grad();
    model.backward();
    adam.step(params, 1e-3);
    benchmark::DoNotOptimize(loss);
  }
  state.counters["tokens_per_second"] =
      benchmark::Counter(static_cast<double>(B * T), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_computer_train_step)->Args({128, 8, 1})->Args({128, 37, 1})->Args({128, 37, 0})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_llama_train_step)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_llama_train_step_gqa)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_llama_train_step_dense)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
