#include "engine/jetstream/kv_config_store.h"

#include <mutex>
#include <string>
#include <vector>

#include "engine/store/config_records.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/temp_dir.h"

namespace herald::jetstream {
namespace {

using store::ConfigEntry;
using store::ConfigKind;
using store::ConfigWrite;
using test_support::Eventually;
using test_support::NatsServers;
using test_support::TempDir;

// One heraldd instance's view: its own connection and store.
struct Instance {
  std::mutex mu;
  std::vector<ConfigEntry> seen;  // what Watch reported
  // After what the watcher writes to, so they go first.
  std::unique_ptr<NatsClient> client;
  std::unique_ptr<KvConfigStore> store;

  explicit Instance(const NatsServers& nats, std::string prefix = "herald") {
    NatsOptions o;
    o.urls = {nats.url(0)};
    o.prefix = std::move(prefix);
    auto c = NatsClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    client = *std::move(c);
    auto s = KvConfigStore::Open(*client);
    EXPECT_TRUE(s.ok()) << s.status();
    store = *std::move(s);
    EXPECT_TRUE(store
                    ->Watch(0,
                            [this](const ConfigEntry& e) {
                              std::lock_guard lock(mu);
                              seen.push_back(e);
                            })
                    .ok());
  }
  std::vector<ConfigEntry> Seen() {
    std::lock_guard lock(mu);
    return seen;
  }
};

std::vector<std::string> Ids(const std::vector<ConfigEntry>& entries) {
  std::vector<std::string> ids;
  ids.reserve(entries.size());
  for (const auto& e : entries) ids.push_back(e.id);
  return ids;
}

TEST(KvConfigStore, AChangeThroughOneInstanceReachesTheOtherInRevisionOrder) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats), b(nats);
  auto r1 = a.store->Put(ConfigKind::kProfile, "p1", "{\"v\":1}", 0);
  ASSERT_TRUE(r1.ok()) << r1.status();
  auto r2 = a.store->Put(ConfigKind::kSubscription, "s/1 é", "{\"v\":1,\"x\":1}", 0);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_GT(*r2, *r1);
  // The other instance is told, within a second, in order; the writer is not told its own.
  ASSERT_TRUE(Eventually([&] { return b.Seen().size() == 2; }, std::chrono::milliseconds(1000)));
  const auto seen = b.Seen();
  EXPECT_EQ(Ids(seen), (std::vector<std::string>{"p1", "s/1 é"}));
  EXPECT_EQ(seen[1].revision, *r2);
  EXPECT_EQ(seen[1].value, "{\"v\":1,\"x\":1}");
  EXPECT_TRUE(b.store->NeedsApplying(seen[1]));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(a.Seen().empty());
  EXPECT_EQ(b.store->revision(), *r2);
  ASSERT_TRUE(b.store->Get(ConfigKind::kSubscription, "s/1 é").has_value());

  // A delete reaches it too, and the entry is gone from List and Get.
  ASSERT_TRUE(a.store->Delete(ConfigKind::kProfile, "p1").ok());
  ASSERT_TRUE(Eventually([&] { return b.Seen().size() == 3; }, std::chrono::milliseconds(1000)));
  EXPECT_TRUE(b.Seen()[2].deleted);
  EXPECT_FALSE(b.store->Get(ConfigKind::kProfile, "p1").has_value());
  EXPECT_EQ(Ids(b.store->List()), (std::vector<std::string>{"s/1 é"}));
}

TEST(KvConfigStore, WritesAreCompareAndSetAcrossInstances) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats), b(nats);
  auto created = a.store->Put(ConfigKind::kProfile, "p1", "{}", 0);
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(Eventually([&] { return b.store->Get(ConfigKind::kProfile, "p1").has_value(); }));
  // A second creator, and an update from a revision that is no longer the latest, lose.
  EXPECT_EQ(b.store->Put(ConfigKind::kProfile, "p1", "{}", 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto updated = a.store->Put(ConfigKind::kProfile, "p1", "{\"n\":2}", *created);
  ASSERT_TRUE(updated.ok()) << updated.status();
  auto stale = b.store->Put(ConfigKind::kProfile, "p1", "{\"n\":3}", *created);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition) << stale.status();
  EXPECT_EQ(b.store->Delete(ConfigKind::kProfile, "p1", *created).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Eventually([&] {
    auto e = b.store->Get(ConfigKind::kProfile, "p1");
    return e && e->value == "{\"n\":2}";
  }));
  // With the latest revision the delete goes through, and the id can be created again.
  ASSERT_TRUE(b.store->Delete(ConfigKind::kProfile, "p1", *updated).ok());
  ASSERT_TRUE(Eventually([&] { return !a.store->Get(ConfigKind::kProfile, "p1").has_value(); }));
  EXPECT_TRUE(a.store->Put(ConfigKind::kProfile, "p1", "{}", 0).ok());
}

TEST(KvConfigStore, AFailedChangeUndoesItsFirstWrites) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats), b(nats);
  ASSERT_TRUE(b.store->Put(ConfigKind::kSubscription, "taken", "{}", 0).ok());
  ASSERT_TRUE(
      Eventually([&] { return a.store->Get(ConfigKind::kSubscription, "taken").has_value(); }));
  const std::vector<ConfigWrite> writes = {
      {ConfigKind::kSecurity, "s1", "{}", 0},
      {ConfigKind::kProfile, "p1", "{}", 0},
      {ConfigKind::kSubscription, "taken", "{}", 0},
  };
  EXPECT_EQ(a.store->Commit(writes).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(a.store->Get(ConfigKind::kSecurity, "s1").has_value());
  EXPECT_FALSE(a.store->Get(ConfigKind::kProfile, "p1").has_value());
  ASSERT_TRUE(Eventually([&] { return b.Seen().size() >= 4; }));  // put, put, undo, undo
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(b.store->Get(ConfigKind::kSecurity, "s1").has_value());
  EXPECT_FALSE(b.store->Get(ConfigKind::kProfile, "p1").has_value());
}

TEST(KvConfigStore, ListKeepsCreationOrderAcrossUpdatesAndRestarts) {
  TempDir dir;
  NatsServers nats(dir.path());
  {
    Instance a(nats);
    for (const char* id : {"zeta", "alpha", "mid"}) {
      ASSERT_TRUE(a.store->Put(ConfigKind::kSubscription, id, "{}", 0).ok());
    }
    ASSERT_TRUE(a.store->Put(ConfigKind::kProfile, "p", "{}", 0).ok());
    auto zeta = a.store->Get(ConfigKind::kSubscription, "zeta");
    ASSERT_TRUE(zeta);
    ASSERT_TRUE(a.store->Put(ConfigKind::kSubscription, "zeta", "{\"n\":2}", zeta->revision).ok());
    const auto listed = a.store->List();
    EXPECT_EQ(Ids(listed), (std::vector<std::string>{"p", "zeta", "alpha", "mid"}));
  }
  // A new instance (or a restart) reads the same from the bucket.
  Instance b(nats);
  const auto listed = b.store->List();
  EXPECT_EQ(Ids(listed), (std::vector<std::string>{"p", "zeta", "alpha", "mid"}));
  EXPECT_EQ(listed[1].value, "{\"n\":2}");
  // Watching from 0 reports what exists, oldest change first.
  EXPECT_EQ(b.Seen().size(), 4u);
}

TEST(KvConfigStore, AnInstanceCatchesUpAfterItsServerRestarts) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats);
  ASSERT_TRUE(a.store->Put(ConfigKind::kProfile, "before", "{}", 0).ok());
  nats.Kill(0);
  nats.Start(0);
  nats.WaitHealthy(0);
  Instance b(nats);
  ASSERT_TRUE(b.store->Put(ConfigKind::kProfile, "after", "{}", 0).ok());
  // `a` reconnected by itself and sees the change made while it was away.
  EXPECT_TRUE(Eventually([&] { return a.store->Get(ConfigKind::kProfile, "after").has_value(); },
                         std::chrono::milliseconds(15'000)));
  EXPECT_TRUE(a.client->connected());
}

TEST(NatsClient, AnUnreachableServerFailsAfterTheWaitWithAClearError) {
  NatsOptions o;
  o.urls = {"nats://127.0.0.1:1"};
  o.connect_wait = std::chrono::milliseconds(1500);
  std::vector<std::string> lines;
  o.log = [&](std::string_view line) { lines.emplace_back(line); };
  auto c = NatsClient::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("nats://127.0.0.1:1"), absl::string_view::npos) << c.status();
  // Every retry said so.
  ASSERT_GE(lines.size(), 1u);
  EXPECT_NE(lines[0].find("retrying"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace herald::jetstream
