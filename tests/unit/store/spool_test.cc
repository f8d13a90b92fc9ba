#include "engine/store/spool.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace herald::store {
namespace {

using test_support::TempDir;

std::vector<std::pair<uint64_t, std::string>> ReadAll(const Spool& spool, uint64_t from = 0) {
  std::vector<std::pair<uint64_t, std::string>> out;
  EXPECT_TRUE(spool
                  .Read(from,
                        [&](uint64_t seq, std::string_view payload) {
                          out.emplace_back(seq, std::string(payload));
                          return true;
                        })
                  .ok());
  return out;
}

std::string Record(int i) {
  return "{\"n\":" + std::to_string(i) + ",\"pad\":\"" +
         std::string(static_cast<size_t>(i % 50), 'x') + "\"}";
}

TEST(Spool, AppendsAcrossSegmentsAndContinuesAfterReopen) {
  TempDir dir;
  const std::string path = dir.path() + "/spool";
  {
    auto spool = Spool::Open({.dir = path, .segment_bytes = 1024});
    ASSERT_TRUE(spool.ok()) << spool.status();
    for (int i = 0; i < 100; ++i) {
      const std::string r = Record(i);
      const std::string_view one[] = {r};
      auto seq = (*spool)->Append(one);
      ASSERT_TRUE(seq.ok());
      EXPECT_EQ(*seq, static_cast<uint64_t>(i) + 1);  // sequence numbers start at 1
    }
    const auto files = std::distance(std::filesystem::directory_iterator(path),
                                     std::filesystem::directory_iterator{});
    EXPECT_GT(files, 5);  // rolled over into new segments
  }
  auto spool = Spool::Open({.dir = path, .segment_bytes = 1024});
  ASSERT_TRUE(spool.ok()) << spool.status();
  EXPECT_EQ((*spool)->recovery().next_seq, 101u);
  EXPECT_EQ((*spool)->recovery().truncated_bytes, 0u);
  const auto all = ReadAll(**spool);
  ASSERT_EQ(all.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(all[i].first, static_cast<uint64_t>(i) + 1);
    EXPECT_EQ(all[i].second, Record(i));
  }
  EXPECT_EQ(ReadAll(**spool, 96).size(), 5u);
  const std::string more[] = {"a", "b"};
  const std::string_view views[] = {more[0], more[1]};
  EXPECT_EQ(*(*spool)->Append(views), 101u);
  // One record from several parts (a header and a body).
  const std::string_view parts[] = {"head|", "", "body"};
  EXPECT_EQ(*(*spool)->AppendParts(parts), 103u);
  EXPECT_EQ((*spool)->next_seq(), 104u);
  const auto tail = ReadAll(**spool, 103);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].second, "head|body");
}

TEST(Spool, ATornOrCorruptTailIsCutAndReportedNeverAGoodRecord) {
  for (const bool torn : {true, false}) {
    TempDir dir;
    const std::string path = dir.path() + "/spool";
    {
      auto spool = Spool::Open({.dir = path});
      ASSERT_TRUE(spool.ok());
      for (int i = 0; i < 10; ++i) {
        const std::string r = Record(i);
        const std::string_view one[] = {r};
        ASSERT_TRUE((*spool)->Append(one).ok());
      }
    }
    const std::string segment = path + "/00000000000000000001.seg";
    const auto size = std::filesystem::file_size(segment);
    if (torn) {
      // A crash in the middle of the last record.
      std::filesystem::resize_file(segment, size - 5);
    } else {
      // A flipped byte in the last record's payload.
      std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(size - 3));
      f.put('#');
    }
    std::vector<std::string> logged;
    auto spool =
        Spool::Open({.dir = path, .log = [&](std::string_view l) { logged.emplace_back(l); }});
    ASSERT_TRUE(spool.ok()) << spool.status();
    EXPECT_EQ((*spool)->recovery().next_seq, 10u) << torn;
    EXPECT_GT((*spool)->recovery().truncated_bytes, 0u);
    ASSERT_EQ(logged.size(), 1u);
    EXPECT_NE(logged[0].find("torn or corrupt"), std::string::npos);
    const auto all = ReadAll(**spool);
    ASSERT_EQ(all.size(), 9u);
    EXPECT_EQ(all.back().second, Record(8));
    // Appends continue right after the last good record.
    const std::string r = "next";
    const std::string_view one[] = {r};
    EXPECT_EQ(*(*spool)->Append(one), 10u);
    EXPECT_EQ(ReadAll(**spool).back(), (std::pair<uint64_t, std::string>{10, "next"}));
  }
}

TEST(Spool, CorruptionBeforeLaterSegmentsRefusesToOpen) {
  TempDir dir;
  const std::string path = dir.path() + "/spool";
  {
    auto spool = Spool::Open({.dir = path, .segment_bytes = 256});
    for (int i = 0; i < 40; ++i) {
      const std::string r = Record(i);
      const std::string_view one[] = {r};
      ASSERT_TRUE((*spool)->Append(one).ok());
    }
  }
  std::filesystem::resize_file(path + "/00000000000000000001.seg", 20);
  auto spool = Spool::Open({.dir = path});
  ASSERT_FALSE(spool.ok());
  EXPECT_EQ(spool.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(spool.status().message().find("refusing to skip records"), std::string::npos);
}

TEST(Spool, RetentionDropsOnlySegmentsEveryConsumerHasPassed) {
  TempDir dir;
  const std::string path = dir.path() + "/spool";
  auto spool = Spool::Open({.dir = path, .segment_bytes = 256});
  ASSERT_TRUE(spool.ok());
  for (int i = 0; i < 60; ++i) {
    const std::string r = Record(i);
    const std::string_view one[] = {r};
    ASSERT_TRUE((*spool)->Append(one).ok());
  }
  ASSERT_TRUE((*spool)->Retain(30).ok());
  const auto left = ReadAll(**spool);
  ASSERT_FALSE(left.empty());
  EXPECT_LE(left.front().first, 30u);  // nothing at or after 30 is gone
  EXPECT_GT(left.front().first, 1u);   // whole segments before it are
  EXPECT_EQ(left.back().first, 60u);
  EXPECT_EQ((*spool)->first_seq(), left.front().first);
  spool->reset();
  auto reopened = Spool::Open({.dir = path, .segment_bytes = 256});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->recovery().first_seq, left.front().first);
  EXPECT_EQ((*reopened)->recovery().next_seq, 61u);
}

TEST(Spool, ConcurrentAppendersShareGroupCommits) {
  TempDir dir;
  auto spool = Spool::Open({.dir = dir.path() + "/spool",
                            .durability = Spool::Durability::kAlways,
                            .segment_bytes = 4096});
  ASSERT_TRUE(spool.ok());
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> seqs(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string r = "t" + std::to_string(t) + "-" + std::to_string(i);
        const std::string_view one[] = {r};
        auto seq = (*spool)->Append(one);
        if (seq.ok()) seqs[t].push_back(*seq);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<uint64_t> all;
  for (const auto& s : seqs) {
    EXPECT_EQ(s.size(), 200u);
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i + 1);  // each number once
  EXPECT_EQ(ReadAll(**spool).size(), 800u);
}

TEST(Spool, AsynchronousAppendersAreAnsweredOnlyOnceTheirRecordIsOnDisk) {
  TempDir dir;
  auto spool = Spool::Open({.dir = dir.path() + "/spool",
                            .durability = Spool::Durability::kAlways,
                            .segment_bytes = 4096});
  ASSERT_TRUE(spool.ok());
  constexpr int kThreads = 4, kEach = 200;
  // Per append: its sequence, and what was on disk when its callback ran.
  std::vector<uint64_t> seqs(kThreads * kEach), durable_then(kThreads * kEach);
  std::atomic<int> durable{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const int k = t * kEach + i;
        const std::string r = "t" + std::to_string(t) + "-" + std::to_string(i);
        const std::string_view parts[] = {r};
        auto seq = (*spool)->AppendParts(parts, [&, k](absl::Status s) {
          durable_then[k] = (*spool)->durable_seq();
          (s.ok() ? durable : failed).fetch_add(1);
        });
        ASSERT_TRUE(seq.ok());
        seqs[k] = *seq;
      }
    });
  }
  for (auto& t : threads) t.join();
  (*spool)->Flush();  // returns after every callback ran
  EXPECT_EQ(durable.load(), kThreads * kEach);
  EXPECT_EQ(failed.load(), 0);
  for (int k = 0; k < kThreads * kEach; ++k) {
    EXPECT_GT(durable_then[k], seqs[k]) << "answered before record " << seqs[k] << " was synced";
  }
  EXPECT_EQ(ReadAll(**spool).size(), 800u);
}

// The first fdatasync fails (EIO) only once a second appender's record is written behind it, as a
// lost writeback would: both appenders must hear of it, and the spool must take nothing more.
std::atomic<Spool*> g_failing_spool{nullptr};
std::atomic<int> g_sync_calls{0};
int FailFirstSyncOnceSecondRecordIsWritten(int fd) {
  if (g_sync_calls.fetch_add(1) > 0) return ::fdatasync(fd);  // a later one would "succeed"
  while (g_failing_spool.load()->next_seq() < 3) std::this_thread::yield();
  errno = EIO;
  return -1;
}

TEST(Spool, AFailedFdatasyncFailsEveryRecordItMayHaveLostAndRefusesLaterAppends) {
  TempDir dir;
  auto spool = Spool::Open({.dir = dir.path() + "/spool",
                            .durability = Spool::Durability::kAlways,
                            .sync = &FailFirstSyncOnceSecondRecordIsWritten});
  ASSERT_TRUE(spool.ok());
  g_failing_spool = spool->get();
  g_sync_calls = 0;
  absl::StatusOr<uint64_t> first, second;
  std::thread a([&] {
    const std::string_view one[] = {"first"};
    first = (*spool)->Append(one);
  });
  while ((*spool)->next_seq() < 2) std::this_thread::yield();  // record 1 written, syncing
  std::thread b([&] {
    const std::string_view one[] = {"second"};
    second = (*spool)->Append(one);
  });
  a.join();
  b.join();
  EXPECT_FALSE(first.ok());
  EXPECT_NE(first.status().message().find("fdatasync"), std::string::npos) << first.status();
  EXPECT_FALSE(second.ok()) << "record 2 was written before the failed fdatasync: it may be lost";
  const std::string_view third[] = {"third"};
  auto later = (*spool)->Append(third);
  ASSERT_FALSE(later.ok());
  EXPECT_NE(later.status().message().find("restart heraldd"), std::string::npos) << later.status();
  EXPECT_EQ(g_sync_calls.load(), 1) << "no fdatasync after a failed one may count as proof";
  g_failing_spool = nullptr;
}

TEST(Spool, AnUnwritableDirectoryIsAClearError) {
  if (geteuid() == 0) {
    // root writes anywhere: use a path under a regular file instead.
    TempDir dir;
    std::ofstream(dir.path() + "/file") << "x";
    auto spool = Spool::Open({.dir = dir.path() + "/file/spool"});
    ASSERT_FALSE(spool.ok());
    EXPECT_NE(spool.status().message().find("spool"), std::string::npos) << spool.status();
    return;
  }
  auto spool = Spool::Open({.dir = "/proc/herald-spool"});
  ASSERT_FALSE(spool.ok());
}

}  // namespace
}  // namespace herald::store
