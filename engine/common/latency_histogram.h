// A latency histogram with fixed buckets (50 µs .. 60 s: webhooks wait on receivers and
// retries), lock-free to observe, rendered in the Prometheus text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 19> kBounds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,     0.25,   0.5,     1,      2.5,   5,      10,    30,   60};

  void Observe(double seconds) {
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  }
  // Cumulative counts per upper bound; the last bound is +inf.
  std::vector<std::pair<double, uint64_t>> Buckets() const;
  double sum_seconds() const {
    return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// The q-quantile (0..1) of cumulative `buckets` (as Buckets() returns them, or their sum over
// several histograms), interpolated within its bucket; the last finite bound when it lies beyond
// it; 0 when there are no observations.
double Quantile(const std::vector<std::pair<double, uint64_t>>& buckets, double q);

// Adds `more` (cumulative, the same bounds) into `sum`; an empty `sum` takes `more`.
void AddBuckets(std::vector<std::pair<double, uint64_t>>& sum,
                const std::vector<std::pair<double, uint64_t>>& more);

}  // namespace herald
