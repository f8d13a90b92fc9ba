#include "engine/server/prometheus.h"

#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace herald::server {
namespace {

TEST(Prometheus, FamiliesAndSamplesInTheTextFormat) {
  std::string out;
  PrometheusWriter w(out);
  w.Counter("herald_x_total", "Things.", 3);
  w.Family("herald_depth", "gauge", "Per profile.").Sample("herald_depth", "profile", "p1", 7);
  EXPECT_EQ(out,
            "# HELP herald_x_total Things.\n# TYPE herald_x_total counter\nherald_x_total 3\n"
            "# HELP herald_depth Per profile.\n# TYPE herald_depth gauge\n"
            "herald_depth{profile=\"p1\"} 7\n");
}

// A label value is escaped as the format says, so no id can end a sample early or add a label.
TEST(Prometheus, LabelValuesAreEscaped) {
  std::string out;
  PrometheusWriter(out).Sample("m", "profile", "a\"b\\c\nd", 1);
  EXPECT_EQ(out, "m{profile=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(Prometheus, HistogramsHaveCumulativeBucketsSumAndCount) {
  const std::vector<std::pair<double, uint64_t>> buckets = {
      {0.005, 1}, {0.5, 3}, {std::numeric_limits<double>::infinity(), 4}};
  std::string plain, labelled;
  PrometheusWriter(plain).Histogram("h", "", "", buckets, 1.25);
  EXPECT_EQ(plain,
            "h_bucket{le=\"0.005\"} 1\nh_bucket{le=\"0.5\"} 3\nh_bucket{le=\"+Inf\"} 4\n"
            "h_sum 1.250000000\nh_count 4\n");
  PrometheusWriter(labelled).Histogram("h", "profile", "p", buckets, 0);
  EXPECT_NE(labelled.find("h_bucket{profile=\"p\",le=\"+Inf\"} 4\n"), std::string::npos)
      << labelled;
  EXPECT_NE(labelled.find("h_count{profile=\"p\"} 4\n"), std::string::npos) << labelled;
}

}  // namespace
}  // namespace herald::server
