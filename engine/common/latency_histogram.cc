#include "engine/common/latency_histogram.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "engine/common/strings.h"

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

void RenderHistogramHeader(std::string& out, std::string_view name, std::string_view help) {
  out += Cat("# HELP ", name, " ", help, "\n# TYPE ", name, " histogram\n");
}

void RenderHistogram(std::string& out, std::string_view name, std::string_view labels,
                     const std::vector<std::pair<double, uint64_t>>& buckets, double sum_seconds) {
  const std::string_view sep = labels.empty() ? "" : ",";
  uint64_t count = 0;
  for (const auto& [bound, cumulative] : buckets) {
    char le[32];
    if (std::isinf(bound)) {
      std::snprintf(le, sizeof le, "+Inf");
    } else {
      std::snprintf(le, sizeof le, "%g", bound);
    }
    out +=
        Cat(name, "_bucket{", labels, sep, "le=\"", std::string_view(le), "\"} ", cumulative, "\n");
    count = cumulative;
  }
  char sum[32];
  std::snprintf(sum, sizeof sum, "%.9f", sum_seconds);
  const std::string braces = labels.empty() ? std::string() : Cat("{", labels, "}");
  out += Cat(name, "_sum", braces, " ", std::string_view(sum), "\n", name, "_count", braces, " ",
             count, "\n");
}

}  // namespace herald
