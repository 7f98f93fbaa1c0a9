// When a loop should run on OpenMP threads, and such a loop.
//
// Determinism: ncl's results do not depend on the number of threads. Every loop here splits
// its work by the data (a fixed range of indices per call of fn), never by the team, and
// whatever a call of fn adds up it adds in the same order on any thread. Eigen's products
// would break that on their own: with OpenMP, Eigen splits a large product over the threads
// and its blocking then depends on the split (tests/core/test_product.cpp shows the bits
// change). So the Eigen products that ncl runs are single-threaded (serial_eigen below), and
// the large ones are cut into tiles by their shape (ncl/core/product.hpp). Eigen takes its
// thread count from OpenMP unless Eigen::setNbThreads was called: a program that calls it
// with more than one thread loses ncl's bit-identical results.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ncl::detail {

#if defined(_OPENMP)
/// The thread count that was in force when the calling thread's outermost serial_eigen
/// began; 0 when none is alive.
inline int& threads_before_serial_eigen() {
  thread_local int threads = 0;
  return threads;
}
#endif

/// While alive, Eigen products started by the calling thread run on that thread only: it
/// sets OpenMP's thread count for nested regions of the calling task to 1 (Eigen reads it
/// through omp_get_max_threads) and restores it on destruction. Inside a parallel region it
/// touches only the calling thread's own setting. ncl's own loops still get every thread
/// (team_size).
class serial_eigen {
 public:
#if defined(_OPENMP)
  serial_eigen() : saved_(omp_get_max_threads()), outer_(threads_before_serial_eigen()) {
    if (outer_ == 0) threads_before_serial_eigen() = saved_;
    omp_set_num_threads(1);
  }
  ~serial_eigen() {
    omp_set_num_threads(saved_);
    threads_before_serial_eigen() = outer_;
  }
#else
  serial_eigen() = default;
#endif
  serial_eigen(const serial_eigen&) = delete;
  serial_eigen& operator=(const serial_eigen&) = delete;

 private:
#if defined(_OPENMP)
  int saved_, outer_;
#endif
};

#if defined(_OPENMP)
/// The threads an ncl parallel region may use: OpenMP's count, as it was before any
/// serial_eigen of the calling thread lowered it for Eigen.
inline int team_size() {
  const int before = threads_before_serial_eigen();
  return before > 0 ? before : omp_get_max_threads();
}
#endif

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
/// Either way Eigen products inside fn are single-threaded (serial_eigen), so what fn(i)
/// computes does not depend on the team.
template <class Int, class Fn>
void parallel_for(Int count, bool worth_it, Fn&& fn) {
  if (threaded(worth_it)) {
#if defined(_OPENMP)
#pragma omp parallel num_threads(team_size())
    {
      const serial_eigen one_thread;
#pragma omp for schedule(static)
      for (Int i = 0; i < count; ++i) fn(i);
    }
#endif
  } else {
    const serial_eigen one_thread;
    for (Int i = 0; i < count; ++i) fn(i);
  }
}

}  // namespace ncl::detail
