// Tests of the in-house minimal perfect hash (engine/common/mphf.h) and the string helpers
// (engine/common/strings.h). The MPHF is checked as a bijection from the key set onto [0, n) for
// sizes from empty to 100k, on random keys and on structured keys that stress a weak hash.
#include "engine/common/mphf.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/common/strings.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

std::vector<uint64_t> RandomDistinctKeys(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> keys;
  while (keys.size() < n) {
    while (keys.size() < n) keys.push_back(rng());
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  }
  std::shuffle(keys.begin(), keys.end(), rng);
  return keys;
}

// Every key maps into [0, n) and no two keys share a slot: with n keys that is a bijection.
void ExpectBijection(const Mphf& mphf, const std::vector<uint64_t>& keys) {
  ASSERT_EQ(mphf.size(), keys.size());
  std::vector<bool> taken(keys.size(), false);
  for (uint64_t key : keys) {
    const uint64_t slot = mphf.Lookup(key);
    ASSERT_LT(slot, keys.size()) << "key " << key;
    ASSERT_FALSE(taken[slot]) << "slot " << slot << " reached twice (key " << key << ")";
    taken[slot] = true;
  }
}

class MphfSizes : public testing::TestWithParam<size_t> {};

TEST_P(MphfSizes, RandomKeysMapBijectivelyOntoZeroToN) {
  const size_t n = GetParam();
  const std::vector<uint64_t> keys = RandomDistinctKeys(n, 0x1234 + n);
  Mphf mphf;
  ASSERT_TRUE(mphf.Build(keys).ok());
  ExpectBijection(mphf, keys);
}

TEST_P(MphfSizes, NonMembersStillAnswerASlotInRange) {
  const size_t n = GetParam();
  const std::vector<uint64_t> keys = RandomDistinctKeys(n, 0x9876 + n);
  Mphf mphf;
  ASSERT_TRUE(mphf.Build(keys).ok());
  std::mt19937_64 rng(42);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t slot = mphf.Lookup(rng());
    if (n == 0) {
      EXPECT_EQ(slot, 0u) << "an empty function answers 0";
    } else {
      EXPECT_LT(slot, n);
    }
  }
}

TEST_P(MphfSizes, StructuredKeysMapBijectively) {
  const size_t n = GetParam();
  // Sequential keys, keys that differ only in their high bits, and multiples of a large power of
  // two: a hash that ignores some input bits would collide on one of these.
  std::vector<uint64_t> sequential, high_bits, strided;
  for (uint64_t i = 0; i < n; ++i) {
    sequential.push_back(i);
    high_bits.push_back(i << 44);
    strided.push_back(i * (uint64_t{1} << 20) + 0xabcdef);
  }
  for (const auto* keys : {&sequential, &high_bits, &strided}) {
    Mphf mphf;
    ASSERT_TRUE(mphf.Build(*keys).ok());
    ExpectBijection(mphf, *keys);
  }
}

INSTANTIATE_TEST_SUITE_P(Mphf, MphfSizes, testing::Values(0, 1, 2, 3, 10, 1000, 100000),
                         [](const testing::TestParamInfo<size_t>& info) {
                           return "n" + std::to_string(info.param);
                         });

TEST(Mphf, EmptyBuildSucceeds) {
  Mphf mphf;
  ASSERT_TRUE(mphf.Build({}).ok());
  EXPECT_EQ(mphf.size(), 0u);
}

TEST(Mphf, ExtremeKeyValues) {
  const std::vector<uint64_t> keys = {0, 1, std::numeric_limits<uint64_t>::max(),
                                      std::numeric_limits<uint64_t>::max() - 1, uint64_t{1} << 63};
  Mphf mphf;
  ASSERT_TRUE(mphf.Build(keys).ok());
  ExpectBijection(mphf, keys);
}

TEST(Mphf, DuplicateKeysAreRejected) {
  std::vector<uint64_t> with_duplicate = RandomDistinctKeys(1000, 7);
  with_duplicate.push_back(with_duplicate[500]);
  const std::vector<std::vector<uint64_t>> cases = {{7, 7}, {1, 2, 1}, {0, 0, 0}, with_duplicate};
  for (const auto& keys : cases) {
    Mphf mphf;
    const absl::Status status = mphf.Build(keys);
    EXPECT_FALSE(status.ok()) << "keys.size() = " << keys.size();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  }
}

TEST(Mphf, RebuildReplacesThePreviousKeySet) {
  Mphf mphf;
  ASSERT_TRUE(mphf.Build(RandomDistinctKeys(5000, 1)).ok());
  const std::vector<uint64_t> small = RandomDistinctKeys(17, 2);
  ASSERT_TRUE(mphf.Build(small).ok());
  ExpectBijection(mphf, small);

  // A failed build does not poison the object either.
  ASSERT_FALSE(mphf.Build(std::vector<uint64_t>{3, 3}).ok());
  const std::vector<uint64_t> again = RandomDistinctKeys(300, 3);
  ASSERT_TRUE(mphf.Build(again).ok());
  ExpectBijection(mphf, again);
}

TEST(Mphf, UsesFewerThanEightBytesPerKey) {
  constexpr size_t kKeys = 100000;
  Mphf mphf;
  ASSERT_TRUE(mphf.Build(RandomDistinctKeys(kKeys, 99)).ok());
  EXPECT_GT(mphf.MemoryBytes(), 0u);
  EXPECT_LT(mphf.MemoryBytes(), 8 * kKeys)
      << "bytes per key: " << static_cast<double>(mphf.MemoryBytes()) / kKeys;
}

TEST(Cat, EmptyIsEmpty) { EXPECT_EQ(Cat(), ""); }

TEST(Cat, ConcatenatesEveryStringKind) {
  const std::string s = "b";
  const std::string_view sv = "c";
  const absl::string_view av = "d";
  EXPECT_EQ(Cat("a", s, sv, av, 'e'), "abcde");
  EXPECT_EQ(Cat(std::string_view("x\0y", 3)), std::string("x\0y", 3)) << "embedded NUL kept";
}

TEST(Cat, FormatsNumbersInDecimal) {
  EXPECT_EQ(Cat(0), "0");
  EXPECT_EQ(Cat(-17), "-17");
  EXPECT_EQ(Cat("n=", size_t{42}, ", m=", 7u), "n=42, m=7");
  EXPECT_EQ(Cat(std::numeric_limits<int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(Cat(std::numeric_limits<uint64_t>::max()), "18446744073709551615");
  // uint8_t is a number, not a character (as in absl::StrCat).
  EXPECT_EQ(Cat(uint8_t{7}), "7");
}

TEST(Cat, StringViewConversionsKeepTheSameBytes) {
  const std::string text = "routing";
  const absl::string_view a = ToAbsl(text);
  EXPECT_EQ(a.data(), text.data());
  EXPECT_EQ(a.size(), text.size());
  const std::string_view s = ToStd(a);
  EXPECT_EQ(s.data(), text.data());
  EXPECT_EQ(s.size(), text.size());
}

}  // namespace
}  // namespace herald
