#include "engine/common/latency_histogram.h"

#include <limits>

namespace herald {

std::vector<std::pair<double, uint64_t>> LatencyHistogram::Buckets() const {
  std::vector<std::pair<double, uint64_t>> out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out.emplace_back(i < kBounds.size() ? kBounds[i] : std::numeric_limits<double>::infinity(),
                     cumulative);
  }
  return out;
}

}  // namespace herald
