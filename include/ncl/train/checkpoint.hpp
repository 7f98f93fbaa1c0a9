// Checkpoints of a parameter set, optionally with its AdamW state, as safetensors files.
//
// Each parameter is stored under its own name (a model that names its tensors the Hugging Face
// way, like ncl::nn::llama, writes files PyTorch's safetensors loads). The optimizer's moments
// go under "optimizer.exp_avg.<name>" and "optimizer.exp_avg_sq.<name>", its step count in the
// metadata, so training resumes to the same result bit for bit.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ncl/io/safetensors.hpp"
#include "ncl/train/adamw.hpp"
#include "ncl/train/parameters.hpp"

namespace ncl::train {

namespace detail {

inline std::vector<std::int64_t> shape64(const parameter_info& in) {
  return std::vector<std::int64_t>(in.shape.begin(), in.shape.end());
}

}  // namespace detail

/// Writes the parameters (and, if given, the optimizer state) to `path`.
template <class S>
void save_checkpoint(const std::string& path, const parameter_set<S>& params,
                     const adamw<S>* optimizer = nullptr) {
  std::vector<io::tensor_view> views;
  std::map<std::string, std::string> metadata{{"format", "ncl"}};
  for (std::size_t p = 0; p < params.count(); ++p) {
    const auto& in = params.info(p);
    views.push_back(io::make_view<S>(in.name, detail::shape64(in), params.value(p)));
  }
  if (optimizer) {
    if (optimizer->exp_avg().size() != params.total_size()) {
      throw shape_error("save_checkpoint: optimizer state does not match the parameter set");
    }
    for (std::size_t p = 0; p < params.count(); ++p) {
      const auto& in = params.info(p);
      views.push_back(io::make_view<S>("optimizer.exp_avg." + in.name, detail::shape64(in),
                                       optimizer->exp_avg().subspan(in.offset, in.size)));
      views.push_back(io::make_view<S>("optimizer.exp_avg_sq." + in.name, detail::shape64(in),
                                       optimizer->exp_avg_sq().subspan(in.offset, in.size)));
    }
    metadata["optimizer"] = "adamw";
    metadata["optimizer.step"] = std::to_string(optimizer->step_count());
  }
  io::write_safetensors(path, views, metadata);
}

/// Loads every parameter of `params` from `file` by name (shapes must match; F32, F64, F16 and
/// BF16 are converted). Tensors in the file that the set does not have are ignored.
template <class S>
void load_parameters(const io::safetensors& file, parameter_set<S>& params) {
  for (std::size_t p = 0; p < params.count(); ++p) {
    const auto& in = params.info(p);
    file.read_into<S>(in.name, params.value(p), detail::shape64(in));
  }
}

/// Loads the optimizer state written by save_checkpoint.
template <class S>
void load_optimizer(const io::safetensors& file, const parameter_set<S>& params, adamw<S>& optimizer) {
  const auto it = file.metadata().find("optimizer.step");
  if (it == file.metadata().end()) {
    throw io_error(ncl::detail::concat(file.source(), ": no optimizer state (metadata 'optimizer.step')"));
  }
  std::int64_t step = 0;
  try {
    std::size_t used = 0;
    step = std::stoll(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing characters");
  } catch (const std::exception&) {
    throw io_error(ncl::detail::concat(file.source(), ": metadata optimizer.step = '", it->second,
                                       "' is not an integer"));
  }
  if (optimizer.exp_avg().size() != params.total_size()) {
    throw shape_error("load_optimizer: optimizer state does not match the parameter set");
  }
  for (std::size_t p = 0; p < params.count(); ++p) {
    const auto& in = params.info(p);
    file.read_into<S>("optimizer.exp_avg." + in.name, optimizer.exp_avg().subspan(in.offset, in.size),
                      detail::shape64(in));
    file.read_into<S>("optimizer.exp_avg_sq." + in.name,
                      optimizer.exp_avg_sq().subspan(in.offset, in.size), detail::shape64(in));
  }
  if (step < 0) throw io_error(ncl::detail::concat(file.source(), ": optimizer.step ", step, " < 0"));
  optimizer.set_step_count(step);
}

}  // namespace ncl::train
