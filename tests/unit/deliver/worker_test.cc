// A delivery worker in simulated time, against a real receiver on loopback: its retry timers,
// the open circuit's wait and the rate limiter's gate all run on a FakeClock the test moves, so
// minutes of schedule pass without sleeping. What it delivers are replayed dead letters, the
// path that needs no engine queue.
#include "engine/deliver/worker.h"

#include <boost/asio/post.hpp>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/receiver.h"
#include "tests/testing/shipped_catalog.h"
#include "tests/unit/deliver/fake_clock.h"

namespace herald::deliver {
namespace {

using namespace std::chrono_literals;
using test_support::ReceivedRequest;
using test_support::Receiver;
using test_support::Reply;

// What a worker needs of its deliverer: a real engine holding the profile, an in-memory
// dead-letter store with its writer, and a resolver.
class Host final : public WorkerHost {
 public:
  explicit Host(DelivererOptions options) : options_(std::move(options)) {
    auto engine = Engine::Create({.catalog_path = test_support::ShippedCatalogPath()});
    EXPECT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    auto store = DeadLetterStore::Open(DeadLetterStore::Options{});
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    writer_ = std::make_unique<DeadLetterWriter>(*store_);
  }
  const DelivererOptions& options() const override { return options_; }
  Engine* engine() const override { return engine_.get(); }
  DeadLetterStore& dead_letters() override { return *store_; }
  DeadLetterWriter& writer() override { return *writer_; }
  Resolver& resolver() override { return resolver_; }
  DeliveryRing& deliveries() override { return deliveries_; }
  LatencyHistogram& end_to_end() override { return end_to_end_; }

 private:
  DelivererOptions options_;
  DeliveryRing deliveries_{100, 1 << 20};
  LatencyHistogram end_to_end_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<DeadLetterStore> store_;
  std::unique_ptr<DeadLetterWriter> writer_;
  Resolver resolver_;
};

class WorkerTest : public ::testing::Test {
 protected:
  // A worker running on its thread with profile "p1" to the receiver; `configure` adjusts it.
  void Start(const std::function<void(NotificationProfile&)>& configure,
             DelivererOptions options = {}) {
    options.allow_private_targets = true;
    host_ = std::make_unique<Host>(std::move(options));
    NotificationProfile profile;
    profile.profile_id = "p1";
    profile.webhook.notify_url = receiver_.url();
    profile.max_bucket_size = 1;
    configure(profile);
    ASSERT_TRUE(host_->engine()->CreateProfile(profile).ok());
    auto worker = Worker::Create(*host_, host_->options(), clock_);
    ASSERT_TRUE(worker.ok()) << worker.status();
    worker_ = *std::move(worker);
    profile_ = std::make_unique<ProfileState>(
        "p1", worker_.get(), worker_->io(), clock_,
        CircuitBreaker::Options{.failures = host_->options().breaker_failures,
                                .open = host_->options().breaker_open,
                                .open_max = host_->options().breaker_open_max});
    worker_->Run();
  }

  void TearDown() override {
    if (!worker_) return;
    asio::post(worker_->io(), [this] { worker_->Drain({profile_.get()}); });
    worker_->Join();
    profile_.reset();
  }

  // Hands `n` events to the worker, as a replay of stored dead letters would.
  void Hand(int n) {
    std::vector<DeadLetter> letters;
    for (int i = 0; i < n; ++i) {
      letters.push_back({.profile_id = "p1",
                         .subscription_id = "s1",
                         .channel = "SMS",
                         .event = "DELIVERY",
                         .webhook_id = "msg_" + std::to_string(next_++),
                         .payload = R"({"n":)" + std::to_string(i) + "}"});
    }
    ASSERT_TRUE(host_->dead_letters().Add(letters).ok());
    std::vector<uint64_t> ids;
    for (const auto& l : letters) ids.push_back(l.id);
    auto replayed = host_->dead_letters().BeginReplay("p1", ids);
    ASSERT_TRUE(replayed.ok()) << replayed.status();
    {
      MutexLock lock(profile_->inbox_mu);
      for (auto& l : *replayed) {
        auto owned = std::make_shared<DeadLetter>(std::move(l));
        owned->payload.reserve(owned->payload.size() + 64);
        profile_->inbox.push_back(Item{Notification(), std::move(owned)});
      }
      profile_->held.fetch_add(replayed->size());
    }
    asio::post(worker_->io(), [this] { worker_->Pump(*profile_); });
  }

  // Returns once the worker's loop ran everything posted to it before.
  void Sync() {
    std::promise<void> done;
    asio::post(worker_->io(), [&] { done.set_value(); });
    done.get_future().wait();
  }

  // Moves simulated time on, lets the worker act on it, and gives a request it makes the time
  // to arrive.
  void Advance(Clock::duration d) {
    clock_.Advance(d);
    Sync();
    std::this_thread::sleep_for(100ms);
  }

  static bool Eventually(const std::function<bool()>& condition) {
    for (int i = 0; i < 500; ++i) {
      if (condition()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return condition();
  }

  // What the worker logged, and a DelivererOptions::log that records it.
  std::vector<std::string> Logged() {
    std::lock_guard lock(log_mu_);
    return log_;
  }
  std::function<void(std::string_view)> Log() {
    return [this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_.emplace_back(line);
    };
  }
  static size_t Count(const std::vector<std::string>& lines, std::string_view needle) {
    size_t n = 0;
    for (const auto& l : lines) n += l.find(needle) != std::string::npos;
    return n;
  }

  std::mutex log_mu_;
  std::vector<std::string> log_;
  Receiver receiver_;
  FakeClock clock_;
  std::unique_ptr<Host> host_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<ProfileState> profile_;
  int next_ = 1;
};

TEST_F(WorkerTest, RetriesFollowTheProfilesScheduleInSimulatedTime) {
  int answered = 0;
  receiver_.set_handler(
      [&](const ReceivedRequest&) { return Reply{.status = ++answered <= 2 ? 500 : 200}; });
  Start([](NotificationProfile& p) { p.retry = RetryPolicy{{60'000, 120'000}, 3}; }, {.jitter = 0});
  Hand(1);
  ASSERT_TRUE(receiver_.WaitFor(1, 5s));
  ASSERT_TRUE(Eventually([&] { return clock_.pending() > 0; })) << "the retry is armed";
  Advance(59s);
  EXPECT_EQ(receiver_.count(), 1u) << "a minute has not passed";
  Advance(1s);
  ASSERT_TRUE(receiver_.WaitFor(2, 5s));
  ASSERT_TRUE(Eventually([&] { return clock_.pending() > 0; }));
  Advance(119s);
  EXPECT_EQ(receiver_.count(), 2u) << "the second delay is two minutes";
  Advance(1s);
  ASSERT_TRUE(receiver_.WaitFor(3, 5s));
  EXPECT_TRUE(Eventually([&] { return profile_->delivered.load() == 1; }));
  // One webhook id across its attempts: the receiver can tell a retry from a new event.
  const auto requests = receiver_.requests();
  EXPECT_EQ(requests[0].header("webhook-id"), requests[2].header("webhook-id"));
  EXPECT_EQ(profile_->retried.load(), 2u);
}

TEST_F(WorkerTest, ARetryAfterFromTheReceiverOverridesTheSchedule) {
  int answered = 0;
  receiver_.set_handler([&](const ReceivedRequest&) {
    return ++answered == 1 ? Reply{.status = 503, .headers = {{"Retry-After", "120"}}}
                           : Reply{.status = 200};
  });
  Start([](NotificationProfile& p) { p.retry = RetryPolicy{{1000}, 3}; }, {.jitter = 0});
  Hand(1);
  ASSERT_TRUE(receiver_.WaitFor(1, 5s));
  ASSERT_TRUE(Eventually([&] { return clock_.pending() > 0; }));
  Advance(1s);
  Advance(118s);
  EXPECT_EQ(receiver_.count(), 1u) << "Retry-After: 120 is honoured over the 1 s delay";
  Advance(1s);
  ASSERT_TRUE(receiver_.WaitFor(2, 5s));
}

TEST_F(WorkerTest, AnOpenCircuitHoldsRequestsUntilItsProbe) {
  receiver_.set_handler([](const ReceivedRequest&) { return Reply{.status = 500}; });
  Start(
      [](NotificationProfile& p) {
        p.retry = RetryPolicy{{1000}, 1};
      },
      {.breaker_failures = 2, .breaker_open = 30s});
  Hand(1);
  ASSERT_TRUE(receiver_.WaitFor(1, 5s));
  ASSERT_TRUE(Eventually([&] { return profile_->dead_lettered.load() == 1; }));
  Hand(1);
  ASSERT_TRUE(receiver_.WaitFor(2, 5s));
  ASSERT_TRUE(Eventually([&] { return profile_->circuit_open.load(); }));
  ASSERT_TRUE(Eventually([&] { return profile_->dead_lettered.load() == 2; }));
  Hand(1);  // waits for the circuit
  Advance(29s);
  EXPECT_EQ(receiver_.count(), 2u) << "the circuit is open for 30 s";
  Advance(1s);
  ASSERT_TRUE(receiver_.WaitFor(3, 5s)) << "one probe once it half-opens";
}

TEST_F(WorkerTest, ARateLimitSpacesRequestsOnTheClock) {
  Start([](NotificationProfile& p) { p.rate_limit = 1; });
  Hand(3);
  ASSERT_TRUE(receiver_.WaitFor(1, 5s));
  ASSERT_TRUE(Eventually([&] { return clock_.pending() > 0; })) << "the gate is armed";
  Advance(999ms);
  EXPECT_EQ(receiver_.count(), 1u) << "one request per second";
  Advance(1ms);
  ASSERT_TRUE(receiver_.WaitFor(2, 5s));
  ASSERT_TRUE(Eventually([&] { return clock_.pending() > 0; }));
  Advance(1s);
  ASSERT_TRUE(receiver_.WaitFor(3, 5s));
  EXPECT_TRUE(Eventually([&] { return profile_->delivered.load() == 3; }));
}

// A failing receiver is logged with its reason once when it starts failing and once when it is
// back, not once per request; a change of reason is logged too.
TEST_F(WorkerTest, FailuresAreLoggedOncePerChangeWithTheirReason) {
  int answered = 0;
  receiver_.set_handler([&](const ReceivedRequest&) {
    ++answered;
    if (answered <= 3) return Reply{.status = 500, .body = "database is down\n"};
    if (answered == 4) return Reply{.status = 503};
    return Reply{.status = 200};
  });
  Start(
      [](NotificationProfile& p) {
        p.retry = RetryPolicy{{1000}, 10};
      },
      {.jitter = 0, .breaker_failures = 100, .log = Log()});
  Hand(1);
  for (size_t n = 1; n <= 4; ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, 5s));
    ASSERT_TRUE(Eventually([&] { return clock_.pending() > 0; }));
    Advance(1s);
  }
  ASSERT_TRUE(receiver_.WaitFor(5, 5s));
  ASSERT_TRUE(Eventually([&] { return profile_->delivered.load() == 1; }));
  const auto lines = Logged();
  EXPECT_EQ(Count(lines, "p1: failing: HTTP 500: database is down"), 1u) << lines.size();
  EXPECT_EQ(Count(lines, "p1: now failing: HTTP 503"), 1u);
  EXPECT_EQ(Count(lines, "p1: delivering again after 4 failed request(s)"), 1u);
  EXPECT_EQ(Count(lines, "failing"), 2u) << "never once per request";
}

TEST_F(WorkerTest, AReceiverThatRefusesConnectionsIsLoggedWithWhy) {
  Start(
      [](NotificationProfile& p) {
        p.webhook.notify_url = "http://127.0.0.1:1/hook";  // nothing listens there
        p.retry = RetryPolicy{{1000}, 1};
      },
      {.log = Log()});
  Hand(2);
  ASSERT_TRUE(Eventually([&] { return profile_->dead_lettered.load() == 2; }));
  const auto lines = Logged();
  ASSERT_EQ(Count(lines, "p1: failing: "), 1u);
  EXPECT_EQ(Count(lines, "refused"), 1u) << [&] {
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    return all;
  }();
}

TEST_F(WorkerTest, ADeadLetterIsDatedOnTheClock) {
  receiver_.set_handler([](const ReceivedRequest&) { return Reply{.status = 400}; });
  clock_.SetUnixMillis(1'234'567'890'000);
  Start([](NotificationProfile&) {});
  Hand(1);
  ASSERT_TRUE(Eventually([&] { return profile_->dead_lettered.load() == 1; }));
  host_->writer().Flush();
  auto page = host_->dead_letters().List("p1", 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->results.size(), 1u);
  EXPECT_EQ(page->results[0].failed_at_ms, 1'234'567'890'000);
  EXPECT_EQ(page->results[0].last_status, 400);
}

}  // namespace
}  // namespace herald::deliver
