// Flat open-addressing hash tables for the tokenizer's hot lookups (vocabulary by bytes,
// merge rules by id pair, the pre-token cache). std::unordered_map chases one or two
// pointers per lookup; these probe one contiguous array, and keep string keys in one arena.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ncl::detail {

/// A fast 64-bit hash of a short byte string. Never 0 (0 marks an empty slot): the top bit
/// is set, which the tables, indexing with the low bits, do not see.
inline std::uint64_t hash_bytes(std::string_view s) {
  constexpr std::uint64_t mul = 0xFF51AFD7ED558CCDULL;
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * mul;
    h ^= h >> 32;
  }
  if (n) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * mul;
    h ^= h >> 32;
  }
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 32;
  return h | (std::uint64_t{1} << 63);
}

inline std::size_t power_of_two_at_least(std::size_t n) {
  std::size_t c = 16;
  while (c < n) c <<= 1;
  return c;
}

/// String -> V with linear probing, at most half full. Keys of up to 16 bytes (nearly all
/// tokens and pre-tokens) live in the slot itself, so a lookup touches one cache line;
/// longer keys are copied into one arena.
template <class V>
class string_table {
 public:
  std::size_t size() const { return size_; }

  void reserve(std::size_t n) {
    if (2 * n > slots_.size()) rehash(power_of_two_at_least(2 * n));
  }

  void clear() {
    slots_.assign(slots_.size(), slot{});
    arena_.clear();
    size_ = 0;
  }

  const V* find(std::string_view key) const { return find(key, hash_bytes(key)); }

  /// Starts loading the slot of hash h into the cache (loops over many keys call this a few
  /// keys ahead, so the table's cache misses overlap instead of queueing).
  void prefetch(std::uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[h & mask_]);
  }

  /// find() with the key's hash_bytes() already computed.
  const V* find(std::string_view key, std::uint64_t h) const {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (s.hash == 0) return nullptr;
      if (s.hash == h && equal(s, key)) return &s.value;
    }
  }

  /// Inserts key -> value, or overwrites the value when the key is present.
  void insert_or_assign(std::string_view key, const V& value) { insert_or_assign(key, value, hash_bytes(key)); }

  /// insert_or_assign() with the key's hash_bytes() already computed.
  void insert_or_assign(std::string_view key, const V& value, std::uint64_t h) {
    if (2 * (size_ + 1) > slots_.size()) rehash(power_of_two_at_least(2 * (size_ + 1)));
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      slot& s = slots_[i];
      if (s.hash == 0) {
        s.hash = h;
        s.length = static_cast<std::uint32_t>(key.size());
        s.value = value;
        if (key.size() <= inline_bytes) {
          std::memcpy(s.key, key.data(), key.size());
        } else {
          const auto offset = static_cast<std::uint32_t>(arena_.size());
          std::memcpy(s.key, &offset, sizeof offset);
          arena_.append(key);
        }
        ++size_;
        return;
      }
      if (s.hash == h && equal(s, key)) {
        s.value = value;
        return;
      }
    }
  }

 private:
  static constexpr std::size_t inline_bytes = 16;
  struct slot {
    std::uint64_t hash = 0;  // 0: empty
    std::uint32_t length = 0;
    V value{};
    char key[inline_bytes] = {};  // the key, or the uint32 offset of a longer one in arena_
  };

  bool equal(const slot& s, std::string_view key) const {
    if (s.length != key.size()) return false;
    if (key.size() <= inline_bytes) return std::memcmp(s.key, key.data(), key.size()) == 0;
    std::uint32_t offset;
    std::memcpy(&offset, s.key, sizeof offset);
    return std::memcmp(arena_.data() + offset, key.data(), key.size()) == 0;
  }

  void rehash(std::size_t capacity) {
    std::vector<slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    for (const slot& s : old) {
      if (s.hash == 0) continue;
      std::size_t i = s.hash & mask_;
      while (slots_[i].hash != 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<slot> slots_;
  std::string arena_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

/// uint64 key -> V with linear probing, at most three quarters full (the all-ones key is
/// reserved). The merge table is the biggest: keeping it small keeps it in cache.
template <class V>
class u64_table {
 public:
  static constexpr std::uint64_t empty_key = std::numeric_limits<std::uint64_t>::max();

  std::size_t size() const { return size_; }

  void reserve(std::size_t n) {
    if (4 * n > 3 * slots_.size()) rehash(power_of_two_at_least(4 * n / 3 + 1));
  }

  void prefetch(std::uint64_t key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[mix(key) & mask_]);
  }

  const V* find(std::uint64_t key) const {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == empty_key) return nullptr;
    }
  }

  void insert_or_assign(std::uint64_t key, const V& value) {
    if (4 * (size_ + 1) > 3 * slots_.size()) rehash(power_of_two_at_least(2 * (size_ + 1)));
    for (std::size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      slot& s = slots_[i];
      if (s.key == key) {
        s.value = value;
        return;
      }
      if (s.key == empty_key) {
        s = slot{key, value};
        ++size_;
        return;
      }
    }
  }

 private:
  struct slot {
    std::uint64_t key = empty_key;
    V value{};
  };

  static std::size_t mix(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 33;
    return static_cast<std::size_t>(k);
  }

  void rehash(std::size_t capacity) {
    std::vector<slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    for (const slot& s : old) {
      if (s.key == empty_key) continue;
      std::size_t i = mix(s.key) & mask_;
      while (slots_[i].key != empty_key) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

/// A direct-mapped cache of short pre-tokens and their token ids: one 64-byte line per
/// entry, 8192 entries (512 KiB, about what a core's L2 cache holds). A new word evicts
/// whatever shared its line. Words longer than 16 bytes or of more than 8 ids are not kept.
template <class Id>
class word_cache {
 public:
  static constexpr std::size_t max_bytes = 16, max_ids = 8, lines = 65536;

  word_cache() : lines_(lines) {}

  /// The cached ids of `word` (whose hash_bytes() is h), or an empty span.
  std::span<const Id> find(std::string_view word, std::uint64_t h) const {
    const line& l = lines_[index(h)];
    if (l.hash != h || l.length != word.size() || std::memcmp(l.word, word.data(), word.size()) != 0) return {};
    return {l.ids, l.count};
  }

  void insert(std::string_view word, std::uint64_t h, std::span<const Id> ids) {
    if (word.size() > max_bytes || ids.empty() || ids.size() > max_ids) return;
    line& l = lines_[index(h)];
    l.hash = h;
    l.length = static_cast<std::uint8_t>(word.size());
    l.count = static_cast<std::uint8_t>(ids.size());
    std::memcpy(l.word, word.data(), word.size());
    std::memcpy(l.ids, ids.data(), ids.size() * sizeof(Id));
  }

 private:
  struct alignas(64) line {
    std::uint64_t hash = 0;  // 0: empty
    char word[max_bytes] = {};
    std::uint8_t length = 0, count = 0;
    Id ids[max_ids] = {};
  };
  static std::size_t index(std::uint64_t h) { return static_cast<std::size_t>(h >> 7) & (lines - 1); }
  std::vector<line> lines_;
};

}  // namespace ncl::detail
