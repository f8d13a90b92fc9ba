// Proves the hot path — parse → match → enqueue — allocates nothing in steady state, by counting
// every allocation made by this thread while ingesting.
#include <atomic>
#include <cstdlib>
#include <new>

#include "gtest/gtest.h"
#include "herald/engine.h"

namespace {
thread_local bool counting = false;
thread_local size_t allocations = 0;
}  // namespace

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer, its allocator owns operator new; its hooks see every allocation
// (operator new and malloc alike).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void OnMalloc(const volatile void*, size_t) {
  if (counting) ++allocations;
}
void OnFree(const volatile void*) {}
const int kHooksInstalled = __sanitizer_install_malloc_and_free_hooks(OnMalloc, OnFree);
}  // namespace
#else
// The replacement pairs malloc with free on purpose.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t size) {
  if (counting) ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

namespace herald {
namespace {

// `logged`: inputs carry spool sequences (as in heraldd), so each notification is tracked until
// it is settled — and settling is counted too.
void SteadyStateIngestAllocatesNothing(bool logged) {
  auto engine = *Engine::Create({.catalog_path = "configs/catalog.json"});
  for (int p = 0; p < 3; ++p) {
    NotificationProfile profile;
    profile.profile_id = "p" + std::to_string(p);
    profile.webhook.notify_url = "https://example.com/" + profile.profile_id;
    ASSERT_TRUE(engine->CreateProfile(profile).ok());
  }
  auto sub = [&](const std::string& id, std::vector<std::string> events, std::string app,
                 std::string group, std::string profile) {
    Subscription s;
    s.subscription_id = id;
    s.channel = "SMS";
    s.events = std::move(events);
    if (!app.empty()) s.criteria = {Criterion{app, std::nullopt}};
    s.group = std::move(group);
    s.profile_id = std::move(profile);
    ASSERT_TRUE(engine->CreateSubscription(s).ok());
  };
  sub("general", {}, "", "", "p0");
  sub("specific", {"DELIVERY"}, "a1", "", "p1");
  sub("audit", {}, "", "audit", "p2");
  for (int i = 0; i < 1000; ++i)
    sub("other" + std::to_string(i), {"CLICK"}, "x" + std::to_string(i), "", "p0");
  engine->FlushIndex();

  const std::string single =
      R"({"channel":"SMS","event":"DELIVERY","eventId":"id-1","applicationId":"a1",)"
      R"("entityId":"e1","resource":"InfoSMS","payload":{"results":[{"messageId":"m1",)"
      R"("status":{"groupName":"DELIVERED"}}]}})";
  std::string batch;
  for (int i = 0; i < 50; ++i) {
    batch += R"({"channel":"SMS","event":")" + std::string(i % 2 ? "CLICK" : "DELIVERY") +
             R"(","applicationId":"a)" + std::to_string(i % 3) + R"(","payload":{"i":)" +
             std::to_string(i) + "}}\n";
  }
  const std::string bad = R"({"channel":"SMS","event":"NOPE","payload":{}})";

  std::vector<Notification> drained;
  drained.reserve(100000);
  uint64_t seq = 0;
  auto ingest = [&] {
    engine->Ingest(single, InputFormat::kAuto, nullptr, logged ? ++seq : 0);
    engine->Ingest(batch, InputFormat::kAuto, nullptr, logged ? ++seq : 0);
    // A rejection is counted, not allocated for.
    engine->Ingest(bad, InputFormat::kAuto, nullptr, logged ? ++seq : 0);
  };
  auto settle = [&] {
    if (logged) {
      for (auto& n : drained) n.Settle();
    }
  };
  auto round = [&] {
    ingest();
    for (const char* p : {"p0", "p1", "p2"}) {
      (void)engine->Poll(p, 100000, &drained);
    }
    settle();
    drained.clear();  // releases payload buffers back to the pool
  };
  for (int i = 0; i < 200; ++i) round();  // warm up pools, parser buffers, queue blocks

  const uint64_t enqueued_before = engine->counters().enqueued;
  size_t during_ingest = 0;
  for (int i = 0; i < 2000; ++i) {
    allocations = 0;
    counting = true;
    ingest();
    counting = false;
    during_ingest += allocations;
    for (const char* p : {"p0", "p1", "p2"}) (void)engine->Poll(p, 100000, &drained);
    allocations = 0;
    counting = true;
    settle();
    counting = false;
    during_ingest += allocations;
    drained.clear();
  }
  EXPECT_EQ(during_ingest, 0u) << "allocations on the parse → match → enqueue (→ settle) path";
  // And the work was real: notifications went out on every round.
  EXPECT_GT(engine->counters().enqueued - enqueued_before, 2000u * 50);
  if (logged) {
    for (const auto& p : engine->DeliveryProgress()) EXPECT_EQ(p.outstanding, 0u) << p.profile_id;
  }
}

TEST(EngineAllocations, SteadyStateIngestAllocatesNothing) {
  SteadyStateIngestAllocatesNothing(false);
}

TEST(EngineAllocations, SteadyStateLoggedIngestAndSettleAllocateNothing) {
  SteadyStateIngestAllocatesNothing(true);
}

}  // namespace
}  // namespace herald
