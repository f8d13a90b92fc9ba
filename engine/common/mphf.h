// A minimal perfect hash function over distinct 64-bit keys, in the style of PTHash
// (Pibiri & Trani, SIGIR 2021): keys are split into skewed buckets, buckets are placed largest
// first by searching a per-bucket "pilot" that sends all their keys to free slots of a table
// slightly larger than n, and the few slots beyond n are remapped into the holes below n.
// A lookup is two multiplications, one pilot load and (rarely) one remap load; it answers a value
// in [0, n) for every key, members or not, so callers verify a stored fingerprint.
//
// Immutable after Build(); any number of threads may call Lookup() concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/common/hash.h"

#define HERALD_MPHF_LIKELY(x) __builtin_expect(!!(x), 1)

namespace herald {

class Mphf {
 public:
  // Builds over `keys`, which must be distinct. Fails only if keys repeat.
  absl::Status Build(absl::Span<const uint64_t> keys);

  uint64_t size() const { return n_; }

  // Lookups in two steps so a caller can overlap the memory loads of several keys:
  // Prepare (hash, bucket; prefetch the pilot) for all, then Finish for all.
  struct Probe {
    uint64_t hash;
    uint64_t bucket;
  };
  Probe Prepare(uint64_t key) const {
    const uint64_t h = Mix64(key ^ seed_);
    Probe p{h, Bucket(h)};
    __builtin_prefetch(pilots_.data() + p.bucket);
    return p;
  }
  uint64_t Finish(const Probe& p) const {
    const uint64_t pos = Position(p.hash, pilots_[p.bucket]);
    return HERALD_MPHF_LIKELY(pos < n_) ? pos : remap_[pos - n_];
  }

  uint64_t Lookup(uint64_t key) const {
    if (n_ == 0) return 0;
    return Finish(Prepare(key));
  }

  size_t MemoryBytes() const {
    return pilots_.capacity() * sizeof(uint32_t) + remap_.capacity() * sizeof(uint32_t);
  }

 private:
  static constexpr uint64_t kDenseThreshold = 0xffff * 6 / 10;

  // Skew: 60% of the keys land in 30% of the buckets, which PTHash shows speeds up the build.
  // The bucket uses the low half of the hash and the position the whole of it, remixed with the
  // pilot, so keys of one bucket spread independently.
  uint64_t Bucket(uint64_t h) const {
    const uint64_t low = h & 0xffffffffULL;
    return (low & 0xffff) < kDenseThreshold ? (low * dense_buckets_) >> 32
                                            : dense_buckets_ + ((low * sparse_buckets_) >> 32);
  }
  uint64_t Position(uint64_t h, uint32_t pilot) const {
    uint64_t x = h ^ (uint64_t{pilot} * 0x9e3779b97f4a7c15ULL);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return FastRange(x, table_size_);
  }

  uint64_t n_ = 0;
  uint64_t table_size_ = 0;
  uint64_t dense_buckets_ = 1;
  uint64_t sparse_buckets_ = 1;
  uint64_t seed_ = 0x7a1e7a1e5eedULL;
  std::vector<uint32_t> pilots_;
  std::vector<uint32_t> remap_;
};

}  // namespace herald
