// The index against a plainly written reference matcher (DESIGN §2), on randomized subscriptions
// and events across every channel: overlapping criteria, groups, shared profiles, updates,
// deletes and re-adds, both fan-out modes, small fold thresholds so that events hit the base
// snapshot, the overlay and their combination — and routers running while changes are published.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "engine/index/index_manager.h"
#include "engine/index/matcher.h"
#include "gtest/gtest.h"

namespace herald::index {
namespace {

std::shared_ptr<const Catalog> LoadCatalog() {
  auto catalog = Catalog::Load("configs/catalog.json");
  EXPECT_TRUE(catalog.ok()) << catalog.status();
  return *catalog;
}

struct RefSub {
  Subscription s;
  uint64_t created;
};

struct Event {
  int channel;
  int event;
  std::string app, entity, resource, user;
};

// --- the reference: a direct transcription of DESIGN §2 --------------------------------------
bool RefMatches(const RefSub& r, const Catalog& catalog, const Event& e, int* spec) {
  const Subscription& s = r.s;
  if (catalog.FindChannel(s.channel) != e.channel) return false;
  const std::string& ev = catalog.channels()[e.channel].events[e.event].event;
  if (!s.events.empty() && std::find(s.events.begin(), s.events.end(), ev) == s.events.end()) {
    return false;
  }
  int halves = 0;
  if (!s.criteria.empty()) {
    int best = -1;
    for (const auto& c : s.criteria) {
      const bool app_ok = !c.application_id || *c.application_id == e.app;
      const bool ent_ok = !c.entity_id || *c.entity_id == e.entity;
      if (app_ok && ent_ok) {
        best = std::max(best, int{c.application_id.has_value()} + int{c.entity_id.has_value()});
      }
    }
    if (best < 0) return false;
    halves = best;
  }
  if (!s.resources.empty() &&
      std::find(s.resources.begin(), s.resources.end(), e.resource) == s.resources.end()) {
    return false;
  }
  if (!s.users.empty() && std::find(s.users.begin(), s.users.end(), e.user) == s.users.end()) {
    return false;
  }
  *spec = int{!s.events.empty()} + halves + int{!s.resources.empty()} + int{!s.users.empty()};
  return true;
}

std::vector<std::string> RefRoute(const std::map<std::string, RefSub>& subs, const Catalog& catalog,
                                  const Event& e, bool all) {
  struct M {
    const RefSub* r;
    int spec;
  };
  auto better = [](const M& a, const M& b) {
    if (a.spec != b.spec) return a.spec > b.spec;
    if (a.r->created != b.r->created) return a.r->created < b.r->created;
    return a.r->s.subscription_id < b.r->s.subscription_id;
  };
  std::vector<M> matches;
  for (const auto& [id, r] : subs) {
    int spec;
    if (RefMatches(r, catalog, e, &spec)) matches.push_back({&r, spec});
  }
  if (!all) {
    std::map<std::string, M> per_group;
    for (const M& m : matches) {
      auto [it, inserted] = per_group.try_emplace(m.r->s.group, m);
      if (!inserted && better(m, it->second)) it->second = m;
    }
    matches.clear();
    for (auto& [g, m] : per_group) matches.push_back(m);
  }
  std::map<std::string, M> per_profile;
  for (const M& m : matches) {
    auto [it, inserted] = per_profile.try_emplace(m.r->s.profile_id, m);
    if (!inserted && better(m, it->second)) it->second = m;
  }
  std::vector<std::string> ids;
  for (auto& [p, m] : per_profile) ids.push_back(m.r->s.subscription_id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// --- random data with deliberate overlap --------------------------------------------------------
class World {
 public:
  explicit World(std::shared_ptr<const Catalog> catalog, uint64_t seed)
      : catalog_(std::move(catalog)), rng_(seed) {
    for (int p = 0; p < 8; ++p) {
      queues_.push_back(
          std::make_unique<dispatch::ProfileQueue>("p" + std::to_string(p), 10, 1000));
    }
  }

  std::string Pick(const char* prefix, int n) {
    return prefix + std::to_string(std::uniform_int_distribution<int>(0, n - 1)(rng_));
  }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  Subscription RandomSubscription(const std::string& id) {
    Subscription s;
    s.subscription_id = id;
    // Most subscriptions on a few channels so they overlap; the rest anywhere.
    const int channels = static_cast<int>(catalog_->channels().size());
    const int c = Chance(0.7) ? Uniform(0, 2) + 7 : Uniform(0, channels - 1);  // RCS, SMS, MMS
    const ChannelInfo& ch = catalog_->channels()[c];
    s.channel = (!ch.aliases.empty() && Chance(0.5)) ? ch.aliases[0] : ch.channel;
    if (Chance(0.5)) {
      const int n = Uniform(1, 3);
      for (int i = 0; i < n; ++i) {
        s.events.push_back(ch.events[Uniform(0, static_cast<int>(ch.events.size()) - 1)].event);
      }
    }
    if (Chance(0.5)) {
      const int n = Uniform(1, 3);
      for (int i = 0; i < n; ++i) {
        Criterion cr;
        const int shape = Uniform(0, 2);
        if (shape != 1) cr.application_id = Pick("a", 4);
        if (shape != 0) cr.entity_id = Pick("e", 4);
        s.criteria.push_back(cr);
      }
    }
    if (Chance(0.3)) {
      s.resources.push_back(Pick("r", 3));
      if (Chance(0.3)) s.resources.push_back(Pick("r", 3));
    }
    if (Chance(0.2)) s.users.push_back(Pick("u", 3));
    s.group = Chance(0.5) ? "" : Pick("g", 3);
    s.profile_id = Pick("p", 8);
    return s;
  }

  Event RandomEvent() {
    Event e;
    const int channels = static_cast<int>(catalog_->channels().size());
    e.channel = Chance(0.7) ? Uniform(0, 2) + 7 : Uniform(0, channels - 1);
    const auto& events = catalog_->channels()[e.channel].events;
    e.event = Chance(0.6) ? 0 : Uniform(0, static_cast<int>(events.size()) - 1);
    if (Chance(0.8)) e.app = Pick("a", 5);  // a4 never appears in a subscription: misses
    if (Chance(0.7)) e.entity = Pick("e", 5);
    if (Chance(0.7)) e.resource = Pick("r", 4);
    if (Chance(0.6)) e.user = Pick("u", 4);
    return e;
  }

  RouteKeys Keys(const Event& e) const {
    RouteKeys k;
    k.pair_id = catalog_->channels()[e.channel].events[e.event].pair_id;
    k.channel = static_cast<uint16_t>(e.channel);
    k.event_index = static_cast<uint16_t>(e.event);
    k.app = e.app;
    k.entity = e.entity;
    k.resource = e.resource;
    k.user = e.user;
    k.Hash();
    return k;
  }

  // Applies a random change to both the reference and the index; returns its sequence.
  uint64_t Mutate(IndexManager& index) {
    const int op = Uniform(0, 9);
    if (op < 4 || live_.empty()) {  // create, or re-add a deleted id
      std::string id = (!deleted_.empty() && Chance(0.5)) ? TakeDeleted() : NewId();
      return Create(index, RandomSubscription(id));
    }
    auto it = live_.begin();
    std::advance(it, Uniform(0, static_cast<int>(live_.size()) - 1));
    if (op < 7) {  // update in place: creation order is kept
      Subscription s = RandomSubscription(it->first);
      SubRef before = compiled_[it->first];
      SubRef after = Compile(s, before->created_seq);
      it->second.s = s;
      compiled_[it->first] = after;
      return index.Commit(before, after);
    }
    SubRef before = compiled_[it->first];  // delete
    deleted_.push_back(it->first);
    compiled_.erase(it->first);
    live_.erase(it);
    return index.Commit(before, {});
  }

  // `n` random subscriptions, published; returns the last sequence.
  uint64_t Seed(IndexManager& index, int n) {
    uint64_t seq = 0;
    for (int i = 0; i < n; ++i) seq = Create(index, RandomSubscription("init" + std::to_string(i)));
    index.WaitPublished(seq);
    return seq;
  }

  uint64_t Create(IndexManager& index, Subscription s) {
    const uint64_t created = next_created_++;
    SubRef c = Compile(s, created);
    live_[s.subscription_id] = RefSub{s, created};
    compiled_[s.subscription_id] = c;
    return index.Commit({}, c);
  }

  const std::map<std::string, RefSub>& live() const { return live_; }
  const Catalog& catalog() const { return *catalog_; }

 private:
  SubRef Compile(const Subscription& s, uint64_t created) {
    auto [it, inserted] = groups_.try_emplace(s.group, static_cast<uint32_t>(groups_.size()));
    const int p = std::stoi(s.profile_id.substr(1));
    return herald::index::Compile(s, *catalog_, next_uid_++, created, it->second, queues_[p].get());
  }
  std::string NewId() { return "s" + std::to_string(next_id_++); }
  std::string TakeDeleted() {
    const size_t i = static_cast<size_t>(Uniform(0, static_cast<int>(deleted_.size()) - 1));
    std::string id = deleted_[i];
    deleted_.erase(deleted_.begin() + static_cast<long>(i));
    return id;
  }

  std::shared_ptr<const Catalog> catalog_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<dispatch::ProfileQueue>> queues_;
  std::map<std::string, RefSub> live_;
  std::map<std::string, SubRef> compiled_;
  std::map<std::string, uint32_t> groups_;
  std::vector<std::string> deleted_;
  uint64_t next_created_ = 1, next_uid_ = 1, next_id_ = 0;
};

std::vector<std::string> Ids(std::span<const CompiledSubscription* const> winners) {
  std::vector<std::string> ids;
  for (const auto* w : winners) ids.push_back(w->subscription_id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string Describe(const Event& e, const Catalog& catalog) {
  return catalog.channels()[e.channel].channel + "/" +
         catalog.channels()[e.channel].events[e.event].event + " app=" + e.app +
         " entity=" + e.entity + " resource=" + e.resource + " user=" + e.user;
}

IndexManager::Options SmallFolds() {
  IndexManager::Options o;
  o.publish_interval = std::chrono::milliseconds(0);
  o.fold_min_changes = 48;  // fold often: events see base, overlay and both
  o.idle_fold_after = std::chrono::milliseconds(20);
  return o;
}

TEST(IndexProperty, MatchesReferenceOnRandomizedCases) {
  auto catalog = LoadCatalog();
  World world(catalog, 20261125);
  IndexManager index(catalog, SmallFolds());
  uint64_t seq = world.Seed(index, 400);

  Matcher matcher;
  constexpr int kCases = 120'000;
  int nonempty = 0, multi = 0;
  for (int i = 0; i < kCases; ++i) {
    if (i % 40 == 0) {
      const int changes = world.Uniform(1, 4);
      for (int c = 0; c < changes; ++c) seq = world.Mutate(index);
      index.WaitPublished(seq);
    }
    const Event e = world.RandomEvent();
    const bool all = (i & 1) != 0;
    auto state = index.Load();
    const auto got = Ids(matcher.Route(*state, world.Keys(e), all));
    const auto want = RefRoute(world.live(), world.catalog(), e, all);
    ASSERT_EQ(got, want) << "case " << i << (all ? " fanout=all " : " fanout=group ")
                         << Describe(e, world.catalog());
    nonempty += !want.empty();
    multi += want.size() > 1;
  }
  // The generator must exercise the interesting paths, not just misses.
  EXPECT_GT(nonempty, kCases / 4);
  EXPECT_GT(multi, kCases / 50);
  EXPECT_GT(index.snapshot_builds(), 5u);
}

TEST(IndexProperty, RoutersSeeConsistentStatesWhilePublishing) {
  auto catalog = LoadCatalog();
  World world(catalog, 7);
  IndexManager index(catalog, SmallFolds());
  uint64_t seq = world.Seed(index, 300);

  // The reference set after every change, by sequence.
  std::map<uint64_t, std::map<std::string, RefSub>> history;
  history[seq] = world.live();

  struct Observation {
    uint64_t version;
    Event event;
    bool all;
    std::vector<std::string> got;
  };
  constexpr int kRouters = 3, kPerRouter = 6000;
  std::vector<std::vector<Observation>> seen(kRouters);
  std::atomic<bool> start{false};
  std::vector<std::thread> routers;
  for (int r = 0; r < kRouters; ++r) {
    routers.emplace_back([&, r] {
      World events(catalog, 1000 + static_cast<uint64_t>(r));
      Matcher matcher;
      while (!start.load()) std::this_thread::yield();
      for (int i = 0; i < kPerRouter; ++i) {
        auto state = index.Load();
        const Event e = events.RandomEvent();
        const bool all = (i % 3) == 0;
        seen[r].push_back(
            {state->version, e, all, Ids(matcher.Route(*state, events.Keys(e), all))});
      }
    });
  }
  start.store(true);
  for (int i = 0; i < 1500; ++i) {
    seq = world.Mutate(index);
    history[seq] = world.live();
    if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (auto& t : routers) t.join();

  size_t checked = 0;
  std::set<uint64_t> versions;
  for (const auto& obs : seen) {
    for (const auto& o : obs) {
      auto it = history.find(o.version);
      ASSERT_NE(it, history.end()) << "published a version that was never committed";
      ASSERT_EQ(o.got, RefRoute(it->second, *catalog, o.event, o.all))
          << "version " << o.version << " " << Describe(o.event, *catalog);
      versions.insert(o.version);
      ++checked;
    }
  }
  EXPECT_EQ(checked, size_t{kRouters * kPerRouter});
  EXPECT_GT(versions.size(), 3u) << "routers should have observed several published states";
}

}  // namespace
}  // namespace herald::index
