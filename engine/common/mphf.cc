#include "engine/common/mphf.h"

#include <algorithm>
#include <cmath>

namespace herald {
namespace {

constexpr double kLoadFactor = 0.94;      // table slots per key: leaves room for quick placement
constexpr double kKeysPerBucket = 4.0;    // pilots cost 4 bytes per bucket, so ~1 byte per key
constexpr uint32_t kMaxPilot = 1u << 22;  // beyond this, reseed (never seen in practice)
constexpr int kMaxAttempts = 16;

}  // namespace

absl::Status Mphf::Build(absl::Span<const uint64_t> keys) {
  n_ = keys.size();
  pilots_.clear();
  remap_.clear();
  if (n_ == 0) {
    table_size_ = 1;
    pilots_.assign(1, 0);
    return absl::OkStatus();
  }
  table_size_ = std::max<uint64_t>(n_, static_cast<uint64_t>(std::ceil(n_ / kLoadFactor)));
  const uint64_t num_buckets =
      std::max<uint64_t>(2, static_cast<uint64_t>(std::ceil(n_ / kKeysPerBucket)));
  dense_buckets_ = std::max<uint64_t>(1, num_buckets * 3 / 10);
  sparse_buckets_ = num_buckets - dense_buckets_;

  std::vector<uint32_t> bucket_start(num_buckets + 1);
  std::vector<uint64_t> grouped(n_);
  std::vector<uint32_t> bucket_order(num_buckets);
  std::vector<uint64_t> taken((table_size_ + 63) / 64);
  std::vector<uint64_t> positions;

  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    seed_ = Mix64(0x5eed0000ULL + static_cast<uint64_t>(attempt) * 0x9e3779b97f4a7c15ULL);

    // Group keys by bucket (counting sort).
    std::fill(bucket_start.begin(), bucket_start.end(), 0);
    for (uint64_t k : keys) ++bucket_start[Bucket(Mix64(k ^ seed_)) + 1];
    for (uint64_t b = 0; b < num_buckets; ++b) bucket_start[b + 1] += bucket_start[b];
    {
      std::vector<uint32_t> fill(bucket_start.begin(), bucket_start.end() - 1);
      for (uint64_t k : keys) grouped[fill[Bucket(Mix64(k ^ seed_))]++] = Mix64(k ^ seed_);
    }
    uint32_t max_size = 0;
    for (uint64_t b = 0; b < num_buckets; ++b) {
      auto first = grouped.begin() + bucket_start[b];
      auto last = grouped.begin() + bucket_start[b + 1];
      std::sort(first, last);
      if (std::adjacent_find(first, last) != last) {
        // Mix64 is a bijection, so equal hashes mean equal keys.
        return absl::InvalidArgumentError("perfect hash: duplicate key");
      }
      max_size = std::max<uint32_t>(max_size, static_cast<uint32_t>(last - first));
    }

    // Place the largest buckets first: they are the hardest to fit.
    {
      std::vector<uint32_t> by_size(max_size + 2, 0);
      for (uint64_t b = 0; b < num_buckets; ++b) {
        ++by_size[max_size - (bucket_start[b + 1] - bucket_start[b]) + 1];
      }
      for (uint32_t s = 0; s <= max_size; ++s) by_size[s + 1] += by_size[s];
      for (uint64_t b = 0; b < num_buckets; ++b) {
        bucket_order[by_size[max_size - (bucket_start[b + 1] - bucket_start[b])]++] =
            static_cast<uint32_t>(b);
      }
    }

    std::fill(taken.begin(), taken.end(), 0);
    pilots_.assign(num_buckets, 0);
    bool placed_all = true;
    for (uint32_t b : bucket_order) {
      const uint32_t begin = bucket_start[b], end = bucket_start[b + 1];
      if (begin == end) break;  // sizes are descending: the rest are empty
      bool placed = false;
      for (uint32_t pilot = 0; pilot < kMaxPilot && !placed; ++pilot) {
        positions.clear();
        bool ok = true;
        for (uint32_t i = begin; i < end; ++i) {
          const uint64_t p = Position(grouped[i], pilot);
          if (taken[p >> 6] & (1ULL << (p & 63))) {
            ok = false;
            break;
          }
          taken[p >> 6] |= 1ULL << (p & 63);
          positions.push_back(p);
        }
        if (ok) {
          pilots_[b] = pilot;
          placed = true;
        } else {
          for (uint64_t p : positions) taken[p >> 6] &= ~(1ULL << (p & 63));
        }
      }
      if (!placed) {
        placed_all = false;
        break;
      }
    }
    if (!placed_all) continue;

    // Slots at or beyond n move into the free slots below n.
    remap_.assign(table_size_ - n_, 0);
    uint64_t free_slot = 0;
    for (uint64_t p = n_; p < table_size_; ++p) {
      if (!(taken[p >> 6] & (1ULL << (p & 63)))) continue;
      while (taken[free_slot >> 6] & (1ULL << (free_slot & 63))) ++free_slot;
      remap_[p - n_] = static_cast<uint32_t>(free_slot++);
    }
    return absl::OkStatus();
  }
  return absl::InternalError("perfect hash: no placement found");
}

}  // namespace herald
