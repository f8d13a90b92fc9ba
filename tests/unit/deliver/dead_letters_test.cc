#include "engine/deliver/dead_letters.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "tests/testing/failing_sync.h"
#include "tests/testing/temp_dir.h"

namespace herald::deliver {
namespace {

using test_support::TempDir;

DeadLetter Letter(std::string profile, std::string payload) {
  return {.profile_id = std::move(profile),
          .subscription_id = "s1",
          .channel = "SMS",
          .event = "DELIVERY",
          .webhook_id = "evt-" + payload.substr(0, 3),
          .payload = std::move(payload),
          .attempts = 3,
          .last_status = 503,
          .last_error = "HTTP 503",
          .failed_at_ms = 1700000000000};
}

TEST(DeadLetters, AFailedFdatasyncRefusesTheLettersAndEveryLaterWrite) {
  TempDir dir;
  {
    auto store = DeadLetterStore::Open(dir.path(), {}, &test_support::SyncThatFailsOnDemand);
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<DeadLetter> kept = {Letter("p1", "[1]")};
    ASSERT_TRUE((*store)->Add(kept).ok());
    test_support::fail_next_sync = true;
    std::vector<DeadLetter> lost = {Letter("p1", "[2]")};
    EXPECT_FALSE((*store)->Add(lost).ok());
    std::vector<DeadLetter> later = {Letter("p1", "[3]")};
    const absl::Status refused = (*store)->Add(later);
    EXPECT_FALSE(refused.ok()) << "an fdatasync after a failed one proves nothing";
    EXPECT_NE(refused.message().find("restart"), std::string::npos) << refused;
    EXPECT_EQ((*store)->List("p1", 0, 10)->total, 1u) << "what was refused is not listed";
  }
  auto store = DeadLetterStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  const auto page = *(*store)->List("p1", 0, 10);
  ASSERT_EQ(page.total, 1u);
  EXPECT_EQ(page.results[0].payload, "[1]");
  std::vector<DeadLetter> again = {Letter("p1", "[4]")};
  EXPECT_TRUE((*store)->Add(again).ok()) << "a reopened store writes again";
}

TEST(DeadLetters, SurviveReopenAndReplayTakesThem) {
  TempDir dir;
  {
    auto store = DeadLetterStore::Open(dir.path());
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<DeadLetter> letters = {Letter("p1", "{\"a\":\n1}"), Letter("p2", "[2]"),
                                       Letter("p1", "\"three\"")};
    ASSERT_TRUE((*store)->Add(letters).ok());
    EXPECT_EQ(letters[0].id, 1u);
    EXPECT_EQ(letters[2].id, 3u);
    ASSERT_TRUE((*store)->SetDisabled("p2", true).ok());
  }
  auto store = DeadLetterStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  auto page = *(*store)->List("p1", 0, 10);
  ASSERT_EQ(page.total, 2u);
  EXPECT_EQ(page.results[0].payload, "{\"a\":\n1}");  // a payload spanning lines is intact
  EXPECT_EQ(page.results[0].last_status, 503);
  EXPECT_EQ(page.results[1].id, 3u);
  EXPECT_EQ((*store)->List("", 1, 2)->results.size(), 1u);  // paging over every profile
  EXPECT_EQ((*store)->disabled(), std::vector<std::string>{"p2"});

  auto taken = *(*store)->BeginReplay("p1", {3, 3});  // named twice, taken once
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].payload, "\"three\"");
  EXPECT_TRUE((*store)->BeginReplay("p2", {1})->empty());  // id 1 belongs to p1
  EXPECT_TRUE((*store)->BeginReplay("p1", {3})->empty());  // already being replayed
  EXPECT_EQ((*store)->List("p1", 0, 10)->total, 2u) << "a replayed letter stays until settled";
  EXPECT_EQ((*store)->BeginReplay("p1", {})->size(), 1u);  // the rest: letter 1
  (*store)->EndReplay({1});                                // abandoned: it can be replayed again
  EXPECT_EQ((*store)->BeginReplay("p1", {1})->size(), 1u);
  // New ids continue after the highest ever given, across reopening.
  std::vector<DeadLetter> more = {Letter("p1", "4")};
  ASSERT_TRUE((*store)->Add(more, /*replaced=*/{1}).ok());  // 1 failed again: 4 replaces it
  EXPECT_EQ(more[0].id, 4u);
  ASSERT_TRUE((*store)->Remove({3}).ok());  // 3 was delivered
  store->reset();

  store = DeadLetterStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  const auto left = *(*store)->List("p1", 0, 10);
  ASSERT_EQ(left.total, 1u);
  EXPECT_EQ(left.results[0].id, 4u);
}

// A crash while letters are replayed: they are all still there after reopening.
TEST(DeadLetters, AReplayInterruptedByACrashLosesNothing) {
  TempDir dir;
  {
    auto store = DeadLetterStore::Open(dir.path());
    std::vector<DeadLetter> letters = {Letter("p1", "1"), Letter("p1", "2")};
    ASSERT_TRUE((*store)->Add(letters).ok());
    EXPECT_EQ((*store)->BeginReplay("p1", {})->size(), 2u);
  }  // no Remove, no EndReplay: the process died
  auto store = DeadLetterStore::Open(dir.path());
  EXPECT_EQ((*store)->List("p1", 0, 10)->total, 2u);
  EXPECT_EQ((*store)->BeginReplay("p1", {})->size(), 2u);
}

TEST(DeadLetters, ATornTailIsCutAndTheRestKept) {
  TempDir dir;
  {
    auto store = DeadLetterStore::Open(dir.path());
    std::vector<DeadLetter> letters = {Letter("p1", "1"), Letter("p1", "2")};
    ASSERT_TRUE((*store)->Add(letters).ok());
  }
  {
    std::ofstream out(dir.path() + "/dead-letters.log", std::ios::app);
    out << "0badc0de {\"op\":\"add\",\"id\":9";  // a crash in the middle of a write
  }
  std::vector<std::string> logged;
  auto store =
      DeadLetterStore::Open(dir.path(), [&](std::string_view l) { logged.emplace_back(l); });
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->List("p1", 0, 10)->total, 2u);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("torn or corrupt"), std::string::npos);
}

TEST(DeadLetters, TheOldestGoPastMaxBytesAndMaxAgeAndStayGoneAfterReopen) {
  TempDir dir;
  int64_t now = 1700000000000;
  const DeadLetterStore::Options options{
      .dir = dir.path(), .max_bytes = 5000, .max_age = std::chrono::hours(1), .now_ms = [&] {
        return now;
      }};
  {
    auto store = DeadLetterStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < 20; ++i) {  // ~500 bytes each: about ten fit
      std::vector<DeadLetter> one = {Letter("p1", "[\"" + std::string(300, 'a' + i) + "\"]")};
      one[0].failed_at_ms = now;
      ASSERT_TRUE((*store)->Add(one).ok());
    }
    const auto stats = (*store)->stats();
    EXPECT_LE(stats.bytes, 5000u);
    EXPECT_GT(stats.dropped, 5u);
    EXPECT_EQ(stats.letters + stats.dropped, 20u);
    const auto page = *(*store)->List("p1", 0, 100);
    ASSERT_FALSE(page.results.empty());
    EXPECT_EQ(page.results.back().id, 20u) << "the newest stays";
    EXPECT_EQ(page.results.front().id, stats.dropped + 1) << "the oldest go first";
    now += 2 * 3600 * 1000;  // two hours later every letter is past max_age
    EXPECT_EQ((*store)->List("p1", 0, 100)->total, 0u) << "expired letters are not listed";
    EXPECT_TRUE((*store)->BeginReplay("p1", {})->empty()) << "nor replayed";
  }
  // Reopening drops them, for good.
  {
    auto store = DeadLetterStore::Open(options);
    ASSERT_TRUE(store.ok());
    EXPECT_EQ((*store)->List("p1", 0, 100)->total, 0u);
    EXPECT_GT((*store)->stats().dropped, 0u);
  }
  auto store = DeadLetterStore::Open(dir.path());  // no bounds now: nothing comes back
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->List("p1", 0, 100)->total, 0u);
}

TEST(DeadLetters, DeleteTakesAProfilesLettersOrThoseNamedAndNothingElse) {
  TempDir dir;
  {
    auto store = DeadLetterStore::Open(dir.path());
    std::vector<DeadLetter> letters = {Letter("p1", "1"), Letter("p2", "2"), Letter("p1", "3"),
                                       Letter("p1", "4")};
    ASSERT_TRUE((*store)->Add(letters).ok());
    EXPECT_EQ(*(*store)->Delete("p1", {3, 2, 3}), 1u) << "2 is p2's; 3 named twice";
    EXPECT_EQ(*(*store)->Delete("p1", {}), 2u);
    EXPECT_EQ(*(*store)->Delete("p1", {}), 0u);
  }
  auto store = DeadLetterStore::Open(dir.path());
  EXPECT_EQ((*store)->List("p1", 0, 10)->total, 0u);
  const auto p2 = *(*store)->List("p2", 0, 10);
  ASSERT_EQ(p2.total, 1u);
  EXPECT_EQ(p2.results[0].payload, "2");
}

TEST(DeadLetters, PayloadsAreReadFromTheFileAndABadDiskIsAClearError) {
  TempDir dir;
  auto store = DeadLetterStore::Open(dir.path());
  std::vector<DeadLetter> letters = {Letter("p1", "[\"first\"]"), Letter("p1", "[\"second\"]")};
  ASSERT_TRUE((*store)->Add(letters).ok());
  EXPECT_EQ((*store)->List("p1", 0, 10)->results[1].payload, "[\"second\"]");
  // The bytes change under the store (a bad disk): the CRC catches it.
  {
    std::fstream f(dir.path() + "/dead-letters.log", std::ios::in | std::ios::out);
    std::stringstream all;
    all << f.rdbuf();
    std::string text = all.str();
    text.replace(text.find("second"), 6, "SECOND");
    f.seekp(0);
    f << text;
  }
  auto listed = (*store)->List("p1", 0, 10);
  ASSERT_FALSE(listed.ok());
  EXPECT_NE(listed.status().message().find("does not read back"), std::string::npos)
      << listed.status();
  auto replay = (*store)->BeginReplay("p1", {});
  EXPECT_FALSE(replay.ok());
  EXPECT_EQ((*store)->List("p1", 0, 1)->results.size(), 1u) << "the good one still reads";
}

TEST(DeadLetters, RemovedLettersAreRewrittenAwayOnceTheyOutweighTheLiveOnes) {
  TempDir dir;
  const std::string path = dir.path() + "/dead-letters.log";
  {
    auto store = DeadLetterStore::Open(dir.path());
    const std::string big = "[\"" + std::string(100'000, 'z') + "\"]";
    for (int i = 0; i < 30; ++i) {
      std::vector<DeadLetter> one = {Letter("p1", big)};
      ASSERT_TRUE((*store)->Add(one).ok());
    }
    std::vector<DeadLetter> keep = {Letter("p2", "[\"kept\"]")};
    ASSERT_TRUE((*store)->Add(keep).ok());
    EXPECT_EQ(*(*store)->Delete("p1", {}), 30u);
  }
  EXPECT_GT(std::filesystem::file_size(path), 3'000'000u);
  auto store = DeadLetterStore::Open(dir.path());  // 3 MB removed, a few bytes live: rewritten
  ASSERT_TRUE(store.ok());
  EXPECT_LT(std::filesystem::file_size(path), 10'000u);
  EXPECT_EQ((*store)->List("p2", 0, 10)->results.at(0).payload, "[\"kept\"]");
  std::vector<DeadLetter> more = {Letter("p2", "[\"more\"]")};
  ASSERT_TRUE((*store)->Add(more).ok());
  EXPECT_EQ((*store)->List("p2", 0, 10)->results.at(1).payload, "[\"more\"]");
}

TEST(DeadLetters, WithoutADirectoryTheyStayInMemory) {
  auto store = DeadLetterStore::Open("");
  ASSERT_TRUE(store.ok());
  std::vector<DeadLetter> letters = {Letter("p1", "1")};
  ASSERT_TRUE((*store)->Add(letters).ok());
  EXPECT_EQ((*store)->List("p1", 0, 10)->total, 1u);
}

}  // namespace
}  // namespace herald::deliver
