// The operations API on the real daemon (DESIGN §9): /v1/stats says what flows and who fails
// why, /v1/deliveries shows the latest requests with their credentials redacted and resends one,
// /v1/route/explain routes without delivering, and the /stream forms send NDJSON as it happens.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "tests/testing/daemon.h"
#include "tests/testing/eventually.h"
#include "tests/testing/receiver.h"

namespace {

using herald::test_support::Daemon;
using herald::test_support::Eventually;
using herald::test_support::ReadStream;
using herald::test_support::ReceivedRequest;
using herald::test_support::Receiver;
using Answer = herald::test_support::Reply;

// A parsed answer the test reads fields of.
class Json {
 public:
  explicit Json(const std::string& text) : text_(text) {
    ok_ = parser_.parse(text_).get(root_) == simdjson::SUCCESS;
  }
  bool ok() const { return ok_; }
  simdjson::dom::element root() const { return root_; }
  // The profiles[] entry of `id` in a /v1/stats answer.
  simdjson::dom::element Profile(std::string_view id) const {
    simdjson::dom::array profiles;
    if (root_["profiles"].get_array().get(profiles) != simdjson::SUCCESS) return {};
    for (auto p : profiles) {
      if (p["profileId"].get_string().value() == id) return p;
    }
    return {};
  }

 private:
  std::string text_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
  bool ok_ = false;
};

// Each takes an element or a simdjson_result of one.
template <typename Element>
std::string Str(Element e, std::string_view key) {
  std::string_view v;
  return e[key].get_string().get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}
template <typename Element>
int64_t Int(Element e, std::string_view key) {
  int64_t v = -1;
  if (e[key].get_int64().get(v) != simdjson::SUCCESS) return -1;
  return v;
}
// The size of an array; SIZE_MAX when it is not one.
template <typename Element>
size_t Count(Element e) {
  simdjson::dom::array a;
  return e.get_array().get(a) == simdjson::SUCCESS ? a.size() : SIZE_MAX;
}
template <typename Element>
simdjson::dom::element At(Element e, size_t i) {
  return e.at(i).value();
}

void Subscribe(Daemon& d, const std::string& id, const std::string& profile, const std::string& url,
               const std::string& extra = "") {
  const std::string body = R"({"subscriptionId":")" + id +
                           R"(","events":["DELIVERY"],"profile":{"profileId":")" + profile +
                           R"(","maxBucketSize":1,"retry":{"delaysMs":[10],"maxAttempts":2},)" +
                           extra + R"("webhook":{"notifyUrl":")" + url + R"("}}})";
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", body).status, 201) << body;
}

constexpr const char* kEvent = R"({"channel":"SMS","event":"DELIVERY","payload":{"n":1}})";

TEST(Operations, StatsSayWhatFlowsAndWhoFailsWhy) {
  Receiver receiver;
  receiver.set_handler([](const ReceivedRequest& r) {
    if (r.target == "/bad") return Answer{.status = 500, .body = "database down"};
    if (r.target == "/gone") return Answer{.status = 410};
    return Answer{.status = 200};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  Subscribe(d, "s-ok", "ok", receiver.url("/ok"));
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"s-bad","group":"g2","events":["DELIVERY"],)"
                   R"("profile":{"profileId":"bad","maxBucketSize":1,)"
                   R"("retry":{"delaysMs":[10],"maxAttempts":2},"webhook":{"notifyUrl":")" +
                       receiver.url("/bad") + R"("}}})")
                .status,
            201);
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"s-gone","group":"g3","events":["DELIVERY"],)"
                   R"("profile":{"profileId":"gone","webhook":{"notifyUrl":")" +
                       receiver.url("/gone") + R"("}}})")
                .status,
            201);
  ASSERT_EQ(
      d.Call("POST", "/subscriptions/1/profiles",
             R"({"profileId":"idle","webhook":{"notifyUrl":")" + receiver.url("/idle") + R"("}})")
          .status,
      201);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(d.Call("POST", "/v1/events", kEvent).status, 202);
  ASSERT_EQ(d.Call("POST", "/v1/events", R"({"channel":"SMS"})").status, 400);  // rejected

  ASSERT_TRUE(Eventually([&] {
    Json stats(d.Call("GET", "/v1/stats").body);
    return stats.ok() && Int(stats.Profile("ok"), "delivered") == 3 &&
           Int(stats.Profile("bad"), "deadLetters") == 3 &&
           Str(stats.Profile("gone"), "state") == "disabled";
  })) << d.Call("GET", "/v1/stats").body;
  const auto reply = d.Call("GET", "/v1/stats");
  ASSERT_EQ(reply.status, 200);
  Json stats(reply.body);
  ASSERT_TRUE(stats.ok()) << reply.body;
  auto root = stats.root();
  EXPECT_EQ(Int(root["counters"], "accepted"), 3) << reply.body;
  EXPECT_EQ(Int(root["counters"], "rejected"), 1);
  EXPECT_EQ(Int(root["counters"]["rejectedByReason"], "missing_field"), 1) << reply.body;
  EXPECT_EQ(Int(root["counters"], "delivered"), 3);
  EXPECT_EQ(Int(root["counters"], "retried"), 3);    // bad: each retried once
  EXPECT_GE(Int(root["gauges"], "deadLetters"), 4);  // bad's 3 and gone's
  EXPECT_EQ(Int(root["latency"]["ingestTo2xxMs"], "count"), 3);
  EXPECT_GT(Int(root["latency"]["ingestToEnqueueMs"], "count"), 0);
  EXPECT_NE(Str(root, "successRateCounts").find("replayed dead letters"), std::string::npos);

  auto ok = stats.Profile("ok");
  EXPECT_EQ(Str(ok, "state"), "healthy");
  EXPECT_EQ(ok["successRate5m"].get_double().value(), 1.0);
  EXPECT_TRUE(ok["lastError"].is_null());
  EXPECT_GT(Int(ok, "lastSuccessAt"), 0);
  EXPECT_EQ(Int(ok, "queue"), 0);

  auto bad = stats.Profile("bad");
  EXPECT_TRUE(Str(bad, "state") == "failing" || Str(bad, "state") == "circuit-open") << reply.body;
  EXPECT_EQ(bad["successRate5m"].get_double().value(), 0.0);
  EXPECT_EQ(Int(bad, "requests5m"), 6);
  EXPECT_EQ(Str(bad["lastError"], "message"), "HTTP 500: database down");
  EXPECT_GT(Int(bad["lastError"], "at"), 0);
  EXPECT_TRUE(bad["lastSuccessAt"].is_null());

  EXPECT_EQ(Str(stats.Profile("gone"), "state"), "disabled");
  // A profile without traffic is listed, healthy, with nothing measured yet.
  auto idle = stats.Profile("idle");
  EXPECT_EQ(Str(idle, "state"), "healthy");
  EXPECT_TRUE(idle["successRate5m"].is_null());
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Operations, DeliveriesShowRequestsWithCredentialsRedactedAndResendOne) {
  Receiver receiver;
  std::atomic<int> status{200};
  receiver.set_handler([&](const ReceivedRequest&) {
    return Answer{.status = status.load(), .body = R"({"received":true})"};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/security",
                   R"({"authId":"basic","type":"BASIC",)"
                   R"("credentials":{"username":"shop","password":"pa55word"}})")
                .status,
            201);
  Subscribe(d, "s", "rx", receiver.url("/hook?token=t0psecret&x=1"),
            R"("headers":{"X-Api-Key":"k3y-value","X-Tenant":"acme"},)"
            R"("security":{"authId":"basic"},)");
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(d.Call("POST", "/v1/events",
                   R"({"channel":"SMS","event":"DELIVERY","eventId":"e-1","payload":{"n":1}})")
                .status,
            202);
  ASSERT_TRUE(receiver.WaitFor(1, std::chrono::seconds(10)));
  status = 503;
  ASSERT_EQ(d.Call("POST", "/v1/events",
                   R"({"channel":"SMS","event":"DELIVERY","eventId":"e-2","payload":{"n":2}})")
                .status,
            202);
  ASSERT_TRUE(receiver.WaitFor(3, std::chrono::seconds(10)));  // e-2 and its retry

  std::string body;
  ASSERT_TRUE(Eventually([&] {
    body = d.Call("GET", "/v1/deliveries").body;
    Json j(body);
    return j.ok() && Count(j.root()["results"]) == 3;
  })) << body;
  // Nothing secret reaches the answer; what helps debugging does.
  for (const char* secret : {"pa55word", "k3y-value", "t0psecret", "c2hvcDpwYTU1d29yZA"}) {
    EXPECT_EQ(body.find(secret), std::string::npos) << secret << " in " << body;
  }
  Json all(body);
  auto latest = At(all.root()["results"], 0);  // newest first: e-2's retry
  EXPECT_EQ(Str(latest, "webhookId"), "e-2");
  EXPECT_EQ(Int(latest, "status"), 503);
  EXPECT_EQ(Int(latest, "attempt"), 2);
  EXPECT_EQ(Int(latest, "maxAttempts"), 2);
  EXPECT_EQ(Str(latest, "outcome"), "dead-lettered");
  EXPECT_NE(Str(latest, "error").find("HTTP 503"), std::string::npos);
  auto first_try = At(all.root()["results"], 1);
  EXPECT_EQ(Str(first_try, "outcome"), "retrying");
  EXPECT_GT(Int(first_try, "nextRetryAt"), Int(first_try, "at") - 1);
  auto delivered = At(all.root()["results"], 2);
  EXPECT_EQ(Str(delivered, "webhookId"), "e-1");
  EXPECT_EQ(Int(delivered, "status"), 200);
  EXPECT_EQ(Str(delivered, "outcome"), "delivered");
  EXPECT_EQ(Str(delivered, "event"), "DELIVERY");
  EXPECT_EQ(Str(delivered["request"], "url"), receiver.url("/hook?token=[redacted]&x=[redacted]"));
  EXPECT_EQ(Str(delivered["request"]["headers"], "authorization"), "[redacted]");
  EXPECT_EQ(Str(delivered["request"]["headers"], "X-Api-Key"), "[redacted]");
  EXPECT_EQ(Str(delivered["request"]["headers"], "X-Tenant"), "acme");
  EXPECT_EQ(Str(delivered["request"]["headers"], "webhook-id"), "e-1");
  EXPECT_EQ(Str(delivered["request"], "body"), R"({"n":1})");
  EXPECT_EQ(Str(delivered["response"], "body"), R"({"received":true})");

  // Filters.
  EXPECT_EQ(Count(Json(d.Call("GET", "/v1/deliveries?status=2xx").body).root()["results"]), 1u);
  EXPECT_EQ(Count(Json(d.Call("GET", "/v1/deliveries?status=5xx").body).root()["results"]), 2u);
  EXPECT_EQ(Count(Json(d.Call("GET", "/v1/deliveries?profileId=other").body).root()["results"]),
            0u);
  EXPECT_EQ(
      Count(
          Json(d.Call("GET", "/v1/deliveries?event=SMS:DELIVERY&limit=1").body).root()["results"]),
      1u);
  EXPECT_EQ(d.Call("GET", "/v1/deliveries?status=ok").status, 400);
  EXPECT_EQ(d.Call("GET", "/v1/deliveries?limit=0").status, 400);

  // Resend e-1 once the receiver is back: the same body and webhook-id, and a clear error for an
  // attempt that is not there.
  status = 200;
  const std::string id = Str(delivered, "id");
  const auto resent = d.Call("POST", "/v1/deliveries/" + id + "/resend");
  EXPECT_EQ(resent.status, 202) << resent.body;
  ASSERT_TRUE(receiver.WaitFor(4, std::chrono::seconds(10)));
  const auto again = receiver.requests()[3];
  EXPECT_EQ(again.header("webhook-id"), "e-1");
  EXPECT_EQ(again.body, R"({"n":1})");
  EXPECT_EQ(again.header("x-api-key"), "k3y-value");  // the receiver still gets what it needs
  EXPECT_EQ(d.Call("POST", "/v1/deliveries/999999/resend").status, 404);
  EXPECT_EQ(d.Call("POST", "/v1/deliveries/x/resend").status, 404);
  // A resend is a replay: delivered, it leaves no dead letter behind, and shows as a replay.
  ASSERT_TRUE(Eventually([&] {
    Json j(d.Call("GET", "/v1/deliveries?limit=1").body);
    return j.ok() && Count(j.root()["results"]) == 1 &&
           At(j.root()["results"], 0)["replay"].get_bool().value() &&
           Str(At(j.root()["results"], 0), "outcome") == "delivered";
  }));
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Operations, ExplainRoutesWithoutDelivering) {
  Receiver receiver;
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  for (const char* p : {"p-any", "p-app", "p-other"}) {
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                     std::string(R"({"profileId":")") + p + R"(","webhook":{"notifyUrl":")" +
                         receiver.url() + R"("}})")
                  .status,
              201);
  }
  // One group: the application-specific subscription wins over the catch-all one.
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"any","events":[],"profile":{"profileId":"p-any"}})")
                .status,
            201);
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"app","events":["DELIVERY"],)"
                   R"("criteria":[{"applicationId":"shop"}],"profile":{"profileId":"p-app"}})")
                .status,
            201);
  ASSERT_EQ(
      d.Call(
           "POST", "/subscriptions/1/subscription/SMS",
           R"({"subscriptionId":"other","group":"audit","events":[],"profile":{"profileId":"p-other"}})")
          .status,
      201);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const auto r =
      d.Call("POST", "/v1/route/explain",
             R"({"channel":"SMS","event":"DELIVERY","applicationId":"shop","payload":{}})");
  ASSERT_EQ(r.status, 200) << r.body;
  Json j(r.body);
  ASSERT_TRUE(j.ok());
  simdjson::dom::array matches;
  ASSERT_EQ(j.root()["matches"].get_array().get(matches), simdjson::SUCCESS);
  ASSERT_EQ(matches.size(), 3u) << r.body;
  std::map<std::string, std::pair<int64_t, bool>> got;
  for (auto m : matches) {
    got[Str(m, "subscriptionId")] = {Int(m, "specificity"), m["winner"].get_bool().value()};
  }
  EXPECT_EQ(got["app"], std::make_pair(int64_t{2}, true));
  EXPECT_EQ(got["any"], std::make_pair(int64_t{0}, false));
  EXPECT_EQ(got["other"], std::make_pair(int64_t{0}, true));
  EXPECT_EQ(Count(j.root()["profiles"]), 2u);
  EXPECT_NE(r.body.find(R"({"profileId":"p-app","state":"healthy"})"), std::string::npos);
  // Another application: only the catch-all subscriptions match.
  Json other(d.Call("POST", "/v1/route/explain",
                    R"({"channel":"SMS","event":"DELIVERY","applicationId":"blog","payload":{}})")
                 .body);
  EXPECT_EQ(Count(other.root()["matches"]), 2u);
  // Bad envelopes get the reason ingest would give.
  const auto bad =
      d.Call("POST", "/v1/route/explain", R"({"channel":"SMS","event":"NOPE","payload":{}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("NOPE"), std::string::npos) << bad.body;
  EXPECT_EQ(d.Call("POST", "/v1/route/explain", "not json").status, 400);
  // Nothing was delivered or counted.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(receiver.count(), 0u);
  EXPECT_EQ(Int(Json(d.Call("GET", "/v1/stats").body).root()["counters"], "accepted"), 0);
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Operations, StreamsSendSnapshotsAndTailDeliveries) {
  Receiver receiver;
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  Subscribe(d, "s", "rx", receiver.url());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));

  const auto start = std::chrono::steady_clock::now();
  const auto stats = ReadStream(d.port(), "/v1/stats/stream", 3, std::chrono::seconds(10));
  EXPECT_EQ(stats.status, 200);
  EXPECT_EQ(stats.content_type, "application/x-ndjson");
  ASSERT_EQ(stats.lines.size(), 3u);
  // Once a second: three snapshots take about two seconds.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1800));
  for (const auto& line : stats.lines) {
    Json j(line);
    ASSERT_TRUE(j.ok()) << line;
    EXPECT_EQ(Int(j.root()["counters"], "accepted"), 0);
  }

  // The tail shows what happens after it opened.
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int i = 0; i < 2; ++i) (void)d.Call("POST", "/v1/events", kEvent);
  });
  const auto tail =
      ReadStream(d.port(), "/v1/deliveries/stream?profileId=rx", 2, std::chrono::seconds(10));
  sender.join();
  EXPECT_EQ(tail.status, 200);
  ASSERT_EQ(tail.lines.size(), 2u);
  for (const auto& line : tail.lines) {
    Json j(line);
    ASSERT_TRUE(j.ok()) << line;
    EXPECT_EQ(Str(j.root(), "profileId"), "rx");
    EXPECT_EQ(Int(j.root(), "status"), 200);
  }
  EXPECT_EQ(
      ReadStream(d.port(), "/v1/deliveries/stream?status=bad", 1, std::chrono::seconds(5)).status,
      400);

  // Under a steady flow each attempt comes once: a tick starts where the last one ended.
  std::thread flow([&] {
    for (int i = 0; i < 150; ++i) {
      (void)d.Call("POST", "/v1/events", kEvent);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  const auto busy = ReadStream(d.port(), "/v1/deliveries/stream", 150, std::chrono::seconds(30));
  flow.join();
  std::set<std::string> ids;
  size_t attempts = 0;
  for (const auto& line : busy.lines) {
    Json j(line);
    ASSERT_TRUE(j.ok()) << line;
    if (Int(j.root(), "dropped") >= 0) continue;
    ++attempts;
    EXPECT_TRUE(ids.insert(Str(j.root(), "id")).second) << "sent twice: " << line;
  }
  EXPECT_GE(attempts, 100u);

  // A stream open while heraldd stops is ended, and does not hold the stop up.
  std::thread open([&] {
    const auto s = ReadStream(d.port(), "/v1/stats/stream", 100, std::chrono::seconds(20));
    EXPECT_TRUE(s.ended);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(d.Stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(5));
  open.join();
}

TEST(Operations, NeedTheManagementKey) {
  Daemon d({"--listen", "127.0.0.1:0", "--api-key", "mgmt", "--ingest-key", "ing"});
  ASSERT_NE(d.port(), 0) << d.output();
  for (const char* path : {"/v1/stats", "/v1/deliveries"}) {
    EXPECT_EQ(d.Call("GET", path).status, 401) << path;
    EXPECT_EQ(d.Call("GET", path, "", "", "App ing").status, 403) << path;
    EXPECT_EQ(d.Call("GET", path, "", "", "App mgmt").status, 200) << path;
  }
  EXPECT_EQ(ReadStream(d.port(), "/v1/stats/stream", 1, std::chrono::seconds(5)).status, 401);
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace
