// heraldd run in process: Create, Start, Stop, and again on the same data_dir.
#include "engine/server/daemon.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/http_call.h"
#include "tests/testing/shipped_catalog.h"
#include "tests/testing/temp_dir.h"

namespace herald::server {
namespace {

using test_support::CallHttp;
using test_support::TempDir;

DaemonConfig Config(const std::string& data_dir, std::vector<std::string> more = {}) {
  // Tests run from the source root, where the default catalog path points.
  std::vector<std::string> args = {
      "heraldd", "--listen",  "127.0.0.1:0", "--data-dir",
      data_dir,  "--threads", "1",           "--allow-private-targets"};
  args.insert(args.end(), more.begin(), more.end());
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  auto config = ParseDaemonConfig(static_cast<int>(argv.size()), argv.data());
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : DaemonConfig{};
}

TEST(Daemon, StartsServesStopsAndKeepsItsStateForTheNextStart) {
  TempDir dir;
  std::vector<std::string> out;
  {
    auto daemon =
        Daemon::Create(Config(dir.path()), [&](std::string_view line) { out.emplace_back(line); });
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    ASSERT_TRUE((*daemon)->Start().ok());
    const uint16_t port = (*daemon)->port();
    ASSERT_NE(port, 0);
    EXPECT_EQ(CallHttp(port, "GET", "/readyz").status, 200);
    ASSERT_EQ(CallHttp(port, "POST", "/subscriptions/1/subscription/SMS",
                       R"({"subscriptionId":"s1","events":["DELIVERY"],
                           "profile":{"profileId":"p1","webhook":{"notifyUrl":"https://h.example/x"}}})")
                  .status,
              201);
    EXPECT_EQ(
        CallHttp(port, "POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY","payload":{}})")
            .status,
        202);
    EXPECT_EQ((*daemon)->engine().subscription_count(), 1u);
    (*daemon)->Stop();
    EXPECT_EQ(CallHttp(port, "GET", "/healthz").status, -1) << "stopped listening";
  }
  ASSERT_FALSE(out.empty());
  bool said_where = false;
  for (const auto& line : out) said_where |= line.starts_with("heraldd listening on http://");
  EXPECT_TRUE(said_where);

  auto again = Daemon::Create(Config(dir.path()));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->engine().subscription_count(), 1u);
  ASSERT_TRUE((*again)->Start().ok());
  EXPECT_EQ(CallHttp((*again)->port(), "GET", "/subscriptions/1/subscription/SMS/s1").status, 200);
  // Destroyed without Stop: it stops itself.
}

// The route table answers unknown paths and methods only to whoever holds the path's key, and
// counts every answer, refusals included (4 × 401, 2 × 405, 2 × 404).
TEST(Daemon, WrongPathsAndMethodsAnswerOnlyWithTheKeyAndAreCounted) {
  TempDir dir;
  auto daemon = Daemon::Create(Config(dir.path(), {"--api-key", "admin"}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE((*daemon)->Start().ok());
  const uint16_t port = (*daemon)->port();
  EXPECT_EQ(CallHttp(port, "GET", "/v1/events").status, 401);
  EXPECT_EQ(CallHttp(port, "POST", "/v1/events/a/b/c").status, 401);
  EXPECT_EQ(CallHttp(port, "PATCH", "/subscriptions/1/profiles").status, 401);
  EXPECT_EQ(CallHttp(port, "GET", "/subscriptions/1/nothing").status, 401);
  const std::string key = "App admin";
  const auto wrong_method = CallHttp(port, "GET", "/v1/events", "", "", key);
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_NE(wrong_method.body.find("use POST"), std::string::npos) << wrong_method.body;
  const auto profiles = CallHttp(port, "PATCH", "/subscriptions/1/profiles/p1", "", "", key);
  EXPECT_EQ(profiles.status, 405);
  EXPECT_NE(profiles.body.find("use GET, PUT or DELETE"), std::string::npos) << profiles.body;
  EXPECT_EQ(CallHttp(port, "GET", "/subscriptions/1/nothing", "", "", key).status, 404);
  EXPECT_EQ(CallHttp(port, "GET", "/nothing").status, 404);
  EXPECT_EQ(CallHttp(port, "GET", "/subscriptions/1/profiles/", "", "", key).status, 200);
  const std::string metrics = CallHttp(port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("herald_http_responses_total{code=\"4xx\"} 8\n"), std::string::npos)
      << metrics;
}

TEST(Daemon, AStartThatCannotListenSaysWhyAndUndoesItself) {
  TempDir dir, other;
  auto first = Daemon::Create(Config(dir.path()));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->Start().ok());
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  DaemonConfig config = Config(other.path(), {"--listen", taken});
  auto second = Daemon::Create(config);
  ASSERT_TRUE(second.ok()) << second.status();
  const absl::Status s = (*second)->Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find(taken.substr(10)), std::string::npos) << s;
  (*second)->Stop();  // a second stop does nothing
  EXPECT_EQ(CallHttp((*first)->port(), "GET", "/healthz").status, 200);
}

// What the last run accepted and did not deliver is replayed by the next start; a stop asked for
// during that replay ends the start (Cancelled), and the start after it replays again.
TEST(Daemon, AStopAskedForDuringTheReplayEndsTheStartCancelled) {
  TempDir dir;
  {
    DaemonConfig config = Config(dir.path());
    config.shutdown_grace = std::chrono::milliseconds(0);
    auto daemon = Daemon::Create(config);
    ASSERT_TRUE(daemon.ok());
    ASSERT_TRUE((*daemon)->Start().ok());
    const uint16_t port = (*daemon)->port();
    // A receiver that refuses connections: nothing is delivered.
    ASSERT_EQ(CallHttp(port, "POST", "/subscriptions/1/subscription/SMS",
                       R"({"subscriptionId":"s1","events":["DELIVERY"],
                           "profile":{"profileId":"p1","webhook":{"notifyUrl":"http://127.0.0.1:9/x"}}})")
                  .status,
              201);
    (*daemon)->engine().FlushIndex();
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(CallHttp(port, "POST", "/v1/events",
                         R"({"channel":"SMS","event":"DELIVERY","payload":{}})")
                    .status,
                202);
    }
  }
  {
    auto daemon = Daemon::Create(Config(dir.path()));
    ASSERT_TRUE(daemon.ok());
    const absl::Status s = (*daemon)->Start([] { return true; });
    EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  }
  auto daemon = Daemon::Create(Config(dir.path()));
  ASSERT_TRUE(daemon.ok());
  ASSERT_TRUE((*daemon)->Start().ok());
  const std::string metrics = CallHttp((*daemon)->port(), "GET", "/metrics").body;
  EXPECT_EQ(metrics.find("herald_spool_replayed_records_total 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("herald_spool_replayed_records_total"), std::string::npos);
}

// A write that names receivers waits, off the io threads, for their names to be looked up (at
// most a second each). A stop meanwhile answers it at once (503: stopping) and waits for no
// lookup but the one in flight, and nothing the write left behind runs once the daemon is gone.
TEST(Daemon, AStopDuringAWritesLookupsAnswersItAndLeavesNothingBehind) {
  TempDir dir;
  DaemonConfig config = Config(dir.path());
  config.allow_private_targets = false;  // the write-time guard looks names up
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto asked = std::make_shared<std::atomic<int>>(0);
  config.name_lookup = [release,
                        asked](std::string_view) -> absl::StatusOr<std::vector<std::string>> {
    ++*asked;
    while (!release->load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return absl::UnavailableError("no answer");
  };
  // Fifteen names: fifteen seconds of lookups, longer than the server waits for a request.
  std::string body = R"({"profileId":"p1","webhook":{"notifyUrl":"http://h0.test/x"},"more":[)";
  for (int i = 1; i < 15; ++i) {
    body += (i > 1 ? "," : "") + std::string(R"({"notifyUrl":"http://h)") + std::to_string(i) +
            R"(.test/x"})";
  }
  body += "]}";
  std::future<test_support::HttpReply> reply;
  {
    auto daemon = Daemon::Create(config);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    ASSERT_TRUE((*daemon)->Start().ok());
    const uint16_t port = (*daemon)->port();
    reply = std::async(std::launch::async, [port, body] {
      return CallHttp(port, "POST", "/subscriptions/1/profiles", body);
    });
    while (asked->load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const auto start = std::chrono::steady_clock::now();
    (*daemon)->Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5))
        << "the stop waited for the write's lookups";
    ASSERT_EQ(reply.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    const auto r = reply.get();
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_LT(asked->load(), 15) << "lookups went on after the stop";
  }
  release->store(true);  // the lookup threads end; no callback of theirs is left to run
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace
}  // namespace herald::server

namespace herald::server {
namespace {

absl::StatusOr<DaemonConfig> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "heraldd");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return ParseDaemonConfig(static_cast<int>(argv.size()), argv.data());
}

// The JetStream mode's flags set the [jetstream] table's keys; bad values name what is wrong.
TEST(DaemonConfig, JetStreamSettingsComeFromFlagsAndTheFile) {
  TempDir dir;
  const std::string path = dir.path() + "/h.toml";
  {
    std::ofstream toml(path);
    toml << "store = \"jetstream\"\n[jetstream]\nurls = [\"nats://a:4222\", \"nats://b:4222\"]\n"
            "replicas = 3\nprefix = \"prod\"\nuser = \"herald\"\npassword = \"pw\"\n"
            "ack_wait_ms = 5000\n";
  }
  auto c = Parse({"--config", path, "--jetstream-replicas", "1", "--nats-connect-wait-ms", "900"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->store, "jetstream");
  EXPECT_EQ(c->jetstream.urls, (std::vector<std::string>{"nats://a:4222", "nats://b:4222"}));
  EXPECT_EQ(c->jetstream.replicas, 1);  // the flag wins over the file
  EXPECT_EQ(c->jetstream.prefix, "prod");
  EXPECT_EQ(c->jetstream.user, "herald");
  EXPECT_EQ(c->jetstream.password, "pw");
  EXPECT_EQ(c->jetstream.ack_wait, std::chrono::milliseconds(5000));
  EXPECT_EQ(c->jetstream.connect_wait, std::chrono::milliseconds(900));
  auto urls = Parse({"--nats-url", "nats://x:1,nats://y:2", "--store", "local"});
  ASSERT_TRUE(urls.ok()) << urls.status();
  EXPECT_EQ(urls->jetstream.urls, (std::vector<std::string>{"nats://x:1", "nats://y:2"}));
  EXPECT_EQ(urls->store, "local");

  auto bad_store = Parse({"--store", "redis"});
  ASSERT_FALSE(bad_store.ok());
  EXPECT_EQ(bad_store.status().message(), "--store: must be local or jetstream");
  auto bad_replicas = Parse({"--jetstream-replicas", "9"});
  ASSERT_FALSE(bad_replicas.ok());
  EXPECT_EQ(bad_replicas.status().message(),
            "--jetstream-replicas: must be an integer between 1 and 5");
  auto bad_prefix = Parse({"--jetstream-prefix", "a.b"});
  ASSERT_FALSE(bad_prefix.ok());
  EXPECT_EQ(bad_prefix.status().message(),
            "--jetstream-prefix: must be letters, digits, '-' and '_'");
  EXPECT_FALSE(Parse({"--nats-url", "nats://a,,nats://b"}).ok());
}

}  // namespace
}  // namespace herald::server
