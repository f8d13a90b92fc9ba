#include "engine/common/append_file.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/failing_sync.h"
#include "tests/testing/temp_dir.h"

namespace herald {
namespace {

using test_support::TempDir;

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AppendFile, AppendsAfterWhatIsThereAndTruncatesOnlyWhenAsked) {
  TempDir dir;
  const std::string path = dir.path() + "/log";
  {
    auto file = AppendFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE(file->Append("one\n").ok());
  }
  {
    auto file = AppendFile::Open(path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(file->Append("two\n", /*sync=*/false).ok());
  }
  EXPECT_EQ(Contents(path), "one\ntwo\n");
  auto file = AppendFile::Open(path, /*truncate=*/true);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(file->Append("three\n").ok());
  EXPECT_EQ(Contents(path), "three\n");
}

TEST(AppendFile, AFailedFdatasyncTakesTheWriteBackAndRefusesEveryLaterOne) {
  TempDir dir;
  const std::string path = dir.path() + "/log";
  auto file = AppendFile::Open(path, false, &test_support::SyncThatFailsOnDemand);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(file->Append("kept\n").ok());
  test_support::fail_next_sync = true;
  const absl::Status failed = file->Append("lost\n");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("fdatasync"), std::string::npos) << failed;
  EXPECT_EQ(Contents(path), "kept\n") << "a write answered with an error must not stay behind";
  // The next fdatasync would succeed, and prove nothing about the pages the failed one lost.
  const absl::Status later = file->Append("after\n");
  ASSERT_FALSE(later.ok());
  EXPECT_NE(later.message().find("until heraldd restarts"), std::string::npos) << later;
  EXPECT_FALSE(file->Sync().ok());
  EXPECT_EQ(Contents(path), "kept\n");
  // A restart (a fresh open) writes again.
  auto reopened = AppendFile::Open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE(reopened->Append("again\n").ok());
  EXPECT_EQ(Contents(path), "kept\nagain\n");
}

TEST(AppendFile, AFullDeviceIsAnErrorAndAnUndoableWriteStopsTheFile) {
  // /dev/full fails every write with ENOSPC and cannot be truncated: the torn write cannot be
  // cut back, so nothing more may be written after it.
  auto file = AppendFile::Open("/dev/full");
  if (!file.ok()) GTEST_SKIP() << file.status();
  const absl::Status full = file->Append("x");
  ASSERT_FALSE(full.ok());
  const absl::Status after = file->Append("y");
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.message().find("could not be undone"), std::string::npos) << after;
}

TEST(AppendFile, AnUnopenablePathIsAClearError) {
  auto file = AppendFile::Open("/nonexistent-dir/for/sure/log");
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("/nonexistent-dir/for/sure/log"), std::string::npos);
}

}  // namespace
}  // namespace herald
