// When a loop should run on OpenMP threads, and such a loop.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ncl::detail {

/// True when the work is worth threads (`worth_it`), OpenMP is on, and the caller is not
/// inside any parallel region, not even an inactive one of a single thread. Callers branch
/// on this rather than put it in an `if` clause: a parallel construct whose `if` is false
/// still builds a team of one (allocated afresh when nested: the machine calls the ALU once
/// per step from inside its own region), and a region opened inside an inactive one is
/// active, so its threads would be a second team beside the first.
inline bool threaded(bool worth_it) {
#if defined(_OPENMP)
  return worth_it && omp_get_level() == 0;
#else
  (void)worth_it;
  return false;
#endif
}

/// fn(i) for i in [0, count): on OpenMP threads when threaded(worth_it), else in order.
template <class Int, class Fn>
void parallel_for(Int count, bool worth_it, Fn&& fn) {
  if (threaded(worth_it)) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (Int i = 0; i < count; ++i) fn(i);
  } else {
    for (Int i = 0; i < count; ++i) fn(i);
  }
}

}  // namespace ncl::detail
