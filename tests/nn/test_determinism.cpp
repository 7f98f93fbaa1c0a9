// Training gives the same bits whatever the thread count and wherever the buffers land: a tiny
// LLaMA with the computer layer (value heads, the machine after block 1) trained for a few
// AdamW steps with 1, 2 and 3 threads, and again with 1 thread after the heap has moved, ends
// with every weight equal bit for bit.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "ncl/alu/opcode.hpp"
#include "ncl/core/rng.hpp"
#include "ncl/library/linker.hpp"
#include "ncl/nn/computer.hpp"
#include "ncl/nn/llama.hpp"
#include "ncl/train/adamw.hpp"

#include "../test_threads.hpp"

using Index = ncl::index;

namespace {

struct trained {
  std::vector<float> weights;
  std::vector<double> losses;
};

// Batches of 64 random (a, op, b, =) sequences over 40 tokens; the answer is op(a, b) mod 8.
trained train_tiny_computer(ncl::nn::argument_head heads) {
  ncl::machine::machine_shape shape;
  shape.n = 8;
  shape.registers = 4;
  shape.memory = 2;
  shape.lines = 8;
  shape.steps = 3;
  const std::vector<ncl::alu::opcode> ops{ncl::alu::opcode::ADD, ncl::alu::opcode::MUL,
                                          ncl::alu::opcode::MAX};
  const auto lib = ncl::library::opcode_library(shape, ops);
  ncl::nn::llama_config mc;
  mc.dim = 64;
  mc.n_layers = 2;
  mc.n_heads = 4;
  mc.n_kv_heads = 2;
  mc.ffn_dim = 160;
  mc.vocab_size = 40;
  mc.output_size = 8;
  mc.max_seq_len = 8;
  ncl::nn::computer_config config{.after_block = 1, .steps = 2, .arguments = heads};
  if (heads == ncl::nn::argument_head::pointer) {
    config.token_values.assign(40, -1);
    for (int v = 0; v < 8; ++v) config.token_values[static_cast<std::size_t>(v)] = v;
  }
  ncl::train::parameter_set<float> params;
  ncl::nn::llama_computer<float> model(mc, config, lib, params);
  ncl::rng init(4);
  model.init(init, 0.1);
  ncl::train::adamw<float> optimizer(params, {.lr = 3e-3, .max_grad_norm = 1.0});
  ncl::rng data(21);
  const Index B = 64, T = 8;
  trained out;
  for (int step = 0; step < 4; ++step) {
    std::vector<std::int32_t> tokens;
    std::vector<std::int64_t> answers;
    for (Index b = 0; b < B; ++b) {
      const auto a = static_cast<std::int32_t>(data.integer(0, 8));
      const auto op = static_cast<std::int32_t>(data.integer(0, 3));
      const auto c = static_cast<std::int32_t>(data.integer(0, 8));
      tokens.insert(tokens.end(), {20, a, 8 + op, c, 12, 21, 22, 23});
      answers.push_back(ncl::alu::apply(ops[static_cast<std::size_t>(op)], a, c, 8));
    }
    std::vector<Index> positions(static_cast<std::size_t>(B), 4);
    out.losses.push_back(model.forward(tokens, positions, answers, B, T));
    params.zero_grad();
    model.backward();
    optimizer.step(params);
  }
  out.weights.assign(params.values().begin(), params.values().end());
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("determinism: a tiny LLaMA with the computer trains to the same bits on 1, 2 and 3 threads", "[nn][computer][determinism]") {
  for (auto heads : {ncl::nn::argument_head::value, ncl::nn::argument_head::pointer}) {
    INFO("heads " << (heads == ncl::nn::argument_head::value ? "value" : "pointer"));
    trained one, two, three, again;
    ncl_test::with_threads(1, [&] { one = train_tiny_computer(heads); });
    ncl_test::with_threads(2, [&] { two = train_tiny_computer(heads); });
    ncl_test::with_threads(3, [&] { three = train_tiny_computer(heads); });
    // The same run once more, with live allocations of odd sizes in between, so every buffer
    // of the model sits at another address (another offset from a vector-register boundary).
    std::vector<std::unique_ptr<char[]>> clutter;
    for (std::size_t n : {8u, 24u, 40u, 72u, 136u, 4104u}) clutter.push_back(std::make_unique<char[]>(n));
    ncl_test::with_threads(1, [&] { again = train_tiny_computer(heads); });
    CHECK(one.losses.front() > 0);
    CHECK(one.losses.back() != one.losses.front());
    CHECK(one.losses == two.losses);
    CHECK(one.losses == three.losses);
    CHECK(one.losses == again.losses);
    CHECK(same_bits(one.weights, two.weights));
    CHECK(same_bits(one.weights, three.weights));
    CHECK(same_bits(one.weights, again.weights));
  }
}
