// Delivery features beyond the platform's basics, black-box on heraldd against real receivers:
// response checks (responseRegex, responseBodyRegex).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/testing/daemon.h"
#include "tests/testing/receiver.h"

namespace {

using herald::test_support::Daemon;
using herald::test_support::ReceivedRequest;
using herald::test_support::Receiver;
using Answer = herald::test_support::Reply;

template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// A 2xx counts as delivered only when the status line and the body match the profile's patterns
// (RE2, anywhere in the text); otherwise it is a failed attempt, retried, and in the end a dead
// letter that says which check refused it.
TEST(ResponseChecks, A2xxCountsOnlyWhenTheStatusLineAndTheBodyMatch) {
  Receiver receiver;
  std::atomic<int> strict_requests{0};
  receiver.set_handler([&](const ReceivedRequest& r) {
    if (r.target == "/strict") {
      // Refuses in its body twice, then accepts.
      return Answer{
          .status = 200,
          .body = ++strict_requests <= 2 ? R"({"accepted":false})" : R"({"accepted":true})"};
    }
    return Answer{.status = 200, .body = R"({"accepted":true})"};  // /created wants a 201
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  for (const auto& [id, path, status_re] :
       {std::tuple{"strict", "/strict", "^200 OK$"}, std::tuple{"created", "/created", "^201 "}}) {
    const std::string body =
        std::string(R"({"subscriptionId":")") + id + R"(","group":")" + id +
        R"(","events":["DELIVERY"],"profile":{"profileId":")" + id +
        R"(","maxBucketSize":1,"retry":{"delaysMs":[20],"maxAttempts":3},)" +
        R"("responseRegex":")" + status_re +
        R"(","responseBodyRegex":"\"accepted\":true","webhook":{"notifyUrl":")" +
        receiver.url(path) + R"("}}})";
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", body).status, 201) << body;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(d.Call("POST", "/v1/events",
                   R"({"channel":"SMS","event":"DELIVERY","eventId":"e-1","payload":{}})")
                .status,
            202);
  ASSERT_TRUE(Eventually([&] {
    return Has(d.Call("GET", "/metrics").body,
               R"(herald_webhook_delivered_total{profile="strict"} 1)") &&
           Has(d.Call("GET", "/v1/dead-letters?profileId=created").body, R"("totalResults":1)");
  })) << d.Call("GET", "/metrics").body;
  EXPECT_EQ(strict_requests.load(), 3);
  EXPECT_TRUE(Has(d.Call("GET", "/v1/dead-letters?profileId=strict").body, R"("totalResults":0)"));
  const std::string refused = d.Call("GET", "/v1/deliveries?profileId=strict&limit=3").body;
  EXPECT_TRUE(Has(refused, R"("outcome":"retrying")")) << refused;
  EXPECT_TRUE(Has(refused, R"(the body does not match responseBodyRegex \"accepted\":true)"))
      << refused;
  const std::string letter = d.Call("GET", "/v1/dead-letters?profileId=created").body;
  EXPECT_TRUE(Has(letter, R"("attempts":3)")) << letter;
  EXPECT_TRUE(Has(letter, "HTTP 200 OK: the status line does not match responseRegex ^201 "))
      << letter;
  EXPECT_EQ(d.Stop(), 0);
}

TEST(ResponseChecks, APatternRe2CannotCompileIsRefusedWhenWritten) {
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  const auto r = d.Call("POST", "/subscriptions/1/profiles",
                        R"({"profileId":"p","webhook":{"notifyUrl":"http://127.0.0.1:9/"},)"
                        R"("responseRegex":"(2","responseBodyRegex":"ok"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(Has(r.body, R"("responseRegex":["is not a valid RE2 pattern: missing ): (2"])"))
      << r.body;
  // The platform's own example patterns are taken.
  EXPECT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                   R"({"profileId":"p","webhook":{"notifyUrl":"http://127.0.0.1:9/"},)"
                   R"("responseRegex":"[1-9][0-9]","responseBodyRegex":"[1-9][0-9]"})")
                .status,
            201);
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace
