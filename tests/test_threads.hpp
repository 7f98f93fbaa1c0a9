// Shared by the determinism tests of several areas: run a function with OpenMP's thread
// count set to a given number.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ncl_test {

/// fn() with OpenMP's thread count set to `threads` (restored after).
template <class Fn>
void with_threads(int threads, Fn&& fn) {
#if defined(_OPENMP)
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  fn();
  omp_set_num_threads(saved);
#else
  (void)threads;
  fn();
#endif
}

}  // namespace ncl_test
