// Hashing used by the catalog and the subscription index. Fingerprints are 64-bit and live only in
// memory (they are rebuilt at every start), so a fast non-portable hash is fine; collisions never
// change a routing decision because every candidate is verified against the real values.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/hash/hash.h"

namespace herald {

// A strong 64-bit finalizer (from splitmix64): spreads every input bit over the output.
inline constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t HashBytes(std::string_view s) { return absl::Hash<std::string_view>{}(s); }

// Order-dependent combination of two hashes.
inline constexpr uint64_t HashCombine(uint64_t a, uint64_t b) {
  return Mix64(a * 0x9e3779b97f4a7c15ULL + b + 0x632be59bd9b4e019ULL);
}

// The same in every process and on every run (absl::Hash is seeded per process), for ids that
// must survive a restart. Eight bytes at a time.
inline uint64_t StableHashBytes(std::string_view s) {
  uint64_t h = 0x2545F4914F6CDD1DULL ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    h = Mix64(h ^ word) * 0x9e3779b97f4a7c15ULL;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return Mix64(h ^ tail);
}

// Maps a 64-bit hash uniformly onto [0, n) without a division (Lemire's fastrange).
inline uint64_t FastRange(uint64_t hash, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(hash) * n) >> 64);
}

}  // namespace herald
