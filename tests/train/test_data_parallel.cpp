// Data-parallel training's pieces (ncl/train/data_parallel.hpp): the sharding rules, a
// gradient's copy (dense tensors and sorted sparse rows) and its bytes between processes, and
// the fixed balanced tree that makes every process count sum the same floats in the same order.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ncl/core/rng.hpp"
#include "ncl/train/data_parallel.hpp"
#include "ncl/train/parameters.hpp"

using ncl::train::gradient_copy;
using ncl::train::parameter_set;
using ncl::train::tree_sum;

namespace {

// w: dense 3 x 2, emb: sparse rows 5 x 2, b: dense 3.
parameter_set<float> layout() {
  parameter_set<float> ps;
  ps.add("w", {3, 2});
  ps.add("emb", {5, 2}, {.sparse_rows = true});
  ps.add("b", {3});
  return ps;
}

// A gradient with random dense values and the rows `rows` of emb touched, in that order.
void fill(parameter_set<float>& ps, ncl::rng& r, const std::vector<std::size_t>& rows) {
  ps.zero_grad();
  for (auto& g : ps.grad(0)) g = static_cast<float>(r.normal());
  for (auto& g : ps.grad(2)) g = static_cast<float>(r.normal());
  auto emb = ps.grad(1);
  for (std::size_t row : rows) {
    ps.touch_row(1, row);
    emb[row * 2] = static_cast<float>(r.normal());
    emb[row * 2 + 1] = static_cast<float>(r.normal());
  }
}

gradient_copy<float> copy_of(const parameter_set<float>& ps) {
  gradient_copy<float> g;
  g.capture(ps);
  return g;
}

// The gradient `g` stores into a fresh set of the same layout.
std::vector<float> stored(const gradient_copy<float>& g, std::vector<std::size_t>* touched = nullptr) {
  auto ps = layout();
  g.store(ps);
  if (touched) touched->assign(ps.touched_rows(1).begin(), ps.touched_rows(1).end());
  return {ps.grads().begin(), ps.grads().end()};
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("data parallel: shard counts and process counts are powers of two, ranks own contiguous shards",
          "[train][data_parallel]") {
  using ncl::train::check_sharding;
  using ncl::train::owned_shards;
  for (auto [s, r] : std::vector<std::pair<int, int>>{{1, 1}, {2, 1}, {2, 2}, {8, 4}, {64, 8}}) {
    CHECK_NOTHROW(check_sharding(s, r));
  }
  CHECK_THROWS_WITH(check_sharding(3, 1), Catch::Contains("shard count 3 is not a power of two"));
  CHECK_THROWS_WITH(check_sharding(0, 1), Catch::Contains("shard count 0"));
  CHECK_THROWS_WITH(check_sharding(4, 3), Catch::Contains("3 processes") && Catch::Contains("4 shards"));
  CHECK_THROWS_WITH(check_sharding(2, 4), Catch::Contains("4 processes") && Catch::Contains("raise the shard count"));
  CHECK_THROWS_AS(check_sharding(4, 0), ncl::value_error);

  for (int ranks : {1, 2, 4, 8}) {
    int next = 0;
    for (int rank = 0; rank < ranks; ++rank) {
      const auto [first, last] = owned_shards(8, rank, ranks);
      CHECK(first == next);
      CHECK(last - first == 8 / ranks);
      next = last;
    }
    CHECK(next == 8);
  }
}

TEST_CASE("data parallel: a gradient copy stores back bit for bit, sparse rows sorted, and scales and adds like the plain sums",
          "[train][data_parallel]") {
  ncl::rng r(7);
  auto ps = layout();
  fill(ps, r, {3, 1});
  const std::vector<float> original(ps.grads().begin(), ps.grads().end());
  std::vector<std::size_t> touched;
  CHECK(same_bits(stored(copy_of(ps), &touched), original));
  CHECK(touched == std::vector<std::size_t>{1, 3});

  // scale: every live value times the factor; untouched rows stay zero.
  auto half = copy_of(ps);
  half.scale(0.25f);
  std::vector<float> expected = original;
  for (auto& x : expected) x *= 0.25f;
  CHECK(same_bits(stored(half), expected));

  // add: dense tensors elementwise, sparse rows merged by row (3 in both, 1 and 4 in one).
  auto other = layout();
  fill(other, r, {4, 3});
  const std::vector<float> second(other.grads().begin(), other.grads().end());
  auto sum = copy_of(ps);
  sum.add(copy_of(other));
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = original[i] + second[i];
  CHECK(same_bits(stored(sum, &touched), expected));
  CHECK(touched == std::vector<std::size_t>{1, 3, 4});

  // Adding to a copy with no rows at all takes the other's rows.
  auto none = layout();
  fill(none, r, {});
  auto from_empty = copy_of(none);
  from_empty.add(copy_of(ps));
  stored(from_empty, &touched);
  CHECK(touched == std::vector<std::size_t>{1, 3});

  parameter_set<float> smaller;
  smaller.add("w", {3, 2});
  CHECK_THROWS_AS(sum.add(copy_of(smaller)), ncl::shape_error);
  CHECK_THROWS_WITH(sum.store(smaller), Catch::Contains("3 parameters for a set of 1"));
}

TEST_CASE("data parallel: a gradient's bytes round-trip, and truncated, padded or corrupt bytes are refused",
          "[train][data_parallel]") {
  ncl::rng r(11);
  auto ps = layout();
  fill(ps, r, {4, 0, 2});
  const auto g = copy_of(ps);
  const std::string bytes = g.serialize();
  gradient_copy<float> back;
  back.deserialize(bytes);
  CHECK(back.serialize() == bytes);
  CHECK(same_bits(stored(back), stored(g)));

  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK_THROWS_AS(back.deserialize(bytes.substr(0, n)), ncl::io_error);
  }
  CHECK_THROWS_WITH(back.deserialize(bytes + "x"), Catch::Contains("trailing bytes"));
  std::string huge = bytes;
  const std::uint64_t lots = std::uint64_t{1} << 60;
  std::memcpy(huge.data(), &lots, 8);
  CHECK_THROWS_WITH(back.deserialize(huge), Catch::Contains("corrupt"));

  // Bytes that parse but describe another layout: store names the problem and writes nothing.
  gradient_copy<float> wrong;
  std::string rows = bytes;  // the first sparse row index (after dense values and w's, emb's counts)
  const std::size_t first_row = 16 + 9 * sizeof(float) + 16 + 16;
  const std::uint64_t far = 99;
  std::memcpy(rows.data() + first_row, &far, 8);
  wrong.deserialize(rows);
  auto target = layout();
  fill(target, r, {1});
  const std::vector<float> before(target.grads().begin(), target.grads().end());
  CHECK_THROWS_WITH(wrong.store(target), Catch::Contains("row 99 of 'emb'"));
  CHECK(same_bits({target.grads().begin(), target.grads().end()}, before));

  // Random byte flips: a refusal (ncl::error) or a gradient that stores, never a crash (the
  // sanitizer run checks the memory).
  int refused = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string m = bytes;
    const int flips = 1 + static_cast<int>(r.integer(0, 3));
    for (int f = 0; f < flips; ++f) {
      m[static_cast<std::size_t>(r.integer(0, static_cast<std::int64_t>(m.size())))] ^=
          static_cast<char>(1 << r.integer(0, 8));
    }
    try {
      gradient_copy<float> x;
      x.deserialize(m);
      auto into = layout();
      x.store(into);
    } catch (const ncl::error&) {
      ++refused;
    }
  }
  CHECK(refused > 0);
}

TEST_CASE("data parallel: the tree sums ((g0 + g1) + (g2 + g3)), and ranks' partial sums slot into the same tree",
          "[train][data_parallel]") {
  // Dense values where the order of float additions shows: 1e8 + 1 rounds back to 1e8.
  const float values[4] = {1e8f, 1.0f, -1e8f, 1.0f};
  std::vector<gradient_copy<float>> leaves;
  for (float v : values) {
    auto ps = layout();
    for (auto& x : ps.grad(0)) x = v;
    ps.touch_row(1, static_cast<std::size_t>(v > 0 ? 2 : 3));
    leaves.push_back(copy_of(ps));
  }
  auto left = leaves[0], right = leaves[2];
  left.add(leaves[1]);
  right.add(leaves[3]);
  auto by_hand = left;
  by_hand.add(right);
  const float tree_value = (values[0] + values[1]) + (values[2] + values[3]);
  const float fold_value = ((values[0] + values[1]) + values[2]) + values[3];
  REQUIRE(tree_value != fold_value);  // the test tells the two orders apart

  tree_sum<float> tree;
  for (const auto& g : leaves) tree.push(g);
  const auto sum = stored(tree.result());
  CHECK(same_bits(sum, stored(by_hand)));
  CHECK(sum[0] == tree_value);

  // Two ranks with two shards each push their subtrees with size 2: the same bits.
  tree_sum<float> across;
  across.push(left, 2);
  across.push(right, 2);
  CHECK(same_bits(stored(across.result()), sum));

  tree_sum<float> three;
  for (int i = 0; i < 3; ++i) three.push(leaves[static_cast<std::size_t>(i)]);
  CHECK_THROWS_AS(three.result(), ncl::value_error);
  three.clear();
  CHECK_THROWS_AS(three.result(), ncl::value_error);
}

TEST_CASE("data parallel: a binary started alone is one process of rank 0", "[train][data_parallel]") {
  const auto& comm = ncl::train::communicator::world();
  CHECK(comm.size() == 1);
  CHECK(comm.rank() == 0);
  CHECK(comm.root());
  CHECK(comm.allgather("abc") == std::vector<std::string>{"abc"});
  CHECK(comm.broadcast("x") == "x");
}

TEST_CASE("data parallel: finish_sharded_step stores the tree's sum and hands back the shards' stats, one process",
          "[train][data_parallel]") {
  ncl::rng r(11);
  tree_sum<float> tree;
  auto ps = layout();
  for (const std::vector<std::size_t>& rows : {std::vector<std::size_t>{1}, std::vector<std::size_t>{4, 0}}) {
    fill(ps, r, rows);
    tree.push(copy_of(ps));
  }
  auto target = layout();
  fill(target, r, {2});  // stale values, replaced whole
  const std::vector<double> stats{1.5, 2.0, -3.25, 4.0};
  const auto all = ncl::train::finish_sharded_step(tree, stats, 2, ncl::train::communicator::world(), target);
  CHECK(all == stats);
  CHECK(same_bits({target.grads().begin(), target.grads().end()}, stored(tree.result())));
}
