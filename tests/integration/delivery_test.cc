// Webhook delivery (DESIGN §5) end to end in process: an Engine with the library's
// WebhookDeliverer as its sink, delivering over real HTTP on loopback to real receivers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "herald/engine.h"
#include "herald/webhook_deliverer.h"
#include "tests/testing/nginx.h"
#include "tests/testing/receiver.h"
#include "tests/testing/shipped_catalog.h"
#include "tests/testing/temp_dir.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using test_support::Nginx;
using test_support::ReceivedRequest;
using test_support::Receiver;
using test_support::Reply;
using Clock = std::chrono::steady_clock;

using test_support::TempDir;

// An engine whose sink is a WebhookDeliverer; one SMS subscription per profile.
class World {
 public:
  // Receivers live on loopback: private targets are allowed here.
  explicit World(DelivererOptions options = {}) {
    options.allow_private_targets = true;
    if (options.retry.delays_ms.empty()) options.retry.delays_ms = {20};
    auto deliverer = WebhookDeliverer::Create(options);
    EXPECT_TRUE(deliverer.ok()) << deliverer.status();
    deliverer_ = std::move(*deliverer);
    auto engine = Engine::Create({.catalog_path = test_support::ShippedCatalogPath(),
                                  .queue_max_notifications = 1000,
                                  .sink = deliverer_.get()});
    EXPECT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    deliverer_->Start(*engine_);
  }
  ~World() { Stop(); }

  // Stops delivery (undelivered notifications become dead letters); idempotent.
  void Stop(std::chrono::milliseconds grace = 0ms) {
    if (deliverer_) deliverer_->Stop(grace);
  }

  Engine& engine() { return *engine_; }
  WebhookDeliverer& deliverer() { return *deliverer_; }

  void AddProfile(NotificationProfile profile, const std::string& event = "DELIVERY") {
    ASSERT_TRUE(engine_->CreateProfile(profile).ok());
    Subscription s{.subscription_id = "sub-" + profile.profile_id,
                   .channel = "SMS",
                   .events = {event},
                   .resources = {profile.profile_id},  // events for this profile carry it
                   .profile_id = profile.profile_id};
    ASSERT_TRUE(engine_->CreateSubscription(s).ok());
    engine_->FlushIndex();
  }

  // One SMS DELIVERY event routed to `profile`, with `payload`.
  void Send(const std::string& profile, const std::string& payload, const std::string& id = "") {
    std::string e = R"({"channel":"SMS","event":"DELIVERY","resource":")" + profile + "\"";
    if (!id.empty()) e += R"(,"eventId":")" + id + "\"";
    e += R"(,"payload":)" + payload + "}";
    const IngestResult r = engine_->Ingest(e);
    ASSERT_EQ(r.notifications, 1u) << e;
  }

  ProfileDeliveryStats Stats(const std::string& profile) {
    for (auto& s : deliverer_->stats()) {
      if (s.profile_id == profile) return s;
    }
    return {};
  }

  // Waits until `done` holds, up to `timeout`.
  template <typename F>
  static bool Eventually(F done, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

 private:
  std::unique_ptr<WebhookDeliverer> deliverer_;
  std::unique_ptr<Engine> engine_;
};

NotificationProfile Profile(const std::string& id, const Receiver& r, std::string path = "/hook") {
  NotificationProfile p;
  p.profile_id = id;
  p.webhook.notify_url = r.url(path);
  return p;
}

std::vector<std::string> ResultsItems(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::vector<std::string> out;
  if (parser.parse(body).get(root) != simdjson::SUCCESS) return {"<not JSON>"};
  simdjson::dom::array results;
  if (root["results"].get_array().get(results) != simdjson::SUCCESS) return {"<no results>"};
  for (auto item : results) out.push_back(simdjson::minify(item));
  return out;
}

TEST(Delivery, ALoneNotificationGoesVerbatimWithItsHeaders) {
  Receiver receiver;
  World world;
  auto p = Profile("p1", receiver);
  p.headers = {{"x-tenant", "acme"}};
  p.webhook.content_type = "application/vnd.acme+json";
  world.AddProfile(p);
  const std::string payload = R"({ "results" : [ {"messageId":"m1"} ],  "x": 1 })";
  const auto before = std::chrono::system_clock::now();
  world.Send("p1", payload, "evt-42");
  ASSERT_TRUE(receiver.WaitFor(1, 10s));
  const ReceivedRequest r = receiver.requests()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hook");
  EXPECT_EQ(r.body, payload);  // byte for byte
  EXPECT_EQ(r.header("content-type"), "application/vnd.acme+json");
  EXPECT_EQ(r.header("x-tenant"), "acme");
  EXPECT_EQ(r.header("webhook-id"), "evt-42");
  const int64_t ts = std::stoll(r.header("webhook-timestamp"));
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(before.time_since_epoch()).count();
  EXPECT_LE(std::abs(ts - now), 2);
  EXPECT_EQ(r.header("x-herald-subscription"), "sub-p1");
  EXPECT_EQ(r.header("x-herald-channel"), "SMS");
  EXPECT_EQ(r.header("x-herald-event"), "DELIVERY");
  EXPECT_EQ(r.header("webhook-signature"), "");  // no security setting
  EXPECT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 1; }));
}

// Distributed mode: a log in front of the engine that retries (JetStream's NakWithDelay) takes
// a failed batch instead of a timer here; what it hands back later counts its earlier attempts.
TEST(Delivery, ALogThatRetriesTakesTheFailedBatchAndItsAttemptsCountOn) {
  Receiver receiver;
  receiver.set_handler([](const ReceivedRequest&) { return Reply{.status = 503}; });
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::chrono::milliseconds>> handed;
  DelivererOptions options;
  options.retry = {.delays_ms = {250}, .max_attempts = 2};
  options.retry_through_log = [&](std::span<Notification* const> notifications,
                                  std::chrono::milliseconds delay) {
    std::lock_guard lock(mu);
    for (const Notification* n : notifications) handed.emplace_back(n->sequence(), delay);
    return true;
  };
  World w(options);
  w.AddProfile(Profile("p", receiver));
  auto outstanding = [&] {
    for (const auto& p : w.engine().DeliveryProgress()) {
      if (p.profile_id == "p") return p.outstanding;
    }
    return uint64_t{99};
  };
  w.engine().Ingest(R"({"channel":"SMS","event":"DELIVERY","resource":"p","payload":{"n":1}})",
                    InputFormat::kAuto, nullptr, 9);
  ASSERT_TRUE(World::Eventually([&] {
    std::lock_guard lock(mu);
    return !handed.empty();
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(handed[0].first, 9u);
    EXPECT_GE(handed[0].second, 150ms);  // the schedule's 250 ms, ± its jitter
    EXPECT_LE(handed[0].second, 350ms);
  }
  // Settled here: the log holds it now, and no timer here sends it again.
  EXPECT_TRUE(World::Eventually([&] { return outstanding() == 0; }));
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(receiver.count(), 1u);

  // Handed back with one attempt made: the next is the last of two, then a dead letter.
  ASSERT_TRUE(w.engine()
                  .Enqueue({.profile_id = "p",
                            .subscription_id = "sub-p",
                            .channel = "SMS",
                            .event = "DELIVERY",
                            .webhook_id = "w-9",
                            .payload = R"({"n":1})",
                            .prior_attempts = 1},
                           10)
                  .ok());
  ASSERT_TRUE(World::Eventually([&] {
    auto page = w.deliverer().ListDeadLetters("p", 0, 10);
    return page.ok() && page->total == 1;
  }));
  const auto page = w.deliverer().ListDeadLetters("p", 0, 10);
  EXPECT_EQ(page->results[0].attempts, 2);
  EXPECT_EQ(page->results[0].webhook_id, "w-9");
  EXPECT_EQ(receiver.count(), 2u);
  std::lock_guard lock(mu);
  EXPECT_EQ(handed.size(), 1u) << "the last attempt is not handed back";
}

TEST(Delivery, WaitingNotificationsAreBatchedUpToMaxBucketSize) {
  Receiver receiver;
  // The first request is slow, so the next 25 notifications wait and are batched.
  receiver.set_handler([](const ReceivedRequest& r) {
    Reply reply;
    if (r.header("webhook-id") == "first") reply.delay = 300ms;
    return reply;
  });
  World world;
  auto p = Profile("p1", receiver);
  p.max_bucket_size = 10;
  p.window_size = 20;
  world.AddProfile(p);
  world.Send("p1", R"({"results":[{"n":0}]})", "first");
  ASSERT_TRUE(receiver.WaitFor(1, 10s));
  std::vector<std::string> expected;
  for (int i = 1; i <= 22; ++i) {
    world.Send("p1", R"({"results":[{"n":)" + std::to_string(i) + "}]}");
    expected.push_back(R"({"n":)" + std::to_string(i) + "}");
  }
  // A payload that is not {"results":[…]} is one item; one with three results counts three.
  world.Send("p1", R"({"other":true})");
  expected.push_back(R"({"other":true})");
  const std::string three = R"({"results":[{"n":23},{"n":24},{"n":25}]})";
  world.Send("p1", three);
  for (int i = 23; i <= 25; ++i) expected.push_back(R"({"n":)" + std::to_string(i) + "}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 25; }));
  const auto requests = receiver.requests();
  std::vector<std::string> items;
  std::set<std::string> ids;
  for (size_t i = 1; i < requests.size(); ++i) {
    const auto batch = ResultsItems(requests[i].body);
    EXPECT_LE(batch.size(), 10u) << requests[i].body;
    // Several notifications in one request have a batch id (`three` may also go alone).
    if (batch.size() > 1 && requests[i].body != three) {
      EXPECT_TRUE(requests[i].header("webhook-id").starts_with("batch-")) << requests[i].body;
    }
    ids.insert(requests[i].header("webhook-id"));
    // A batch keeps the order its notifications arrived in.
    std::vector<size_t> positions;
    for (const auto& item : batch) {
      positions.push_back(std::find(expected.begin(), expected.end(), item) - expected.begin());
    }
    EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end())) << requests[i].body;
    items.insert(items.end(), batch.begin(), batch.end());
  }
  // Every item exactly once (batches may be in flight together, so they may arrive in any order).
  std::sort(items.begin(), items.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(items, expected);
  EXPECT_EQ(ids.size(), requests.size() - 1);
  EXPECT_LT(requests.size(), 8u);  // batched: 1 + at least ceil(27/10)
}

TEST(Delivery, WhileARequestIsInFlightNotificationsGatherIntoOneBatch) {
  Receiver receiver;
  receiver.set_handler([](const ReceivedRequest& r) {
    return Reply{.delay = r.header("webhook-id") == "first" ? 300ms : 0ms};
  });
  World world;
  auto p = Profile("p1", receiver);
  p.max_bucket_size = 50;
  world.AddProfile(p);
  world.Send("p1", R"({"n":0})", "first");  // an idle profile: sent at once, alone
  ASSERT_TRUE(receiver.WaitFor(1, 10s));
  for (int i = 1; i <= 5; ++i) world.Send("p1", R"({"n":)" + std::to_string(i) + "}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 6; }));
  const auto r = receiver.requests();
  ASSERT_EQ(r.size(), 2u);  // the five waited for the first request, then went together
  EXPECT_EQ(r[0].body, R"({"n":0})");
  EXPECT_EQ(ResultsItems(r[1].body).size(), 5u);
}

TEST(Delivery, HmacSignaturesVerifyWithTheStandardWebhooksPackage) {
  Receiver receiver;
  World world;
  const std::vector<std::pair<HmacAlgorithm, std::string>> settings = {
      {HmacAlgorithm::kSha256, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
      {HmacAlgorithm::kSha256, "a raw secret"},
      {HmacAlgorithm::kSha512, "another secret"},
      {HmacAlgorithm::kSha1, "sha1 secret"},
      {HmacAlgorithm::kMd5, "md5 secret"},
      {HmacAlgorithm::kSha224, "sha224 secret"},
      {HmacAlgorithm::kSha384, "sha384 secret"}};
  for (size_t i = 0; i < settings.size(); ++i) {
    const std::string id = "h" + std::to_string(i);
    SecuritySetting s{.auth_id = id,
                      .type = SecurityType::kHmac,
                      .secret_key = settings[i].second,
                      .algorithm = settings[i].first};
    ASSERT_TRUE(world.engine().CreateSecurity(s).ok());
    auto p = Profile(id, receiver, "/" + id);
    p.auth_id = id;
    world.AddProfile(p);
    world.Send(id, R"({"results":[{"messageId":"m)" + std::to_string(i) + R"("}]})");
    world.Send(id, R"({"note":"second, maybe batched"})");
  }
  ASSERT_TRUE(World::Eventually([&] {
    size_t delivered = 0;
    for (const auto& s : world.deliverer().stats()) delivered += s.delivered;
    return delivered == 2 * settings.size();
  }));
  // Every request, with its secret, for the independent verifier.
  TempDir dir;
  const std::string dump = dir.path() + "/signed.ndjson";
  std::ofstream out(dump);
  size_t sha256 = 0;
  for (const auto& r : receiver.requests()) {
    const size_t i = std::stoul(r.target.substr(2));
    const auto& [algorithm, secret] = settings[i];
    auto json = [](const std::string& s) {
      std::string o = "\"";
      for (const char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
      }
      return o + "\"";
    };
    if (algorithm == HmacAlgorithm::kSha256) {
      ++sha256;
      out << R"({"secret":)" << json(secret) << R"(,"raw":)"
          << (secret.starts_with("whsec_") ? "false" : "true") << R"(,"id":)"
          << json(r.header("webhook-id")) << R"(,"timestamp":)"
          << json(r.header("webhook-timestamp")) << R"(,"signature":)"
          << json(r.header("webhook-signature")) << R"(,"body":)" << json(r.body) << "}\n";
      continue;
    }
    // The other algorithms: "<alg>,<base64>" over the same content, checked with OpenSSL here.
    const EVP_MD* md = algorithm == HmacAlgorithm::kSha512   ? EVP_sha512()
                       : algorithm == HmacAlgorithm::kSha1   ? EVP_sha1()
                       : algorithm == HmacAlgorithm::kMd5    ? EVP_md5()
                       : algorithm == HmacAlgorithm::kSha224 ? EVP_sha224()
                                                             : EVP_sha384();
    const char* label = algorithm == HmacAlgorithm::kSha512   ? "hmac-sha512,"
                        : algorithm == HmacAlgorithm::kSha1   ? "hmac-sha1,"
                        : algorithm == HmacAlgorithm::kMd5    ? "hmac-md5,"
                        : algorithm == HmacAlgorithm::kSha224 ? "hmac-sha224,"
                                                              : "hmac-sha384,";
    const std::string content =
        r.header("webhook-id") + "." + r.header("webhook-timestamp") + "." + r.body;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md, secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
    unsigned char b64[4 * EVP_MAX_MD_SIZE];
    const int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
    EXPECT_EQ(r.header("webhook-signature"),
              label + std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n)));
  }
  out.close();
  ASSERT_GE(sha256, 2u);
  // The reference implementation, installed by tools/test.sh into build/npm.
  const char* root = std::getenv("HERALD_SOURCE_DIR");
  const std::string source = root ? root : ".";
  const std::string command = "NODE_PATH=" + source + "/build/npm/node_modules node " + source +
                              "/tests/integration/verify_signatures.mjs " + dump + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe)) output += buf;
  const int status = pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("verified " + std::to_string(sha256) + " of " + std::to_string(sha256)),
            std::string::npos)
      << output;
}

TEST(Delivery, BasicCredentialsAndCustomHeaders) {
  Receiver receiver;
  World world;
  ASSERT_TRUE(world.engine()
                  .CreateSecurity({.auth_id = "b",
                                   .type = SecurityType::kBasic,
                                   .username = "user",
                                   .password = "pass"})
                  .ok());
  ASSERT_TRUE(world.engine().CreateSecurity({.auth_id = "c", .type = SecurityType::kCustom}).ok());
  auto basic = Profile("basic", receiver, "/basic");
  basic.auth_id = "b";
  world.AddProfile(basic);
  auto custom = Profile("custom", receiver, "/custom");
  custom.auth_id = "c";
  custom.headers = {{"x-api-key", "k-123"}};
  world.AddProfile(custom);
  world.Send("basic", "{}");
  world.Send("custom", "{}");
  ASSERT_TRUE(receiver.WaitFor(2, 10s));
  for (const auto& r : receiver.requests()) {
    if (r.target == "/basic") {
      EXPECT_EQ(r.header("authorization"), "Basic dXNlcjpwYXNz");
    } else {
      EXPECT_EQ(r.header("authorization"), "");
      EXPECT_EQ(r.header("x-api-key"), "k-123");
    }
  }
}

TEST(Delivery, OAuthTokensAreCachedUntilExpiryAndRefreshedOnceOn401) {
  Receiver receiver;
  std::atomic<int> tokens_issued{0};
  std::atomic<int> valid_token{1};
  std::atomic<int> expires_in{3600};
  receiver.set_handler([&](const ReceivedRequest& r) {
    Reply reply;
    if (r.target == "/token") {
      const int n = ++tokens_issued;
      reply.headers = {{"content-type", "application/json"}};
      reply.body = R"({"access_token":"t)" + std::to_string(n) +
                   R"(","token_type":"Bearer","expires_in":)" + std::to_string(expires_in) + "}";
      return reply;
    }
    if (r.header("authorization") != "Bearer t" + std::to_string(valid_token.load())) {
      reply.status = 401;
    }
    return reply;
  });
  World world;
  ASSERT_TRUE(world.engine()
                  .CreateSecurity({.auth_id = "o",
                                   .type = SecurityType::kOAuth,
                                   .token_url = receiver.url("/token"),
                                   .grant_type = "client_credentials",
                                   .client_id = "herald",
                                   .client_secret = "s3cret",
                                   .scope = "hooks"})
                  .ok());
  auto p = Profile("p1", receiver);
  p.auth_id = "o";
  p.max_bucket_size = 1;
  world.AddProfile(p);
  for (int i = 0; i < 30; ++i) world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 30; }));
  EXPECT_EQ(tokens_issued.load(), 1);  // one token for 30 concurrent-ish requests
  for (const auto& r : receiver.requests()) {
    if (r.target != "/token") continue;
    EXPECT_EQ(r.header("content-type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(r.body,
              "grant_type=client_credentials&client_id=herald&client_secret=s3cret&"
              "scope=hooks");
  }
  // The receiver revokes t1: one 401, a new token, the same notification delivered.
  valid_token = 2;
  world.Send("p1", "{}", "after-revoke");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 31; }));
  EXPECT_EQ(tokens_issued.load(), 2);
  EXPECT_EQ(world.Stats("p1").dead_lettered, 0u);
  // A token that expires is fetched again before use.
  expires_in = 1;
  valid_token = 3;
  world.Send("p1", "{}");  // 401 with t2 → t3 (expires in 1 s)
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 32; }));
  std::this_thread::sleep_for(1100ms);
  valid_token = 4;
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 33; }));
  EXPECT_EQ(tokens_issued.load(), 4);
  // Only the revocation made a 401 each time: t1 and t2 once each.
  size_t unauthorized = 0;
  for (const auto& r : receiver.requests()) {
    unauthorized += r.target == "/hook" && r.header("authorization") != "Bearer t1" &&
                    r.header("authorization") != "Bearer t3" &&
                    r.header("authorization") != "Bearer t2" &&
                    r.header("authorization") != "Bearer t4";
  }
  EXPECT_EQ(unauthorized, 0u);
}

TEST(Delivery, RetriesFollowTheScheduleThenBecomeADeadLetterAndReplay) {
  Receiver receiver;
  std::atomic<bool> healthy{false};
  receiver.set_handler([&](const ReceivedRequest&) {
    Reply reply;
    reply.status = healthy ? 200 : 503;
    return reply;
  });
  TempDir dir;
  World world({.data_dir = dir.path(), .jitter = 0});
  auto p = Profile("p1", receiver);
  p.retry = RetryPolicy{.delays_ms = {100, 200, 300}, .max_attempts = 4};
  world.AddProfile(p);
  world.Send("p1", R"({"k":1})", "evt-retry");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").dead_lettered == 1; }));
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 4u);
  const int expected_ms[] = {100, 200, 300};
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(requests[i].header("webhook-id"), "evt-retry");  // stable across retries
    const auto gap =
        std::chrono::duration_cast<std::chrono::milliseconds>(requests[i].at - requests[i - 1].at);
    EXPECT_GE(gap.count(), expected_ms[i - 1] - 5) << "retry " << i;
    // Upper bounds carry slack for a loaded machine (sanitizers, two cores).
    EXPECT_LE(gap.count(), expected_ms[i - 1] + 600) << "retry " << i;
  }
  const auto stats = world.Stats("p1");
  EXPECT_EQ(stats.failed, 4u);
  EXPECT_EQ(stats.retried, 3u);
  EXPECT_EQ(stats.held, 0u);
  auto letters = *world.deliverer().ListDeadLetters("p1", 0, 10);
  ASSERT_EQ(letters.total, 1u);
  EXPECT_EQ(letters.results[0].payload, R"({"k":1})");
  EXPECT_EQ(letters.results[0].attempts, 4);
  EXPECT_EQ(letters.results[0].last_status, 503);
  EXPECT_EQ(letters.results[0].webhook_id, "evt-retry");

  healthy = true;
  auto replayed = world.deliverer().Replay("p1", {letters.results[0].id});
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(*replayed, 1u);
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 1; }));
  EXPECT_EQ(receiver.requests().back().header("webhook-id"), "evt-retry");
  EXPECT_EQ(receiver.requests().back().body, R"({"k":1})");
  EXPECT_EQ(world.deliverer().ListDeadLetters("p1", 0, 10)->total, 0u);
  EXPECT_FALSE(world.deliverer().Replay("nope", {}).ok());
}

TEST(Delivery, JitterSpreadsDelaysWithinTwentyPercent) {
  Receiver receiver;
  receiver.set_handler([](const ReceivedRequest&) { return Reply{.status = 500}; });
  World world({.jitter = 0.2, .breaker_failures = 100});
  auto p = Profile("p1", receiver);
  p.retry = RetryPolicy{.delays_ms = {200}, .max_attempts = 6};
  world.AddProfile(p);
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").dead_lettered == 1; }));
  const auto r = receiver.requests();
  ASSERT_EQ(r.size(), 6u);
  std::set<int64_t> gaps;
  for (size_t i = 1; i < r.size(); ++i) {
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(r[i].at - r[i - 1].at);
    EXPECT_GE(gap.count(), 160 - 5);
    EXPECT_LE(gap.count(), 240 + 600);
    gaps.insert(gap.count() / 5);
  }
  EXPECT_GT(gaps.size(), 1u);  // not all the same
}

TEST(Delivery, RetryAfterIsHonoured) {
  Receiver receiver;
  receiver.set_handler([&](const ReceivedRequest&) {
    if (receiver.count() == 0) return Reply{.status = 429, .headers = {{"Retry-After", "1"}}};
    return Reply{};
  });
  World world;
  auto p = Profile("p1", receiver);
  p.retry = RetryPolicy{.delays_ms = {10}, .max_attempts = 3};
  world.AddProfile(p);
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 1; }));
  const auto r = receiver.requests();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_GE(r[1].at - r[0].at, 990ms);
}

TEST(Delivery, OtherClientErrorsAreNotRetried) {
  Receiver receiver;
  receiver.set_handler([](const ReceivedRequest& r) {
    return Reply{.status = r.target == "/400" ? 400 : r.target == "/302" ? 302 : 408};
  });
  World world;
  for (const char* path : {"/400", "/302", "/408"}) {
    auto p = Profile(std::string("p") + (path + 1), receiver, path);
    p.retry = RetryPolicy{.delays_ms = {10}, .max_attempts = 3};
    world.AddProfile(p);
    world.Send(p.profile_id, "{}");
  }
  ASSERT_TRUE(World::Eventually([&] {
    return world.Stats("p400").dead_lettered == 1 && world.Stats("p302").dead_lettered == 1 &&
           world.Stats("p408").dead_lettered == 1;
  }));
  EXPECT_EQ(world.Stats("p400").requests, 1u);  // 4xx: at once
  EXPECT_EQ(world.Stats("p302").requests, 1u);  // redirects are not followed
  EXPECT_EQ(world.Stats("p408").requests, 3u);  // 408 is retried
  EXPECT_EQ(world.deliverer().ListDeadLetters("p400", 0, 1)->results[0].last_error, "HTTP 400");
}

TEST(Delivery, GoneDisablesTheProfileUntilItIsEnabled) {
  Receiver receiver;
  std::atomic<bool> gone{true};
  receiver.set_handler([&](const ReceivedRequest&) { return Reply{.status = gone ? 410 : 200}; });
  World world;
  world.AddProfile(Profile("p1", receiver));
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.deliverer().disabled("p1"); }));
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").dead_lettered == 2; }));
  EXPECT_EQ(receiver.count(), 1u);  // nothing is sent to a disabled profile
  EXPECT_TRUE(world.Stats("p1").disabled);
  gone = false;
  ASSERT_TRUE(world.deliverer().Enable("p1").ok());
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 1; }));
  ASSERT_TRUE(world.deliverer().Replay("p1", {}).ok());
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 3; }));
}

TEST(Delivery, BadReceiversDelayNoOtherProfile) {
  // One worker for all: isolation must come from the design, not from threads.
  Receiver hang, failing, trickle;
  hang.set_handler([](const ReceivedRequest&) { return Reply{.mode = Reply::Mode::kHang}; });
  failing.set_handler([](const ReceivedRequest&) { return Reply{.status = 500}; });
  trickle.set_handler([](const ReceivedRequest&) {
    return Reply{.body = std::string(100, 'x'), .mode = Reply::Mode::kTrickle};
  });
  std::vector<std::unique_ptr<Receiver>> good;
  for (int i = 0; i < 3; ++i) good.push_back(std::make_unique<Receiver>());
  World world({.threads = 1});
  auto slow = [](NotificationProfile p) {
    p.read_timeout_ms = 30000;
    p.connect_timeout_ms = 30000;
    p.retry = RetryPolicy{.delays_ms = {5}, .max_attempts = 10};
    return p;
  };
  world.AddProfile(slow(Profile("hang", hang)));
  world.AddProfile(slow(Profile("failing", failing)));
  world.AddProfile(slow(Profile("trickle", trickle)));
  // A port nobody listens on: connections are refused.
  NotificationProfile refused;
  refused.profile_id = "refused";
  {
    Receiver closed;
    refused.webhook.notify_url = closed.url();
  }
  world.AddProfile(slow(refused));
  for (int i = 0; i < 3; ++i) {
    auto p = Profile("good" + std::to_string(i), *good[i]);
    p.max_bucket_size = 1;
    world.AddProfile(p);
  }
  const auto start = Clock::now();
  for (int n = 0; n < 100; ++n) {
    for (const char* bad : {"hang", "failing", "trickle", "refused"}) world.Send(bad, "{}");
    for (int i = 0; i < 3; ++i) world.Send("good" + std::to_string(i), "{}");
  }
  ASSERT_TRUE(World::Eventually([&] {
    return world.Stats("good0").delivered == 100 && world.Stats("good1").delivered == 100 &&
           world.Stats("good2").delivered == 100;
  }));
  const auto elapsed = Clock::now() - start;
  // The good receivers were served while the bad ones were still stuck in their 30 s timeouts.
  EXPECT_LT(elapsed, 30s);
  EXPECT_GT(hang.in_progress(), 0);
  EXPECT_EQ(world.Stats("hang").delivered, 0u);
  EXPECT_EQ(world.Stats("trickle").delivered, 0u);
  EXPECT_GT(world.Stats("failing").failed, 0u);
  EXPECT_GT(world.Stats("refused").failed, 0u);
}

TEST(Delivery, ReadTimeoutCutsOffATricklingReceiver) {
  Receiver trickle;
  trickle.set_handler([](const ReceivedRequest&) {
    return Reply{.body = std::string(100, 'x'), .mode = Reply::Mode::kTrickle};
  });
  World world;
  auto p = Profile("p1", trickle);
  p.read_timeout_ms = 1000;
  p.retry = RetryPolicy{.delays_ms = {10}, .max_attempts = 1};
  world.AddProfile(p);
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").dead_lettered == 1; }));
  const auto letter = world.deliverer().ListDeadLetters("p1", 0, 1)->results.at(0);
  EXPECT_NE(letter.last_error.find("timed out after 1000 ms"), std::string::npos)
      << letter.last_error;
}

TEST(Delivery, CircuitBreakerProbesInsteadOfHammering) {
  Receiver receiver;
  std::atomic<int> failures_left{6};
  receiver.set_handler([&](const ReceivedRequest&) {
    return Reply{.status = failures_left.fetch_sub(1) > 0 ? 503 : 200};
  });
  World world({.breaker_failures = 3, .breaker_open = 300ms, .breaker_open_max = 2s});
  auto p = Profile("p1", receiver);
  p.retry = RetryPolicy{.delays_ms = {5}, .max_attempts = 20};
  p.max_bucket_size = 1;
  world.AddProfile(p);
  for (int i = 0; i < 3; ++i) world.Send("p1", "{}", "e" + std::to_string(i));
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").circuit_open; }));
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 3; }));
  EXPECT_FALSE(world.Stats("p1").circuit_open);
  const auto r = receiver.requests();
  // 3 failures open the circuit; then probes one at a time, 300 ms, then 600 ms apart (each
  // failed probe doubles the pause); the probe that succeeds closes it.
  ASSERT_GE(r.size(), 7u);
  EXPECT_GE(r[3].at - r[2].at, 290ms);   // first probe (fails)
  EXPECT_GE(r[4].at - r[3].at, 590ms);   // second probe (fails)
  EXPECT_GE(r[5].at - r[4].at, 1190ms);  // third probe (fails: the 6th failure)
  EXPECT_LT(r.size(), 12u);              // without the breaker, 5 ms retries would have made dozens
}

TEST(Delivery, RateLimitAndWindowSizeBoundTheRequests) {
  Receiver limited, windowed;
  windowed.set_handler([](const ReceivedRequest&) { return Reply{.delay = 100ms}; });
  World world;
  auto p = Profile("limited", limited);
  p.rate_limit = 20;
  p.max_bucket_size = 1;
  world.AddProfile(p);
  auto w = Profile("windowed", windowed);
  w.window_size = 20;
  w.max_bucket_size = 1;
  world.AddProfile(w);
  for (int i = 0; i < 21; ++i) world.Send("limited", "{}");
  for (int i = 0; i < 100; ++i) world.Send("windowed", "{}");
  ASSERT_TRUE(World::Eventually([&] {
    return world.Stats("limited").delivered == 21 && world.Stats("windowed").delivered == 100;
  }));
  const auto r = limited.requests();
  EXPECT_GE(r.back().at - r.front().at, 950ms);  // 20 intervals of 50 ms
  EXPECT_EQ(windowed.max_in_progress(), 20);     // never more than windowSize at once
}

TEST(Delivery, TlsReceiversAreVerifiedAgainstTheConfiguredCa) {
  TempDir dir;
  const auto cert = test_support::MakeTestCertificate(dir.path());
  Receiver receiver({.cert_file = cert.cert_file, .key_file = cert.key_file});
  {
    World world({.ca_file = cert.cert_file});
    world.AddProfile(Profile("p1", receiver));
    world.Send("p1", R"({"tls":true})");
    ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 1; }));
    EXPECT_EQ(receiver.requests().at(0).body, R"({"tls":true})");
  }
  // The system's CAs do not know this certificate: the handshake fails, nothing is sent.
  World world;
  auto p = Profile("p1", receiver);
  p.retry = RetryPolicy{.delays_ms = {10}, .max_attempts = 2};
  world.AddProfile(p);
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").dead_lettered == 1; }));
  const auto letter = world.deliverer().ListDeadLetters("p1", 0, 1)->results.at(0);
  EXPECT_NE(letter.last_error.find("certificate"), std::string::npos) << letter.last_error;
  EXPECT_EQ(receiver.count(), 1u);
}

TEST(Delivery, PrivateTargetsAreRefusedUnlessAllowed) {
  Receiver receiver;
  auto deliverer = WebhookDeliverer::Create({.allow_private_targets = false});
  ASSERT_TRUE(deliverer.ok());
  auto engine = Engine::Create(
      {.catalog_path = test_support::ShippedCatalogPath(), .sink = deliverer->get()});
  ASSERT_TRUE(engine.ok());
  (*deliverer)->Start(**engine);
  ASSERT_TRUE((*engine)->CreateProfile(Profile("p1", receiver)).ok());
  ASSERT_TRUE(
      (*engine)
          ->CreateSubscription({.subscription_id = "s1", .channel = "SMS", .profile_id = "p1"})
          .ok());
  (*engine)->FlushIndex();
  (*engine)->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{}})");
  ASSERT_TRUE(
      World::Eventually([&] { return (*deliverer)->ListDeadLetters("p1", 0, 1)->total == 1; }));
  const auto letter = (*deliverer)->ListDeadLetters("p1", 0, 1)->results.at(0);
  EXPECT_NE(letter.last_error.find("allow_private_targets is off"), std::string::npos);
  EXPECT_EQ(letter.attempts, 1);  // refused targets are not retried
  EXPECT_EQ(receiver.count(), 0u);
  (*deliverer)->Stop(0ms);
}

TEST(Delivery, AFullDelivererLeavesNotificationsInTheBoundedQueue) {
  Receiver hang;
  hang.set_handler([](const ReceivedRequest&) { return Reply{.mode = Reply::Mode::kHang}; });
  World world({.max_held_per_profile = 10});
  auto p = Profile("p1", hang);
  p.read_timeout_ms = 30000;
  p.max_bucket_size = 1;
  world.AddProfile(p);
  size_t enqueued = 0, refused = 0;
  for (int i = 0; i < 1100; ++i) {
    const IngestResult r = world.engine().Ingest(
        R"({"channel":"SMS","event":"DELIVERY","resource":"p1","payload":{}})");
    enqueued += r.notifications;
    refused += r.back_pressured;
  }
  EXPECT_EQ(enqueued + refused, 1100u);
  EXPECT_GT(refused, 0u);  // the engine's queue (1000) filled: ingest was told
  EXPECT_TRUE(World::Eventually([&] { return world.Stats("p1").held == 10; }));
  EXPECT_LE(world.Stats("p1").held, 10u);
  // Stopping keeps every accepted notification as a dead letter: nothing is lost.
  world.Stop(0ms);
  EXPECT_EQ(world.deliverer().ListDeadLetters("p1", 0, 1)->total, enqueued);
}

TEST(Delivery, StoppingKeepsWhatIsUndeliveredAndARestartCanReplayIt) {
  TempDir dir;
  Receiver hang;
  hang.set_handler([](const ReceivedRequest&) { return Reply{.mode = Reply::Mode::kHang}; });
  {
    World world({.data_dir = dir.path()});
    auto p = Profile("p1", hang);
    p.read_timeout_ms = 30000;
    world.AddProfile(p);
    for (int i = 0; i < 5; ++i) world.Send("p1", "{\"n\":" + std::to_string(i) + "}");
    ASSERT_TRUE(hang.WaitFor(1, 10s));
    world.Stop(100ms);
  }
  Receiver good;
  World world({.data_dir = dir.path()});
  world.AddProfile(Profile("p1", good));
  const auto letters = *world.deliverer().ListDeadLetters("p1", 0, 10);
  ASSERT_EQ(letters.total, 5u);
  EXPECT_EQ(letters.results[0].last_error, "stopped before delivery");
  ASSERT_EQ(*world.deliverer().Replay("p1", {}), 5u);
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 5; }));
  std::vector<std::string> items;
  for (const auto& r : good.requests()) {
    if (r.body.starts_with(R"({"results")")) {
      for (auto& i : ResultsItems(r.body)) items.push_back(i);
    } else {
      items.push_back(r.body);
    }
  }
  std::sort(items.begin(), items.end());
  EXPECT_EQ(items, (std::vector<std::string>{R"({"n":0})", R"({"n":1})", R"({"n":2})", R"({"n":3})",
                                             R"({"n":4})"}));
}

TEST(Delivery, TokenFetchesAreSharedAndSoAreTheirFailures) {
  Receiver receiver;
  std::atomic<int> token_requests{0};
  std::atomic<bool> token_endpoint_up{false};
  receiver.set_handler([&](const ReceivedRequest& r) {
    Reply reply;
    if (r.target.starts_with("/token")) {
      ++token_requests;
      reply.delay = 200ms;  // slow: every request of a burst finds a fetch in progress
      if (!token_endpoint_up) return reply.status = 500, reply;
      reply.body = R"({"access_token":"t","expires_in":3600})";
    }
    return reply;
  });
  World world;
  // Two settings on one worker, fetching at once.
  for (const char* id : {"o1", "o2"}) {
    ASSERT_TRUE(world.engine()
                    .CreateSecurity({.auth_id = id,
                                     .type = SecurityType::kOAuth,
                                     .token_url = receiver.url(std::string("/token/") + id),
                                     .grant_type = "client_credentials",
                                     .client_id = "c"})
                    .ok());
    auto p = Profile(id, receiver);
    p.auth_id = id;
    p.max_bucket_size = 1;
    p.retry = RetryPolicy{.delays_ms = {10}, .max_attempts = 1};
    world.AddProfile(p);
  }
  // The token endpoint fails: a burst of 20 shares one failed fetch per setting.
  for (int i = 0; i < 20; ++i) world.Send("o1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("o1").dead_lettered == 20; }));
  EXPECT_LE(token_requests.load(), 3);
  EXPECT_NE(world.deliverer()
                .ListDeadLetters("o1", 0, 1)
                ->results.at(0)
                .last_error.find("answered HTTP 500"),
            std::string::npos);
  token_endpoint_up = true;
  token_requests = 0;
  for (int i = 0; i < 20; ++i) {
    world.Send("o1", "{}");
    world.Send("o2", "{}");
  }
  ASSERT_TRUE(World::Eventually(
      [&] { return world.Stats("o1").delivered == 20 && world.Stats("o2").delivered == 20; }));
  EXPECT_EQ(token_requests.load(), 2);
}

TEST(Delivery, ABigSuccessfulAnswerIsStillASuccess) {
  Receiver receiver;
  receiver.set_handler(
      [](const ReceivedRequest&) { return Reply{.body = std::string(3 << 20, 'x')}; });
  World world;
  world.AddProfile(Profile("p1", receiver));
  world.Send("p1", "{}");
  world.Send("p1", "{}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").delivered == 2; }));
  EXPECT_EQ(world.Stats("p1").failed, 0u);
}

TEST(Delivery, DeletingAProfileWithRequestsInFlightKeepsItsNotifications) {
  Receiver receiver;
  receiver.set_handler([](const ReceivedRequest&) { return Reply{.status = 503, .delay = 100ms}; });
  World world;
  auto p = Profile("p1", receiver);
  p.max_bucket_size = 1;
  p.retry = RetryPolicy{.delays_ms = {20}, .max_attempts = 100};
  world.AddProfile(p);
  for (int i = 0; i < 10; ++i) world.Send("p1", "{}");
  ASSERT_TRUE(receiver.WaitFor(5, 10s));
  ASSERT_TRUE(world.engine().DeleteSubscription("sub-p1").ok());
  ASSERT_TRUE(world.engine().DeleteProfile("p1").ok());
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").held == 0; }));
  EXPECT_EQ(world.Stats("p1").dead_lettered, 10u);
  EXPECT_NE(world.deliverer()
                .ListDeadLetters("p1", 0, 1)
                ->results.at(0)
                .last_error.find("no longer exists"),
            std::string::npos);
}

// A dead letter deleted while its replay is in flight stays deleted when the replay fails again.
TEST(Delivery, ADeadLetterDeletedDuringItsReplayDoesNotComeBack) {
  TempDir dir;
  std::atomic<bool> slow{false};
  Receiver receiver;
  receiver.set_handler([&](const ReceivedRequest&) {
    return Reply{.status = 400, .delay = slow ? 500ms : 0ms};  // 400: a dead letter at once
  });
  World world({.data_dir = dir.path()});
  world.AddProfile(Profile("p1", receiver));
  world.Send("p1", R"({"k":1})");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").dead_lettered == 1; }));
  const uint64_t id = world.deliverer().ListDeadLetters("p1", 0, 1)->results.at(0).id;
  slow = true;
  ASSERT_EQ(*world.deliverer().Replay("p1", {id}), 1u);
  ASSERT_TRUE(receiver.WaitFor(2, 5s));  // the replay is in flight
  EXPECT_EQ(*world.deliverer().DeleteDeadLetters("p1", {id}), 1u);
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("p1").held == 0; }));
  EXPECT_EQ(world.deliverer().ListDeadLetters("p1", 0, 10)->total, 0u)
      << "the deleted letter came back when its replay failed";
  EXPECT_EQ(world.Stats("p1").dead_lettered, 1u);
}

// A receiver whose DNS never answers, next to a healthy one on the same worker: the healthy one
// is delivered at once, the stuck one's attempts fail after its connectTimeout naming the
// lookup, and the name is looked up once at a time however many attempts wait for it.
TEST(Delivery, AResolverThatNeverAnswersHoldsUpNoOtherProfile) {
  std::mutex mu;
  std::condition_variable released_cv;
  bool released = false;
  std::atomic<int> stuck_lookups{0}, stuck_running{0}, most_running{0};
  DelivererOptions options;
  options.threads = 1;
  options.breaker_failures = 1000;
  options.retry.max_attempts = 3;
  options.resolve = [&](std::string_view host) -> absl::StatusOr<std::vector<std::string>> {
    if (host != "black-hole.test") return std::vector<std::string>{"127.0.0.1"};
    ++stuck_lookups;
    most_running = std::max(most_running.load(), ++stuck_running);
    {
      std::unique_lock lock(mu);
      released_cv.wait(lock, [&] { return released; });
    }
    --stuck_running;  // the last touch of this test's locals
    return absl::UnavailableError("resolve black-hole.test: no answer");
  };
  Receiver healthy;
  {
    World world(options);
    NotificationProfile stuck;
    stuck.profile_id = "stuck";
    stuck.webhook.notify_url = "http://black-hole.test:9/hook";
    stuck.connect_timeout_ms = 300;
    stuck.max_bucket_size = 1;
    world.AddProfile(stuck);
    NotificationProfile good = Profile("good", healthy);
    good.webhook.notify_url = "http://good.test:" + std::to_string(healthy.port()) + "/hook";
    good.max_bucket_size = 1;
    world.AddProfile(good);
    for (int i = 0; i < 10; ++i) world.Send("stuck", "{}");
    const auto start = Clock::now();
    for (int i = 0; i < 20; ++i) world.Send("good", "{}");
    ASSERT_TRUE(healthy.WaitFor(20, 5s)) << healthy.count();
    EXPECT_LT(Clock::now() - start, 2s) << "the healthy profile waited for the stuck lookup";
    ASSERT_TRUE(World::Eventually([&] { return world.Stats("stuck").failed >= 2; }));
    EXPECT_EQ(most_running.load(), 1) << "the stuck name was looked up more than once at a time";
    EXPECT_EQ(stuck_lookups.load(), 1);
    ASSERT_TRUE(World::Eventually(
        [&] { return world.deliverer().ListDeadLetters("stuck", 0, 1)->total > 0; }, 30s));
    EXPECT_NE(world.deliverer()
                  .ListDeadLetters("stuck", 0, 1)
                  ->results[0]
                  .last_error.find("resolve black-hole.test: no answer within 300 ms"),
              std::string::npos)
        << world.deliverer().ListDeadLetters("stuck", 0, 1)->results[0].last_error;
  }
  {
    std::lock_guard lock(mu);
    released = true;
  }
  released_cv.notify_all();
  // The lookup thread touches this test's locals until it is out of the lookup.
  ASSERT_TRUE(World::Eventually([&] { return stuck_running.load() == 0; }));
}

// The dead letters' fdatasync, held until the test lets it go: a disk that stalls.
struct StalledDisk {
  static inline std::mutex mu;
  static inline std::condition_variable cv;
  static inline bool stalled = false;
  static inline int waiting = 0;
  static int Sync(int fd) {
    std::unique_lock lock(mu);
    ++waiting;
    cv.notify_all();
    cv.wait(lock, [] { return !stalled; });
    --waiting;
    return ::fdatasync(fd);
  }
  static void Stall(bool on) {
    std::lock_guard lock(mu);
    stalled = on;
    cv.notify_all();
  }
  static bool WaitForAWrite(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [] { return waiting > 0; });
  }
};

TEST(Delivery, ADeadLetterWaitingForTheDiskHoldsUpNoOtherProfile) {
  TempDir dir;
  DelivererOptions options;
  options.threads = 1;  // both profiles on one worker
  options.data_dir = dir.path();
  options.dead_letters_sync = &StalledDisk::Sync;
  Receiver refusing, healthy;
  refusing.set_handler([](const ReceivedRequest&) { return Reply{.status = 400}; });
  StalledDisk::Stall(true);
  {
    World world(options);
    NotificationProfile dying = Profile("dying", refusing);
    dying.max_bucket_size = 1;
    world.AddProfile(dying);
    NotificationProfile good = Profile("good", healthy);
    good.max_bucket_size = 1;
    world.AddProfile(good);
    world.Send("dying", "{}");  // 400: a dead letter at once, whose fdatasync stalls
    ASSERT_TRUE(StalledDisk::WaitForAWrite(10s));
    for (int i = 0; i < 20; ++i) world.Send("good", "{}");
    EXPECT_TRUE(healthy.WaitFor(20, 10s))
        << healthy.count() << " of 20: the worker waited for the dead letter's fdatasync";
    EXPECT_EQ(world.Stats("dying").dead_lettered, 0u) << "counted before it was on disk";
    StalledDisk::Stall(false);
    ASSERT_TRUE(World::Eventually([&] { return world.Stats("dying").dead_lettered == 1; }));
    EXPECT_EQ(world.deliverer().ListDeadLetters("dying", 0, 10)->total, 1u);
  }
}

TEST(Delivery, NginxReceivesEveryNotificationOverKeptAliveConnections) {
  ASSERT_EQ(access("/usr/sbin/nginx", X_OK), 0) << "nginx is missing: run tools/deps.sh";
  TempDir dir;
  Nginx nginx(dir.path());
  ASSERT_TRUE(nginx.Accepts()) << "nginx did not start; see " << dir.path() << "/error.log";
  World world;
  NotificationProfile p;
  p.profile_id = "nginx";
  p.webhook.notify_url = nginx.url();
  p.max_bucket_size = 1;
  world.AddProfile(p);
  for (int i = 0; i < 500; ++i) world.Send("nginx", R"({"n":)" + std::to_string(i) + "}");
  ASSERT_TRUE(World::Eventually([&] { return world.Stats("nginx").delivered == 500; }));
  world.Stop();
  std::vector<std::vector<std::string>> lines;
  ASSERT_TRUE(World::Eventually([&] { return (lines = nginx.log()).size() == 500; }))
      << lines.size();
  std::set<std::string> connections;
  for (const auto& l : lines) {
    EXPECT_EQ(l[0], "POST");
    EXPECT_EQ(l[1], "/hook");
    EXPECT_EQ(l[2], "200");
    connections.insert(l[3]);
  }
  EXPECT_LE(connections.size(), 20u);  // at most windowSize connections, each reused
}

}  // namespace
}  // namespace herald
