// Helpers shared by the nn tests.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "ncl/core/gradcheck.hpp"
#include "ncl/nn/llama.hpp"
#include "ncl/train/parameters.hpp"

namespace nn_test {

/// A tiny model for gradient checks: dim 8, 2 layers, 2 heads sharing 1 kv head, vocab 11.
inline ncl::nn::llama_config tiny_config(ncl::index output_size) {
  ncl::nn::llama_config c;
  c.dim = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.ffn_dim = 12;
  c.vocab_size = 11;
  c.output_size = output_size;
  c.max_seq_len = 8;
  return c;
}

/// Finite-difference check of every parameter in `params` for a scalar loss: `loss()` runs a
/// forward pass; `backward(dloss)` runs backward for the last forward, adding into the
/// gradients (zeroed here before each call).
inline ncl::gradcheck_result check_parameter_gradients(ncl::train::parameter_set<double>& params,
                                                       const std::function<double()>& loss,
                                                       const std::function<void(double)>& backward,
                                                       std::size_t samples_per_input) {
  std::vector<ncl::gradcheck_input> inputs;
  for (std::size_t p = 0; p < params.count(); ++p) inputs.push_back({params.info(p).name, params.value(p)});
  auto fwd = [&] { return std::vector<double>{loss()}; };
  auto bwd = [&](std::span<const double> dloss) {
    loss();
    params.zero_grad();
    backward(dloss[0]);
    std::vector<std::vector<double>> grads;
    for (std::size_t p = 0; p < params.count(); ++p) grads.emplace_back(params.grad(p).begin(), params.grad(p).end());
    return grads;
  };
  ncl::gradcheck_options options;
  options.samples_per_input = samples_per_input;
  options.atol = 1e-8;
  options.rtol = 1e-5;
  return ncl::gradcheck(inputs, fwd, bwd, options);
}

}  // namespace nn_test
