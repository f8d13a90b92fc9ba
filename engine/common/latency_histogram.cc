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

double Quantile(const std::vector<std::pair<double, uint64_t>>& buckets, double q) {
  if (buckets.empty() || buckets.back().second == 0) return 0;
  const double rank = q * static_cast<double>(buckets.back().second);
  double lower = 0;
  uint64_t below = 0;
  for (const auto& [bound, cumulative] : buckets) {
    if (static_cast<double>(cumulative) >= rank && cumulative > below) {
      if (bound == std::numeric_limits<double>::infinity()) return lower;
      const double within =
          (rank - static_cast<double>(below)) / static_cast<double>(cumulative - below);
      return lower + (bound - lower) * within;
    }
    lower = bound;
    below = cumulative;
  }
  return lower;
}

void AddBuckets(std::vector<std::pair<double, uint64_t>>& sum,
                const std::vector<std::pair<double, uint64_t>>& more) {
  if (sum.empty()) {
    sum = more;
    return;
  }
  for (size_t i = 0; i < sum.size() && i < more.size(); ++i) sum[i].second += more[i].second;
}

}  // namespace herald
