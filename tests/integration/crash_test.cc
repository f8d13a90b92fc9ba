// Durability end to end: the real heraldd, real receivers, kill -9 in the middle of a stream.
// Every event whose 202 the client saw must reach every receiver it routes to, at least once,
// with the same webhook-id; duplicates are counted and reported, never a loss.
#include <sys/resource.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/daemon.h"
#include "tests/testing/receiver.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using test_support::Daemon;
using test_support::HttpReply;
using test_support::ReceivedRequest;
using test_support::Receiver;
using test_support::Reply;
using test_support::TempDir;

constexpr int kEvents = 50'000;
constexpr int kPerRequest = 100;
constexpr int kProfiles = 4;
const char* const kChannels[] = {"SMS", "EMAIL", "WHATSAPP"};
// Which profiles each channel routes to (fanout "all"). p0 and p1 take one notification per
// request, so every request's webhook-id is its event's; p2 and p3 batch.
const std::vector<int> kRoutes[] = {{0, 2}, {1, 3}, {0, 3}};

// Event n: every other one has an eventId; the rest get generated ids, which must not change
// when the spool replays them.
std::string Event(int n) {
  const char* channel = kChannels[n % 3];
  std::string id = n % 2 == 0 ? "\"eventId\":\"ev-" + std::to_string(n) + "\"," : "";
  return std::string("{\"channel\":\"") + channel + "\",\"event\":\"DELIVERY\"," + id +
         "\"payload\":{\"n\":" + std::to_string(n) + "}}\n";
}

std::string Request(int batch) {
  std::string body;
  for (int n = batch * kPerRequest; n < (batch + 1) * kPerRequest; ++n) body += Event(n);
  return body;
}

// What the receivers answered 2xx for: per profile, event number -> webhook-ids of the lone
// requests that carried it (batched requests add an empty id).
struct Deliveries {
  std::mutex mu;
  std::map<int, std::vector<std::string>> by_profile[kProfiles];
  std::atomic<uint64_t> requests{0};

  void Record(int profile, const ReceivedRequest& r) {
    std::vector<int> ns;
    for (size_t at = r.body.find("\"n\":"); at != std::string::npos;
         at = r.body.find("\"n\":", at + 4)) {
      ns.push_back(std::atoi(r.body.c_str() + at + 4));
    }
    std::lock_guard lock(mu);
    for (int n : ns) by_profile[profile][n].push_back(ns.size() == 1 ? r.header("webhook-id") : "");
    requests.fetch_add(1);
  }

  // Notifications of the events of `batches` (requests) not delivered yet, to any profile.
  size_t Missing(const std::vector<int>& batches) {
    std::lock_guard lock(mu);
    size_t missing = 0;
    for (int b : batches) {
      for (int n = b * kPerRequest; n < (b + 1) * kPerRequest; ++n) {
        for (int p : kRoutes[n % 3]) missing += by_profile[p].contains(n) ? 0 : 1;
      }
    }
    return missing;
  }

  // Waits until Missing(batches) is 0, or `timeout`; returns what is still missing.
  size_t WaitFor(const std::vector<int>& batches, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Missing(batches) > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    return Missing(batches);
  }
};

std::string Config(const std::string& durability, int segment_mb = 1,
                   const std::string& delivery = "") {
  return "durability = \"" + durability + R"("
allow_private_targets = true
[engine]
fanout = "all"
[delivery]
retry_delays_ms = [20, 50, 100]
max_attempts = 100
jitter_percent = 0
breaker_failures = 1000000
)" + delivery +
         R"(
[spool]
cursor_interval_ms = 50
segment_mb = )" +
         std::to_string(segment_mb) + "\n";
}

void Configure(Daemon& d, const std::vector<std::unique_ptr<Receiver>>& rx) {
  for (int p = 0; p < kProfiles; ++p) {
    const std::string id = "p" + std::to_string(p);
    const HttpReply r =
        d.Call("POST", "/subscriptions/1/profiles",
               R"({"profileId":")" + id + R"(","maxBucketSize":)" + (p < 2 ? "1" : "100") +
                   R"(,"webhook":{"notifyUrl":")" + rx[p]->url() + R"("}})");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  for (int c = 0; c < 3; ++c) {
    for (int p : kRoutes[c]) {
      const std::string sub = std::string(kChannels[c]) + "-p" + std::to_string(p);
      const HttpReply r =
          d.Call("POST", std::string("/subscriptions/1/subscription/") + kChannels[c],
                 R"({"subscriptionId":")" + sub + R"(","events":["DELIVERY"],)" +
                     R"("profile":{"profileId":"p)" + std::to_string(p) + "\"}}");
      ASSERT_EQ(r.status, 201) << r.body;
    }
  }
  std::this_thread::sleep_for(150ms);  // visible to routing within 100 ms
}

class CrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CrashTest, AcknowledgedEventsReachEveryReceiverAfterKill9) {
  TempDir dir;
  { std::ofstream(dir.path() + "/heraldd.toml") << Config(GetParam()); }
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config",
                                         dir.path() + "/heraldd.toml"};
  Deliveries got;
  std::vector<std::unique_ptr<Receiver>> rx;
  std::atomic<uint64_t> answered{0};
  for (int p = 0; p < kProfiles; ++p) {
    rx.push_back(std::make_unique<Receiver>());
    rx[p]->set_handler([&, p](const ReceivedRequest& r) {
      // Every 10th request fails, so retries are pending when the daemon dies.
      if (answered.fetch_add(1) % 10 == 9) return Reply{.status = 503};
      got.Record(p, r);
      return Reply{.status = 200};
    });
  }

  constexpr int kRequests = kEvents / kPerRequest;
  std::vector<std::atomic<bool>> acked(kRequests), sent(kRequests);
  std::vector<bool> acked_first_run(kRequests), sent_first_run(kRequests);
  auto post = [&](Daemon& d, const std::vector<int>& batches, std::atomic<size_t>& next,
                  std::atomic<int>& acked_count) {
    for (size_t i = next.fetch_add(1); i < batches.size(); i = next.fetch_add(1)) {
      sent[batches[i]] = true;
      const HttpReply r = d.Call("POST", "/v1/events", Request(batches[i]), "application/x-ndjson");
      if (r.status == 202 && r.body.find("\"accepted\":100,") != std::string::npos) {
        acked[batches[i]] = true;
        acked_count.fetch_add(1);
      } else if (r.status == -1) {
        return;  // the daemon is gone
      }
    }
  };

  {
    Daemon d(args, data);
    ASSERT_NE(d.port(), 0) << d.output();
    Configure(d, rx);
    if (HasFailure()) return;
    std::vector<int> all(kRequests);
    for (int i = 0; i < kRequests; ++i) all[i] = i;
    std::atomic<size_t> next{0};
    std::atomic<int> acked_count{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 2; ++t) clients.emplace_back([&] { post(d, all, next, acked_count); });
    // Mid-stream: a little under half acknowledged, deliveries still behind.
    while (acked_count.load() < kRequests * 2 / 5 && next.load() < all.size()) {
      std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(d.Signal(SIGKILL), -SIGKILL);
    for (auto& t : clients) t.join();
    for (int i = 0; i < kRequests; ++i) {
      acked_first_run[i] = acked[i];
      sent_first_run[i] = sent[i];
    }
    std::printf("first run: %d of %d requests acknowledged, %llu deliveries before kill -9\n",
                acked_count.load(), kRequests, static_cast<unsigned long long>(got.requests));
  }

  // Restart on the same data_dir; then the client sends what it was not told was accepted.
  Daemon d(args, data);
  ASSERT_NE(d.port(), 0) << d.output();
  const HttpReply metrics = d.Call("GET", "/metrics");
  EXPECT_EQ(metrics.body.find("herald_spool_replayed_records_total 0\n"), std::string::npos)
      << "the restart replayed nothing";
  std::vector<int> rest;
  for (int i = 0; i < kRequests; ++i) {
    if (!acked[i]) rest.push_back(i);
  }
  {
    std::atomic<size_t> next{0};
    std::atomic<int> acked_count{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 2; ++t) clients.emplace_back([&] { post(d, rest, next, acked_count); });
    for (auto& t : clients) t.join();
    ASSERT_EQ(acked_count.load(), static_cast<int>(rest.size()));
  }

  // Every event reaches every profile it routes to.
  std::vector<int> every(kRequests);
  for (int i = 0; i < kRequests; ++i) every[i] = i;
  ASSERT_EQ(got.WaitFor(every, 180s), 0u) << d.output();

  std::lock_guard lock(got.mu);
  size_t duplicates = 0, checked_ids = 0, profile_duplicates[kProfiles] = {};
  for (int p = 0; p < kProfiles; ++p) {
    for (const auto& [n, ids] : got.by_profile[p]) {
      const auto& routes = kRoutes[n % 3];
      EXPECT_NE(std::find(routes.begin(), routes.end(), p), routes.end())
          << "event " << n << " reached p" << p;
      duplicates += ids.size() - 1;
      profile_duplicates[p] += ids.size() - 1;
      // Only what the crash interrupted is sent twice (a request in flight at the kill may
      // have been spooled, and the client sends it again).
      EXPECT_TRUE(ids.size() == 1 || sent_first_run[n / kPerRequest])
          << "event " << n << " sent " << ids.size() << " times to p" << p;
    }
  }
  // The same webhook-id every time an acknowledged event was sent alone, on any profile and
  // across the restart (a request resent by the client is a new event with a new generated id).
  for (int n = 0; n < kEvents; ++n) {
    if (!acked_first_run[n / kPerRequest]) continue;
    std::set<std::string> ids;
    for (int p : kRoutes[n % 3]) {
      for (const auto& id : got.by_profile[p][n]) {
        if (!id.empty()) ids.insert(id);
      }
    }
    ASSERT_FALSE(ids.empty()) << "event " << n;
    EXPECT_EQ(ids.size(), 1u) << "event " << n << " was sent with several webhook-ids";
    if (n % 2 == 0) {
      EXPECT_EQ(*ids.begin(), "ev-" + std::to_string(n));
    }
    checked_ids += 1;
  }
  std::printf(
      "durability %s: %d events, every one delivered to each of its profiles; %zu "
      "duplicate deliveries (p0..p3: %zu %zu %zu %zu: delivered after the last checkpoint "
      "or in flight at the kill); %zu webhook-ids checked stable\n",
      GetParam().c_str(), kEvents, duplicates, profile_duplicates[0], profile_duplicates[1],
      profile_duplicates[2], profile_duplicates[3], checked_ids);
  RecordProperty("duplicates", static_cast<int>(duplicates));
  EXPECT_EQ(d.Stop(), 0);
}

// A full disk (here: a file size limit) must refuse new events with a clear 503, keep the
// daemon serving, and lose nothing it acknowledged before; after space returns, ingest resumes.
TEST(DiskFull, IngestAnswers503AndLosesNothingAcknowledged) {
  TempDir dir;
  { std::ofstream(dir.path() + "/heraldd.toml") << Config("always", 64); }
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config",
                                         dir.path() + "/heraldd.toml"};
  Deliveries got;
  std::vector<std::unique_ptr<Receiver>> rx;
  for (int p = 0; p < kProfiles; ++p) {
    rx.push_back(std::make_unique<Receiver>());
    rx[p]->set_handler([&, p](const ReceivedRequest& r) {
      got.Record(p, r);
      return Reply{.status = 200};
    });
  }
  std::vector<int> acked;
  int refused = -1;
  {
    // The first segment fills up against a 1.5 MiB limit.
    Daemon d(args, data, 1536 << 10);
    ASSERT_NE(d.port(), 0) << d.output();
    Configure(d, rx);
    if (HasFailure()) return;
    for (int b = 0; b < kEvents / kPerRequest && refused < 0; ++b) {
      const HttpReply r = d.Call("POST", "/v1/events", Request(b), "application/x-ndjson");
      if (r.status == 202) {
        acked.push_back(b);
      } else {
        ASSERT_EQ(r.status, 503) << r.body;
        EXPECT_NE(r.body.find("spool could not store the events"), std::string::npos) << r.body;
        EXPECT_NE(r.body.find("File too large"), std::string::npos) << r.body;
        EXPECT_EQ(r.retry_after, "5");
        refused = b;
      }
    }
    ASSERT_GT(refused, 0) << "the file size limit was never reached";
    // Still full: still refused, still serving everything else.
    EXPECT_EQ(d.Call("POST", "/v1/events", Request(refused), "application/x-ndjson").status, 503);
    EXPECT_EQ(d.Call("GET", "/healthz").status, 200);
    const HttpReply metrics = d.Call("GET", "/metrics");
    EXPECT_NE(metrics.body.find("herald_spool_append_errors_total 2\n"), std::string::npos);
    EXPECT_EQ(got.WaitFor(acked, 60s), 0u);  // everything acknowledged is delivered
    {
      std::lock_guard lock(got.mu);
      for (int p = 0; p < kProfiles; ++p) {
        for (const auto& [n, ids] : got.by_profile[p]) {
          EXPECT_LT(n / kPerRequest, refused) << "a refused event was delivered";
        }
      }
    }
    EXPECT_EQ(d.Signal(SIGKILL), -SIGKILL);
  }
  // Space again: the spool reopens where it stopped and takes events.
  Daemon d(args, data);
  ASSERT_NE(d.port(), 0) << d.output();
  EXPECT_EQ(d.Call("POST", "/v1/events", Request(refused), "application/x-ndjson").status, 202);
  EXPECT_EQ(d.Stop(), 0);
}

// SIGTERM while a receiver is failing: what could not be delivered within the grace period stays
// in the spool (not dead letters) and is delivered after the restart, with its pending retries.
TEST(GracefulStop, UndeliveredNotificationsWaitInTheSpool) {
  TempDir dir;
  { std::ofstream(dir.path() + "/heraldd.toml") << Config("batch", 1, "shutdown_grace_ms = 200"); }
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config",
                                         dir.path() + "/heraldd.toml"};
  Deliveries got;
  std::atomic<bool> failing{true};
  std::vector<std::unique_ptr<Receiver>> rx;
  for (int p = 0; p < kProfiles; ++p) {
    rx.push_back(std::make_unique<Receiver>());
    rx[p]->set_handler([&, p](const ReceivedRequest& r) {
      if (failing) return Reply{.status = 500};
      got.Record(p, r);
      return Reply{.status = 200};
    });
  }
  {
    Daemon d(args, data);
    ASSERT_NE(d.port(), 0) << d.output();
    Configure(d, rx);
    if (HasFailure()) return;
    for (int b = 0; b < 3; ++b) {
      ASSERT_EQ(d.Call("POST", "/v1/events", Request(b), "application/x-ndjson").status, 202);
    }
    ASSERT_TRUE(rx[3]->WaitFor(2, 5s));  // attempts were made and failed
    EXPECT_EQ(d.Stop(), 0);
  }
  failing = false;
  Daemon d(args, data);
  ASSERT_NE(d.port(), 0) << d.output();
  for (int p = 0; p < kProfiles; ++p) {
    const HttpReply letters = d.Call("GET", "/v1/dead-letters?profileId=p" + std::to_string(p));
    EXPECT_EQ(letters.status, 200);
    EXPECT_NE(letters.body.find(R"("totalResults":0)"), std::string::npos) << letters.body;
  }
  EXPECT_EQ(got.WaitFor({0, 1, 2}, 30s), 0u);
  EXPECT_EQ(d.Stop(), 0);
}

// A batch's webhook-id is a stable hash of its members' ids (DESIGN §5): a retried batch keeps
// it, in the same process and after kill -9, so a receiver can de-duplicate it.
TEST(BatchIds, ARetriedBatchKeepsItsIdAcrossKill9) {
  TempDir dir;
  { std::ofstream(dir.path() + "/heraldd.toml") << Config("always"); }
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config",
                                         dir.path() + "/heraldd.toml"};
  Receiver rx;
  rx.set_handler([](const ReceivedRequest&) { return Reply{.status = 503}; });
  // Body -> the ids it was sent with, per run.
  auto batches = [&](size_t from) {
    std::map<std::string, std::set<std::string>> out;
    const auto all = rx.requests();
    for (size_t i = from; i < all.size(); ++i) {
      const std::string id = all[i].header("webhook-id");
      if (id.starts_with("batch-")) out[all[i].body].insert(id);
    }
    return out;
  };
  std::map<std::string, std::set<std::string>> first;
  {
    Daemon d(args, data);
    ASSERT_NE(d.port(), 0) << d.output();
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"p",)"
                     R"("maxBucketSize":100,"webhook":{"notifyUrl":")" +
                         rx.url() + R"("}}})")
                  .status,
              201);
    std::this_thread::sleep_for(150ms);
    std::string events;
    for (int n = 0; n < 10; ++n) events += Event(n * 3);  // SMS events, half with an eventId
    ASSERT_EQ(d.Call("POST", "/v1/events", events, "application/x-ndjson").status, 202);
    ASSERT_TRUE(rx.WaitFor(6, 10s));
    EXPECT_EQ(d.Signal(SIGKILL), -SIGKILL);
    first = batches(0);
  }
  ASSERT_FALSE(first.empty()) << "no batch was formed";
  for (const auto& [body, ids] : first) {
    EXPECT_EQ(ids.size(), 1u) << "retries of one batch came with several ids: " << body;
    const std::string& id = *ids.begin();
    EXPECT_EQ(id.size(), 6u + 16u) << id;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 6), std::string::npos) << id;
  }
  // How a batch forms depends on timing (the first notification may leave before the rest are
  // queued), so restart until one re-forms with the same members; each must keep its id.
  size_t same_members = 0;
  for (int restart = 0; restart < 5 && same_members == 0; ++restart) {
    Daemon d(args, data);
    ASSERT_NE(d.port(), 0) << d.output();
    const size_t from = rx.count();
    ASSERT_TRUE(rx.WaitFor(from + 6, 10s));
    for (const auto& [body, ids] : batches(from)) {
      auto it = first.find(body);
      if (it == first.end()) {
        first[body] = ids;  // formed differently: compared after the next restart
        continue;
      }
      ++same_members;
      EXPECT_EQ(ids, it->second) << "the same members got another id after the restart";
    }
    EXPECT_EQ(d.Signal(SIGKILL), -SIGKILL);
  }
  EXPECT_GT(same_members, 0u) << "no batch re-formed with the same members in 5 restarts";
}

INSTANTIATE_TEST_SUITE_P(Durability, CrashTest, ::testing::Values("batch", "always"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace herald
