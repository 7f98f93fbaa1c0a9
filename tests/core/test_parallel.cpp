// ncl::detail::thread_pool and parallel_for (core/parallel.hpp): every index runs exactly
// once for any thread count and grain, a chunk's exception reaches the caller, two threads
// that start loops at once both finish (one runs alone), a team's members run at once (they
// meet at a barrier), and the pool keeps working across many short loops.
#include <catch2/catch.hpp>

#include <atomic>
#include <barrier>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ncl/core/parallel.hpp"
#include "../test_threads.hpp"

TEST_CASE("parallel_for runs every index exactly once, for 1 to 4 threads and any grain", "[core][parallel]") {
  for (int threads = 1; threads <= 4; ++threads) {
    for (long count : {0L, 1L, 2L, 7L, 64L, 1000L}) {
      for (long grain : {1L, 3L, 16L, 5000L}) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
        ncl_test::with_threads(threads, [&] {
          ncl::detail::parallel_for<long>(count, true, [&](long i) { hits[static_cast<std::size_t>(i)]++; }, grain);
        });
        int wrong = 0;
        for (auto& h : hits) wrong += h.load() != 1;
        INFO("threads " << threads << ", count " << count << ", grain " << grain);
        CHECK(wrong == 0);
      }
    }
  }
}

TEST_CASE("many short loops in a row: none lost, none run twice", "[core][parallel]") {
  std::atomic<long> sum{0};
  ncl_test::with_threads(2, [&] {
    for (int loop = 0; loop < 20000; ++loop) {
      ncl::detail::parallel_for<long>(4, true, [&](long i) { sum += i + 1; });
    }
  });
  CHECK(sum.load() == 20000L * 10);
}

TEST_CASE("an exception thrown in a chunk reaches the caller, and the pool goes on", "[core][parallel]") {
  ncl_test::with_threads(2, [&] {
    CHECK_THROWS_WITH(ncl::detail::parallel_for<int>(64, true,
                                                     [](int i) {
                                                       if (i == 37) throw std::runtime_error("chunk 37");
                                                     }),
                      "chunk 37");
    std::atomic<int> n{0};
    ncl::detail::parallel_for<int>(64, true, [&](int) { ++n; });
    CHECK(n.load() == 64);
  });
}

TEST_CASE("two threads starting loops at once both finish with every index", "[core][parallel]") {
  std::vector<std::atomic<int>> a(5000), b(5000);
  auto loops = [](std::vector<std::atomic<int>>& hits) {
    ncl_test::with_threads(2, [&] {
      for (int r = 0; r < 50; ++r) {
        ncl::detail::parallel_for<long>(static_cast<long>(hits.size()), true,
                                        [&](long i) { hits[static_cast<std::size_t>(i)]++; }, 64);
      }
    });
  };
  std::thread other(loops, std::ref(a));
  loops(b);
  other.join();
  int wrong = 0;
  for (auto& h : a) wrong += h.load() != 50;
  for (auto& h : b) wrong += h.load() != 50;
  CHECK(wrong == 0);
}

TEST_CASE("a team's members run at the same time: they pass a barrier together", "[core][parallel]") {
  for (int members = 2; members <= 3; ++members) {
    std::barrier meet(members);
    std::vector<int> seen(static_cast<std::size_t>(members), 0);
    std::atomic<int> before{0};
    // False while the pool runs loops alone (after workers kept it waiting); it tries again.
    bool ran = false;
    for (int attempt = 0; attempt < 20 && !ran; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(60));
      ran = ncl::detail::parallel_team(members, [&](int me, int team) {
      CHECK(team == members);
      for (int round = 0; round < 100; ++round) {
        ++before;
        meet.arrive_and_wait();
        if (before.load() < (round + 1) * members) seen[static_cast<std::size_t>(me)]++;  // never
        meet.arrive_and_wait();
      }
    });
    }
    REQUIRE(ran);
    CHECK(before.load() == 100 * members);
    CHECK(seen == std::vector<int>(static_cast<std::size_t>(members), 0));
  }
}
