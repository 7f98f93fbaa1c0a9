// When a loop should run on OpenMP threads.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ncl::detail {

/// True when the work is worth threads (`worth_it`), OpenMP is on, and the caller is not
/// already inside a parallel region. A parallel construct whose `if` clause is false still
/// builds a team of one, and a nested one allocates it afresh each time: the machine calls
/// the ALU once per step from inside its own region, so callers branch on this instead.
inline bool threaded(bool worth_it) {
#if defined(_OPENMP)
  return worth_it && omp_in_parallel() == 0;
#else
  (void)worth_it;
  return false;
#endif
}

}  // namespace ncl::detail
