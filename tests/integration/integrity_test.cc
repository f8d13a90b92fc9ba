// Delivery integrity against the real heraldd: nothing lost, nothing wedged, nothing unbounded,
// nothing injected. Each test is a way an unlucky or hostile user met a failure: a batch whose
// headers outgrow what a receiver takes, header injection through stored fields, management
// left open by an ingest key, a crash while dead letters are being replayed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/daemon.h"
#include "tests/testing/nginx.h"
#include "tests/testing/receiver.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using test_support::Daemon;
using test_support::HttpReply;
using test_support::Nginx;
using test_support::ReceivedRequest;
using test_support::Receiver;
using test_support::Reply;
using test_support::TempDir;

// Runs heraldd to its exit (killed after 10 s if it starts serving), with stdout and stderr.
struct Exit {
  int code = -1;
  std::string output;
};
Exit RunToExit(const std::string& args) {
  TempDir dir;
  const char* const heraldd =
      std::getenv("HERALDD_UNDER_TEST") ? std::getenv("HERALDD_UNDER_TEST") : HERALDD_PATH;
  const std::string command =
      std::string("timeout 10 ") + heraldd + " --data-dir " + dir.path() + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  Exit out;
  char buf[512];
  while (pipe && fgets(buf, sizeof buf, pipe)) out.output += buf;
  const int status = pipe ? pclose(pipe) : -1;
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The value of one /metrics line (`name` with its labels), or -1 when absent.
long long Metric(Daemon& d, const std::string& name) {
  const std::string body = d.Call("GET", "/metrics").body;
  const size_t at = body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::atoll(body.c_str() + at + name.size() + 2);
}

bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

std::string WriteConfig(const TempDir& dir, const std::string& toml) {
  const std::string path = dir.path() + "/heraldd.toml";
  std::ofstream(path) << "allow_private_targets = true\n" << toml;
  return path;
}

// --- keys ---

TEST(Keys, AnIngestKeyAloneIsRefusedAtStart) {
  const Exit e = RunToExit("--listen 127.0.0.1:0 --ingest-key feed");
  EXPECT_EQ(e.code, 2) << e.output;
  EXPECT_NE(e.output.find("api_key"), std::string::npos) << e.output;
  EXPECT_NE(e.output.find("management API open"), std::string::npos) << e.output;
  EXPECT_EQ(e.output.find("feed"), std::string::npos) << "keys are never printed";
}

TEST(Keys, WithoutAnApiKeyOnlyLoopbackIsServed) {
  for (const char* listen : {"0.0.0.0:0", "[::]:0", "192.0.2.1:0"}) {
    const Exit e = RunToExit(std::string("--listen ") + listen);
    EXPECT_EQ(e.code, 2) << listen << ": " << e.output;
    EXPECT_NE(e.output.find("loopback only"), std::string::npos) << e.output;
  }
  // With a key any address will do; on loopback no key is needed, and the daemon says so.
  Daemon keyed({"--listen", "127.0.0.1:0", "--api-key", "admin", "--ingest-key", "feed"});
  EXPECT_NE(keyed.port(), 0) << keyed.output();
  Daemon open({"--listen", "127.0.0.1:0"});
  ASSERT_NE(open.port(), 0);
  EXPECT_EQ(open.Stop(), 0);
  EXPECT_NE(open.output().find("listening on loopback only"), std::string::npos) << open.output();
}

// --- header hygiene ---

TEST(HeaderHygiene, StoredFieldsThatWouldSplitAHeaderAreRefusedNamingTheField) {
  Daemon d({"--listen", "127.0.0.1:0"});
  ASSERT_NE(d.port(), 0);
  struct Case {
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h",
           "contentType":"application/json\r\nX-Injected: 1"}})",
       "webhook.contentType"},
      {R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"},
           "headers":{"X-A":"v\r\nX-Injected: 1"}})",
       "headers"},
      {R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"},
           "headers":{"X-A":"v\u0000w"}})",
       "headers"},
      {R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"},
           "headers":{"X-A\r\nX-Injected":"1"}})",
       "headers"},
      {R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"},
           "headers":{"Host":"evil.example"}})",
       "headers"},
      {R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"},
           "headers":{"Transfer-Encoding":"chunked"}})",
       "headers"},
      {R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"},
           "headers":{"webhook-signature":"v1,forged"}})",
       "headers"},
      {R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"},
           "security":{"authId":"o","type":"OAUTH","credentials":{
             "tokenUrl":"https://x.example/token","grantType":"client_credentials",
             "headers":{"X-A":"v\nX-Injected: 1"}}}})",
       "credentials.headers"},
  };
  for (const Case& c : cases) {
    const HttpReply r = d.Call("POST", "/subscriptions/1/profiles", c.body);
    EXPECT_EQ(r.status, 400) << c.body << "\n" << r.body;
    EXPECT_NE(r.body.find("\"" + c.field + "\":["), std::string::npos) << r.body;
  }
  // The same through PUT, once a clean profile exists.
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                   R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"}})")
                .status,
            201);
  const HttpReply put =
      d.Call("PUT", "/subscriptions/1/profiles/p",
             R"({"webhook":{"notifyUrl":"https://x.example/h","contentType":"a/b\r\nX: 1"}})");
  EXPECT_EQ(put.status, 400) << put.body;
  EXPECT_NE(put.body.find(R"("webhook.contentType":[)"), std::string::npos) << put.body;
  EXPECT_EQ(d.Stop(), 0);
}

// A value herald did not store itself — here an access token from an OAuth endpoint — is
// checked again before it is written: the request is not sent, and the notification becomes a
// dead letter that says why.
TEST(HeaderHygiene, ATokenWithCrLfNeverReachesTheWire) {
  TempDir dir;
  const std::string config =
      WriteConfig(dir, "[delivery]\nretry_delays_ms = [10]\nmax_attempts = 2\n");
  Receiver tokens, hooks;
  tokens.set_handler([](const ReceivedRequest&) {
    return Reply{.status = 200,
                 .headers = {{"content-type", "application/json"}},
                 .body = R"({"access_token":"tok\r\nX-Injected: 1","expires_in":3600})"};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  const HttpReply created = d.Call(
      "POST", "/subscriptions/1/subscription/SMS",
      R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"p","webhook":{"notifyUrl":")" +
          hooks.url() +
          R"("},"security":{"authId":"o","type":"OAUTH","credentials":{"tokenUrl":")" +
          tokens.url("/token") +
          R"(","grantType":"client_credentials","clientId":"c","clientSecret":"s"}}}})");
  ASSERT_EQ(created.status, 201) << created.body;
  std::this_thread::sleep_for(150ms);
  ASSERT_EQ(
      d.Call("POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY","payload":{}})").status,
      202);
  std::string letters;
  ASSERT_TRUE(Eventually([&] {
    letters = d.Call("GET", "/v1/dead-letters?profileId=p").body;
    return letters.find(R"("totalResults":1)") != std::string::npos;
  })) << letters;
  EXPECT_NE(letters.find("access_token"), std::string::npos) << letters;
  EXPECT_EQ(hooks.count(), 0u) << "nothing was sent with the poisoned token";
  EXPECT_EQ(d.Stop(), 0);
}

// --- batches ---

// 300 subscriptions with 255-character ids on one profile with maxBucketSize 2000, one event
// each: a batch listing every id would carry 77 KiB of x-herald-subscription. nginx refuses
// request headers over 8 KiB; every request must fit, every event arrive, and the stop be clean.
TEST(Batches, HeadersStayWithin8KiBAndNginxTakesEveryBatch) {
  ASSERT_EQ(access("/usr/sbin/nginx", X_OK), 0) << "nginx is missing: run tools/deps.sh";
  TempDir dir;
  Nginx nginx(dir.path());
  ASSERT_TRUE(nginx.Accepts()) << "nginx did not start; see " << dir.path() << "/error.log";
  const std::string config = WriteConfig(dir, "[delivery]\nretry_delays_ms = [10]\n");
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  // One request a second: while the first is answered, the other 299 wait and form one batch.
  ASSERT_EQ(
      d.Call("POST", "/subscriptions/1/profiles",
             R"({"profileId":"wide","maxBucketSize":2000,"rateLimit":1,"webhook":{"notifyUrl":")" +
                 nginx.url() + R"("}})")
          .status,
      201);
  constexpr int kSubscriptions = 300;
  std::string events;
  for (int i = 0; i < kSubscriptions; ++i) {
    std::string id = "s" + std::to_string(i) + "-";
    id += std::string(255 - id.size(), 'x');
    const HttpReply r = d.Call("POST", "/subscriptions/1/subscription/SMS",
                               R"({"subscriptionId":")" + id +
                                   R"(","events":["DELIVERY"],"criteria":[{"applicationId":"a)" +
                                   std::to_string(i) + R"("}],"profile":{"profileId":"wide"}})");
    ASSERT_EQ(r.status, 201) << r.body;
    events += R"({"channel":"SMS","event":"DELIVERY","applicationId":"a)" + std::to_string(i) +
              R"(","payload":{"n":)" + std::to_string(i) + "}}\n";
  }
  std::this_thread::sleep_for(150ms);
  const HttpReply ingest = d.Call("POST", "/v1/events", events, "application/x-ndjson");
  ASSERT_EQ(ingest.status, 202) << ingest.body;
  const std::string delivered = "herald_webhook_delivered_total{profile=\"wide\"}";
  EXPECT_TRUE(Eventually([&] { return Metric(d, delivered) == kSubscriptions; }))
      << "delivered " << Metric(d, delivered)
      << "; dead letters: " << d.Call("GET", "/v1/dead-letters?profileId=wide").body;
  EXPECT_EQ(Metric(d, "herald_webhook_dead_lettered_total{profile=\"wide\"}"), 0);
  const auto log = nginx.log();
  EXPECT_LT(log.size(), 300u) << "the events went in batches";
  for (const auto& line : log) EXPECT_EQ(line[2], "200") << "nginx refused a request";
  EXPECT_EQ(d.Stop(), 0) << "a clean stop";
}

// The same batch against a recording receiver: each x-herald-* header lists distinct values up to
// 1 KiB, then says how many it left out.
TEST(Batches, ALongListEndsWithHowManyWereLeftOut) {
  TempDir dir;
  const std::string config = WriteConfig(dir, "");
  Receiver rx;
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(
      d.Call("POST", "/subscriptions/1/profiles",
             R"({"profileId":"wide","maxBucketSize":2000,"rateLimit":1,"webhook":{"notifyUrl":")" +
                 rx.url() + R"("}})")
          .status,
      201);
  std::string events;
  for (int i = 0; i < 100; ++i) {
    std::string id = "s" + std::to_string(i) + "-";
    id += std::string(100 - id.size(), 'y');
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     R"({"subscriptionId":")" + id +
                         R"(","events":["DELIVERY"],"criteria":[{"applicationId":"a)" +
                         std::to_string(i) + R"("}],"profile":{"profileId":"wide"}})")
                  .status,
              201);
    events += R"({"channel":"SMS","event":"DELIVERY","applicationId":"a)" + std::to_string(i) +
              R"(","payload":{"n":)" + std::to_string(i) + "}}\n";
  }
  std::this_thread::sleep_for(150ms);
  ASSERT_EQ(d.Call("POST", "/v1/events", events, "application/x-ndjson").status, 202);
  ASSERT_TRUE(rx.WaitFor(1, 10s));
  std::this_thread::sleep_for(1500ms);  // the rest, if the first request went alone
  // The largest batch (how the dispatcher hands the events over decides how they batch).
  ReceivedRequest batch;
  size_t items = 0;
  for (const auto& r : rx.requests()) {
    size_t n = 0;
    for (size_t at = r.body.find("\"n\":"); at != std::string::npos;
         at = r.body.find("\"n\":", at + 4)) {
      ++n;
    }
    if (n > items) {
      items = n;
      batch = r;
    }
  }
  ASSERT_GE(items, 20u) << batch.body;
  const std::string listed = batch.header("x-herald-subscription");
  EXPECT_LE(listed.size(), 1024u + 8);
  // 10 ids of 100 bytes fit in 1 KiB with their commas; ",+N" counts the others.
  const size_t plus = listed.rfind(",+");
  ASSERT_NE(plus, std::string::npos) << listed;
  const size_t listed_count = static_cast<size_t>(std::count(listed.begin(), listed.end(), ','));
  EXPECT_EQ(listed_count, 10u) << listed;
  EXPECT_EQ(listed_count + std::stoul(listed.substr(plus + 2)), items) << listed;
  EXPECT_EQ(batch.header("x-herald-channel"), "SMS");
  EXPECT_EQ(d.Stop(), 0);
}

// --- slow receivers ---

// A receiver that hangs next to a healthy one, with tiny queues: ingest never answers 503 for the
// slow one's sake (a retrying client would send the healthy one its events twice), the healthy one
// gets each event once, and the slow one gets all of them once it recovers.
TEST(SlowReceivers, ASlowProfileNeverPushesBackOnIngest) {
  TempDir dir;
  const std::string config = WriteConfig(dir, R"([engine]
fanout = "all"
queue_max_notifications = 2
[delivery]
max_held_per_profile = 1
retry_delays_ms = [50]
max_attempts = 100
jitter_percent = 0
breaker_failures = 1000000
[spool]
cursor_interval_ms = 50
)");
  std::atomic<bool> hang{true};
  Receiver slow, healthy;
  slow.set_handler([&](const ReceivedRequest&) {
    return hang ? Reply{.mode = Reply::Mode::kHang} : Reply{.status = 200};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  for (auto [id, url] : {std::pair{"slow", slow.url()}, std::pair{"healthy", healthy.url()}}) {
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     std::string(R"({"subscriptionId":")") + id +
                         R"(","events":["DELIVERY"],"profile":{"profileId":")" + id +
                         R"(","maxBucketSize":1,"readTimeout":1000,"webhook":{"notifyUrl":")" +
                         url + R"("}}})")
                  .status,
              201);
  }
  std::this_thread::sleep_for(150ms);
  int refused = 0;
  for (int n = 0; n < 40; ++n) {
    const std::string event =
        R"({"channel":"SMS","event":"DELIVERY","payload":{"n":)" + std::to_string(n) + "}}";
    HttpReply r;
    for (int attempt = 0; attempt < 5; ++attempt) {  // a client that retries its 503s
      r = d.Call("POST", "/v1/events", event);
      if (r.status != 503) break;
      ++refused;
    }
    ASSERT_EQ(r.status, 202) << r.body;
  }
  EXPECT_EQ(refused, 0) << "ingest answered 503 because one receiver is slow";
  ASSERT_TRUE(healthy.WaitFor(40, 20s)) << healthy.count();
  std::this_thread::sleep_for(300ms);
  std::set<std::string> ids;
  for (const auto& r : healthy.requests()) ids.insert(r.header("webhook-id"));
  EXPECT_EQ(healthy.count(), 40u) << "the healthy receiver got events twice";
  EXPECT_EQ(ids.size(), 40u);
  // The slow one recovers: everything that waited in the spool reaches it.
  hang = false;
  std::set<std::string> slow_ids;
  EXPECT_TRUE(Eventually(
      [&] {
        slow_ids.clear();
        for (const auto& r : slow.requests()) {
          if (r.body.find("\"n\":") != std::string::npos) slow_ids.insert(r.body);
        }
        return slow_ids.size() == 40;
      },
      60s))
      << slow_ids.size();
  EXPECT_EQ(d.Stop(), 0);
}

// --- memory ---

// 30 requests of 8 MB NDJSON, each with one event for a receiver that hangs and the rest matching
// nothing: the queued and held notifications keep their own bytes alive, not 240 MB of bodies.
TEST(Memory, ASmallEventDoesNotPinItsWholeBody) {
  TempDir dir;
  const std::string config = WriteConfig(dir, R"([engine]
queue_max_bytes = 16777216
[delivery]
retry_delays_ms = [60000]
breaker_failures = 1000000
)");
  Receiver slow;
  slow.set_handler([](const ReceivedRequest&) { return Reply{.mode = Reply::Mode::kHang}; });
  // Freed memory straight back to the allocator, so resident memory shows what is kept alive.
  std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
  setenv("ASAN_OPTIONS", (asan + (asan.empty() ? "" : ":") + "quarantine_size_mb=0").c_str(), 1);
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  setenv("ASAN_OPTIONS", asan.c_str(), 1);
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"slow","events":["DELIVERY"],"profile":{"profileId":)"
                   R"("slow","maxBucketSize":1,"webhook":{"notifyUrl":")" +
                       slow.url() + R"("}}})")
                .status,
            201);
  std::this_thread::sleep_for(150ms);
  const std::string pad(1 << 20, 'p');
  std::string rest;  // ~8 MB of events nobody subscribed to
  for (int k = 0; k < 8; ++k) {
    rest += R"({"channel":"SMS","event":"CLICK","payload":{"pad":")" + pad + "\"}}\n";
  }
  const long rss_before = d.RssKib();
  for (int i = 0; i < 30; ++i) {
    const std::string body = R"({"channel":"SMS","event":"DELIVERY","payload":{"n":)" +
                             std::to_string(i) + "}}\n" + rest;
    const HttpReply r = d.Call("POST", "/v1/events", body, "application/x-ndjson");
    ASSERT_EQ(r.status, 202) << r.body;
  }
  ASSERT_TRUE(slow.WaitFor(1, 10s));
  const long long kept = Metric(d, "herald_payload_bytes");
  EXPECT_GE(kept, 0) << "herald_payload_bytes missing";
  EXPECT_LT(kept, 1 << 20) << "30 small events keep this many bytes of input alive";
  const long grown_mib = (d.RssKib() - rss_before) / 1024;
  EXPECT_LT(grown_mib, 150) << "resident memory grew by " << grown_mib << " MiB";
  EXPECT_EQ(d.Stop(), 0);
}

// --- dead letters ---

// 30 dead letters replayed into a receiver that hangs, then kill -9: a replayed letter leaves the
// store only once its new delivery settled, so all 30 are there after the restart.
TEST(DeadLetters, AReplayInterruptedByKill9LosesNone) {
  TempDir dir;
  const std::string config =
      WriteConfig(dir, "[delivery]\nretry_delays_ms = [10]\nmax_attempts = 3\n");
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config", config};
  enum Phase { kRefuse, kHang, kTake };
  std::atomic<int> phase{kRefuse};
  std::mutex mu;
  std::set<int> taken;  // event numbers answered 200
  Receiver rx;
  rx.set_handler([&](const ReceivedRequest& r) {
    if (phase == kRefuse) return Reply{.status = 400};
    if (phase == kHang) return Reply{.mode = Reply::Mode::kHang};
    std::lock_guard lock(mu);
    for (size_t at = r.body.find("\"n\":"); at != std::string::npos;
         at = r.body.find("\"n\":", at + 4)) {
      taken.insert(std::atoi(r.body.c_str() + at + 4));
    }
    return Reply{.status = 200};
  });
  auto letters = [](Daemon& d) {
    const std::string body = d.Call("GET", "/v1/dead-letters?profileId=p&size=100").body;
    const size_t at = body.find("\"totalResults\":");
    return at == std::string::npos ? -1 : std::atoi(body.c_str() + at + 15);
  };
  {
    Daemon d(args, data);
    ASSERT_NE(d.port(), 0) << d.output();
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"p",)"
                     R"("webhook":{"notifyUrl":")" +
                         rx.url() + R"("}}})")
                  .status,
              201);
    std::this_thread::sleep_for(150ms);
    std::string events;
    for (int n = 0; n < 30; ++n) {
      events += R"({"channel":"SMS","event":"DELIVERY","eventId":"e)" + std::to_string(n) +
                R"(","payload":{"n":)" + std::to_string(n) + "}}\n";
    }
    ASSERT_EQ(d.Call("POST", "/v1/events", events, "application/x-ndjson").status, 202);
    ASSERT_TRUE(Eventually([&] { return letters(d) == 30; })) << letters(d);
    phase = kHang;
    const size_t before = rx.count();
    const HttpReply replay = d.Call("POST", "/v1/dead-letters/replay", R"({"profileId":"p"})");
    ASSERT_EQ(replay.status, 200) << replay.body;
    EXPECT_EQ(replay.body, R"({"replayed":30})");
    ASSERT_TRUE(rx.WaitFor(before + 1, 10s)) << "the replay reached the receiver";
    EXPECT_EQ(letters(d), 30) << "in the store until the replay settles";
    EXPECT_EQ(d.Signal(SIGKILL), -SIGKILL);
  }
  phase = kTake;
  Daemon d(args, data);
  ASSERT_NE(d.port(), 0) << d.output();
  EXPECT_EQ(letters(d), 30) << "a crash during the replay lost dead letters";
  const HttpReply replay = d.Call("POST", "/v1/dead-letters/replay", R"({"profileId":"p"})");
  EXPECT_EQ(replay.body, R"({"replayed":30})");
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return taken.size() == 30;
  }));
  EXPECT_TRUE(Eventually([&] { return letters(d) == 0; })) << "delivered letters leave the store";
  EXPECT_EQ(d.Stop(), 0);
}

// Dead letters are bounded by [dead_letters] max_mb (the oldest go, counted), can be deleted, and
// a store that fills the disk still opens: starting never rewrites it just to open it.
TEST(DeadLetters, BoundedDeletableAndOpenOnAFullDisk) {
  TempDir dir;
  const std::string config = WriteConfig(dir, "[dead_letters]\nmax_mb = 1\n");
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config", config};
  Receiver refusing;
  refusing.set_handler([](const ReceivedRequest&) { return Reply{.status = 400}; });
  auto letters = [](Daemon& d, const std::string& query) {
    return d.Call("GET", "/v1/dead-letters?profileId=p&size=100" + query).body;
  };
  std::string deleted;
  {
    Daemon d(args, data);
    ASSERT_NE(d.port(), 0) << d.output();
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"p",)"
                     R"("maxBucketSize":1,"webhook":{"notifyUrl":")" +
                         refusing.url() + R"("}}})")
                  .status,
              201);
    std::this_thread::sleep_for(150ms);
    const std::string pad(100'000, 'x');
    for (int n = 0; n < 30; ++n) {  // 3 MB of dead letters for a 1 MB store
      ASSERT_EQ(d.Call("POST", "/v1/events",
                       R"({"channel":"SMS","event":"DELIVERY","payload":{"n":)" +
                           std::to_string(n) + R"(,"pad":")" + pad + R"("}})")
                    .status,
                202);
    }
    ASSERT_TRUE(Eventually([&] { return Metric(d, "herald_dead_letters_dropped_total") >= 20; }))
        << d.Call("GET", "/metrics").body;
    EXPECT_LE(Metric(d, "herald_dead_letter_bytes"), 1 << 20);
    const std::string kept = letters(d, "");
    EXPECT_NE(kept.find(R"("n":29)"), std::string::npos) << "the newest must stay";
    EXPECT_EQ(kept.find(R"("n":0,)"), std::string::npos) << "the oldest must go first";
    EXPECT_NE(kept.find(pad), std::string::npos) << "payloads read back whole";
    EXPECT_EQ(d.Call("DELETE", "/v1/dead-letters").status, 400) << "profileId is required";
    // One by id, then the rest.
    const size_t at = kept.find(R"("id":")");
    ASSERT_NE(at, std::string::npos);
    const std::string id = kept.substr(at + 6, kept.find('"', at + 6) - at - 6);
    HttpReply one = d.Call("DELETE", "/v1/dead-letters?profileId=p&id=" + id);
    EXPECT_EQ(one.status, 200);
    EXPECT_EQ(one.body, R"({"deleted":1})");
    EXPECT_EQ(d.Call("DELETE", "/v1/dead-letters?profileId=p&id=" + id).body, R"({"deleted":0})");
    EXPECT_EQ(d.Call("DELETE", "/v1/dead-letters?profileId=p&id=x").status, 400);
    EXPECT_EQ(letters(d, "").find(R"("id":")" + id + "\""), std::string::npos);
    deleted = id;
    EXPECT_EQ(d.Stop(), 0);
  }
  // The next start keeps what is left (the deleted letter stays deleted), also when the disk is
  // full: under a file limit below the dead-letter file's size no rewrite of it can succeed.
  ASSERT_GT(std::filesystem::file_size(data + "/dead-letters.log"), 100'000u);
  Daemon d(args, data, /*max_file_bytes=*/16 << 10);
  ASSERT_NE(d.port(), 0) << "heraldd did not start on a full disk: " << d.output();
  const std::string kept = letters(d, "");
  EXPECT_NE(kept.find(R"("n":29)"), std::string::npos) << kept.substr(0, 300);
  EXPECT_EQ(kept.find(R"("id":")" + deleted + "\""), std::string::npos);
  EXPECT_GT(Metric(d, "herald_dead_letters"), 5);
  EXPECT_EQ(d.Stop(), 0);
}

// --- retention caps ---

long long DirBytes(const std::string& dir) {
  long long total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    total += static_cast<long long>(e.file_size(ec));
  }
  return total;
}

// One receiver always answering 503 next to a healthy one, 1 MiB segments and retain_max_mb 8:
// the spool stays near 8 MiB while 40 MiB go through, nothing answers 503, the healthy receiver
// gets everything, and what the dead one could not take becomes its dead letters.
TEST(Retention, ADeadReceiverCannotPinTheSpoolWithoutBound) {
  TempDir dir;
  const std::string config = WriteConfig(dir, R"([engine]
fanout = "all"
queue_max_notifications = 1000
[delivery]
max_held_per_profile = 100
retry_delays_ms = [60000]
max_attempts = 100
breaker_failures = 1000000
[spool]
segment_mb = 1
retain_max_mb = 8
cursor_interval_ms = 50
)");
  const std::string data = dir.path() + "/data";
  Receiver dead, healthy;
  dead.set_handler([](const ReceivedRequest&) { return Reply{.status = 503}; });
  std::atomic<long long> healthy_items{0};
  healthy.set_handler([&](const ReceivedRequest& r) {
    long long n = 0;
    for (size_t at = r.body.find("\"n\":"); at != std::string::npos;
         at = r.body.find("\"n\":", at + 4)) {
      ++n;
    }
    healthy_items += n;
    return Reply{.status = 200};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--config", config}, data);
  ASSERT_NE(d.port(), 0) << d.output();
  for (auto [id, url] : {std::pair{"dead", dead.url()}, std::pair{"healthy", healthy.url()}}) {
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     std::string(R"({"subscriptionId":")") + id +
                         R"(","events":["DELIVERY"],"profile":{"profileId":")" + id +
                         R"(","webhook":{"notifyUrl":")" + url + R"("}}})")
                  .status,
              201);
  }
  std::this_thread::sleep_for(150ms);
  const std::string pad(900, 'p');
  constexpr int kRequests = 40, kPerRequest = 1000;  // 1 KB events: 40 MB
  long long biggest = 0;
  for (int i = 0; i < kRequests; ++i) {
    std::string body;
    for (int k = 0; k < kPerRequest; ++k) {
      body += R"({"channel":"SMS","event":"DELIVERY","payload":{"n":)" +
              std::to_string(i * kPerRequest + k) + R"(,"pad":")" + pad + "\"}}\n";
    }
    const HttpReply r = d.Call("POST", "/v1/events", body, "application/x-ndjson");
    ASSERT_EQ(r.status, 202) << r.body;
    std::this_thread::sleep_for(100ms);  // a checkpoint's time
    biggest = std::max(biggest, DirBytes(data + "/spool"));
  }
  EXPECT_TRUE(Eventually([&] { return healthy_items.load() == kRequests * kPerRequest; }, 60s))
      << healthy_items.load();
  EXPECT_TRUE(Eventually([&] { return DirBytes(data + "/spool") <= (10ll << 20); }))
      << DirBytes(data + "/spool");
  EXPECT_LE(biggest, 12ll << 20) << "the spool grew past its cap";
  EXPECT_GT(Metric(d, "herald_spool_retention_segments_total"), 0);
  const long long buried = Metric(d, "herald_spool_retention_dead_letters_total");
  EXPECT_GT(buried, 20'000) << "what the dead receiver owed of the dropped segments";
  const std::string letters = d.Call("GET", "/v1/dead-letters?profileId=dead&size=1").body;
  EXPECT_NE(letters.find(R"("lastError":"retention")"), std::string::npos) << letters;
  const std::string healthy_letters = d.Call("GET", "/v1/dead-letters?profileId=healthy").body;
  EXPECT_NE(healthy_letters.find(R"("totalResults":0)"), std::string::npos) << healthy_letters;
  EXPECT_EQ(d.Stop(), 0);
}

// --- restart under a backlog ---

std::string BacklogConfig(const TempDir& dir) {
  return WriteConfig(dir, R"([engine]
fanout = "all"
[delivery]
retry_delays_ms = [60000]
[spool]
cursor_interval_ms = 50
)");
}

// A backlog: profiles a and b (fanout all) on `rx`, `requests` NDJSON requests of `per_request`
// events whose "e" numbers them all, acknowledged; then kill -9.
void MakeBacklog(const std::vector<std::string>& args, const std::string& data, const Receiver& rx,
                 int requests, int per_request) {
  Daemon d(args, data);
  ASSERT_NE(d.port(), 0) << d.output();
  for (const char* id : {"a", "b"}) {
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     std::string(R"({"subscriptionId":")") + id +
                         R"(","events":["DELIVERY"],"profile":{"profileId":")" + id +
                         R"(","webhook":{"notifyUrl":")" + rx.url() + R"("}}})")
                  .status,
              201);
  }
  std::this_thread::sleep_for(150ms);
  for (int i = 0; i < requests; ++i) {
    std::string body;
    for (int n = 0; n < per_request; ++n) {
      body += R"({"channel":"SMS","event":"DELIVERY","payload":{"e":)" +
              std::to_string(i * per_request + n) + "}}\n";
    }
    ASSERT_EQ(d.Call("POST", "/v1/events", body, "application/x-ndjson").status, 202);
  }
  EXPECT_EQ(d.Signal(SIGKILL), -SIGKILL);
}

TEST(Restart, DuringTheReplayHealthAnswersAndSigtermStops) {
  TempDir dir;
  const std::string config = BacklogConfig(dir);
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config", config};
  std::atomic<bool> failing{true};
  Receiver rx;
  rx.set_handler([&](const ReceivedRequest&) { return Reply{.status = failing ? 500 : 200}; });
  constexpr int kRequests = 400, kPerRequest = 500;
  ASSERT_NO_FATAL_FAILURE(MakeBacklog(args, data, rx, kRequests, kPerRequest));
  {
    Daemon d(args, data, 0, /*wait_ready=*/false);
    ASSERT_NE(d.port(), 0) << d.output();
    const HttpReply health = d.Call("GET", "/healthz");
    const HttpReply ready = d.Call("GET", "/readyz");
    const HttpReply ingest =
        d.Call("POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY","payload":{}})");
    EXPECT_EQ(health.status, 200);
    ASSERT_EQ(ready.status, 503) << "the replay was over before it could be observed";
    EXPECT_EQ(ingest.status, 503) << ingest.body;
    EXPECT_EQ(ingest.retry_after, "1");
    const auto asked = std::chrono::steady_clock::now();
    EXPECT_EQ(d.Stop(), 0) << d.output();
    EXPECT_LT(std::chrono::steady_clock::now() - asked, 10s) << "SIGTERM waited for the replay";
  }
  failing = false;
  Daemon d(args, data);
  ASSERT_NE(d.port(), 0) << d.output();
  EXPECT_GT(Metric(d, "herald_spool_replayed_records_total"), 0) << "replayed again";
  EXPECT_EQ(d.Stop(), 0);
}

// kill -9 under a backlog, then SIGTERM in the middle of the replay while the receiver takes what
// it is sent: the replay wrote cursors as it went, so the third start resumes instead of starting
// over, and every event reaches both profiles.
TEST(Restart, AReplayStoppedHalfwayResumesWhereItWas) {
  TempDir dir;
  const std::string config = BacklogConfig(dir);
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config", config};
  std::atomic<bool> failing{true};
  Receiver rx;
  rx.set_handler([&](const ReceivedRequest&) { return Reply{.status = failing ? 500 : 200}; });
  constexpr int kRequests = 300, kPerRequest = 500;
  ASSERT_NO_FATAL_FAILURE(MakeBacklog(args, data, rx, kRequests, kPerRequest));
  failing = false;  // the first heraldd is gone: every request from now on is answered 200
  const auto switched = std::chrono::steady_clock::now();
  {
    Daemon d(args, data, 0, /*wait_ready=*/false);
    ASSERT_NE(d.port(), 0) << d.output();
    const size_t refused = rx.count();
    ASSERT_TRUE(Eventually([&] { return rx.count() > refused + 100; }));
    // A checkpoint after those deliveries, then the stop at once.
    const long long writes = Metric(d, "herald_spool_cursor_writes_total");
    ASSERT_TRUE(Eventually([&] { return Metric(d, "herald_spool_cursor_writes_total") > writes; }));
    ASSERT_EQ(d.Call("GET", "/readyz").status, 503) << "the replay was over before it was stopped";
    EXPECT_EQ(d.Stop(), 0) << d.output();
  }
  Daemon d(args, data);
  ASSERT_NE(d.port(), 0) << d.output();
  const long long replayed = Metric(d, "herald_spool_replayed_records_total");
  EXPECT_GT(replayed, 0);
  EXPECT_LT(replayed, kRequests) << "the replay started over";
  std::set<std::pair<std::string, int>> got;  // (subscription, event) delivered
  EXPECT_TRUE(Eventually(
      [&] {
        got.clear();
        for (const auto& r : rx.requests()) {
          if (r.at < switched) continue;
          const std::string sub = r.header("x-herald-subscription").substr(0, 1);
          for (size_t at = r.body.find("\"e\":"); at != std::string::npos;
               at = r.body.find("\"e\":", at + 4)) {
            got.emplace(sub, std::atoi(r.body.c_str() + at + 4));
          }
        }
        return got.size() == 2u * kRequests * kPerRequest;
      },
      90s))
      << got.size() << " of " << 2 * kRequests * kPerRequest;
  EXPECT_EQ(d.Stop(), 0);
}

// A subscription moved from profile p to q (and one deleted) while p had not settled its events,
// then kill -9: the restart delivers those events to p, as the live process would have, and
// nothing of them to q; what came after the move goes to q alone.
TEST(Restart, EventsOwedWhenASubscriptionMovedStillReachTheirProfile) {
  TempDir dir;
  // Tiny queues: part of what p owes waits in the spool, offered again after the replay.
  const std::string config = WriteConfig(dir, R"([engine]
queue_max_notifications = 2
[delivery]
retry_delays_ms = [60000]
breaker_failures = 1000000
max_held_per_profile = 1
[spool]
cursor_interval_ms = 50
)");
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--config", config};
  std::atomic<bool> hang{true};
  Receiver p, q;
  p.set_handler([&](const ReceivedRequest&) {
    return hang ? Reply{.mode = Reply::Mode::kHang} : Reply{.status = 200};
  });
  // The event numbers of the requests from the `from`th on.
  auto numbers = [](Receiver& rx, size_t from = 0) {
    std::set<int> out;
    const auto requests = rx.requests();
    for (size_t i = from; i < requests.size(); ++i) {
      const auto& r = requests[i];
      for (size_t at = r.body.find("\"n\":"); at != std::string::npos;
           at = r.body.find("\"n\":", at + 4)) {
        out.insert(std::atoi(r.body.c_str() + at + 4));
      }
    }
    return out;
  };
  auto send = [](Daemon& d, const std::string& event, int n) {
    return d
        .Call("POST", "/v1/events",
              R"({"channel":"SMS","event":")" + event + R"(","payload":{"n":)" + std::to_string(n) +
                  "}}")
        .status;
  };
  {
    Daemon d(args, data);
    ASSERT_NE(d.port(), 0) << d.output();
    auto create = [&](const std::string& body) {
      return d.Call("POST", "/subscriptions/1/subscription/SMS", body).status;
    };
    const std::string profile_p = R"("profile":{"profileId":"p","maxBucketSize":1,)"
                                  R"("webhook":{"notifyUrl":")" +
                                  p.url() + R"("}})";
    const std::string profile_q = R"("profile":{"profileId":"q","maxBucketSize":1,)"
                                  R"("webhook":{"notifyUrl":")" +
                                  q.url() + R"("}})";
    ASSERT_EQ(create(R"({"subscriptionId":"moved","events":["DELIVERY"],)" + profile_p + "}"), 201);
    ASSERT_EQ(create(R"({"subscriptionId":"gone","events":["CLICK"],"profile":{"profileId":"p"}})"),
              201);
    ASSERT_EQ(
        create(R"({"subscriptionId":"anchor","events":["INBOUND_MESSAGE"],)" + profile_q + "}"),
        201);
    std::this_thread::sleep_for(150ms);
    for (int n = 0; n < 5; ++n) ASSERT_EQ(send(d, "DELIVERY", n), 202);
    for (int n = 5; n < 8; ++n) ASSERT_EQ(send(d, "CLICK", n), 202);
    ASSERT_TRUE(p.WaitFor(1, 10s));  // p holds them, unsettled
    ASSERT_EQ(d.Call("PUT", "/subscriptions/1/subscription/SMS/moved",
                     R"({"events":["DELIVERY"],"profile":{"profileId":"q"}})")
                  .status,
              200);
    ASSERT_EQ(d.Call("DELETE", "/subscriptions/1/subscription/SMS/gone").status, 200);
    std::this_thread::sleep_for(200ms);  // changes route within milliseconds, not at once
    for (int n = 100; n < 103; ++n) ASSERT_EQ(send(d, "DELIVERY", n), 202);
    ASSERT_TRUE(Eventually([&] { return numbers(q).size() == 3; })) << numbers(q).size();
    std::this_thread::sleep_for(300ms);  // a few checkpoints
    EXPECT_EQ(d.Signal(SIGKILL), -SIGKILL);
  }
  hang = false;
  const size_t p_before = p.count();  // those hung: delivered only if answered after the restart
  Daemon d(args, data);
  ASSERT_NE(d.port(), 0) << d.output();
  const std::set<int> owed = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_TRUE(Eventually([&] { return numbers(p, p_before) == owed; }, 20s))
      << "p got " << numbers(p, p_before).size() << " of the 8 events it owed";
  std::this_thread::sleep_for(300ms);
  for (int n : numbers(q)) EXPECT_GE(n, 100) << "q got event " << n << " from before the move";
  EXPECT_EQ(numbers(p).count(100), 0u) << "p got an event from after the move";
  EXPECT_EQ(numbers(q).size(), 3u) << "q gets what came after the move, and only that";
  // The kept routes end with the replay: new events follow the subscriptions in force.
  ASSERT_EQ(send(d, "DELIVERY", 200), 202);
  ASSERT_EQ(send(d, "CLICK", 201), 202);
  EXPECT_TRUE(Eventually([&] { return numbers(q).count(200) == 1; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(numbers(p).count(200) + numbers(p).count(201), 0u);
  EXPECT_EQ(numbers(q).size(), 4u);
  EXPECT_EQ(d.Stop(), 0);
}

// --- smaller holes ---

std::string HmacV1(const std::string& secret, const ReceivedRequest& r) {
  const std::string content =
      r.header("webhook-id") + "." + r.header("webhook-timestamp") + "." + r.body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  unsigned char b64[4 * EVP_MAX_MD_SIZE];
  const int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
  return "v1," + std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

// GET masks secrets and header values; sending the GET's answer back with PUT keeps what is
// stored instead of storing "********", and a mask with nothing stored behind it is refused.
TEST(Secrets, AGetPutRoundTripKeepsTheStoredSecrets) {
  TempDir dir;
  const std::string config = WriteConfig(dir, "");
  Receiver rx;
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(
      d.Call(
           "POST", "/subscriptions/1/security",
           R"({"authId":"h","type":"HMAC","credentials":{"secretKey":"s3cret","algorithm":"HMAC_SHA_256"}})")
          .status,
      201);
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"p",)"
                   R"("security":{"authId":"h"},"headers":{"X-Api-Key":"k1","X-Tenant":"t1",)"
                   R"("Accept":"application/json"},"webhook":{"notifyUrl":")" +
                       rx.url() + R"("}}})")
                .status,
            201);
  const std::string security = d.Call("GET", "/subscriptions/1/security/h").body;
  ASSERT_EQ(security.find("s3cret"), std::string::npos) << security;
  const std::string profile = d.Call("GET", "/subscriptions/1/profiles/p").body;
  EXPECT_EQ(profile.find("k1"), std::string::npos) << "header values are masked: " << profile;
  EXPECT_EQ(profile.find("t1"), std::string::npos) << "whatever their name: " << profile;
  EXPECT_NE(profile.find(R"("Accept":"application/json")"), std::string::npos) << profile;
  EXPECT_EQ(d.Call("PUT", "/subscriptions/1/security/h", security).status, 200);
  EXPECT_EQ(d.Call("PUT", "/subscriptions/1/profiles/p", profile).status, 200);
  std::this_thread::sleep_for(150ms);
  ASSERT_EQ(
      d.Call("POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY","payload":{}})").status,
      202);
  ASSERT_TRUE(rx.WaitFor(1, 10s));
  const ReceivedRequest got = rx.requests()[0];
  EXPECT_EQ(got.header("webhook-signature"), HmacV1("s3cret", got)) << "signed with the secret";
  EXPECT_EQ(got.header("x-api-key"), "k1");
  EXPECT_EQ(got.header("x-tenant"), "t1");
  // Nothing stored behind the mask: refused, naming the field.
  const HttpReply masked = d.Call(
      "POST", "/subscriptions/1/security",
      R"({"authId":"h2","type":"HMAC","credentials":{"secretKey":"********","algorithm":"HMAC_SHA_256"}})");
  EXPECT_EQ(masked.status, 400) << masked.body;
  EXPECT_NE(masked.body.find(R"("credentials.secretKey":[)"), std::string::npos) << masked.body;
  EXPECT_EQ(d.Stop(), 0);
}

// An expires_in far beyond any clock (it overflowed) caches the token as a long-lived one.
TEST(Tokens, AHugeExpiresInIsCappedNotOverflowed) {
  TempDir dir;
  const std::string config = WriteConfig(dir, "");
  Receiver tokens, hooks;
  tokens.set_handler([](const ReceivedRequest&) {
    return Reply{.status = 200,
                 .headers = {{"content-type", "application/json"}},
                 .body = R"({"access_token":"tok","expires_in":9223372036854776})"};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(
      d.Call(
           "POST", "/subscriptions/1/subscription/SMS",
           R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"p","webhook":{"notifyUrl":")" +
               hooks.url() +
               R"("},"security":{"authId":"o","type":"OAUTH","credentials":{"tokenUrl":")" +
               tokens.url("/token") + R"(","grantType":"client_credentials","clientId":"c"}}}})")
          .status,
      201);
  std::this_thread::sleep_for(150ms);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(
        d.Call("POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY","payload":{}})").status,
        202);
    ASSERT_TRUE(hooks.WaitFor(i + 1, 10s));
  }
  EXPECT_EQ(hooks.requests()[1].header("authorization"), "Bearer tok");
  EXPECT_EQ(tokens.count(), 1u) << "the token was fetched again: its expiry overflowed";
  EXPECT_EQ(d.Stop(), 0);
}

// header_timeout_ms bounds the headers; a body that takes longer to upload is still read.
TEST(Limits, ABodySlowerThanTheHeaderTimeoutIsStillRead) {
  TempDir dir;
  const std::string config = WriteConfig(dir, "[limits]\nheader_timeout_ms = 500\n");
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  std::string body;
  for (int n = 0; body.size() < (1 << 20); ++n) {
    body += R"({"channel":"SMS","event":"DELIVERY","payload":{"n":)" + std::to_string(n) + "}}\n";
  }
  boost::asio::io_context io;
  test_support::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), d.port()});
  const std::string head =
      "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  boost::asio::write(socket, boost::asio::buffer(head));
  // Ten slices over about 1.5 s: three times the header timeout.
  const size_t slice = body.size() / 10 + 1;
  boost::system::error_code ec;
  for (size_t at = 0; at < body.size() && !ec; at += slice) {
    std::this_thread::sleep_for(150ms);
    boost::asio::write(
        socket, boost::asio::buffer(body.data() + at, std::min(slice, body.size() - at)), ec);
  }
  ASSERT_FALSE(ec) << "the connection was cut during the upload: " << ec.message();
  std::string answer(4096, '\0');
  const size_t n = socket.read_some(boost::asio::buffer(answer), ec);
  answer.resize(n);
  EXPECT_NE(answer.find("HTTP/1.1 202"), std::string::npos) << answer;
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Limits, ABodyLimitThePoolCannotStoreIsRefusedAtStart) {
  TempDir dir;
  const std::string config = dir.path() + "/big.toml";
  std::ofstream(config) << "[limits]\nmax_batch_bytes = 2147483648\n";
  const Exit e = RunToExit("--listen 127.0.0.1:0 --config " + config);
  EXPECT_EQ(e.code, 2) << e.output;
  EXPECT_NE(e.output.find("limits.max_batch_bytes"), std::string::npos) << e.output;
}

// A file in the spool folder that only looks like a segment never stops the start.
TEST(Spool, AStraySegFileIsIgnored) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::filesystem::create_directories(data + "/spool");
  std::ofstream(data + "/spool/abcdefghijklmnopqrst.seg") << "junk";
  std::ofstream(data + "/spool/junk.seg") << "junk";
  Daemon d({"--listen", "127.0.0.1:0"}, data);
  ASSERT_NE(d.port(), 0) << d.output();
  EXPECT_EQ(
      d.Call("POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY","payload":{}})").status,
      202);
  EXPECT_EQ(d.Stop(), 0);
}

// The SSRF guard sees through NAT64 and 6to4: they carry a private IPv4 address to a gateway.
TEST(Ssrf, TranslatedFormsOfPrivateAddressesAreRefused) {
  Daemon d({"--listen", "127.0.0.1:0"});
  ASSERT_NE(d.port(), 0);
  for (const char* host : {"[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[64:ff9b:1::808:808]",
                           "[2002:7f00:1::1]", "[2002:a9fe:a9fe::1]"}) {
    const HttpReply r = d.Call(
        "POST", "/subscriptions/1/profiles",
        std::string(R"({"profileId":"p","webhook":{"notifyUrl":"http://)") + host + R"(/hook"}})");
    EXPECT_EQ(r.status, 400) << host << ": " << r.body;
    EXPECT_NE(r.body.find(R"("webhook.notifyUrl":[)"), std::string::npos) << r.body;
  }
  EXPECT_EQ(d.Stop(), 0);
}

// --- isolation: a resolver that never answers ---

// heraldd in a mount namespace of its own whose /etc/resolv.conf names a local DNS stub that
// reads queries and never answers, and whose /etc/hosts knows good.test: the system's resolver,
// for real, black-holed for every name but that one.
class BlackHoledDns {
 public:
  BlackHoledDns() {
    sink_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(53);
    at.sin_addr.s_addr = htonl(0x7f000002);  // 127.0.0.2
    if (::bind(sink_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
      why_not_ = std::string("cannot bind the DNS stub to 127.0.0.2:53: ") + strerror(errno);
      return;
    }
    // Lookups wait 30 s for an answer that never comes: longer than anything here waits.
    std::ofstream(dir_.path() + "/resolv.conf")
        << "nameserver 127.0.0.2\noptions timeout:30 attempts:1\n";
    std::ofstream(dir_.path() + "/hosts") << "127.0.0.1 localhost\n127.0.0.1 good.test\n";
    if (std::system("unshare --mount true 2>/dev/null") != 0) {
      why_not_ = "unshare --mount is not allowed here";
    }
  }
  ~BlackHoledDns() {
    if (sink_ >= 0) ::close(sink_);
  }
  const std::string& why_not() const { return why_not_; }
  std::vector<std::string> runner() const {
    return {"unshare",
            "--mount",
            "sh",
            "-c",
            R"(mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && )"
            R"(exec "$@")",
            "sh",
            dir_.path() + "/resolv.conf",
            dir_.path() + "/hosts"};
  }

 private:
  TempDir dir_;
  int sink_ = -1;
  std::string why_not_;
};

TEST(Isolation, AReceiverWhoseDnsNeverAnswersHoldsUpNoOtherProfile) {
  BlackHoledDns dns;
  if (!dns.why_not().empty()) GTEST_SKIP() << dns.why_not();
  TempDir dir;
  const std::string config = WriteConfig(dir, R"([engine]
fanout = "all"
[delivery]
threads = 1
retry_delays_ms = [50]
max_attempts = 2
jitter_percent = 0
breaker_failures = 1000000
)");
  Receiver healthy;
  Daemon d({"--listen", "127.0.0.1:0", "--config", config}, "", 0, true, dns.runner());
  ASSERT_NE(d.port(), 0) << d.output();
  const std::string good = "http://good.test:" + std::to_string(healthy.port()) + "/hook";
  for (auto [id, url] : {std::pair<std::string, std::string>{"stuck", "http://black-hole.test/h"},
                         std::pair<std::string, std::string>{"healthy", good}}) {
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     R"({"subscriptionId":")" + id + R"(","events":["DELIVERY"],"profile":{)" +
                         R"("profileId":")" + id + R"(","maxBucketSize":1,"connectTimeout":300,)" +
                         R"("webhook":{"notifyUrl":")" + url + R"("}}})")
                  .status,
              201);
  }
  std::this_thread::sleep_for(100ms);  // the index is published
  // Both profiles' events share one delivery worker; the stuck one's lookups hang meanwhile.
  for (int n = 0; n < 20; ++n) {
    ASSERT_EQ(
        d.Call("POST", "/v1/events",
               R"({"channel":"SMS","event":"DELIVERY","payload":{"n":)" + std::to_string(n) + "}}")
            .status,
        202);
  }
  EXPECT_TRUE(healthy.WaitFor(20, 10s)) << healthy.count() << " of 20 reached the healthy one";
  ASSERT_TRUE(Eventually([&] { return Metric(d, R"(herald_dead_letters)") >= 20; }))
      << "the stuck profile's events become dead letters, each after its own deadline";
  const std::string letters = d.Call("GET", "/v1/dead-letters?profileId=stuck").body;
  EXPECT_NE(letters.find("resolve black-hole.test: no answer within 300 ms"), std::string::npos)
      << letters.substr(0, 600);
  EXPECT_EQ(d.Stop(), 0) << "a lookup that never returns does not hold up the stop";
}

TEST(Isolation, AWriteNamingAHostWhoseDnsNeverAnswersHoldsUpNoOtherRequest) {
  BlackHoledDns dns;
  if (!dns.why_not().empty()) GTEST_SKIP() << dns.why_not();
  // The SSRF guard on: names are looked up when a profile is written.
  Daemon d({"--listen", "127.0.0.1:0"}, "", 0, true, dns.runner());
  ASSERT_NE(d.port(), 0) << d.output();
  auto profile = [](const std::string& id, const std::string& url) {
    return R"({"profileId":")" + id + R"(","webhook":{"notifyUrl":")" + url + R"("}})";
  };
  auto stuck = std::async(std::launch::async, [&] {
    return d.Call("POST", "/subscriptions/1/profiles",
                  profile("stuck", "http://black-hole.test/h"));
  });
  std::this_thread::sleep_for(200ms);  // its lookup has started
  // Other management writes, reads and ingest go on meanwhile.
  EXPECT_EQ(
      d.Call("POST", "/subscriptions/1/profiles", profile("lit", "http://203.0.113.7/h")).status,
      201);
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles/lit").status, 200);
  EXPECT_EQ(
      d.Call("POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY","payload":{}})").status,
      202);
  EXPECT_EQ(stuck.wait_for(0s), std::future_status::timeout)
      << "the other requests waited for the stuck lookup";
  const HttpReply r = stuck.get();
  EXPECT_EQ(r.status, 201) << "a name that does not resolve in time is accepted: " << r.body;
  // The looked-up answer is what the guard judges: good.test is loopback.
  const HttpReply loop =
      d.Call("POST", "/subscriptions/1/profiles", profile("loop", "http://good.test:1/h"));
  EXPECT_EQ(loop.status, 400) << loop.body;
  EXPECT_NE(loop.body.find("good.test is, or resolves to, 127.0.0.1"), std::string::npos)
      << loop.body;
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace
}  // namespace herald
