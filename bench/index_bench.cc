// The subscription index: snapshot build time and size for 10k–1M subscriptions, and lookups
// against an absl::flat_hash_map baseline holding the same fingerprint → candidates mapping.
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "bench/workload.h"
#include "engine/index/matcher.h"
#include "engine/index/snapshot.h"
#include "engine/parse/envelope_parser.h"

namespace herald::bench {
namespace {

struct Compiled {
  std::shared_ptr<const Catalog> catalog;
  std::vector<std::unique_ptr<dispatch::ProfileQueue>> queues;
  std::vector<index::SubRef> subs;
  std::vector<index::RouteKeys> keys;  // one per workload event
  Workload workload;
};

// Builds (once per size) the compiled subscriptions and the routing keys of the events.
const Compiled& Get(size_t n) {
  static std::map<size_t, std::unique_ptr<Compiled>> cache;
  auto& slot = cache[n];
  if (slot) return *slot;
  slot = std::make_unique<Compiled>();
  Compiled& c = *slot;
  c.catalog = *Catalog::Load("configs/catalog.json");
  constexpr size_t kProfiles = 1000;
  for (size_t p = 0; p < kProfiles; ++p) {
    c.queues.push_back(
        std::make_unique<dispatch::ProfileQueue>("profile-" + std::to_string(p), 1, 1));
  }
  c.workload = MakeWorkload(*c.catalog, n, kProfiles, 8192);
  for (size_t i = 0; i < n; ++i) {
    const auto& s = c.workload.subscriptions[i];
    const size_t p = std::stoul(s.profile_id.substr(8));
    c.subs.push_back(
        index::Compile(s, *c.catalog, i + 1, i + 1, s.group.empty() ? 0 : 1, c.queues[p].get()));
  }
  parse::EnvelopeParser parser;
  for (auto& e : c.workload.events) {
    std::vector<char> b(e.size() + kInputPadding);
    std::copy(e.begin(), e.end(), b.begin());
    parse::EventView v;
    parser.Parse(b.data(), e.size(), b.size(), &v);
    index::RouteKeys k;
    k.pair_id = static_cast<uint32_t>(c.catalog->PairId(v.channel, v.event));
    k.channel = static_cast<uint16_t>(c.catalog->channel_of(k.pair_id));
    k.event_index = static_cast<uint16_t>(c.catalog->event_of(k.pair_id));
    // The keys must outlive the parser's buffers: keep copies in the workload strings.
    static std::vector<std::unique_ptr<std::string>> keep;
    auto own = [&](std::string_view s) {
      keep.push_back(std::make_unique<std::string>(s));
      return std::string_view(*keep.back());
    };
    k.app = own(v.application_id);
    k.entity = own(v.entity_id);
    k.resource = own(v.resource);
    k.user = own(v.user);
    k.Hash();
    c.keys.push_back(k);
  }
  return c;
}

size_t AllInBytes(const index::Snapshot& snap, const std::vector<index::SubRef>& subs) {
  size_t bytes = snap.IndexBytes();
  for (const auto& s : subs) {
    bytes += sizeof(index::CompiledSubscription) + s->subscription_id.capacity() +
             s->profile_id.capacity() + s->channel_name.capacity() + s->group.capacity() +
             s->criteria.capacity() * sizeof(internal::CompiledCriterion) +
             s->resources.capacity() * sizeof(std::string) +
             s->users.capacity() * sizeof(std::string);
    for (const auto& c : s->criteria) bytes += c.app.capacity() + c.entity.capacity();
    for (const auto& r : s->resources) bytes += r.capacity();
    for (const auto& u : s->users) bytes += u.capacity();
  }
  return bytes;
}

void BM_SnapshotBuild(benchmark::State& state) {
  const Compiled& c = Get(static_cast<size_t>(state.range(0)));
  std::shared_ptr<const index::Snapshot> snap;
  for (auto _ : state) {
    snap = index::Snapshot::Build(c.subs, *c.catalog, 1);
    benchmark::DoNotOptimize(snap.get());
  }
  const double n = static_cast<double>(c.subs.size());
  state.counters["index_B_per_sub"] = static_cast<double>(snap->IndexBytes()) / n;
  state.counters["all_in_B_per_sub"] = static_cast<double>(AllInBytes(*snap, c.subs)) / n;
  state.counters["keys"] = static_cast<double>(snap->key_count());
}
BENCHMARK(BM_SnapshotBuild)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// The probe fingerprints of every event, as the matcher computes them.
std::vector<std::vector<uint64_t>> Probes(const Compiled& c, const index::Snapshot& snap) {
  std::vector<std::vector<uint64_t>> probes;
  for (const auto& k : c.keys) {
    std::vector<uint64_t> p;
    const uint8_t pm = snap.masks().pair[k.pair_id], cm = snap.masks().channel[k.channel];
    for (int any = 0; any < 2; ++any) {
      const uint8_t m = any ? cm : pm;
      const uint64_t t = any ? index::AnyEventToken(k.channel) : index::EventToken(k.pair_id);
      if (m & 1) p.push_back(index::KeyFingerprint(index::kPlain, t, 0, 0));
      if (m & 2) p.push_back(index::KeyFingerprint(index::kApp, t, k.app_hash, 0));
      if (m & 4) p.push_back(index::KeyFingerprint(index::kEntity, t, k.entity_hash, 0));
      if (m & 8)
        p.push_back(index::KeyFingerprint(index::kAppEntity, t, k.app_hash, k.entity_hash));
      if (m & 16) p.push_back(index::KeyFingerprint(index::kResource, t, k.resource_hash, 0));
      if (m & 32) p.push_back(index::KeyFingerprint(index::kUser, t, k.user_hash, 0));
    }
    probes.push_back(std::move(p));
  }
  return probes;
}

void BM_LookupMphf(benchmark::State& state) {
  const Compiled& c = Get(static_cast<size_t>(state.range(0)));
  auto snap = index::Snapshot::Build(c.subs, *c.catalog, 1);
  auto probes = Probes(c, *snap);
  size_t i = 0, found = 0;
  index::Candidates out[index::Snapshot::kMaxProbes];
  for (auto _ : state) {
    const auto& p = probes[i++ & 8191];
    snap->FindMany(p.data(), static_cast<int>(p.size()), out);
    for (size_t j = 0; j < p.size(); ++j) found += out[j].size();
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupMphf)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);

void BM_LookupFlatHashMap(benchmark::State& state) {
  const Compiled& c = Get(static_cast<size_t>(state.range(0)));
  auto snap = index::Snapshot::Build(c.subs, *c.catalog, 1);
  absl::flat_hash_map<uint64_t, std::vector<const index::CompiledSubscription*>> map;
  for (const auto& s : c.subs) {
    index::ForEachKey(*s, *c.catalog, [&](uint64_t fp, index::Kind, bool, uint32_t) {
      map[fp].push_back(s.get());
    });
  }
  auto probes = Probes(c, *snap);
  size_t i = 0, found = 0;
  for (auto _ : state) {
    const auto& p = probes[i++ & 8191];
    for (uint64_t fp : p) {
      auto it = map.find(fp);
      if (it != map.end()) found += it->second.size();
    }
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupFlatHashMap)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);

// Probes + verification + group selection: the whole match step.
void BM_Match(benchmark::State& state) {
  const Compiled& c = Get(static_cast<size_t>(state.range(0)));
  index::IndexState st;
  st.base = index::Snapshot::Build(c.subs, *c.catalog, 1);
  index::Matcher matcher;
  size_t i = 0, winners = 0;
  for (auto _ : state) winners += matcher.Route(st, c.keys[i++ & 8191], false).size();
  state.counters["winners_per_event"] =
      static_cast<double>(winners) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Match)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);

}  // namespace
}  // namespace herald::bench

BENCHMARK_MAIN();
