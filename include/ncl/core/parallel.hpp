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
//
// Shared cores: ncl's loops run on its own pool of threads (thread_pool below), not on
// OpenMP's teams; OpenMP only says how many threads (OMP_NUM_THREADS, omp_set_num_threads).
// A team of OpenMP threads splits a loop into equal parts up front and its idle threads spin
// for a long while before they sleep, so with another busy process on one of two cores a
// loop waits for the part that shares a core, and the spinning steals that core: two threads
// fall far behind one. The pool hands out small chunks to whichever thread asks next, so the
// calling thread takes over the chunks of a worker that is not running, and its idle
// workers spin only briefly (spin_for below) before they sleep in the kernel. Because every
// chunk's result is written by index (see Determinism), who runs a chunk changes no bits.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

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
  // Not trivial, so a guard declared only for its scope is not an "unused variable".
  serial_eigen() {}
  ~serial_eigen() {}
#endif
  serial_eigen(const serial_eigen&) = delete;
  serial_eigen& operator=(const serial_eigen&) = delete;

 private:
#if defined(_OPENMP)
  int saved_, outer_;
#endif
};


/// True on a thread while it runs a chunk of a pool loop: loops started there run in order.
inline bool& inside_pool_loop() {
  thread_local bool inside = false;
  return inside;
}

/// Spins on `ready()` for up to `spin_for` (a pause between polls), then yields and finally
/// blocks on `word` with std::atomic::wait while `word == seen` (a futex on Linux).
inline constexpr std::chrono::microseconds spin_for{50};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

template <class Word, class Ready>
void wait_until(const std::atomic<Word>& word, Ready&& ready) {
  const auto until = std::chrono::steady_clock::now() + spin_for;
  for (int i = 0;; ++i) {
    if (ready()) return;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) break;
    cpu_relax();
  }
  for (;;) {
    const Word seen = word.load(std::memory_order_acquire);
    if (ready()) return;
    word.wait(seen, std::memory_order_acquire);
  }
}

/// A pool of worker threads for ncl's loops. for_chunks(count, threads, fn) calls fn(c) for
/// every chunk c in [0, count) exactly once, on the calling thread and up to threads - 1
/// workers, each thread taking the next chunk when it finishes one, and returns when all
/// are done. One loop runs at a time: a second thread that asks while one runs does its loop
/// alone. Workers start the first time they are needed and stop at program exit.
class thread_pool {
 public:
  static thread_pool& shared() {
    static thread_pool pool;
    return pool;
  }

  thread_pool() = default;
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      const std::lock_guard lock(state_);
      stop_ = true;
      epoch_.fetch_add(1, std::memory_order_release);
    }
    epoch_.notify_all();
    for (auto& w : workers_) w.join();
  }

  template <class Fn>
  void for_chunks(std::int64_t count, int threads, Fn&& fn) {
    if (!try_for_chunks(count, threads, fn)) {
      for (std::int64_t c = 0; c < count; ++c) fn(c);
    }
  }

  /// for_chunks with every chunk on a thread of its own at once (count <= threads), so the
  /// chunks may wait for each other; false, having run nothing, when another loop holds the
  /// pool or there is a single thread.
  template <class Fn>
  bool try_for_chunks(std::int64_t count, int threads, Fn&& fn) {
    if (count <= 0) return true;
    std::unique_lock busy(loop_, std::try_to_lock);
    if (!busy.owns_lock() || threads <= 1 || count == 1 || count >= (std::int64_t(1) << 31)) return false;
    const auto start = std::chrono::steady_clock::now();
    if (start < alone_until_) return false;
    using F = std::remove_reference_t<Fn>;
    job j;
    j.call = [](void* ctx, std::int64_t c) { (*static_cast<F*>(ctx))(c); };
    j.ctx = const_cast<void*>(static_cast<const void*>(std::addressof(fn)));
    j.chunks = static_cast<std::uint32_t>(count);
    j.workers = static_cast<int>(std::min<std::int64_t>(threads - 1, count - 1));
    std::uint32_t epoch;
    {
      const std::lock_guard lock(state_);
      while (static_cast<int>(workers_.size()) < j.workers) {
        const int id = static_cast<int>(workers_.size());
        workers_.emplace_back([this, id, seen = epoch_.load()] { work(id, seen); });
      }
      job_ = j;
      failure_ = nullptr;
      done_.store(0, std::memory_order_relaxed);
      epoch = epoch_.load(std::memory_order_relaxed) + 1;
      ticket_.store(std::uint64_t(epoch) << 32, std::memory_order_relaxed);
      epoch_.store(epoch, std::memory_order_release);
    }
    epoch_.notify_all();
    run_chunks(epoch, j);
    const auto own_done = std::chrono::steady_clock::now();
    wait_until(done_, [&] { return done_.load(std::memory_order_acquire) == j.chunks; });
    note_wait(start, own_done, std::chrono::steady_clock::now());
    if (failure_) std::rethrow_exception(failure_);
    return true;
  }

 private:
  struct job {
    void (*call)(void*, std::int64_t) = nullptr;
    void* ctx = nullptr;
    std::uint32_t chunks = 0;
    int workers = 0;
  };

  // Fewer threads chosen at run time: a loop whose caller, its own chunks done, then waited
  // longer than they took was held up by a worker that did not run (its core is busy with
  // other work). After `late_limit` such loops in a row the caller runs loops alone for
  // `alone_for`, then tries the workers again. Who runs a chunk changes no result.
  static constexpr int late_limit = 3;
  static constexpr std::chrono::milliseconds alone_for{50};
  void note_wait(std::chrono::steady_clock::time_point start, std::chrono::steady_clock::time_point own_done,
                 std::chrono::steady_clock::time_point end) {
    const auto own = own_done - start, waited = end - own_done;
    if (waited > own && waited > std::chrono::microseconds(20)) {
      if (++late_ >= late_limit) {
        late_ = 0;
        alone_until_ = end + alone_for;
      }
    } else {
      late_ = 0;
    }
  }

  // Claims chunks of loop `epoch` until none is left. A ticket is (epoch, next chunk), so a
  // thread that wakes late for a loop already over claims nothing of the next one.
  void run_chunks(std::uint32_t epoch, const job& j) {
    const bool outer = inside_pool_loop();
    inside_pool_loop() = true;
    for (;;) {
      std::uint64_t t = ticket_.load(std::memory_order_relaxed);
      do {
        if (std::uint32_t(t >> 32) != epoch || std::uint32_t(t) >= j.chunks) {
          inside_pool_loop() = outer;
          return;
        }
      } while (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel));
      try {
        j.call(j.ctx, std::int64_t(std::uint32_t(t)));
      } catch (...) {
        const std::lock_guard lock(state_);
        if (!failure_) failure_ = std::current_exception();
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == j.chunks) done_.notify_all();
    }
  }

  void work(int id, std::uint32_t seen) {
    for (;;) {
      wait_until(epoch_, [&] { return epoch_.load(std::memory_order_acquire) != seen; });
      job j;
      {
        const std::lock_guard lock(state_);
        if (stop_) return;
        seen = epoch_.load(std::memory_order_relaxed);
        j = job_;
      }
      if (id < j.workers) run_chunks(seen, j);
    }
  }

  std::mutex loop_;   // held by the thread whose loop runs; it guards late_ and alone_until_
  int late_ = 0;
  std::chrono::steady_clock::time_point alone_until_{};
  std::mutex state_;  // guards job_, failure_, stop_, workers_ and the publication of a loop
  std::vector<std::thread> workers_;
  job job_;
  std::exception_ptr failure_;
  bool stop_ = false;
  std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<std::uint32_t> done_{0};
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
  return worth_it && omp_get_level() == 0 && !inside_pool_loop() && team_size() > 1;
#else
  (void)worth_it;
  return false;
#endif
}

/// fn(i) for i in [0, count): on the pool's threads when threaded(worth_it), else in order;
/// `grain` consecutive indices make a chunk. Either way Eigen products inside fn are
/// single-threaded (serial_eigen), so what fn(i) computes does not depend on the team.
template <class Int, class Fn>
void parallel_for(Int count, bool worth_it, Fn&& fn, Int grain = 1) {
  (void)grain;  // only the threaded path cuts chunks
  if (threaded(worth_it && count > 1)) {
#if defined(_OPENMP)
    const std::int64_t n = static_cast<std::int64_t>(count), g = std::max<std::int64_t>(1, grain);
    thread_pool::shared().for_chunks((n + g - 1) / g, team_size(), [&](std::int64_t c) {
      const serial_eigen one_thread;
      for (std::int64_t i = c * g, end = std::min(n, i + g); i < end; ++i) fn(static_cast<Int>(i));
    });
#endif
  } else {
    const serial_eigen one_thread;
    for (Int i = 0; i < count; ++i) fn(i);
  }
}

/// The grain that cuts `count` indices into about eight chunks per thread (parallel_for's
/// last argument, of the count's type).
template <class Int>
Int grain_for(Int count) {
#if defined(_OPENMP)
  return std::max<Int>(1, static_cast<Int>(count / (8 * std::max(1, team_size()))));
#else
  return std::max<Int>(1, count);
#endif
}

/// fn(member, members) on `members` threads at once (members >= 2): the calls may wait for
/// each other, as the machine's slices do. False, having called nothing, when the pool is
/// taken by another thread's loop; the caller then runs its serial path.
template <class Fn>
bool parallel_team(int members, Fn&& fn) {
  return thread_pool::shared().try_for_chunks(members, members, [&](std::int64_t m) {
    const serial_eigen one_thread;
    fn(static_cast<int>(m), members);
  });
}

}  // namespace ncl::detail
