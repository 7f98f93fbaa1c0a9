// Higher-rank tensors (xtensor, with xsimd) and their shape checks.
#pragma once

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include <array>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>

#include "ncl/core/error.hpp"

namespace ncl {

/// A dense row-major tensor of fixed rank.
template <class S, std::size_t Rank>
using tensor = xt::xtensor<S, Rank>;

namespace detail {

template <class Shape>
std::string shape_string(const Shape& shape) {
  std::ostringstream out;
  out << "(";
  bool first = true;
  for (auto d : shape) {
    out << (first ? "" : ", ") << d;
    first = false;
  }
  out << ")";
  return out.str();
}

}  // namespace detail

/// Throws shape_error unless `t` has exactly `expected` as its shape.
template <class T, std::size_t Rank>
void check_shape(std::string_view op, std::string_view name, const T& t,
                 const std::array<std::size_t, Rank>& expected) {
  const auto& shape = t.shape();
  bool same = shape.size() == Rank;
  for (std::size_t i = 0; same && i < Rank; ++i) same = shape[i] == expected[i];
  if (!same) {
    throw shape_error(detail::concat(op, ": ", name, " has shape ", detail::shape_string(shape),
                                     ", expected ", detail::shape_string(expected)));
  }
}

}  // namespace ncl
