#include "engine/jetstream/kv_dead_letters.h"

#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/temp_dir.h"

namespace herald::jetstream {
namespace {

using test_support::Eventually;
using test_support::NatsServers;
using test_support::TempDir;

// One heraldd instance's view: its own connection and store.
struct Instance {
  std::unique_ptr<NatsClient> client;
  std::shared_ptr<KvDeadLetters> store;
  std::mutex mu;
  std::vector<std::pair<std::string, bool>> told;  // OnDisabledElsewhere's calls

  explicit Instance(const NatsServers& nats, KvDeadLetters::Options options = {}) {
    NatsOptions o;
    o.urls = {nats.url(0)};
    auto c = NatsClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    client = *std::move(c);
    auto s = KvDeadLetters::Open(*client, options);
    EXPECT_TRUE(s.ok()) << s.status();
    store = *std::move(s);
    store->OnDisabledElsewhere([this](const std::string& id, bool disabled) {
      std::lock_guard lock(mu);
      told.emplace_back(id, disabled);
    });
  }
  ~Instance() {
    store->OnDisabledElsewhere(nullptr);
    store.reset();  // before its client
  }
  std::vector<std::pair<std::string, bool>> Told() {
    std::lock_guard lock(mu);
    return told;
  }
  std::vector<uint64_t> Ids(const std::string& profile = "p1") {
    auto page = store->List(profile, 0, 100);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<uint64_t> ids;
    for (const auto& d : page->results) ids.push_back(d.id);
    return ids;
  }
};

DeadLetter Letter(std::string webhook_id, std::string profile = "p1", int64_t at = 1000) {
  return {.profile_id = std::move(profile),
          .subscription_id = "s1",
          .channel = "SMS",
          .event = "DELIVERY",
          .webhook_id = std::move(webhook_id),
          .payload = R"({"n":"line\nbreak é"})",
          .attempts = 3,
          .last_status = 500,
          .last_error = "500 from the receiver",
          .failed_at_ms = at};
}

TEST(KvDeadLetters, LettersAddedThroughOneInstanceAreListedWithTheSameIdsOnAnother) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats), b(nats);
  std::vector<DeadLetter> letters{Letter("w1"), Letter("w2"), Letter("w3", "p2")};
  ASSERT_TRUE(a.store->Add(letters).ok());
  EXPECT_GT(letters[1].id, letters[0].id);
  EXPECT_GT(letters[2].id, letters[1].id);
  // The writer sees its own at once; the other within a second.
  EXPECT_EQ(a.Ids(), (std::vector{letters[0].id, letters[1].id}));
  ASSERT_TRUE(Eventually([&] { return b.Ids().size() == 2; }, std::chrono::milliseconds(1000)));
  auto page = b.store->List("p1", 0, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 2u);
  const DeadLetter& d = page->results[0];
  EXPECT_EQ(d.id, letters[0].id);
  EXPECT_EQ(d.webhook_id, "w1");
  EXPECT_EQ(d.payload, R"({"n":"line\nbreak é"})");
  EXPECT_EQ(d.attempts, 3);
  EXPECT_EQ(d.last_status, 500);
  EXPECT_EQ(d.last_error, "500 from the receiver");
  EXPECT_EQ(b.store->CountByProfile(), (std::map<std::string, uint64_t>{{"p1", 2}, {"p2", 1}}));

  // A delete through the other instance is gone on both.
  auto deleted = b.store->Delete("p1", {letters[0].id});
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1u);
  EXPECT_EQ(b.Ids(), (std::vector{letters[1].id}));
  EXPECT_TRUE(Eventually([&] { return a.Ids() == std::vector{letters[1].id}; },
                         std::chrono::milliseconds(1000)));
  EXPECT_FALSE(a.store->Contains(letters[0].id));

  // A new instance starts with what is there.
  Instance c(nats);
  EXPECT_EQ(c.Ids(), (std::vector{letters[1].id}));
  EXPECT_EQ(c.Ids("p2"), (std::vector{letters[2].id}));
}

TEST(KvDeadLetters, AReplayedLetterThatFailsAgainReplacesItAndOneDeletedMeanwhileStaysDeleted) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats), b(nats);
  std::vector<DeadLetter> letters{Letter("w1"), Letter("w2")};
  ASSERT_TRUE(a.store->Add(letters).ok());
  auto replay = a.store->BeginReplay("p1", {});
  ASSERT_TRUE(replay.ok());
  ASSERT_EQ(replay->size(), 2u);
  EXPECT_EQ((*replay)[0].payload, letters[0].payload);
  // Each once: a second replay meanwhile takes none of them.
  EXPECT_TRUE(a.store->BeginReplay("p1", {})->empty());
  ASSERT_TRUE(Eventually([&] { return b.Ids().size() == 2; }));
  ASSERT_TRUE(b.store->Delete("p1", {letters[1].id}).ok());
  ASSERT_TRUE(Eventually([&] { return !a.store->Contains(letters[1].id); }));
  std::vector<DeadLetter> again{Letter("w1", "p1", 2000), Letter("w2", "p1", 2000)};
  const std::vector<uint64_t> replaces{letters[0].id, letters[1].id};
  ASSERT_TRUE(a.store->Add(again, replaces).ok());
  EXPECT_NE(again[0].id, 0u);
  EXPECT_EQ(again[1].id, 0u) << "its replayed letter was deleted";
  EXPECT_EQ(a.Ids(), (std::vector{again[0].id}));
  EXPECT_TRUE(Eventually([&] { return b.Ids() == std::vector{again[0].id}; }));
}

TEST(KvDeadLetters, ABurialWrittenAgainAfterAnErrorIsKeptOnce) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats), b(nats);
  std::vector<DeadLetter> first{Letter("w1")};
  ASSERT_TRUE(a.store->Add(first).ok());
  std::vector<DeadLetter> retried{Letter("w1"), Letter("w2")};
  ASSERT_TRUE(a.store->Add(retried).ok());
  EXPECT_EQ(a.Ids(), (std::vector{retried[0].id, retried[1].id}));
  EXPECT_TRUE(Eventually([&] { return b.Ids() == std::vector{retried[0].id, retried[1].id}; }));
}

TEST(KvDeadLetters, PastMaxBytesTheOldestGoAndAreCounted) {
  TempDir dir;
  NatsServers nats(dir.path());
  const size_t one = deliver::EncodeDeadLetter(Letter("w0"), false).size();
  Instance a(nats, {.max_bytes = 3 * one + one / 2});
  for (int i = 0; i < 5; ++i) {
    std::vector<DeadLetter> letters{Letter("w" + std::to_string(i))};
    ASSERT_TRUE(a.store->Add(letters).ok());
  }
  auto page = a.store->List("p1", 0, 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->results.size(), 3u);
  EXPECT_EQ(page->results[0].webhook_id, "w2");
  EXPECT_EQ(a.store->stats().dropped, 2u);
  Instance b(nats);
  EXPECT_EQ(b.Ids().size(), 3u);
}

// A payload past NATS's max_payload cannot be written: the letter is kept without it, saying so,
// rather than failing the burial again and again.
TEST(KvDeadLetters, ALetterTooLargeForNatsIsKeptWithoutItsPayload) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats);
  DeadLetter big = Letter("w1");
  big.payload = "\"" + std::string(2 << 20, 'x') + "\"";
  std::vector<DeadLetter> letters{big, Letter("w2")};
  ASSERT_TRUE(a.store->Add(letters).ok());
  auto page = a.store->List("p1", 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->results.size(), 2u);
  EXPECT_EQ(page->results[0].payload, "null");
  EXPECT_NE(page->results[0].last_error.find("payload of 2097154 bytes was not kept"),
            std::string::npos)
      << page->results[0].last_error;
  EXPECT_EQ(page->results[1].payload, Letter("w2").payload);
  // There is nothing to send of it: a replay leaves it listed.
  auto replay = a.store->BeginReplay("p1", {});
  ASSERT_TRUE(replay.ok());
  ASSERT_EQ(replay->size(), 1u);
  EXPECT_EQ((*replay)[0].webhook_id, "w2");
}

// The bucket's newest revisions can be purged delete markers, which no watch delivers: a store
// opened then is caught up when its initial values are in, not watching again and again.
TEST(KvDeadLetters, AStoreOpenedAfterMarkersWerePurgedDoesNotWatchAgain) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats);
  std::vector<DeadLetter> letters{Letter("w1"), Letter("w2")};
  ASSERT_TRUE(a.store->Add(letters).ok());
  ASSERT_TRUE(a.store->Delete("p1", {letters[1].id}).ok());  // the newest revision: a marker
  // What kvStore_PurgeDeletes does to it (which leaks in cnats 3.4.1): the marker's subject is
  // purged.
  const std::string stream = "KV_" + a.store->bucket();
  jsStreamInfo* si = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&si, a.client->js(), stream.c_str(), nullptr, nullptr), NATS_OK);
  const uint64_t marker = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  natsMsg* m = nullptr;
  ASSERT_EQ(js_GetMsg(&m, a.client->js(), stream.c_str(), marker, nullptr, nullptr), NATS_OK);
  const std::string subject = natsMsg_GetSubject(m);
  natsMsg_Destroy(m);
  jsOptions purge;
  jsOptions_Init(&purge);
  purge.Stream.Purge.Subject = subject.c_str();
  ASSERT_EQ(js_PurgeStream(a.client->js(), stream.c_str(), &purge, nullptr), NATS_OK);
  Instance b(nats);
  EXPECT_EQ(b.Ids(), (std::vector{letters[0].id}));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // six checks of the watch
  EXPECT_EQ(b.store->watch_restarts(), 0u);
  EXPECT_EQ(b.Ids(), (std::vector{letters[0].id}));
}

TEST(KvDeadLetters, ADisabledProfileIsDisabledOnEveryInstanceAndTheOthersAreTold) {
  TempDir dir;
  NatsServers nats(dir.path());
  Instance a(nats), b(nats);
  const std::string odd = "profile with spaces/é";
  ASSERT_TRUE(a.store->SetDisabled(odd, true).ok());
  ASSERT_TRUE(a.store->SetDisabled("p1", true).ok());
  EXPECT_EQ(a.store->disabled().size(), 2u);
  ASSERT_TRUE(Eventually([&] { return b.Told().size() == 2; }));
  EXPECT_EQ(b.Told()[0], std::make_pair(odd, true));
  ASSERT_TRUE(b.store->SetDisabled(odd, false).ok());
  ASSERT_TRUE(Eventually([&] { return a.Told().size() == 1; }));
  EXPECT_EQ(a.Told()[0], std::make_pair(odd, false));
  EXPECT_EQ(a.store->disabled(), std::vector<std::string>{"p1"});
  Instance c(nats);
  EXPECT_EQ(c.store->disabled(), std::vector<std::string>{"p1"});
  EXPECT_TRUE(c.Told().empty()) << "what was there at the start is not news";
}

}  // namespace
}  // namespace herald::jetstream
