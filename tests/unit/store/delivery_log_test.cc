// DeliveryLog in process: a real engine, notifications consumed by Poll and settled by hand, so
// each profile's progress is exactly what the test says.
#include "engine/store/delivery_log.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace herald::store {
namespace {

using test_support::TempDir;

std::unique_ptr<Engine> MakeEngine(const std::vector<std::string>& profiles,
                                   size_t queue_max = 100'000) {
  auto engine = Engine::Create({.catalog_path = "configs/catalog.json",
                                .fanout = Fanout::kAll,
                                .queue_max_notifications = queue_max});
  EXPECT_TRUE(engine.ok()) << engine.status();
  for (const auto& id : profiles) {
    NotificationProfile p;
    p.profile_id = id;
    p.webhook.notify_url = "https://example.com/" + id;
    EXPECT_TRUE((*engine)->CreateProfile(p).ok());
    Subscription s;
    s.subscription_id = "sms-" + id;
    s.channel = "SMS";
    s.profile_id = id;
    EXPECT_TRUE((*engine)->CreateSubscription(s).ok());
  }
  (*engine)->FlushIndex();
  return *std::move(engine);
}

std::unique_ptr<DeliveryLog> OpenLog(const std::string& dir, Engine& engine) {
  auto log = DeliveryLog::Open({.data_dir = dir,
                                .durability = Spool::Durability::kNone,
                                .segment_bytes = 2048,
                                .cursor_interval = std::chrono::milliseconds(10),
                                .reoffer_queue_limit = 5},
                               engine);
  EXPECT_TRUE(log.ok()) << log.status();
  return *std::move(log);
}

std::string Event(int i) {
  return R"({"channel":"SMS","event":"DELIVERY","eventId":"e)" + std::to_string(i) +
         R"(","payload":{"i":)" + std::to_string(i) + "}}";
}

std::vector<std::string> Ids(Engine& engine, const std::string& profile,
                             std::vector<Notification>* keep = nullptr) {
  std::vector<Notification> out;
  EXPECT_TRUE(engine.Poll(profile, 100000, &out).ok());
  std::vector<std::string> ids;
  for (const auto& n : out) ids.emplace_back(n.webhook_id());
  if (keep) *keep = std::move(out);
  return ids;
}

TEST(DeliveryLog, ReplaysPerProfileWhatEachHadNotFinishedAndRetainsBehindTheSlowest) {
  TempDir dir;
  {
    auto engine = MakeEngine({"a", "b"});
    auto log = OpenLog(dir.path(), *engine);
    ASSERT_TRUE(log->Replay().ok());
    log->Start();
    for (int i = 0; i < 100; ++i) {
      auto r = log->Ingest(Event(i), InputFormat::kSingle, nullptr);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->notifications, 2u);
    }
    std::vector<Notification> a, b;
    Ids(*engine, "a", &a);
    Ids(*engine, "b", &b);
    ASSERT_EQ(a.size(), 100u);
    ASSERT_EQ(b.size(), 100u);
    for (auto& n : a) n.Settle();
    // b finishes all but events 40..59, and those are still outstanding at the crash.
    for (int i = 0; i < 100; ++i) {
      if (i < 40 || i >= 60) b[i].Settle();
    }
    log->Stop();  // the last checkpoint
    const auto stats = log->stats();
    EXPECT_EQ(stats.slowest_cursor, 41u);  // event 40 is record 41
    EXPECT_GT(stats.first_seq, 1u);        // segments before it are gone
    EXPECT_LE(stats.first_seq, 41u);
    EXPECT_GE(stats.cursor_writes, 1u);
  }
  // Restarted, with a profile created since: it had nothing routed before, so gets nothing.
  auto engine = MakeEngine({"a", "b", "c"});
  auto log = OpenLog(dir.path(), *engine);
  ASSERT_TRUE(log->Replay().ok());
  EXPECT_TRUE(Ids(*engine, "a").empty());
  EXPECT_TRUE(Ids(*engine, "c").empty());
  const auto b = Ids(*engine, "b");
  // Only what it had not settled: 60..99 completed ahead of its cursor and are not sent again.
  ASSERT_EQ(b.size(), 20u);
  EXPECT_EQ(b.front(), "e40");
  EXPECT_EQ(b.back(), "e59");
  EXPECT_EQ(log->stats().replayed, 60u);  // records from the oldest cursor on were read
  // New records follow the old ones.
  auto r = log->Ingest(Event(100), InputFormat::kSingle, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(log->stats().next_seq, 102u);
}

TEST(DeliveryLog, WithoutCursorsEverythingKeptIsReplayed) {
  for (const bool damaged : {false, true}) {
    TempDir dir;
    {
      auto engine = MakeEngine({"a"});
      auto log = OpenLog(dir.path(), *engine);
      for (int i = 0; i < 10; ++i)
        ASSERT_TRUE(log->Ingest(Event(i), InputFormat::kSingle, nullptr).ok());
      std::vector<Notification> a;
      Ids(*engine, "a", &a);
      for (auto& n : a) n.Settle();
      log->Stop();
    }
    if (damaged) {
      std::ofstream(dir.path() + "/cursors") << "0badc0de cursor 11 a\n";
    } else {
      std::filesystem::remove(dir.path() + "/cursors");
    }
    auto engine = MakeEngine({"a"});
    auto log = OpenLog(dir.path(), *engine);
    ASSERT_TRUE(log->Replay().ok());
    EXPECT_EQ(Ids(*engine, "a").size(), 10u) << damaged;  // duplicates, never a loss
  }
}

TEST(DeliveryLog, NativePayloadsAndNdjsonReplayAsTheyWereIngested) {
  TempDir dir;
  std::vector<std::string> first;
  {
    auto engine = MakeEngine({"a"});
    auto log = OpenLog(dir.path(), *engine);
    ASSERT_TRUE(
        log->IngestNative("SMS", "DELIVERY", R"({"results":[{"x":1},{"x":2}]})", nullptr).ok());
    ASSERT_TRUE(log->Ingest(Event(1) + "\n" + Event(2) + "\n", InputFormat::kNdjson, nullptr).ok());
    first = Ids(*engine, "a");  // polled, never settled
    ASSERT_EQ(first.size(), 4u);
    log->Stop();
  }
  auto engine = MakeEngine({"a"});
  auto log = OpenLog(dir.path(), *engine);
  ASSERT_TRUE(log->Replay().ok());
  EXPECT_EQ(Ids(*engine, "a"), first);  // the same notifications, the same (generated) ids
}

// A first run of heraldd on `dir`: events 0..n-1 for `profiles`, settled or not, then a stop.
void FirstRun(const std::string& dir, const std::vector<std::string>& profiles, int n,
              bool settle) {
  auto engine = MakeEngine(profiles);
  auto log = OpenLog(dir, *engine);
  ASSERT_TRUE(log->Replay().ok());
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(log->Ingest(Event(i), InputFormat::kSingle, nullptr).ok());
  }
  if (settle) {
    for (const auto& p : profiles) {
      std::vector<Notification> got;
      Ids(*engine, p, &got);
      for (auto& note : got) note.Settle();
    }
  }
  log->Stop();
}

TEST(DeliveryLog, NoCheckpointBeforeTheReplaySoUnreplayedRecordsAreNotPassed) {
  TempDir dir;
  FirstRun(dir.path(), {"a"}, 10, /*settle=*/false);
  {
    // Started, then stopped without replaying (say the replay failed): nothing is tracked, so a
    // checkpoint now would mark every record done.
    auto engine = MakeEngine({"a"});
    auto log = OpenLog(dir.path(), *engine);
    log->Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log->Stop();
    EXPECT_EQ(log->stats().cursor_writes, 0u);
  }
  auto engine = MakeEngine({"a"});
  auto log = OpenLog(dir.path(), *engine);
  ASSERT_TRUE(log->Replay().ok());
  EXPECT_EQ(Ids(*engine, "a").size(), 10u);
}

TEST(DeliveryLog, CursorsAheadOfALostSpoolDoNotSkipReusedSequences) {
  TempDir dir;
  FirstRun(dir.path(), {"a"}, 10, /*settle=*/true);  // cursors at record 11
  // The machine lost the spool's unsynced tail (here: all of it).
  std::filesystem::remove_all(dir.path() + "/spool");
  auto engine = MakeEngine({"a"});
  auto log = OpenLog(dir.path(), *engine);
  ASSERT_TRUE(log->Replay().ok());
  auto r = log->Ingest(Event(50), InputFormat::kSingle, nullptr);  // record 1 again
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->notifications, 1u);
  EXPECT_EQ(Ids(*engine, "a"), std::vector<std::string>{"e50"});
}

TEST(DeliveryLog, RecordsAFullQueueRefusedInTheReplayAreOfferedAgainAsItDrains) {
  TempDir dir;
  // Nothing settled: everything is owed to everyone.
  FirstRun(dir.path(), {"a", "b", "c"}, 100, /*settle=*/false);
  {
    // Queues of 10: a and b are drained as a receiver would; c's receiver is down.
    auto engine = MakeEngine({"a", "b", "c"}, 10);
    auto log = OpenLog(dir.path(), *engine);
    ASSERT_TRUE(log->Replay().ok());  // does not wait for room
    EXPECT_GT(log->stats().waiting_for_room, 0u);
    log->Start();
    std::map<std::string, std::vector<std::string>> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((got["a"].size() < 100 || got["b"].size() < 100) &&
           std::chrono::steady_clock::now() < deadline) {
      for (const char* p : {"a", "b"}) {
        std::vector<Notification> batch;
        (void)engine->Poll(p, 100, &batch);
        for (auto& n : batch) {
          got[p].emplace_back(n.webhook_id());
          n.Settle();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (const char* p : {"a", "b"}) {
      // Every record, once: refused ones were offered again to this profile alone.
      ASSERT_EQ(got[p].size(), 100u) << p;
      EXPECT_EQ(std::set<std::string>(got[p].begin(), got[p].end()).size(), 100u) << p;
    }
    EXPECT_GT(log->stats().waiting_for_room, 0u);  // c's are still waiting
    log->Stop();
    EXPECT_EQ(Ids(*engine, "c").size(), 10u);  // what its queue held, never settled
  }
  // Next start: c gets all 100 (the 10 it never settled and the 90 its queue refused).
  auto engine = MakeEngine({"a", "b", "c"});
  auto log = OpenLog(dir.path(), *engine);
  ASSERT_TRUE(log->Replay().ok());
  EXPECT_TRUE(Ids(*engine, "a").empty());
  EXPECT_TRUE(Ids(*engine, "b").empty());
  const auto c = Ids(*engine, "c");
  EXPECT_EQ(std::set<std::string>(c.begin(), c.end()).size(), 100u);
  EXPECT_EQ(log->stats().waiting_for_room, 0u);
}

TEST(DeliveryLog, ADeletedProfilesWaitingRecordsGoWithIt) {
  TempDir dir;
  FirstRun(dir.path(), {"c"}, 30, /*settle=*/false);
  auto engine = MakeEngine({"c"}, 10);
  auto log = OpenLog(dir.path(), *engine);
  ASSERT_TRUE(log->Replay().ok());
  EXPECT_EQ(log->stats().waiting_for_room, 20u);  // its queue took 10
  log->Start();
  ASSERT_TRUE(engine->DeleteSubscription("sms-c").ok());
  ASSERT_TRUE(engine->DeleteProfile("c").ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (log->stats().waiting_for_room > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(log->stats().waiting_for_room, 0u);
  log->Stop();
}

// A profile ordered by key takes nothing newer while records its full queue refused wait in the
// spool, so none overtakes them; an unordered one takes what fits at once.
TEST(DeliveryLog, AnOrderedProfileTakesNothingNewerWhileItsRefusedRecordsWait) {
  TempDir dir;
  auto engine = MakeEngine({"plain"}, 3);
  NotificationProfile ordered;
  ordered.profile_id = "ordered";
  ordered.webhook.notify_url = "https://example.com/ordered";
  ordered.ordering = "KEY";
  ASSERT_TRUE(engine->CreateProfile(ordered).ok());
  Subscription s;
  s.subscription_id = "sms-ordered";
  s.channel = "SMS";
  s.profile_id = "ordered";
  ASSERT_TRUE(engine->CreateSubscription(s).ok());
  engine->FlushIndex();
  auto log = OpenLog(dir.path(), *engine);
  ASSERT_TRUE(log->Replay().ok());
  for (int i = 1; i <= 5; ++i)
    ASSERT_TRUE(log->Ingest(Event(i), InputFormat::kSingle, nullptr).ok());
  EXPECT_EQ(log->stats().waiting_for_room, 4u);  // e4 and e5, for each profile
  std::vector<Notification> held;
  EXPECT_EQ(Ids(*engine, "plain", &held), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(Ids(*engine, "ordered", &held), (std::vector<std::string>{"e1", "e2", "e3"}));
  // Both queues are empty now; e6 comes before any re-offer.
  ASSERT_TRUE(log->Ingest(Event(6), InputFormat::kSingle, nullptr).ok());
  EXPECT_EQ(Ids(*engine, "plain", &held), (std::vector<std::string>{"e6"}));
  EXPECT_TRUE(Ids(*engine, "ordered", &held).empty());
  log->Start();
  std::map<std::string, std::vector<std::string>> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((got["plain"].size() < 2 || got["ordered"].size() < 3) &&
         std::chrono::steady_clock::now() < deadline) {
    for (const char* p : {"plain", "ordered"}) {
      for (auto& id : Ids(*engine, p, &held)) got[p].push_back(id);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(got["plain"], (std::vector<std::string>{"e4", "e5"}));
  EXPECT_EQ(got["ordered"], (std::vector<std::string>{"e4", "e5", "e6"}));
  // Once they are in, new records go straight to the queue again.
  EXPECT_EQ(log->stats().waiting_for_room, 0u);
  ASSERT_TRUE(log->Ingest(Event(7), InputFormat::kSingle, nullptr).ok());
  EXPECT_EQ(Ids(*engine, "ordered", &held), (std::vector<std::string>{"e7"}));
  log->Stop();
}

}  // namespace
}  // namespace herald::store
