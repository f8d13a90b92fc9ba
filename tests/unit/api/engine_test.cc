// herald::Engine through its public API only, as an embedder uses it.
#include "herald/engine.h"

#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "gtest/gtest.h"

namespace herald {
namespace {

std::unique_ptr<Engine> MakeEngine(EngineOptions options = {}) {
  options.catalog_path = "configs/catalog.json";
  auto engine = Engine::Create(std::move(options));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return *std::move(engine);
}

NotificationProfile Profile(const std::string& id) {
  NotificationProfile p;
  p.profile_id = id;
  p.webhook.notify_url = "https://example.com/hooks/" + id;
  return p;
}

Subscription Sub(const std::string& id, const std::string& channel, std::vector<std::string> events,
                 const std::string& profile) {
  Subscription s;
  s.subscription_id = id;
  s.channel = channel;
  s.events = std::move(events);
  s.profile_id = profile;
  return s;
}

std::vector<Notification> Drain(Engine& engine, const std::string& profile) {
  std::vector<Notification> out;
  auto n = engine.Poll(profile, 10000, &out);
  EXPECT_TRUE(n.ok()) << n.status();
  return out;
}

TEST(Engine, CreateRequiresACatalog) {
  auto engine = Engine::Create({});
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  auto missing = Engine::Create({.catalog_path = "/nonexistent/catalog.json"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/catalog.json"), std::string::npos);
}

TEST(Engine, ControlPlaneStatusCodes) {
  auto engine = MakeEngine();
  SecuritySetting sec;
  sec.auth_id = "sec1";
  sec.type = SecurityType::kHmac;
  sec.secret_key = "k";
  ASSERT_TRUE(engine->CreateSecurity(sec).ok());
  EXPECT_EQ(engine->CreateSecurity(sec).code(), absl::StatusCode::kAlreadyExists);

  NotificationProfile p = Profile("p1");
  p.auth_id = "missing";
  absl::Status bad = engine->CreateProfile(p);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidationErrorsOf(bad).count("security.authId"), 1u);
  p.auth_id = "sec1";
  ASSERT_TRUE(engine->CreateProfile(p).ok());
  EXPECT_EQ(engine->CreateProfile(p).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine->DeleteSecurity("sec1").code(), absl::StatusCode::kFailedPrecondition);

  Subscription s = Sub("s1", "SMS", {"DELIVERY", "NOPE"}, "p1");
  absl::Status invalid = engine->CreateSubscription(s);
  ASSERT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidationErrorsOf(invalid).count("events"), 1u);
  s.events = {"DELIVERY"};
  s.profile_id = "nobody";
  EXPECT_EQ(ValidationErrorsOf(engine->CreateSubscription(s)).count("profile.profileId"), 1u);
  s.profile_id = "p1";
  ASSERT_TRUE(engine->CreateSubscription(s).ok());
  EXPECT_EQ(engine->CreateSubscription(s).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine->DeleteProfile("p1").code(), absl::StatusCode::kFailedPrecondition);

  // Aliases are accepted and stored canonically.
  ASSERT_TRUE(engine->CreateSubscription(Sub("s2", "KAKAO_BRAND_MESSAGE", {"CLICK"}, "p1")).ok());
  EXPECT_EQ(engine->GetSubscription("s2")->channel, "KAKAO_CHINGU");

  EXPECT_EQ(engine->GetSubscription("zzz").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine->UpdateSubscription(Sub("zzz", "SMS", {}, "p1")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(engine->DeleteSubscription("zzz").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine->subscription_count(), 2u);

  ASSERT_TRUE(engine->DeleteSubscription("s1").ok());
  ASSERT_TRUE(engine->DeleteSubscription("s2").ok());
  ASSERT_TRUE(engine->DeleteProfile("p1").ok());
  ASSERT_TRUE(engine->DeleteSecurity("sec1").ok());
  EXPECT_EQ(engine->GetProfile("p1").status().code(), absl::StatusCode::kNotFound);
}

TEST(Engine, RoutesAnEventToItsProfileWithPayloadVerbatim) {
  auto engine = MakeEngine();
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  Subscription s = Sub("s1", "SMS", {"DELIVERY"}, "p1");
  s.criteria = {Criterion{"a1", std::nullopt}};
  ASSERT_TRUE(engine->CreateSubscription(s).ok());
  engine->FlushIndex();

  const std::string payload = R"({"results":[{"messageId":"m1","status":{"id":5}}]})";
  const std::string event = R"({"channel":"SMS","event":"DELIVERY","eventId":"e-1",)"
                            R"("applicationId":"a1","payload": )" +
                            payload + " }";
  IngestResult r = engine->Ingest(event);
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_EQ(r.matched, 1u);
  EXPECT_EQ(r.notifications, 1u);
  auto got = Drain(*engine, "p1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload(), payload);
  EXPECT_EQ(got[0].webhook_id(), "e-1");
  EXPECT_EQ(got[0].subscription_id(), "s1");
  EXPECT_EQ(got[0].profile_id(), "p1");
  EXPECT_EQ(got[0].channel(), "SMS");
  EXPECT_EQ(got[0].event(), "DELIVERY");

  // Another application does not match; the event is accepted but unmatched.
  r = engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","applicationId":"a2","payload":{}})");
  EXPECT_EQ(r.accepted, 1u);
  EXPECT_EQ(r.matched, 0u);
  EXPECT_TRUE(Drain(*engine, "p1").empty());
  const Counters c = engine->counters();
  EXPECT_EQ(c.accepted, 2u);
  EXPECT_EQ(c.matched, 1u);
  EXPECT_EQ(c.unmatched, 1u);
  EXPECT_EQ(c.enqueued, 1u);
}

TEST(Engine, GeneratesStableDistinctIdsWhenEventIdIsAbsent) {
  auto engine = MakeEngine({.fanout = Fanout::kAll});
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  ASSERT_TRUE(engine->CreateProfile(Profile("p2")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s1", "EMAIL", {}, "p1")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s2", "EMAIL", {"OPEN"}, "p2")).ok());
  engine->FlushIndex();
  engine->Ingest(R"({"channel":"EMAIL","event":"OPEN","payload":{"n":1}})");
  engine->Ingest(R"({"channel":"EMAIL","event":"OPEN","payload":{"n":2}})");
  auto a = Drain(*engine, "p1");
  auto b = Drain(*engine, "p2");
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  // The same event carries the same id to every profile; different events differ.
  EXPECT_EQ(a[0].webhook_id(), b[0].webhook_id());
  EXPECT_NE(a[0].webhook_id(), a[1].webhook_id());
  EXPECT_EQ(a[0].webhook_id().substr(0, 4), "evt-");
  // Fan-out shares one payload buffer: both views point at the same bytes.
  EXPECT_EQ(a[0].payload().data(), b[0].payload().data());
}

uint64_t OldestUnsettled(const Engine& engine, const std::string& profile) {
  for (const auto& p : engine.DeliveryProgress()) {
    if (p.profile_id == profile) return p.oldest_unsettled;
  }
  ADD_FAILURE() << "no progress for " << profile;
  return 0;
}

TEST(Engine, DeliveryProgressFollowsOutOfOrderSettlementPerProfile) {
  auto engine = MakeEngine({.fanout = Fanout::kAll});
  ASSERT_TRUE(engine->CreateProfile(Profile("fast")).ok());
  ASSERT_TRUE(engine->CreateProfile(Profile("slow")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s1", "SMS", {}, "fast")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s2", "SMS", {}, "slow")).ok());
  engine->FlushIndex();
  EXPECT_EQ(OldestUnsettled(*engine, "fast"), UINT64_MAX);

  // Inputs 10, 11 (two events) and 12; unlogged input (sequence 0) is not tracked.
  engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{"n":10}})", InputFormat::kAuto,
                 nullptr, 10);
  engine->Ingest(
      "{\"channel\":\"SMS\",\"event\":\"DELIVERY\",\"payload\":{\"n\":11}}\n"
      "{\"channel\":\"SMS\",\"event\":\"DELIVERY\",\"payload\":{\"n\":11}}\n",
      InputFormat::kNdjson, nullptr, 11);
  engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{"n":12}})", InputFormat::kAuto,
                 nullptr, 12);
  engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{"n":0}})");
  auto fast = Drain(*engine, "fast");
  auto slow = Drain(*engine, "slow");
  ASSERT_EQ(fast.size(), 5u);
  ASSERT_EQ(slow.size(), 5u);
  // Queued counts as outstanding: nothing is done yet.
  EXPECT_EQ(OldestUnsettled(*engine, "fast"), 10u);
  EXPECT_EQ(fast[0].sequence(), 10u);
  EXPECT_EQ(fast[4].sequence(), 0u);

  // Out of order: 12 and one of 11's two first; 10 still holds the profile back.
  fast[3].Settle();
  fast[1].Settle();
  EXPECT_TRUE(fast[1].empty());
  EXPECT_EQ(OldestUnsettled(*engine, "fast"), 10u);
  for (const auto& p : engine->DeliveryProgress(10)) {
    if (p.profile_id != "fast") continue;
    EXPECT_EQ(p.unsettled, (std::vector<uint64_t>{10, 11}));  // 12 completed ahead of them
    EXPECT_TRUE(p.listed_all);
    EXPECT_EQ(p.outstanding, 2u);
  }
  for (const auto& p : engine->DeliveryProgress(1)) {
    if (p.profile_id == "fast") {
      EXPECT_FALSE(p.listed_all);
    }
  }
  fast[0].Settle();
  EXPECT_EQ(OldestUnsettled(*engine, "fast"), 11u);
  fast[2].Settle();
  EXPECT_EQ(OldestUnsettled(*engine, "fast"), UINT64_MAX);
  fast[4].Settle();  // untracked: no effect
  // Released without Settle (a crash, a stop): still outstanding, so a log would replay it.
  slow[1].Reset();
  EXPECT_EQ(OldestUnsettled(*engine, "slow"), 10u);
  slow[0].Settle();
  EXPECT_EQ(OldestUnsettled(*engine, "slow"), 11u);
}

// Profiles a and b, each subscribed to every SMS event, fanout kAll.
std::unique_ptr<Engine> BothProfilesOnSms() {
  auto engine = MakeEngine({.fanout = Fanout::kAll});
  EXPECT_TRUE(engine->CreateProfile(Profile("a")).ok());
  EXPECT_TRUE(engine->CreateProfile(Profile("b")).ok());
  EXPECT_TRUE(engine->CreateSubscription(Sub("s1", "SMS", {}, "a")).ok());
  EXPECT_TRUE(engine->CreateSubscription(Sub("s2", "SMS", {}, "b")).ok());
  engine->FlushIndex();
  return engine;
}

TEST(Engine, ReplayPlanSkipsWhatAProfileHadDoneAndIdsRepeat) {
  auto engine = BothProfilesOnSms();
  const std::string event = R"({"channel":"SMS","event":"DELIVERY","payload":{}})";
  engine->Ingest(event, InputFormat::kAuto, nullptr, 7);
  auto first = Drain(*engine, "a");
  ASSERT_EQ(first.size(), 1u);
  const std::string id(first[0].webhook_id());
  Drain(*engine, "b");

  ASSERT_TRUE(engine->SetReplayPlan("a", {.floor = 8, .upto = 8}).ok());
  EXPECT_EQ(engine->SetReplayPlan("nope", {}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine->SetReplayPlan("b", {.floor = 1, .upto = 9, .only = {7, 3}}).code(),
            absl::StatusCode::kInvalidArgument);
  // The same input replayed: `a` had finished it, `b` gets it again with the same generated id.
  const IngestResult r = engine->Ingest(event, InputFormat::kAuto, nullptr, 7);
  EXPECT_EQ(r.notifications, 1u);
  EXPECT_TRUE(Drain(*engine, "a").empty());
  auto again = Drain(*engine, "b");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].webhook_id(), id);
  // Later inputs reach `a` again.
  engine->Ingest(event, InputFormat::kAuto, nullptr, 8);
  EXPECT_EQ(Drain(*engine, "a").size(), 1u);
  Drain(*engine, "b");

  // Between floor and upto only the listed inputs: `b` had finished 5 but not 6.
  ASSERT_TRUE(engine->SetReplayPlan("b", {.floor = 4, .upto = 7, .only = {6}}).ok());
  for (uint64_t seq : {3, 5, 6, 7}) engine->Ingest(event, InputFormat::kAuto, nullptr, seq);
  auto replayed = Drain(*engine, "b");
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_EQ(replayed[0].sequence(), 6u);
  EXPECT_EQ(replayed[1].sequence(), 7u);
}

TEST(Engine, AnInputOfferedAgainToOneProfileReachesOnlyThatProfile) {
  auto engine = BothProfilesOnSms();
  const std::string event = R"({"channel":"SMS","event":"DELIVERY","payload":{}})";
  engine->Ingest(event, InputFormat::kAuto, nullptr, 9);
  auto first = Drain(*engine, "a");
  ASSERT_EQ(first.size(), 1u);
  const std::string id(first[0].webhook_id());
  Drain(*engine, "b");
  EXPECT_EQ(engine->Ingest(event, InputFormat::kAuto, nullptr, {9, "b"}).notifications, 1u);
  EXPECT_TRUE(Drain(*engine, "a").empty());
  auto b = Drain(*engine, "b");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].webhook_id(), id);  // the same id as the first time
  EXPECT_EQ(engine->Ingest(event, InputFormat::kAuto, nullptr, {9, "nope"}).notifications, 0u);
  EXPECT_EQ(engine->IngestNative("SMS", "DELIVERY", R"({"results":[{}]})", nullptr, {10, "a"})
                .notifications,
            1u);
  EXPECT_TRUE(Drain(*engine, "b").empty());
}

TEST(Engine, DeletingAProfileForgetsItsOutstandingNotifications) {
  auto engine = MakeEngine();
  ASSERT_TRUE(engine->CreateProfile(Profile("p")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s", "SMS", {}, "p")).ok());
  engine->FlushIndex();
  engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{}})", InputFormat::kAuto,
                 nullptr, 3);
  auto old = Drain(*engine, "p");
  ASSERT_EQ(old.size(), 1u);
  ASSERT_TRUE(engine->DeleteSubscription("s").ok());
  ASSERT_TRUE(engine->DeleteProfile("p").ok());
  ASSERT_TRUE(engine->CreateProfile(Profile("p")).ok());
  EXPECT_EQ(OldestUnsettled(*engine, "p"), UINT64_MAX);
  ASSERT_TRUE(engine->CreateSubscription(Sub("s", "SMS", {}, "p")).ok());
  engine->FlushIndex();
  engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{}})", InputFormat::kAuto,
                 nullptr, 3);
  auto fresh = Drain(*engine, "p");
  ASSERT_EQ(fresh.size(), 1u);
  old[0].Settle();  // a stale completion must not settle the new incarnation's notification
  EXPECT_EQ(OldestUnsettled(*engine, "p"), 3u);
  fresh[0].Settle();
  EXPECT_EQ(OldestUnsettled(*engine, "p"), UINT64_MAX);
}

TEST(Engine, IngestsInPlaceFromAnIngestBuffer) {
  auto engine = MakeEngine();
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s1", "SMS", {}, "p1")).ok());
  engine->FlushIndex();
  const std::string event = R"({"channel":"SMS","event":"CLICK","payload":{"url":"https://x"}})";
  IngestBuffer buffer = engine->NewIngestBuffer(event.size());
  ASSERT_GE(buffer.capacity(), event.size());
  std::memcpy(buffer.data(), event.data(), event.size());
  const char* base = buffer.data();
  EXPECT_EQ(engine->Ingest(std::move(buffer), event.size()).notifications, 1u);
  EXPECT_FALSE(buffer) << "the engine took the buffer";
  auto got = Drain(*engine, "p1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload(), R"({"url":"https://x"})");
  // No copy: the payload is a slice of the very buffer that was filled.
  EXPECT_GE(got[0].payload().data(), base);
  EXPECT_LT(got[0].payload().data(), base + event.size());
}

TEST(Engine, ASmallEventOfALargeInputDoesNotKeepTheInputAlive) {
  // One matching event among 1 MB of others: a slow profile holding it must not hold the whole
  // body, so its notification gets its own copy; both profiles of the event share that copy.
  auto engine = MakeEngine();
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  ASSERT_TRUE(engine->CreateProfile(Profile("p2")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s1", "SMS", {"DELIVERY"}, "p1")).ok());
  Subscription audit = Sub("s2", "SMS", {"DELIVERY"}, "p2");
  audit.group = "audit";  // a group of its own: both subscriptions win
  ASSERT_TRUE(engine->CreateSubscription(audit).ok());
  engine->FlushIndex();
  std::string body =
      R"({"channel":"SMS","event":"DELIVERY","eventId":"wanted-1","payload":{"n":1}})"
      "\n";
  while (body.size() < (1u << 20))
    body += R"({"channel":"SMS","event":"CLICK","payload":{}})"
            "\n";
  IngestBuffer buffer = engine->NewIngestBuffer(body.size());
  std::memcpy(buffer.data(), body.data(), body.size());
  const char* base = buffer.data();
  const char* end = base + buffer.capacity();
  const IngestResult r =
      engine->Ingest(std::move(buffer), body.size(), InputFormat::kAuto, nullptr, 7);
  EXPECT_EQ(r.notifications, 2u);
  auto one = Drain(*engine, "p1");
  auto two = Drain(*engine, "p2");
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(two.size(), 1u);
  EXPECT_EQ(one[0].payload(), R"({"n":1})");
  EXPECT_EQ(one[0].webhook_id(), "wanted-1");
  EXPECT_EQ(one[0].sequence(), 7u) << "the copy keeps the input's log position";
  EXPECT_TRUE(one[0].payload().data() < base || one[0].payload().data() >= end)
      << "the notification still points into the 1 MB input";
  EXPECT_TRUE(one[0].webhook_id().data() < base || one[0].webhook_id().data() >= end);
  EXPECT_EQ(one[0].payload().data(), two[0].payload().data()) << "one copy per event";
  one[0].Settle();
  two[0].Settle();
  for (const auto& p : engine->DeliveryProgress()) EXPECT_EQ(p.outstanding, 0u) << p.profile_id;
}

TEST(Engine, GroupWinnerVersusFanoutAll) {
  for (Fanout fanout : {Fanout::kGroupWinner, Fanout::kAll}) {
    auto engine = MakeEngine({.fanout = fanout});
    for (auto id : {"general", "specific", "other"}) {
      ASSERT_TRUE(engine->CreateProfile(Profile(id)).ok());
    }
    ASSERT_TRUE(engine->CreateSubscription(Sub("g", "WHATSAPP", {}, "general")).ok());
    Subscription specific = Sub("s", "WHATSAPP", {"INBOUND_MESSAGE"}, "specific");
    specific.resources = {"447700900000"};
    ASSERT_TRUE(engine->CreateSubscription(specific).ok());
    Subscription grouped = Sub("o", "WHATSAPP", {}, "other");
    grouped.group = "analytics";
    ASSERT_TRUE(engine->CreateSubscription(grouped).ok());
    engine->FlushIndex();
    engine->Ingest(R"({"channel":"WHATSAPP","event":"INBOUND_MESSAGE","resource":"447700900000",)"
                   R"("payload":{}})");
    const size_t general = Drain(*engine, "general").size();
    const size_t spec = Drain(*engine, "specific").size();
    const size_t other = Drain(*engine, "other").size();
    if (fanout == Fanout::kGroupWinner) {
      EXPECT_EQ(general, 0u) << "the most specific subscription of the group wins";
      EXPECT_EQ(spec, 1u);
      EXPECT_EQ(other, 1u) << "each group gets its own notification";
    } else {
      EXPECT_EQ(general + spec + other, 3u);
    }
  }
}

TEST(Engine, NdjsonRoutesGoodLinesAndReportsBadOnesByNumber) {
  auto engine = MakeEngine();
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s1", "SMS", {}, "p1")).ok());
  engine->FlushIndex();
  const std::string input =
      "{\"channel\":\"SMS\",\"event\":\"DELIVERY\",\"payload\":{\"i\":1}}\n"
      "{\"channel\":\"SMS\",\"event\":\"DELIVERY\",\"payload\":{\"i\":2}\n"  // truncated
      "\n"
      "{\"channel\":\"SMX\",\"event\":\"DELIVERY\",\"payload\":{}}\r\n"
      "{\"channel\":\"SMS\",\"event\":\"OPEN\",\"payload\":{}}\n"
      "{\"channel\":\"SMS\",\"event\":\"CLICK\",\"payload\":{\"i\":3}}\n";
  std::vector<IngestError> errors;
  IngestResult r = engine->Ingest(input, InputFormat::kAuto, &errors);
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.rejected, 3u);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].line, 2u);
  EXPECT_EQ(errors[0].reason, RejectReason::kMalformedJson);
  EXPECT_EQ(errors[1].line, 4u);
  EXPECT_EQ(errors[1].reason, RejectReason::kUnknownChannel);
  EXPECT_NE(errors[1].message.find("SMX"), std::string::npos);
  EXPECT_EQ(errors[2].line, 5u);
  EXPECT_EQ(errors[2].reason, RejectReason::kUnknownEvent);
  auto got = Drain(*engine, "p1");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload(), R"({"i":1})");
  EXPECT_EQ(got[1].payload(), R"({"i":3})");
  const Counters c = engine->counters();
  EXPECT_EQ(c.rejected, 3u);
  EXPECT_EQ(c.rejected_by_reason[static_cast<int>(RejectReason::kUnknownChannel)], 1u);
  EXPECT_EQ(c.rejected_by_reason[static_cast<int>(RejectReason::kUnknownEvent)], 1u);
}

TEST(Engine, OversizeEventsAreRejectedNotFatal) {
  auto engine = MakeEngine({.max_event_bytes = 128});
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s1", "SMS", {}, "p1")).ok());
  engine->FlushIndex();
  std::vector<IngestError> errors;
  const std::string big =
      R"({"channel":"SMS","event":"DELIVERY","payload":{"x":")" + std::string(200, 'x') + "\"}}";
  EXPECT_EQ(engine->Ingest(big, InputFormat::kSingle, &errors).rejected, 1u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].reason, RejectReason::kOversize);
  EXPECT_EQ(engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{}})").accepted, 1u);
}

TEST(Engine, FullQueueAppliesBackPressureAndCountsIt) {
  auto engine = MakeEngine({.queue_max_notifications = 3});
  ASSERT_TRUE(engine->CreateProfile(Profile("slow")).ok());
  ASSERT_TRUE(engine->CreateProfile(Profile("fast")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("a", "SMS", {}, "slow")).ok());
  Subscription b = Sub("b", "SMS", {}, "fast");
  b.group = "g2";
  ASSERT_TRUE(engine->CreateSubscription(b).ok());
  engine->FlushIndex();
  size_t refused = 0;
  for (int i = 0; i < 5; ++i) {
    IngestResult r = engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{}})");
    refused += r.back_pressured;
    Drain(*engine, "fast");  // the fast consumer keeps up
  }
  EXPECT_EQ(refused, 2u);
  EXPECT_EQ(engine->counters().back_pressured, 2u);
  auto stats = engine->queue_stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[1].profile_id, "slow");
  EXPECT_EQ(stats[1].depth, 3u);
  EXPECT_EQ(stats[1].back_pressured, 2u);
  EXPECT_EQ(Drain(*engine, "slow").size(), 3u);
  // Drained: it accepts again.
  EXPECT_EQ(engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{}})").back_pressured,
            0u);
}

TEST(Engine, ChangesBecomeVisibleWithin100msWithoutFlush) {
  auto engine = MakeEngine();
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  for (int i = 0; i < 10; ++i) {
    const std::string id = "s" + std::to_string(i);
    Subscription s = Sub(id, "VIBER", {"SEEN"}, "p1");
    s.users = {id};
    ASSERT_TRUE(engine->CreateSubscription(s).ok());
    const auto committed = std::chrono::steady_clock::now();
    const std::string event =
        R"({"channel":"VIBER","event":"SEEN","user":")" + id + R"(","payload":{}})";
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() - committed < std::chrono::milliseconds(100)) {
      seen = engine->Ingest(event).matched == 1;
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(seen) << "subscription " << id << " not routable 100 ms after its commit";
    Drain(*engine, "p1");
  }
}

TEST(Engine, UpdatesAndDeletesTakeEffect) {
  auto engine = MakeEngine();
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  ASSERT_TRUE(engine->CreateProfile(Profile("p2")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s1", "LINE", {"DELIVERY"}, "p1")).ok());
  engine->FlushIndex();
  const char* delivery = R"({"channel":"LINE","event":"DELIVERY","payload":{}})";
  const char* inbound = R"({"channel":"LINE","event":"INBOUND_MESSAGE","payload":{}})";
  engine->Ingest(delivery);
  EXPECT_EQ(Drain(*engine, "p1").size(), 1u);
  ASSERT_TRUE(engine->UpdateSubscription(Sub("s1", "LINE", {"INBOUND_MESSAGE"}, "p2")).ok());
  engine->FlushIndex();
  engine->Ingest(delivery);
  engine->Ingest(inbound);
  EXPECT_EQ(Drain(*engine, "p1").size(), 0u);
  EXPECT_EQ(Drain(*engine, "p2").size(), 1u);
  EXPECT_TRUE(engine->DeleteProfile("p1").ok()) << "p1 is no longer referenced";
  ASSERT_TRUE(engine->DeleteSubscription("s1").ok());
  engine->FlushIndex();
  EXPECT_EQ(engine->Ingest(inbound).matched, 0u);
}

// A notification keeps its subscription and payload alive after the subscription is deleted.
TEST(Engine, QueuedNotificationsOutliveTheirSubscription) {
  auto engine = MakeEngine();
  ASSERT_TRUE(engine->CreateProfile(Profile("p1")).ok());
  ASSERT_TRUE(engine->CreateSubscription(Sub("s1", "RCS", {}, "p1")).ok());
  engine->FlushIndex();
  engine->Ingest(R"({"channel":"RCS","event":"SEEN","payload":{"k":"v"}})");
  ASSERT_TRUE(engine->DeleteSubscription("s1").ok());
  engine->FlushIndex();
  auto got = Drain(*engine, "p1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].subscription_id(), "s1");
  EXPECT_EQ(got[0].payload(), R"({"k":"v"})");
}

TEST(Engine, NativePayloadsRouteEachResultByCatalogPointers) {
  auto engine = MakeEngine({.fanout = Fanout::kAll});
  ASSERT_TRUE(engine->CreateProfile(Profile("shop")).ok());
  ASSERT_TRUE(engine->CreateProfile(Profile("vip")).ok());
  Subscription shop = Sub("shop", "SMS", {"DELIVERY"}, "shop");
  shop.criteria = {Criterion{"shop-app", std::nullopt}};
  ASSERT_TRUE(engine->CreateSubscription(shop).ok());
  Subscription vip = Sub("vip", "SMS", {"DELIVERY"}, "vip");
  vip.resources = {"ShopVIP"};
  ASSERT_TRUE(engine->CreateSubscription(vip).ok());
  engine->FlushIndex();
  // An SMS delivery report (platform.md §8a): keys under /platform and /sender.
  const std::string item1 =
      R"({"messageId":"m1","sender":"ShopVIP","platform":{"entityId":"e1","applicationId":"shop-app"}})";
  const std::string item2 =
      R"({"messageId":"m2","sender":"Other","platform":{"applicationId":"nobody"}})";
  const std::string item3 = R"({"messageId":"m3","sender":"ShopVIP"})";
  std::vector<IngestError> errors;
  IngestResult r = engine->IngestNative(
      "SMS", "DELIVERY", R"({"results":[)" + item1 + ", " + item2 + "," + item3 + "]}", &errors);
  EXPECT_EQ(r.accepted, 3u);
  EXPECT_EQ(r.matched, 2u);
  EXPECT_TRUE(errors.empty());
  auto shop_got = Drain(*engine, "shop");
  auto vip_got = Drain(*engine, "vip");
  ASSERT_EQ(shop_got.size(), 1u);
  EXPECT_EQ(shop_got[0].payload(), item1) << "each item is forwarded verbatim";
  ASSERT_EQ(vip_got.size(), 2u);
  EXPECT_EQ(vip_got[1].payload(), item3);

  // A single-object payload (email user events) is one item; keys at the top level.
  ASSERT_TRUE(engine->CreateProfile(Profile("mail")).ok());
  Subscription mail = Sub("mail", "EMAIL", {"OPEN"}, "mail");
  mail.criteria = {Criterion{"news", std::nullopt}};
  ASSERT_TRUE(engine->CreateSubscription(mail).ok());
  engine->FlushIndex();
  const std::string open =
      R"({"notificationType":"OPENED","applicationId":"news","recipient":"a@b.c"})";
  EXPECT_EQ(engine->IngestNative("EMAIL", "OPEN", open).matched, 1u);
  auto mail_got = Drain(*engine, "mail");
  ASSERT_EQ(mail_got.size(), 1u);
  EXPECT_EQ(mail_got[0].payload(), open);

  // Bad input: clear, counted, not fatal.
  errors.clear();
  EXPECT_EQ(engine->IngestNative("SMS", "OPEN", "{}", &errors).rejected, 1u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].reason, RejectReason::kUnknownEvent);
  errors.clear();
  EXPECT_EQ(engine->IngestNative("SMS", "DELIVERY", R"({"results":[{"a":1},,]})", &errors).rejected,
            1u);
  EXPECT_EQ(errors[0].reason, RejectReason::kMalformedJson);
  errors.clear();
  r = engine->IngestNative("SMS", "DELIVERY", R"({"results":[{"sender":"ShopVIP"},7]})", &errors);
  EXPECT_EQ(r.accepted, 1u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 2u) << "the item number";
}

class RecordingSink : public Sink {
 public:
  void Deliver(std::string_view profile_id, std::span<Notification> batch) override {
    std::lock_guard lock(mu_);
    for (auto& n : batch) {
      received_[std::string(profile_id)].push_back(std::string(n.payload()));
    }
  }
  size_t total() {
    std::lock_guard lock(mu_);
    size_t t = 0;
    for (auto& [p, v] : received_) t += v.size();
    return t;
  }
  std::vector<std::string> of(const std::string& p) {
    std::lock_guard lock(mu_);
    return received_[p];
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> received_;
};

TEST(Engine, SinkReceivesEverythingFromConcurrentIngest) {
  RecordingSink sink;
  {
    auto engine = MakeEngine({.sink = &sink, .dispatch_threads = 2});
    for (int p = 0; p < 4; ++p) {
      ASSERT_TRUE(engine->CreateProfile(Profile("p" + std::to_string(p))).ok());
      Subscription s = Sub("s" + std::to_string(p), "SMS", {}, "p" + std::to_string(p));
      s.group = "g" + std::to_string(p);  // every profile gets every event
      ASSERT_TRUE(engine->CreateSubscription(s).ok());
    }
    engine->FlushIndex();
    constexpr int kThreads = 4, kPerThread = 2000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const std::string e = R"({"channel":"SMS","event":"DELIVERY","payload":{"t":)" +
                                std::to_string(t) + ",\"i\":" + std::to_string(i) + "}}";
          ASSERT_EQ(engine->Ingest(e).notifications, 4u);
        }
      });
    }
    for (auto& t : threads) t.join();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (sink.total() < 4u * kThreads * kPerThread &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(sink.total(), 4u * kThreads * kPerThread);
    EXPECT_EQ(engine->counters().accepted, uint64_t{kThreads * kPerThread});
  }
  // Each producer's events arrive in order at each profile.
  std::vector<std::string> p0 = sink.of("p0");
  std::map<int, int> last;
  for (const auto& payload : p0) {
    const int t = payload[5] - '0';
    const int i = std::stoi(payload.substr(payload.find("\"i\":") + 4));
    auto [it, inserted] = last.try_emplace(t, i);
    if (!inserted) {
      EXPECT_GT(i, it->second);
      it->second = i;
    }
  }
}

// Distributed mode's two halves: one instance collects what routing makes, for every profile,
// without queueing or tracking it; the profile's owner queues each as if routed there.
TEST(Engine, CollectedNotificationsEnqueuedElsewhereAreDeliveredAsRouted) {
  auto router = MakeEngine({.fanout = Fanout::kAll});
  auto owner = MakeEngine({.queue_max_notifications = 2});
  for (Engine* e : {router.get(), owner.get()}) {
    ASSERT_TRUE(e->CreateProfile(Profile("a")).ok());
    ASSERT_TRUE(e->CreateProfile(Profile("b")).ok());
  }
  ASSERT_TRUE(router->CreateSubscription(Sub("sa", "SMS", {}, "a")).ok());
  ASSERT_TRUE(router->CreateSubscription(Sub("sb", "SMS", {"DELIVERY"}, "b")).ok());
  router->FlushIndex();

  std::vector<Notification> collected;
  LogPosition pos(7);
  pos.collect = &collected;
  const auto r =
      router->Ingest(R"({"channel":"SMS","event":"DELIVERY","key":"k1","payload":{"n":1}})",
                     InputFormat::kAuto, nullptr, pos);
  EXPECT_EQ(r.accepted, 1u);
  ASSERT_EQ(collected.size(), 2u);
  EXPECT_TRUE(Drain(*router, "a").empty()) << "collected, not queued";
  EXPECT_EQ(OldestUnsettled(*router, "a"), UINT64_MAX) << "nor tracked";
  // Generated ids derive from the log position: routing it again makes the same ones.
  std::vector<Notification> again;
  pos.collect = &again;
  router->Ingest(R"({"channel":"SMS","event":"DELIVERY","key":"k1","payload":{"n":1}})",
                 InputFormat::kAuto, nullptr, pos);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].webhook_id(), collected[0].webhook_id());

  const Notification& n = collected[0];
  const RoutedNotification routed{.profile_id = n.profile_id(),
                                  .subscription_id = n.subscription_id(),
                                  .channel = n.channel(),
                                  .event = n.event(),
                                  .webhook_id = n.webhook_id(),
                                  .key = n.key(),
                                  .payload = n.payload(),
                                  .prior_attempts = 3};
  ASSERT_TRUE(owner->Enqueue(routed, 41).ok());
  EXPECT_EQ(OldestUnsettled(*owner, std::string(n.profile_id())), 41u);
  auto queued = Drain(*owner, std::string(n.profile_id()));
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].payload(), R"({"n":1})");
  EXPECT_EQ(queued[0].webhook_id(), n.webhook_id());
  EXPECT_EQ(queued[0].key(), "k1");
  EXPECT_EQ(queued[0].subscription_id(), n.subscription_id());
  EXPECT_EQ(queued[0].channel(), "SMS");
  EXPECT_EQ(queued[0].event(), "DELIVERY");
  EXPECT_EQ(queued[0].prior_attempts(), 3);
  EXPECT_EQ(queued[0].sequence(), 41u);
  queued[0].Settle();
  EXPECT_EQ(OldestUnsettled(*owner, std::string(n.profile_id())), UINT64_MAX);

  // What cannot be queued says why, and leaves nothing tracked.
  RoutedNotification unknown = routed;
  unknown.profile_id = "nobody";
  EXPECT_TRUE(absl::IsNotFound(owner->Enqueue(unknown, 42)));
  RoutedNotification bad_event = routed;
  bad_event.event = "NOPE";
  EXPECT_TRUE(absl::IsNotFound(owner->Enqueue(bad_event, 42)));
  RoutedNotification no_id = routed;
  no_id.webhook_id = "";
  EXPECT_TRUE(absl::IsInvalidArgument(owner->Enqueue(no_id, 42)));
  ASSERT_TRUE(owner->Enqueue(routed, 50).ok());
  ASSERT_TRUE(owner->Enqueue(routed, 51).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(owner->Enqueue(routed, 52))) << "the queue holds 2";
  for (const auto& p : owner->DeliveryProgress(10)) {
    if (p.profile_id == n.profile_id()) {
      EXPECT_EQ(p.unsettled, (std::vector<uint64_t>{50, 51}));
    }
  }
}

}  // namespace
}  // namespace herald
