#include "engine/deliver/dead_letters.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>

#include "engine/common/strings.h"
#include "engine/deliver/dead_letter_writer.h"
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
  const std::vector<uint64_t> replaces = {1};  // 1 failed again: 4 replaces it
  ASSERT_TRUE((*store)->Add(more, replaces).ok());
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

// Burials queued while the writer was busy arrive as one batch; a batch larger than max_bytes
// keeps the bound too: the stored letters go first, then the batch's own oldest, counted and
// settled (id 0) like any dropped letter.
TEST(DeadLetters, ABatchLargerThanMaxBytesKeepsTheBoundAndItsNewest) {
  TempDir dir;
  auto store =
      DeadLetterStore::Open(DeadLetterStore::Options{.dir = dir.path(), .max_bytes = 5000});
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<DeadLetter> first = {Letter("p1", "[\"" + std::string(300, 'a') + "\"]")};
  ASSERT_TRUE((*store)->Add(first).ok());
  std::vector<DeadLetter> batch;
  for (int i = 0; i < 20; ++i) {  // ~500 bytes each: about ten fit
    batch.push_back(Letter("p1", "[\"" + std::string(300, 'b' + i) + "\"]"));
  }
  ASSERT_TRUE((*store)->Add(batch).ok());
  const auto stats = (*store)->stats();
  EXPECT_LE(stats.bytes, 5000u);
  EXPECT_EQ(stats.letters + stats.dropped, 21u);
  EXPECT_GT(stats.dropped, 10u);
  EXPECT_NE(batch.back().id, 0u) << "the newest stays";
  EXPECT_EQ(batch.front().id, 0u) << "the batch's oldest went";
  const auto page = *(*store)->List("p1", 0, 100);
  ASSERT_EQ(page.results.size(), stats.letters);
  EXPECT_EQ(page.results.back().id, batch.back().id);
  EXPECT_NE(page.results.front().id, first[0].id) << "the letter stored before went first";
  // As it is on disk.
  store->reset();
  auto again =
      DeadLetterStore::Open(DeadLetterStore::Options{.dir = dir.path(), .max_bytes = 5000});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->stats().letters, stats.letters);
  EXPECT_LE((*again)->stats().bytes, 5000u);
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

// An fdatasync that waits until the test lets it go: a write held in it.
struct HeldSync {
  static inline std::mutex mu;
  static inline std::condition_variable cv;
  static inline bool hold = false, held = false;
  static inline int syncs = 0;
  static int Sync(int fd) {
    std::unique_lock lock(mu);
    ++syncs;
    held = true;
    cv.notify_all();
    cv.wait(lock, [] { return !hold; });
    held = false;
    return ::fdatasync(fd);
  }
  static void Hold() {
    std::lock_guard lock(mu);
    hold = true;
  }
  static void WaitHeld() {
    std::unique_lock lock(mu);
    cv.wait(lock, [] { return held; });
  }
  static void Release() {
    std::lock_guard lock(mu);
    hold = false;
    cv.notify_all();
  }
};

TEST(DeadLetters, ListingReplayingAndContainsNeverWaitForAWrite) {
  TempDir dir;
  auto store = DeadLetterStore::Open(dir.path(), {}, &HeldSync::Sync);
  ASSERT_TRUE(store.ok());
  std::vector<DeadLetter> first = {Letter("p1", "[1]")};
  ASSERT_TRUE((*store)->Add(first).ok());
  HeldSync::Hold();
  auto writing = std::async(std::launch::async, [&] {
    std::vector<DeadLetter> second = {Letter("p1", "[2]")};
    return (*store)->Add(second);
  });
  HeldSync::WaitHeld();  // the second Add is inside its fdatasync now
  auto reads = std::async(std::launch::async, [&] {
    const bool listed = (*store)->List("p1", 0, 10)->total == 1;
    const bool kept = (*store)->Contains(first[0].id);
    const bool replayed = (*store)->BeginReplay("p1", {first[0].id})->size() == 1;
    (*store)->EndReplay({first[0].id});
    return listed && kept && replayed;
  });
  const bool answered = reads.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  HeldSync::Release();
  ASSERT_TRUE(answered) << "a reader waited for another thread's fdatasync";
  EXPECT_TRUE(reads.get()) << "readers see the letters written before, not the one in flight";
  ASSERT_TRUE(writing.get().ok());
  EXPECT_EQ((*store)->List("p1", 0, 10)->total, 2u);
}

TEST(DeadLetters, AReplayedLetterDeletedMeanwhileIsNotWrittenBackWhenItFailsAgain) {
  TempDir dir;
  auto store = DeadLetterStore::Open(dir.path());
  std::vector<DeadLetter> letters = {Letter("p1", "[1]"), Letter("p1", "[2]")};
  ASSERT_TRUE((*store)->Add(letters).ok());
  ASSERT_EQ((*store)->BeginReplay("p1", {})->size(), 2u);
  ASSERT_EQ(*(*store)->Delete("p1", {letters[0].id}), 1u);  // the user deletes one meanwhile
  std::vector<DeadLetter> again = {Letter("p1", "[1]"), Letter("p1", "[2]")};
  const std::vector<uint64_t> replaces = {letters[0].id, letters[1].id};
  ASSERT_TRUE((*store)->Add(again, replaces).ok());  // both failed again
  EXPECT_EQ(again[0].id, 0u) << "deleted: it stays deleted";
  EXPECT_NE(again[1].id, 0u);
  const auto page = *(*store)->List("p1", 0, 10);
  ASSERT_EQ(page.total, 1u);
  EXPECT_EQ(page.results[0].payload, "[2]");
  EXPECT_FALSE((*store)->Contains(letters[1].id)) << "replaced by its new letter";
}

TEST(DeadLetters, ARunningRewriteIsAskedForAndLeavesEveryLetterReadable) {
  TempDir dir;
  const std::string path = dir.path() + "/dead-letters.log";
  std::atomic<int> asked{0};
  auto store = DeadLetterStore::Open(
      {.dir = dir.path(), .rewrite_after_bytes = 1 << 20, .compaction_due = [&] { ++asked; }});
  ASSERT_TRUE(store.ok());
  const std::string big = "[\"" + std::string(100'000, 'z') + "\"]";
  std::vector<DeadLetter> keep = {Letter("p2", "[\"kept\"]")};
  ASSERT_TRUE((*store)->Add(keep).ok());
  for (int i = 0; i < 20; ++i) {
    std::vector<DeadLetter> one = {Letter("p1", big)};
    ASSERT_TRUE((*store)->Add(one).ok());
  }
  EXPECT_EQ(*(*store)->Delete("p1", {}), 20u);
  EXPECT_GT(asked.load(), 0) << "2 MB removed, 1 MiB allowed: the owner is told";
  EXPECT_GT(std::filesystem::file_size(path), 2'000'000u) << "the store leaves the rewrite to it";
  (*store)->CompactIfDue();
  EXPECT_LT(std::filesystem::file_size(path), 10'000u);
  std::vector<DeadLetter> more = {Letter("p2", "[\"more\"]")};
  ASSERT_TRUE((*store)->Add(more).ok());
  const auto page = *(*store)->List("p2", 0, 10);
  ASSERT_EQ(page.total, 2u);
  EXPECT_EQ(page.results[0].payload, "[\"kept\"]");
  EXPECT_EQ(page.results[1].payload, "[\"more\"]");
  store->reset();
  auto reopened = DeadLetterStore::Open(dir.path());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->List("p2", 0, 10)->total, 2u);
}

TEST(DeadLetterWriter, BurialsQueuedTogetherShareOneWriteAndRunInOrder) {
  TempDir dir;
  auto store = DeadLetterStore::Open(dir.path(), {}, &HeldSync::Sync);
  ASSERT_TRUE(store.ok());
  DeadLetterWriter writer(**store);
  // The first burial holds the writer in its fdatasync while three more queue behind it.
  HeldSync::Hold();
  std::mutex mu;
  std::vector<std::string> order;
  auto note = [&](std::string what) {
    std::lock_guard lock(mu);
    order.push_back(std::move(what));
  };
  writer.Add({Letter("p1", "[0]")}, {},
             [&](const absl::Status& s, size_t n) { note(Cat("add0 ", s.ok() ? 1 : 0, " ", n)); });
  HeldSync::WaitHeld();
  for (int i = 1; i <= 3; ++i) {
    writer.Add({Letter("p1", Cat("[", i, "]"))}, {}, [&, i](const absl::Status& s, size_t n) {
      note(Cat("add", i, " ", s.ok() ? 1 : 0, " ", n));
    });
  }
  writer.Remove({1}, [&](const absl::Status& s) { note(Cat("remove ", s.ok() ? 1 : 0)); });
  writer.SetDisabled("p1", true,
                     [&](const absl::Status& s) { note(Cat("disable ", s.ok() ? 1 : 0)); });
  const auto before = std::filesystem::file_size(dir.path() + "/dead-letters.log");
  HeldSync::syncs = 0;
  HeldSync::Release();
  writer.Flush();
  EXPECT_EQ(HeldSync::syncs, 3) << "three burials in one write, then the remove, then disable";
  EXPECT_EQ(order, (std::vector<std::string>{"add0 1 1", "add1 1 1", "add2 1 1", "add3 1 1",
                                             "remove 1", "disable 1"}));
  EXPECT_GT(std::filesystem::file_size(dir.path() + "/dead-letters.log"), before);
  const auto page = *(*store)->List("p1", 0, 10);
  ASSERT_EQ(page.total, 3u) << "letter 1 removed after it was written";
  EXPECT_EQ(page.results[0].payload, "[1]");
  EXPECT_EQ((*store)->disabled(), std::vector<std::string>{"p1"});
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
