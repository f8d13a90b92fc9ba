#include "engine/server/management_service.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/store/config_journal.h"
#include "engine/store/config_records.h"
#include "gtest/gtest.h"
#include "tests/testing/failing_sync.h"
#include "tests/testing/shipped_catalog.h"
#include "tests/testing/temp_dir.h"

namespace herald::server {
namespace {

using test_support::TempDir;

NotificationProfile Profile(std::string id, std::string auth_id = "") {
  NotificationProfile p;
  p.profile_id = std::move(id);
  p.webhook.notify_url = "https://hooks.example/" + p.profile_id;
  p.auth_id = std::move(auth_id);
  return p;
}

SecuritySetting Basic(std::string id, std::string password = "pw") {
  SecuritySetting s;
  s.auth_id = std::move(id);
  s.type = SecurityType::kBasic;
  s.username = "u";
  s.password = std::move(password);
  return s;
}

Subscription Sms(std::string id, std::string profile) {
  Subscription s;
  s.subscription_id = std::move(id);
  s.channel = "SMS";
  s.events = {"DELIVERY"};
  s.profile_id = std::move(profile);
  return s;
}

// A real engine over a real journal whose fdatasync fails when a test says so.
struct World {
  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<store::ConfigJournal> journal;
  std::unique_ptr<ManagementService> service;

  World() { Open(); }
  void Open() {
    service.reset();
    journal.reset();
    auto e = Engine::Create({.catalog_path = test_support::ShippedCatalogPath()});
    EXPECT_TRUE(e.ok()) << e.status();
    engine = *std::move(e);
    auto j = store::ConfigJournal::Open(dir.path(), {}, &test_support::SyncThatFailsOnDemand);
    EXPECT_TRUE(j.ok()) << j.status();
    journal = *std::move(j);
    store::LoadConfig(*journal, *engine, {});
    service = std::make_unique<ManagementService>(*engine, journal.get(), nullptr, nullptr);
  }
  // What a restart would load.
  std::vector<std::string> Stored(store::ConfigKind kind) const {
    std::vector<std::string> ids;
    for (const auto& e : journal->List()) {
      if (e.kind == kind) ids.push_back(e.id);
    }
    return ids;
  }
};

using store::ConfigKind;

TEST(ManagementService, ChangesAreStoredAndLoadAfterARestart) {
  World w;
  const SecuritySetting security = Basic("s1");
  const NotificationProfile profile = Profile("p1", "s1");
  ASSERT_TRUE(w.service->CreateSubscription(Sms("sub1", "p1"), security, profile).ok());
  NotificationProfile changed = profile;
  changed.window_size = 99;
  ASSERT_TRUE(w.service->UpdateProfile(changed).ok());
  ASSERT_TRUE(w.service->CreateSubscription(Sms("sub2", "p1"), std::nullopt, std::nullopt).ok());
  ASSERT_TRUE(w.service->DeleteSubscription("SMS", "sub2").ok());
  w.Open();
  EXPECT_TRUE(w.engine->GetSecurity("s1").ok());
  auto loaded = w.engine->GetProfile("p1");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->window_size, 99);
  EXPECT_TRUE(w.engine->GetSubscription("sub1").ok());
  EXPECT_FALSE(w.engine->GetSubscription("sub2").ok());
}

// The store refuses (the fdatasync failed): 503-worthy Unavailable, and the engine is as it was:
// nothing of an inline create is left behind, an update or delete is undone.
TEST(ManagementService, WhatTheStoreRefusesIsUndoneInTheEngine) {
  {
    World w;
    const SecuritySetting security = Basic("s1");
    const NotificationProfile profile = Profile("p1", "s1");
    test_support::fail_next_sync = true;
    const absl::Status s = w.service->CreateSubscription(Sms("sub1", "p1"), security, profile);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_FALSE(w.engine->GetSubscription("sub1").ok());
    EXPECT_FALSE(w.engine->GetProfile("p1").ok());
    EXPECT_FALSE(w.engine->GetSecurity("s1").ok());
    EXPECT_TRUE(w.Stored(ConfigKind::kProfile).empty());
  }
  {
    World w;
    ASSERT_TRUE(w.service->CreateSecurity(Basic("s1", "old")).ok());
    ASSERT_TRUE(w.service->CreateProfile(Profile("p1", "s1"), std::nullopt).ok());
    ASSERT_TRUE(w.service->CreateSubscription(Sms("sub1", "p1"), std::nullopt, std::nullopt).ok());
    w.Open();  // a fresh journal: the failed sync below leaves it refusing only from then on
    test_support::fail_next_sync = true;
    EXPECT_EQ(w.service->UpdateSecurity(Basic("s1", "new")).code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(w.engine->GetSecurity("s1")->password, "old");
    EXPECT_EQ(w.service->DeleteSubscription("SMS", "sub1").code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(w.engine->GetSubscription("sub1").ok());
    EXPECT_EQ(w.service->DeleteProfile("p9").code(), absl::StatusCode::kNotFound)
        << "the engine's own error comes first";
    w.Open();
    EXPECT_EQ(w.engine->GetSecurity("s1")->password, "old");
    EXPECT_TRUE(w.engine->GetSubscription("sub1").ok());
  }
}

// A later step the engine refuses undoes the earlier ones (the inline profile, then security).
TEST(ManagementService, AFailedStepUndoesTheStepsBeforeIt) {
  World w;
  const SecuritySetting security = Basic("s1");
  const NotificationProfile profile = Profile("p1", "s1");
  Subscription bad = Sms("sub1", "p1");
  bad.channel = "NO_SUCH_CHANNEL";
  EXPECT_FALSE(w.service->CreateSubscription(bad, security, profile).ok());
  EXPECT_FALSE(w.engine->GetProfile("p1").ok());
  EXPECT_FALSE(w.engine->GetSecurity("s1").ok());
  EXPECT_TRUE(w.Stored(ConfigKind::kSecurity).empty());
}

TEST(ManagementService, AnUpdateOrDeleteInAnotherChannelIsNotFound) {
  World w;
  ASSERT_TRUE(w.service->CreateProfile(Profile("p1"), std::nullopt).ok());
  ASSERT_TRUE(w.service->CreateSubscription(Sms("sub1", "p1"), std::nullopt, std::nullopt).ok());
  Subscription moved = Sms("sub1", "p1");
  EXPECT_EQ(w.service->UpdateSubscription("EMAIL", moved).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(w.service->DeleteSubscription("EMAIL", "sub1").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(w.engine->GetSubscription("sub1").ok());
}

// The check sees each write before the engine does: it may complete the values (the server
// restores masked secrets there) or refuse them with field errors.
TEST(ManagementService, TheCheckCompletesOrRefusesAWriteBeforeItIsMade) {
  World w;
  ManagementService service(*w.engine, w.journal.get(), nullptr, nullptr,
                            [](NotificationProfile* p, SecuritySetting* s) -> ValidationErrors {
                              if (s && s->password == "********") s->password = "restored";
                              if (p && p->profile_id == "bad") return {{"profileId", {"no"}}};
                              return {};
                            });
  SecuritySetting masked = Basic("s1", "********");
  ASSERT_TRUE(service.CreateSecurity(masked).ok());
  EXPECT_EQ(w.engine->GetSecurity("s1")->password, "restored");
  const absl::Status refused = service.CreateProfile(Profile("bad"), Basic("s2"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidationErrorsOf(refused).at("profileId"), std::vector<std::string>{"no"});
  EXPECT_FALSE(w.engine->GetSecurity("s2").ok()) << "nothing of a refused write is made";
}

TEST(ManagementService, AnImportCreatesWhatItCanWithOneWriteOrNothing) {
  World w;
  ASSERT_TRUE(w.service->CreateProfile(Profile("p1"), std::nullopt).ok());
  const std::vector<Subscription> subs = {Sms("a", "p1"), Sms("b", "missing"), Sms("c", "p1")};
  std::vector<absl::Status> results;
  ASSERT_TRUE(w.service->Import(subs, &results).ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_FALSE(results[1].ok());
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(w.Stored(ConfigKind::kSubscription), (std::vector<std::string>{"a", "c"}));

  const std::vector<Subscription> more = {Sms("d", "p1"), Sms("e", "p1")};
  test_support::fail_next_sync = true;
  EXPECT_EQ(w.service->Import(more, &results).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(w.engine->GetSubscription("d").ok());
  EXPECT_FALSE(w.engine->GetSubscription("e").ok());
}

// What the store holds but the engine refused at load (it no longer applies: here a
// subscription whose profile is gone, a profile whose security setting is gone) is deleted from
// the store by a DELETE, so it is not refused again at every start. An id neither has is 404.
TEST(ManagementService, WhatOnlyTheStoreHoldsIsDeletedFromIt) {
  World w;
  ASSERT_TRUE(
      w.journal
          ->Put(ConfigKind::kSubscription, "orphan", store::EncodeRecord(Sms("orphan", "gone")))
          .ok());
  ASSERT_TRUE(w.journal
                  ->Put(ConfigKind::kProfile, "p-orphan",
                        store::EncodeRecord(Profile("p-orphan", "s-gone")))
                  .ok());
  ASSERT_TRUE(
      w.journal->Put(ConfigKind::kSecurity, "s-kept", store::EncodeRecord(Basic("s-kept"))).ok());
  w.Open();
  ASSERT_FALSE(w.engine->GetSubscription("orphan").ok()) << "refused at load";
  ASSERT_FALSE(w.engine->GetProfile("p-orphan").ok()) << "refused at load";
  ASSERT_EQ(w.Stored(ConfigKind::kSubscription).size(), 1u);

  EXPECT_EQ(w.service->DeleteSubscription("EMAIL", "orphan").code(), absl::StatusCode::kNotFound)
      << "another channel's";
  EXPECT_TRUE(w.service->DeleteSubscription("SMS", "orphan").ok());
  EXPECT_TRUE(w.service->DeleteProfile("p-orphan").ok());
  EXPECT_TRUE(w.Stored(ConfigKind::kSubscription).empty());
  EXPECT_TRUE(w.Stored(ConfigKind::kProfile).empty());
  EXPECT_EQ(w.service->DeleteSubscription("SMS", "orphan").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(w.service->DeleteProfile("never").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(w.service->DeleteSecurity("never").code(), absl::StatusCode::kNotFound);
  // A live entry is deleted from both, as always.
  EXPECT_TRUE(w.service->DeleteSecurity("s-kept").ok());
  EXPECT_FALSE(w.engine->GetSecurity("s-kept").ok());
  EXPECT_TRUE(w.Stored(ConfigKind::kSecurity).empty());
  w.Open();
  EXPECT_EQ(w.engine->subscription_count(), 0u);
}

}  // namespace
}  // namespace herald::server
