#include "engine/index/snapshot.h"

#include <random>

#include "gtest/gtest.h"

namespace herald::index {
namespace {

TEST(Snapshot, MembersFoundNonMembersMissAndIndexIsCompact) {
  auto catalog = *Catalog::Load("configs/catalog.json");
  dispatch::ProfileQueue queue("p", 10, 1000);
  const uint32_t sms = static_cast<uint32_t>(catalog->FindChannel("SMS"));
  std::vector<SubRef> subs;
  constexpr int kSubs = 20000;
  for (int i = 0; i < kSubs; ++i) {
    Subscription s;
    s.subscription_id = "s" + std::to_string(i);
    s.channel = "SMS";
    s.events = {"DELIVERY"};
    s.criteria = {Criterion{"app" + std::to_string(i), std::nullopt}};
    s.profile_id = "p";
    subs.push_back(Compile(s, *catalog, i + 1, i + 1, 0, &queue));
  }
  auto snap = Snapshot::Build(subs, *catalog, 1);
  EXPECT_EQ(snap->subscription_count(), size_t{kSubs});
  EXPECT_EQ(snap->key_count(), size_t{kSubs});
  EXPECT_LE(snap->IndexBytes(), size_t{64} * kSubs) << "DESIGN §8: index <= 64 B/subscription";

  const uint32_t pair = catalog->channels()[sms]
                            .events[static_cast<size_t>(catalog->FindEvent(sms, "DELIVERY"))]
                            .pair_id;
  for (int i = 0; i < kSubs; i += 997) {
    uint64_t fp = KeyFingerprint(kApp, EventToken(pair), HashBytes("app" + std::to_string(i)), 0);
    Candidates found;
    snap->FindMany(&fp, 1, &found);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0]->subscription_id, "s" + std::to_string(i));
  }
  // Non-members: other values, other kinds, other events.
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10000; ++i) {
    uint64_t fps[3] = {
        KeyFingerprint(kApp, EventToken(pair), HashBytes("other" + std::to_string(i)), 0),
        KeyFingerprint(kEntity, EventToken(pair), HashBytes("app" + std::to_string(i)), 0), rng()};
    Candidates found[3];
    snap->FindMany(fps, 3, found);
    for (const auto& f : found) EXPECT_TRUE(f.empty());
  }
  EXPECT_EQ(snap->masks().pair[pair], 1u << kApp);
}

TEST(Snapshot, EmptySnapshotMissesEverything) {
  auto catalog = *Catalog::Load("configs/catalog.json");
  auto snap = Snapshot::Build({}, *catalog, 0);
  uint64_t fp = 42;
  Candidates found;
  snap->FindMany(&fp, 1, &found);
  EXPECT_TRUE(found.empty());
}

}  // namespace
}  // namespace herald::index
