// The BPE merge loop of one pre-token: start from its bytes' ids and repeatedly merge the
// adjacent pair of lowest rank (the leftmost one on ties) until no pair has a rule. Two
// implementations with the same result: a plain rescan, quadratic in the word length, and a
// heap over candidate pairs, n log n, for long pre-tokens (long runs of letters or spaces).
#pragma once

#include <cstdint>
#include <limits>
#include <queue>
#include <vector>

#include "ncl/tokenizer/hash_table.hpp"
#include "ncl/tokenizer/tokenizer.hpp"

namespace ncl {

/// One merge rule: the pair (left, right) becomes `result`; lower rank merges first.
struct merge_rule {
  std::int32_t rank;
  token_id result;
};

/// The merge rules keyed by the pair of ids.
class merge_table {
 public:
  void set(token_id left, token_id right, merge_rule rule) { rules_.insert_or_assign(key(left, right), rule); }
  void prefetch(token_id left, token_id right) const { rules_.prefetch(key(left, right)); }

  /// The rule for (left, right), or nullptr when the pair never merges.
  const merge_rule* find(token_id left, token_id right) const { return rules_.find(key(left, right)); }

  std::size_t size() const { return rules_.size(); }
  void reserve(std::size_t n) { rules_.reserve(n); }

 private:
  static std::uint64_t key(token_id left, token_id right) {
    return (std::uint64_t{static_cast<std::uint32_t>(left)} << 32) | static_cast<std::uint32_t>(right);
  }
  detail::u64_table<merge_rule> rules_;
};

/// The plain reference: rescan all adjacent pairs after every merge. Merges `ids` in place.
inline void merge_word_rescan(std::vector<token_id>& ids, const merge_table& merges) {
  while (ids.size() > 1) {
    std::int32_t best_rank = std::numeric_limits<std::int32_t>::max();
    std::size_t best = ids.size();
    token_id best_result = -1;
    for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
      const merge_rule* rule = merges.find(ids[i], ids[i + 1]);
      if (rule && rule->rank < best_rank) {  // strict <: the leftmost pair wins a tie
        best_rank = rule->rank;
        best = i;
        best_result = rule->result;
      }
    }
    if (best == ids.size()) break;
    ids[best] = best_result;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

/// The same merges with a min-heap of candidate pairs ordered by (rank, position) over a
/// linked list of symbols; a candidate whose symbols changed since it was pushed is stale
/// and skipped. Merges `ids` in place.
inline void merge_word_heap(std::vector<token_id>& ids, const merge_table& merges) {
  const int n = static_cast<int>(ids.size());
  if (n < 2) return;
  struct symbol {
    token_id id;
    int prev, next;  // neighbours in the list, -1 at the ends
    bool alive;
  };
  struct candidate {
    std::int32_t rank;
    int pos;  // the left symbol; its original index orders ties left to right
    token_id left, right, result;
    bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<symbol> symbols(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) symbols[static_cast<std::size_t>(i)] = {ids[static_cast<std::size_t>(i)], i - 1, i + 1 < n ? i + 1 : -1, true};
  std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
  const auto push = [&](int left) {
    const int right = symbols[static_cast<std::size_t>(left)].next;
    const token_id a = symbols[static_cast<std::size_t>(left)].id;
    const token_id b = symbols[static_cast<std::size_t>(right)].id;
    if (const merge_rule* rule = merges.find(a, b)) heap.push({rule->rank, left, a, b, rule->result});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const candidate c = heap.top();
    heap.pop();
    symbol& left = symbols[static_cast<std::size_t>(c.pos)];
    if (!left.alive || left.next < 0 || left.id != c.left) continue;
    symbol& right = symbols[static_cast<std::size_t>(left.next)];
    if (right.id != c.right) continue;
    left.id = c.result;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<std::size_t>(left.next)].prev = c.pos;
    if (left.prev >= 0) push(left.prev);
    if (left.next >= 0) push(c.pos);
  }
  ids.clear();
  for (int i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next) ids.push_back(symbols[static_cast<std::size_t>(i)].id);
}

/// Production choice: the rescan is fastest for the short pre-tokens of ordinary text, the
/// heap keeps pathological long ones (a megabyte of letters) from going quadratic.
inline void merge_word(std::vector<token_id>& ids, const merge_table& merges) {
  if (ids.size() <= 16)
    merge_word_rescan(ids, merges);
  else
    merge_word_heap(ids, merges);
}

}  // namespace ncl
