#include "engine/deliver/delivery_ring.h"

#include <gtest/gtest.h>

#include "engine/common/latency_histogram.h"

namespace herald::deliver {
namespace {

DeliveryAttempt Attempt(std::string profile, int status, std::string event = "DELIVERY") {
  DeliveryAttempt a;
  a.profile_id = std::move(profile);
  a.status = status;
  a.channel = "SMS";
  a.event = std::move(event);
  return a;
}

TEST(DeliveryRing, KeepsTheLatestNewestFirstAndFilters) {
  DeliveryRing ring(3, 1 << 20);
  ring.Add(Attempt("a", 200), "1");
  ring.Add(Attempt("b", 500), "2");
  ring.Add(Attempt("a", 0, "SEEN,DELIVERY"), "3");
  ring.Add(Attempt("a", 404), "4");  // the first one leaves
  EXPECT_EQ(ring.last_id(), 4u);
  auto all = ring.Query({});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, 4u);
  EXPECT_EQ(all[2].id, 2u);
  EXPECT_EQ(ring.Query({.profile_id = "a"}).size(), 2u);
  EXPECT_EQ(ring.Query({.status = "5xx"}).size(), 1u);
  EXPECT_EQ(ring.Query({.status = "4xx"}).size(), 1u);
  EXPECT_EQ(ring.Query({.status = "error"}).size(), 1u);
  EXPECT_EQ(ring.Query({.event = "SEEN"}).size(), 1u);
  EXPECT_EQ(ring.Query({.event = "SMS:DELIVERY"}).size(), 3u);
  EXPECT_EQ(ring.Query({.after = 3}).size(), 1u);
  EXPECT_EQ(ring.Query({.limit = 1}).size(), 1u);
  EXPECT_EQ(ring.Get(1).status().code(), absl::StatusCode::kNotFound);  // left the ring
  EXPECT_EQ(ring.Get(5).status().code(), absl::StatusCode::kNotFound);
  auto got = ring.Get(3);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got->second, "3");
}

TEST(DeliveryRing, BodiesOverTheBudgetGoOldestFirstAndTheirAttemptsStayListed) {
  DeliveryRing ring(10, 10, /*max_body=*/6);
  ring.Add(Attempt("a", 200), "aaaa");
  ring.Add(Attempt("a", 200), "bbbb");
  ring.Add(Attempt("a", 200), "cccc");     // 12 bytes > 10: the first body goes
  ring.Add(Attempt("a", 200), "toolong");  // over max_body: never kept
  EXPECT_EQ(ring.Get(1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ring.Get(2).ok());
  EXPECT_TRUE(ring.Get(3).ok());
  EXPECT_EQ(ring.Get(4).status().code(), absl::StatusCode::kFailedPrecondition);
  auto all = ring.Query({});
  ASSERT_EQ(all.size(), 4u);
  EXPECT_FALSE(all[0].resendable);
  EXPECT_TRUE(all[1].resendable);
  EXPECT_FALSE(all[3].resendable);
}

TEST(DeliveryRing, NoEntriesKeepsNothing) {
  DeliveryRing ring(0, 1 << 20);
  EXPECT_FALSE(ring.enabled());
  ring.Add(Attempt("a", 200), "x");
  EXPECT_TRUE(ring.Query({}).empty());
}

TEST(Redaction, CredentialsInHeadersAndUrlsAreHidden) {
  for (const char* name : {"Authorization", "proxy-authorization", "Cookie", "X-Api-Key",
                           "x-auth-token", "X-Client-Secret", "X-Password", "X-Signature"}) {
    EXPECT_TRUE(IsCredentialHeader(name)) << name;
  }
  for (const char* name : {"content-type", "X-Tenant", "webhook-id", "x-herald-event"}) {
    EXPECT_FALSE(IsCredentialHeader(name)) << name;
  }
  EXPECT_EQ(RedactUrl("https://user:pw@example.com:8443/hook?token=abc&v=2#frag"),
            "https://example.com:8443/hook?token=[redacted]&v=[redacted]");
  EXPECT_EQ(RedactUrl("http://example.com/a@b"), "http://example.com/a@b");
  EXPECT_EQ(RedactUrl("http://example.com/hook?flag"), "http://example.com/hook?flag");
  EXPECT_EQ(RedactUrl("http://example.com"), "http://example.com");
}

TEST(Quantile, InterpolatesWithinItsBucket) {
  LatencyHistogram h;
  EXPECT_EQ(Quantile(h.Buckets(), 0.99), 0);
  for (int i = 0; i < 100; ++i) h.Observe(0.003);  // the (2.5 ms, 5 ms] bucket
  const double p50 = Quantile(h.Buckets(), 0.5);
  EXPECT_GT(p50, 0.0025);
  EXPECT_LE(p50, 0.005);
  h.Observe(500);  // beyond the last bound: the last bound
  EXPECT_EQ(Quantile(h.Buckets(), 1.0), 60);
  std::vector<std::pair<double, uint64_t>> sum;
  AddBuckets(sum, h.Buckets());
  AddBuckets(sum, h.Buckets());
  EXPECT_EQ(sum.back().second, 202u);
}

}  // namespace
}  // namespace herald::deliver
