// The one writer of Prometheus' text exposition format (version 0.0.4) for /metrics: a family's
// HELP and TYPE lines, then its samples. Label values are escaped as the format asks (\\, \",
// \n), so an id never breaks the page.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::server {

class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string& out) : out_(out) {}

  // "# HELP" and "# TYPE" (counter, gauge or histogram) of the samples that follow.
  PrometheusWriter& Family(std::string_view name, std::string_view type, std::string_view help);
  PrometheusWriter& Sample(std::string_view name, uint64_t value);
  PrometheusWriter& Sample(std::string_view name, std::string_view label,
                           std::string_view label_value, uint64_t value);
  // A family of one sample.
  PrometheusWriter& Counter(std::string_view name, std::string_view help, uint64_t value) {
    return Family(name, "counter", help).Sample(name, value);
  }
  PrometheusWriter& Gauge(std::string_view name, std::string_view help, uint64_t value) {
    return Family(name, "gauge", help).Sample(name, value);
  }
  // A histogram's _bucket, _sum and _count samples: `buckets` are (upper bound, cumulative
  // count), the last +Inf; `label` empty for none.
  PrometheusWriter& Histogram(std::string_view name, std::string_view label,
                              std::string_view label_value,
                              const std::vector<std::pair<double, uint64_t>>& buckets,
                              double sum_seconds);

 private:
  void Labels(std::string_view label, std::string_view value, std::string_view more = {});
  std::string& out_;
};

}  // namespace herald::server
