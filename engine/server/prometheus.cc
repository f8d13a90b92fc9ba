#include "engine/server/prometheus.h"

#include <cmath>
#include <cstdio>

#include "engine/common/strings.h"

namespace herald::server {

PrometheusWriter& PrometheusWriter::Family(std::string_view name, std::string_view type,
                                           std::string_view help) {
  out_ += Cat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  return *this;
}

void PrometheusWriter::Labels(std::string_view label, std::string_view value,
                              std::string_view more) {
  if (label.empty() && more.empty()) return;
  out_.push_back('{');
  if (!label.empty()) {
    out_ += label;
    out_ += "=\"";
    for (char c : value) {
      if (c == '\\' || c == '"') {
        out_.push_back('\\');
        out_.push_back(c);
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_.push_back(c);
      }
    }
    out_.push_back('"');
    if (!more.empty()) out_.push_back(',');
  }
  out_ += more;
  out_.push_back('}');
}

PrometheusWriter& PrometheusWriter::Sample(std::string_view name, uint64_t value) {
  out_ += Cat(name, " ", value, "\n");
  return *this;
}

PrometheusWriter& PrometheusWriter::Sample(std::string_view name, std::string_view label,
                                           std::string_view label_value, uint64_t value) {
  out_ += name;
  Labels(label, label_value);
  out_ += Cat(" ", value, "\n");
  return *this;
}

PrometheusWriter& PrometheusWriter::Histogram(
    std::string_view name, std::string_view label, std::string_view label_value,
    const std::vector<std::pair<double, uint64_t>>& buckets, double sum_seconds) {
  uint64_t count = 0;
  for (const auto& [bound, cumulative] : buckets) {
    char le[40];
    if (std::isinf(bound)) {
      std::snprintf(le, sizeof le, "le=\"+Inf\"");
    } else {
      std::snprintf(le, sizeof le, "le=\"%g\"", bound);
    }
    out_ += Cat(name, "_bucket");
    Labels(label, label_value, le);
    out_ += Cat(" ", cumulative, "\n");
    count = cumulative;
  }
  char sum[32];
  std::snprintf(sum, sizeof sum, "%.9f", sum_seconds);
  out_ += Cat(name, "_sum");
  Labels(label, label_value);
  out_ += Cat(" ", std::string_view(sum), "\n", name, "_count");
  Labels(label, label_value);
  out_ += Cat(" ", count, "\n");
  return *this;
}

}  // namespace herald::server
