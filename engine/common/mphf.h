// A minimal perfect hash function over distinct 64-bit keys, in the style of PTHash
// (Pibiri & Trani, SIGIR 2021): keys are split into skewed buckets, buckets are placed largest
// first by searching a per-bucket "pilot" that sends all their keys to free slots of a table
// slightly larger than n, and the few slots beyond n are remapped into the holes below n.
// A lookup is two multiplications, one pilot load and (rarely) one remap load; it answers a value in
// [0, n) for every key, members or not, so callers verify a stored fingerprint.
//
// Immutable after Build(); any number of threads may call Lookup() concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/common/hash.h"

namespace herald {

class Mphf {
 public:
  // Builds over `keys`, which must be distinct. Fails only if keys repeat.
  absl::Status Build(absl::Span<const uint64_t> keys);

  uint64_t size() const { return n_; }

  // Index of the bucket holding `key`; callers may prefetch its pilot (PilotAddress) early.
  uint64_t Bucket(uint64_t key) const {
    const uint64_t h = Mix64(key ^ seed_);
    // Skew: 60% of the keys land in 30% of the buckets, which PTHash shows speeds up the build.
    return (h & 0xffff) < kDenseThreshold ? FastRange(h, dense_buckets_)
                                          : dense_buckets_ + FastRange(h, sparse_buckets_);
  }
  const void* PilotAddress(uint64_t bucket) const { return pilots_.data() + bucket; }

  uint64_t Lookup(uint64_t key) const {
    if (n_ == 0) return 0;
    const uint64_t pos = Position(key, pilots_[Bucket(key)]);
    return pos < n_ ? pos : remap_[pos - n_];
  }

  size_t MemoryBytes() const {
    return pilots_.capacity() * sizeof(uint32_t) + remap_.capacity() * sizeof(uint32_t);
  }

 private:
  static constexpr uint64_t kDenseThreshold = 0xffff * 6 / 10;

  uint64_t Position(uint64_t key, uint32_t pilot) const {
    return FastRange(Mix64(key ^ seed_ ^ Mix64(pilot + 0x51afd7ed558ccd37ULL)), table_size_);
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
