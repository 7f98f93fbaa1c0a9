// Parameter masks (paper eq. 9): which parts of a controller's program are frozen library
// code and which are trainable. A program_mask marks (line, field) cells; applying it to a
// controller writes the parameter set's 0/1 mask, which AdamW honours exactly (a frozen entry
// never changes, not even through weight decay).
#pragma once

#include <cstdint>
#include <vector>

#include "ncl/library/controller.hpp"

namespace ncl::library {

class program_mask {
 public:
  explicit program_mask(index lines) : lines_(lines), frozen_(static_cast<std::size_t>(lines) * field_count, 0) {
    if (lines < 1) throw value_error(ncl::detail::concat("program_mask: ", lines, " lines"));
  }

  index lines() const { return lines_; }

  /// Freezes every field of lines [first, first + count): a whole library program.
  program_mask& freeze_program(index first, index count) {
    check_range("freeze_program", first, count);
    for (index l = first; l < first + count; ++l) freeze_line(l);
    return *this;
  }
  program_mask& freeze_line(index line) {
    for (field f : all_fields) freeze_field(line, f);
    return *this;
  }
  program_mask& freeze_field(index line, field f) {
    cell(line, "freeze_field", f) = 1;
    return *this;
  }
  /// Makes a cell trainable again: a hole in frozen code.
  program_mask& thaw_field(index line, field f) {
    cell(line, "thaw_field", f) = 0;
    return *this;
  }
  program_mask& thaw_line(index line) {
    for (field f : all_fields) thaw_field(line, f);
    return *this;
  }
  bool frozen(index line, field f) const {
    return const_cast<program_mask*>(this)->cell(line, "frozen", f) != 0;
  }

 private:
  void check_range(const char* op, index first, index count) const {
    if (first < 0 || count < 0 || first + count > lines_) {
      throw value_error(ncl::detail::concat("program_mask::", op, ": lines [", first, ", ",
                                            first + count, ") are outside [0, ", lines_, ")"));
    }
  }
  std::uint8_t& cell(index line, const char* op, field f) {
    if (line < 0 || line >= lines_) {
      throw value_error(ncl::detail::concat("program_mask::", op, ": line ", line,
                                            " is outside [0, ", lines_, ")"));
    }
    return frozen_[static_cast<std::size_t>(line) * field_count + static_cast<std::size_t>(f)];
  }

  index lines_;
  std::vector<std::uint8_t> frozen_;
};

namespace detail {

inline void check_mask_lines(const program_mask& mask, const machine::machine_shape& shape) {
  if (mask.lines() != shape.lines) {
    throw shape_error(ncl::detail::concat("apply_mask: the mask has ", mask.lines(),
                                          " lines, the controller ", shape.lines));
  }
}

}  // namespace detail

/// Writes the mask into the parameter set: a frozen cell freezes that line's logits of the field.
template <class S>
void apply_mask(train::parameter_set<S>& params, const free_controller<S>& controller,
                const program_mask& mask) {
  const auto& shape = controller.shape();
  detail::check_mask_lines(mask, shape);
  for (field f : all_fields) {
    const index width = field_width(f, shape);
    auto m = params.mask(controller.parameter(f));
    for (index l = 0; l < shape.lines; ++l) {
      const std::uint8_t trainable = mask.frozen(l, f) ? 0 : 1;
      for (index k = 0; k < width; ++k) m[static_cast<std::size_t>(l * width + k)] = trainable;
    }
  }
}

/// For a contextual controller a frozen cell freezes that line's columns of W and of the bias:
/// the line's logits then no longer depend on training, whatever the context.
template <class S>
void apply_mask(train::parameter_set<S>& params, const contextual_controller<S>& controller,
                const program_mask& mask) {
  const auto& shape = controller.shape();
  detail::check_mask_lines(mask, shape);
  for (field f : all_fields) {
    const index width = field_width(f, shape);
    const index cols = shape.lines * width;
    auto w = params.mask(controller.weight(f));
    auto b = params.mask(controller.bias(f));
    for (index l = 0; l < shape.lines; ++l) {
      const std::uint8_t trainable = mask.frozen(l, f) ? 0 : 1;
      for (index k = l * width; k < (l + 1) * width; ++k) {
        b[static_cast<std::size_t>(k)] = trainable;
        for (index c = 0; c < controller.context_dim(); ++c) w[static_cast<std::size_t>(c * cols + k)] = trainable;
      }
    }
  }
}

}  // namespace ncl::library
