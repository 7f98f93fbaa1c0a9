// ncl::buffer<S>: a std::vector whose storage starts on a 64-byte boundary.
//
// Eigen vectorises a reduction over a Map of unknown alignment by summing the elements before
// the first packet boundary one by one and the rest packet by packet, so where that boundary
// falls changes the order of the additions, and with it the rounding. malloc aligns to 16
// bytes; AVX packets are 32 bytes and AVX-512 packets 64, so a model whose scratch buffers were
// plain vectors gave results that differed in the last bit with the heap's layout (two runs in
// one process disagreed). Every float buffer a layer maps with Eigen is a buffer: its base
// sits on a boundary for every instruction set, and the alignment of a view into it depends
// only on shapes and offsets, never on the allocator.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace ncl {

inline constexpr std::size_t buffer_alignment = 64;

template <class T>
struct aligned_allocator {
  using value_type = T;
  aligned_allocator() noexcept = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{buffer_alignment}));
  }
  void deallocate(T* p, std::size_t) noexcept {
    ::operator delete(p, std::align_val_t{buffer_alignment});
  }
  template <class U>
  bool operator==(const aligned_allocator<U>&) const noexcept {
    return true;
  }
};

/// A contiguous, resizable buffer of S aligned to buffer_alignment bytes.
template <class S>
using buffer = std::vector<S, aligned_allocator<S>>;

}  // namespace ncl
