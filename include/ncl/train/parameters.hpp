// A parameter set: every trainable tensor of a model, with its name and shape, stored in one
// contiguous value buffer, one contiguous gradient buffer of the same layout, and (once
// enabled) one contiguous 0/1 mask buffer that freezes single entries.
//
// Layers view into these buffers (`value(p)`, `grad(p)`), so an optimizer, a checkpoint or a
// global gradient norm is a sweep over flat memory. Parameters are laid out back to back in the
// order they are added, with no padding: tensors added one after another with the same column
// count form one larger row-major matrix (a model fuses q/k/v projections this way).
//
// A parameter may be declared `sparse_rows` (an embedding table): its gradient is nonzero only
// in rows the backward pass marks with `touch_row`, and zero_grad and the optimizer visit only
// those rows instead of the whole table.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ncl/core/buffer.hpp"
#include "ncl/core/error.hpp"
#include "ncl/core/tensor.hpp"

namespace ncl::train {

struct parameter_options {
  bool sparse_rows = false;  ///< gradient lives in rows marked by touch_row (embeddings)
  bool weight_decay = true;  ///< AdamW's decoupled decay applies to this tensor
};

/// Where one named tensor lives in the set's buffers.
struct parameter_info {
  std::string name;
  std::vector<index> shape;
  std::size_t offset = 0;  ///< first element in values()/grads()/mask()
  std::size_t size = 0;    ///< number of elements (product of shape)
  parameter_options options;

  /// Elements per row: the product of every dimension but the first (1 for a 1-D tensor).
  std::size_t row_size() const {
    return shape.size() <= 1 ? 1 : size / static_cast<std::size_t>(shape[0]);
  }
  std::size_t rows() const { return shape.empty() ? 1 : static_cast<std::size_t>(shape[0]); }
};

namespace detail {

inline std::string shape_string(std::span<const index> shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return out + ")";
}

}  // namespace detail

template <class S>
class parameter_set {
 public:
  using scalar = S;
  using id = std::size_t;

  /// Adds a zero-initialised tensor and returns its id. Reallocates the buffers: pointers
  /// from value()/grad() taken before an add are invalid after it.
  id add(std::string name, std::vector<index> shape, parameter_options options = {}) {
    if (name.empty()) throw value_error("parameter_set::add: empty parameter name");
    if (find(name)) {
      throw value_error(ncl::detail::concat("parameter_set::add: duplicate parameter '", name, "'"));
    }
    std::size_t size = 1;
    for (index d : shape) {
      if (d <= 0) {
        throw shape_error(ncl::detail::concat("parameter_set::add: parameter '", name,
                                              "' has shape ", detail::shape_string(shape),
                                              " with a dimension <= 0"));
      }
      size *= static_cast<std::size_t>(d);
    }
    if (options.sparse_rows && shape.size() != 2) {
      throw shape_error(ncl::detail::concat("parameter_set::add: sparse_rows parameter '", name,
                                            "' must be 2-D, has shape ",
                                            detail::shape_string(shape)));
    }
    parameter_info info{std::move(name), std::move(shape), values_.size(), size, options};
    values_.resize(values_.size() + size, S(0));
    grads_.resize(values_.size(), S(0));
    if (!mask_.empty()) mask_.resize(values_.size(), 1);
    touched_.emplace_back();
    row_marked_.emplace_back(options.sparse_rows ? info.rows() : 0, std::uint8_t{0});
    infos_.push_back(std::move(info));
    return infos_.size() - 1;
  }

  std::size_t count() const { return infos_.size(); }
  /// Total number of scalars across all parameters.
  std::size_t total_size() const { return values_.size(); }
  const parameter_info& info(id p) const { return infos_.at(p); }
  const std::vector<parameter_info>& infos() const { return infos_; }

  /// The tensor named `name`, or nullptr if there is none.
  const parameter_info* find(std::string_view name) const {
    for (const auto& i : infos_) {
      if (i.name == name) return &i;
    }
    return nullptr;
  }
  /// The id of `name`; throws value_error if there is none.
  id require(std::string_view name) const {
    for (id p = 0; p < infos_.size(); ++p) {
      if (infos_[p].name == name) return p;
    }
    throw value_error(ncl::detail::concat("parameter_set: no parameter named '", name, "'"));
  }

  std::span<S> values() { return values_; }
  std::span<const S> values() const { return values_; }
  std::span<S> grads() { return grads_; }
  std::span<const S> grads() const { return grads_; }

  std::span<S> value(id p) { return values().subspan(info(p).offset, info(p).size); }
  std::span<const S> value(id p) const { return values().subspan(info(p).offset, info(p).size); }
  std::span<S> grad(id p) { return grads().subspan(info(p).offset, info(p).size); }
  std::span<const S> grad(id p) const { return grads().subspan(info(p).offset, info(p).size); }

  // ---- masks: 1 = trainable, 0 = frozen (never changed by the optimizer) ----------------

  /// Allocates the mask buffer (all ones) if it is not allocated yet.
  void enable_mask() {
    if (mask_.empty()) mask_.assign(values_.size(), 1);
  }
  bool has_mask() const { return !mask_.empty(); }
  /// The whole mask buffer (empty until enable_mask()).
  std::span<const std::uint8_t> mask() const { return mask_; }
  /// One parameter's mask; allocates the buffer on first use.
  std::span<std::uint8_t> mask(id p) {
    enable_mask();
    return std::span<std::uint8_t>(mask_).subspan(info(p).offset, info(p).size);
  }

  // ---- sparse-row gradients ------------------------------------------------------------

  /// Marks row `row` of a sparse_rows parameter as holding gradient this step.
  void touch_row(id p, std::size_t row) {
    auto& marked = row_marked_[p];
    if (row >= marked.size()) {
      throw value_error(ncl::detail::concat("parameter_set::touch_row: row ", row,
                                            " of parameter '", infos_[p].name, "' is not in [0, ",
                                            marked.size(), ")",
                                            marked.empty() ? " (not a sparse_rows parameter)" : ""));
    }
    if (!marked[row]) {
      marked[row] = 1;
      touched_[p].push_back(row);
    }
  }
  /// Rows of a sparse_rows parameter with gradient since the last zero_grad, in first-touch order.
  std::span<const std::size_t> touched_rows(id p) const { return touched_[p]; }

  /// Zeroes every gradient: dense tensors entirely, sparse_rows tensors in their touched rows.
  void zero_grad() {
    for (id p = 0; p < infos_.size(); ++p) {
      const auto& in = infos_[p];
      if (!in.options.sparse_rows) {
        std::fill_n(grads_.begin() + static_cast<std::ptrdiff_t>(in.offset), in.size, S(0));
        continue;
      }
      const std::size_t w = in.row_size();
      for (std::size_t r : touched_[p]) {
        std::fill_n(grads_.begin() + static_cast<std::ptrdiff_t>(in.offset + r * w), w, S(0));
        row_marked_[p][r] = 0;
      }
      touched_[p].clear();
    }
  }

  /// Calls f(offset, length) for every stretch of the gradient buffer that can be nonzero:
  /// whole dense tensors and the touched rows of sparse ones.
  template <class F>
  void for_each_live_range(id p, F&& f) const {
    const auto& in = infos_[p];
    if (!in.options.sparse_rows) {
      f(in.offset, in.size);
      return;
    }
    const std::size_t w = in.row_size();
    for (std::size_t r : touched_[p]) f(in.offset + r * w, w);
  }

 private:
  std::vector<parameter_info> infos_;
  buffer<S> values_;
  buffer<S> grads_;
  std::vector<std::uint8_t> mask_;
  std::vector<std::vector<std::size_t>> touched_;
  std::vector<std::vector<std::uint8_t>> row_marked_;
};

}  // namespace ncl::train
