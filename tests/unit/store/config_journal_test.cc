#include "engine/store/config_journal.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/common/framed_records.h"
#include "engine/store/config_records.h"
#include "gtest/gtest.h"
#include "herald/engine.h"
#include "tests/testing/failing_sync.h"
#include "tests/testing/shipped_catalog.h"
#include "tests/testing/temp_dir.h"

namespace herald::store {
namespace {

using test_support::TempDir;

std::string FixturePath() {
  const char* root = std::getenv("HERALD_SOURCE_DIR");
  return std::string(root ? root : ".") + "/tests/fixtures/data_dir_v0";
}

std::vector<std::string> Ids(const std::vector<ConfigEntry>& entries, ConfigKind kind) {
  std::vector<std::string> ids;
  for (const auto& e : entries) {
    if (e.kind == kind) ids.push_back(e.id);
  }
  return ids;
}

const ConfigEntry* Find(const std::vector<ConfigEntry>& entries, ConfigKind kind,
                        std::string_view id) {
  for (const auto& e : entries) {
    if (e.kind == kind && e.id == id) return &e;
  }
  return nullptr;
}

NotificationProfile Profile(std::string id) {
  NotificationProfile p;
  p.profile_id = std::move(id);
  p.webhook.notify_url = "https://hooks.example/" + p.profile_id;
  return p;
}

// A data_dir written by the release before versioned records (snapshot and a journal cut by
// kill -9): it opens, every change it recorded is there, and it is rewritten as version 1.
TEST(ConfigJournal, MigratesADataDirWrittenBeforeVersionedRecords) {
  TempDir dir;
  std::filesystem::copy(FixturePath(), dir.path(), std::filesystem::copy_options::recursive);
  std::vector<ConfigEntry> migrated;
  {
    auto journal = ConfigJournal::Open(dir.path());
    ASSERT_TRUE(journal.ok()) << journal.status();
    EXPECT_EQ((*journal)->stats().migrated, 16u);
    migrated = (*journal)->List();
  }
  EXPECT_EQ(Ids(migrated, ConfigKind::kSecurity),
            (std::vector<std::string>{"basic-1", "inline-s", "oauth-1"}));
  EXPECT_EQ(Ids(migrated, ConfigKind::kProfile),
            (std::vector<std::string>{"inline-p", "shop", "billing"}));
  EXPECT_EQ(Ids(migrated, ConfigKind::kSubscription),
            (std::vector<std::string>{"sms-dlr", "mail-all", "sms-bill"}));
  // Updates made after the snapshot win; secrets are kept unmasked.
  auto basic = DecodeSecurityRecord(Find(migrated, ConfigKind::kSecurity, "basic-1")->value);
  ASSERT_TRUE(basic.ok()) << basic.status();
  EXPECT_EQ(basic->password, "rotated");
  auto shop = DecodeProfileRecord(Find(migrated, ConfigKind::kProfile, "shop")->value);
  ASSERT_TRUE(shop.ok()) << shop.status();
  EXPECT_EQ(shop->webhook.notify_url, "http://127.0.0.1:9/hook2");
  EXPECT_EQ(shop->window_size, 60);
  ASSERT_EQ(shop->headers.size(), 1u);
  EXPECT_EQ(shop->headers[0].second, "hunter2");
  auto billing = DecodeProfileRecord(Find(migrated, ConfigKind::kProfile, "billing")->value);
  ASSERT_TRUE(billing.ok());
  EXPECT_EQ(billing->rate_limit, 250);
  auto dlr = DecodeSubscriptionRecord(Find(migrated, ConfigKind::kSubscription, "sms-dlr")->value);
  ASSERT_TRUE(dlr.ok());
  EXPECT_EQ(dlr->name, "delivery reports v2");
  EXPECT_EQ(dlr->events, (std::vector<std::string>{"DELIVERY", "CLICK"}));
  ASSERT_EQ(dlr->criteria.size(), 2u);
  EXPECT_EQ(dlr->criteria[1].entity_id, "e1");

  // Rewritten in the current format: the next open migrates nothing and finds the same state.
  auto again = ConfigJournal::Open(dir.path());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->stats().migrated, 0u);
  const auto reopened = (*again)->List();
  ASSERT_EQ(reopened.size(), migrated.size());
  for (size_t i = 0; i < reopened.size(); ++i) {
    EXPECT_EQ(reopened[i].id, migrated[i].id);
    EXPECT_EQ(reopened[i].value, migrated[i].value);
    EXPECT_EQ(reopened[i].revision, migrated[i].revision);
  }

  // And it loads into an engine as it was served.
  auto engine = Engine::Create({.catalog_path = test_support::ShippedCatalogPath()});
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ(LoadConfig(**again, **engine, {}), 9u);
  EXPECT_EQ((*engine)->subscription_count(), 3u);
  auto served = (*engine)->GetProfile("shop");
  ASSERT_TRUE(served.ok());
  EXPECT_EQ(*served, *shop);
}

TEST(ConfigJournal, RevisionsRefuseALostRaceAndAChangeAppliesWholeOrNotAtAll) {
  TempDir dir;
  auto journal = ConfigJournal::Open(dir.path());
  ASSERT_TRUE(journal.ok());
  ConfigJournal& j = **journal;
  auto created = j.Put(ConfigKind::kProfile, "p1", EncodeRecord(Profile("p1")), /*expected=*/0);
  ASSERT_TRUE(created.ok()) << created.status();
  // A second creator lost the race.
  EXPECT_EQ(j.Put(ConfigKind::kProfile, "p1", EncodeRecord(Profile("p1")), 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto updated = j.Put(ConfigKind::kProfile, "p1", EncodeRecord(Profile("p1")), *created);
  ASSERT_TRUE(updated.ok());
  EXPECT_GT(*updated, *created);
  // A stale writer of one entry fails the whole change.
  const std::vector<ConfigWrite> writes = {PutWrite(Profile("p2")), PutWrite(Profile("p1"), 1)};
  EXPECT_EQ(j.Commit(writes).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(j.revision(), *updated);
  EXPECT_EQ(Ids(j.List(), ConfigKind::kProfile), (std::vector<std::string>{"p1"}));
  // Deleted, it can be created again (expected revision 0), last in creation order.
  ASSERT_TRUE(j.Put(ConfigKind::kProfile, "p3", EncodeRecord(Profile("p3"))).ok());
  ASSERT_TRUE(j.Delete(ConfigKind::kProfile, "p1", *updated).ok());
  ASSERT_TRUE(j.Put(ConfigKind::kProfile, "p1", EncodeRecord(Profile("p1")), 0).ok());
  EXPECT_EQ(Ids(j.List(), ConfigKind::kProfile), (std::vector<std::string>{"p3", "p1"}));
}

// A change of several entries is one framed line: a crash that tore it loses all of it, never a
// part, and what came before is kept.
TEST(ConfigJournal, ATornChangeIsCutWhole) {
  TempDir dir;
  {
    auto journal = ConfigJournal::Open(dir.path());
    ASSERT_TRUE(journal.ok());
    ASSERT_TRUE((*journal)->Put(ConfigKind::kProfile, "kept", EncodeRecord(Profile("kept"))).ok());
    const std::vector<ConfigWrite> together = {PutWrite(Profile("a")), PutWrite(Profile("b"))};
    ASSERT_TRUE((*journal)->Commit(together).ok());
  }
  // Files are left as a crash leaves them (no Close): cut the last line in the middle.
  const std::string path = dir.path() + "/config.journal";
  const auto size = std::filesystem::file_size(path);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const size_t last = text.rfind('\n', text.size() - 2) + 1;
  std::filesystem::resize_file(path, last + (size - last) / 2);
  auto journal = ConfigJournal::Open(dir.path());
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_GT((*journal)->stats().truncated_bytes, 0u);
  EXPECT_EQ(Ids((*journal)->List(), ConfigKind::kProfile), (std::vector<std::string>{"kept"}));
}

TEST(ConfigJournal, AFailedSyncRefusesTheChangeAndTheJournalTakesNoMore) {
  TempDir dir;
  {
    auto journal = ConfigJournal::Open(dir.path(), {}, &test_support::SyncThatFailsOnDemand);
    ASSERT_TRUE(journal.ok());
    ASSERT_TRUE((*journal)->Put(ConfigKind::kProfile, "p1", EncodeRecord(Profile("p1"))).ok());
    test_support::fail_next_sync = true;
    EXPECT_FALSE((*journal)->Put(ConfigKind::kProfile, "p2", EncodeRecord(Profile("p2"))).ok());
    EXPECT_FALSE((*journal)->Put(ConfigKind::kProfile, "p3", EncodeRecord(Profile("p3"))).ok())
        << "after a failed fdatasync the file takes no more writes";
    EXPECT_EQ(Ids((*journal)->List(), ConfigKind::kProfile), (std::vector<std::string>{"p1"}));
  }
  auto journal = ConfigJournal::Open(dir.path());
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(Ids((*journal)->List(), ConfigKind::kProfile), (std::vector<std::string>{"p1"}));
}

TEST(ConfigJournal, WatchGivesTheChangesAfterARevisionThenEachNewOne) {
  TempDir dir;
  uint64_t opened_at = 0;
  {
    auto journal = ConfigJournal::Open(dir.path());
    ASSERT_TRUE(journal.ok());
    ASSERT_TRUE((*journal)->Put(ConfigKind::kProfile, "old", EncodeRecord(Profile("old"))).ok());
    ASSERT_TRUE((*journal)->Put(ConfigKind::kProfile, "old", EncodeRecord(Profile("old"))).ok());
  }
  auto journal = ConfigJournal::Open(dir.path());
  ASSERT_TRUE(journal.ok());
  ConfigJournal& j = **journal;
  opened_at = j.revision();
  ASSERT_EQ(opened_at, 2u);
  auto p1 = j.Put(ConfigKind::kProfile, "p1", EncodeRecord(Profile("p1")));
  ASSERT_TRUE(p1.ok());
  ASSERT_TRUE(j.Delete(ConfigKind::kProfile, "old").ok());
  std::vector<std::pair<std::string, bool>> seen;
  ASSERT_TRUE(j.Watch(*p1, [&](const ConfigEntry& e) { seen.emplace_back(e.id, e.deleted); }).ok());
  ASSERT_TRUE(j.Put(ConfigKind::kProfile, "p2", EncodeRecord(Profile("p2"))).ok());
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, bool>>{{"old", true}, {"p2", false}}));
  // From 0, the state as puts; from before the open, the changes are compacted away.
  std::vector<std::string> all;
  ASSERT_TRUE(j.Watch(0, [&](const ConfigEntry& e) { all.push_back(e.id); }).ok());
  EXPECT_EQ(all, (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(j.Watch(opened_at - 1, [](const ConfigEntry&) {}).code(),
            absl::StatusCode::kOutOfRange);
}

// Revisions only grow: deletes that left nothing in the snapshot do not make the next open reuse
// their numbers.
TEST(ConfigJournal, RevisionsNeverGoBackAcrossARestart) {
  TempDir dir;
  uint64_t last = 0;
  {
    auto journal = ConfigJournal::Open(dir.path());
    ASSERT_TRUE(journal.ok());
    ASSERT_TRUE((*journal)->Put(ConfigKind::kProfile, "a", EncodeRecord(Profile("a"))).ok());
    ASSERT_TRUE((*journal)->Put(ConfigKind::kProfile, "b", EncodeRecord(Profile("b"))).ok());
    auto deleted = (*journal)->Delete(ConfigKind::kProfile, "b");
    ASSERT_TRUE(deleted.ok());
    last = *deleted;
  }
  for (int restart = 0; restart < 2; ++restart) {
    auto journal = ConfigJournal::Open(dir.path());
    ASSERT_TRUE(journal.ok());
    EXPECT_EQ((*journal)->revision(), last);
    auto next = (*journal)->Put(ConfigKind::kProfile, "c", EncodeRecord(Profile("c")));
    ASSERT_TRUE(next.ok());
    EXPECT_GT(*next, last);
    last = *next;
  }
}

// A record of the old format whose value no longer decodes is reported and dropped, as that
// release did; the records after it still apply.
TEST(ConfigJournal, AnOldRecordThatNoLongerDecodesIsDroppedAndTheRestKept) {
  TempDir dir;
  std::filesystem::copy(FixturePath(), dir.path(), std::filesystem::copy_options::recursive);
  {
    std::ofstream journal(dir.path() + "/config.journal", std::ios::app);
    journal << FrameRecord(R"({"op":"put","kind":"profile","value":{"profileId":"no-url"}})")
            << FrameRecord(R"({"op":"delete","kind":"subscription","id":"sms-bill"})");
  }
  std::vector<std::string> logged;
  auto journal =
      ConfigJournal::Open(dir.path(), [&](std::string_view line) { logged.emplace_back(line); });
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_EQ((*journal)->stats().truncated_bytes, 0u);
  const auto entries = (*journal)->List();
  EXPECT_EQ(Find(entries, ConfigKind::kProfile, "no-url"), nullptr);
  EXPECT_EQ(Find(entries, ConfigKind::kSubscription, "sms-bill"), nullptr) << "applied after it";
  bool reported = false;
  for (const auto& line : logged) reported |= line.find("no longer applies") != std::string::npos;
  EXPECT_TRUE(reported);
}

// Before certificates, clientCertificateId was stored and not used: such a profile (and what
// routes to it) still loads, without the certificate, and the log says so.
TEST(ConfigRecords, AProfileNamingAMissingCertificateLoadsWithoutIt) {
  TempDir dir;
  auto journal = ConfigJournal::Open(dir.path(), {});
  ASSERT_TRUE(journal.ok()) << journal.status();
  NotificationProfile p = Profile("legacy");
  p.client_certificate_id = "MYCERT-1337";
  Subscription sub;
  sub.subscription_id = "sub";
  sub.channel = "SMS";
  sub.profile_id = "legacy";
  ASSERT_TRUE((*journal)->Commit(std::vector{PutWrite(p), PutWrite(sub)}).ok());
  auto engine = Engine::Create({.catalog_path = test_support::ShippedCatalogPath()});
  ASSERT_TRUE(engine.ok());
  std::vector<std::string> logged;
  EXPECT_EQ(LoadConfig(**journal, **engine, [&](std::string_view l) { logged.emplace_back(l); }),
            2u);
  auto loaded = (*engine)->GetProfile("legacy");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->client_certificate_id, "");
  EXPECT_EQ((*engine)->subscription_count(), 1u);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("names certificate MYCERT-1337, which does not exist"),
            std::string::npos)
      << logged[0];
}

TEST(ConfigRecords, EveryFieldSurvivesTheRoundTripAndUnknownVersionsAreRefused) {
  NotificationProfile p = Profile("full");
  p.webhook.content_type = "application/cloudevents+json";
  p.headers = {{"X-Api-Key", "k"}, {"X-Team", "blue"}};
  p.auth_id = "s1";
  p.max_bucket_size = 7;
  p.window_size = 33;
  p.connect_timeout_ms = 400;
  p.read_timeout_ms = 2000;
  p.rate_limit = 12;
  p.retry = RetryPolicy{{10, 20, 40}, 3};
  p.client_certificate_id = "cert";
  p.enabled_ssl_protocols = {"TLSv1.3"};
  p.response_regex = "2..";
  p.response_body_regex = "ok";
  p.payload_format = "CLOUDEVENTS";
  p.ordering = "KEY";
  EXPECT_EQ(*DecodeProfileRecord(EncodeRecord(p)), p);

  SecuritySetting s;
  s.auth_id = "s1";
  s.type = SecurityType::kOAuth;
  s.token_url = "https://auth.example/token";
  s.grant_type = "client_credentials";
  s.client_id = "id";
  s.client_secret = "secret \"quoted\" \xc3\xa9";
  s.scope = "events";
  s.resource = "r";
  s.refresh_token = "rt";
  s.algorithm = HmacAlgorithm::kSha384;
  s.headers = {{"X-Extra", "1"}};
  EXPECT_EQ(*DecodeSecurityRecord(EncodeRecord(s)), s);

  Subscription sub;
  sub.subscription_id = "sub";
  sub.name = "";
  sub.channel = "SMS";
  sub.events = {"DELIVERY"};
  sub.event_formats = {{"DELIVERY", "v2"}};
  sub.criteria = {{"app", std::nullopt, "calls"}, {std::nullopt, "entity", std::nullopt}};
  sub.resources = {"+1555"};
  sub.users = {"alice"};
  sub.group = "g";
  sub.profile_id = "full";
  EXPECT_EQ(*DecodeSubscriptionRecord(EncodeRecord(sub)), sub);

  const ClientCertificate c{.certificate_id = "cert",
                            .private_key_pem = "-----BEGIN PRIVATE KEY-----\nAA==\n",
                            .chain_pem = "-----BEGIN CERTIFICATE-----\nBB==\n"};
  EXPECT_EQ(*DecodeCertificateRecord(EncodeRecord(c)), c);
  EXPECT_EQ(DecodeCertificateRecord(R"({"v":1,"certificate_id":"x"})").status().code(),
            absl::StatusCode::kDataLoss);

  EXPECT_EQ(DecodeProfileRecord(R"({"v":2,"profile_id":"x"})").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeProfileRecord(R"({"profile_id":"x"})").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeProfileRecord(R"({"v":1,"profile_id":"x","window_size":"big"})").status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace herald::store
