#include "engine/index/snapshot.h"

#include <algorithm>

#include "engine/common/assert.h"

namespace herald::index {

std::shared_ptr<const Snapshot> Snapshot::Build(std::vector<SubRef> subscriptions,
                                                const Catalog& catalog, uint64_t version) {
  auto snap = std::make_shared<Snapshot>();
  snap->version_ = version;
  snap->masks_.Init(catalog);

  struct KeyEntry {
    uint64_t fingerprint;
    const CompiledSubscription* subscription;
  };
  std::vector<KeyEntry> keys;
  keys.reserve(subscriptions.size() + subscriptions.size() / 2);
  for (const auto& s : subscriptions) {
    ForEachKey(*s, catalog, [&](uint64_t fp, Kind kind, bool any, uint32_t id) {
      keys.push_back({fp, s.get()});
      snap->masks_.Add(kind, any, id);
    });
  }
  // Candidates of one key keep creation order, so group winners are found in a stable order.
  std::sort(keys.begin(), keys.end(), [](const KeyEntry& a, const KeyEntry& b) {
    return a.fingerprint != b.fingerprint
               ? a.fingerprint < b.fingerprint
               : a.subscription->created_seq < b.subscription->created_seq;
  });
  std::vector<uint64_t> unique;
  unique.reserve(keys.size());
  for (const auto& k : keys) {
    if (unique.empty() || unique.back() != k.fingerprint) unique.push_back(k.fingerprint);
  }
  HERALD_CHECK(snap->mphf_.Build(unique).ok());

  const size_t n = unique.size();
  snap->slots_.resize(n);
  std::vector<uint32_t> slot_of(n);
  for (size_t i = 0; i < n; ++i) {
    slot_of[i] = static_cast<uint32_t>(snap->mphf_.Lookup(unique[i]));
    snap->slots_[slot_of[i]].fingerprint = unique[i];
  }
  // Lay candidates out in slot order: count per slot, prefix-sum, then fill.
  std::vector<uint32_t> start(n + 1, 0);
  for (size_t i = 0, u = 0; i < keys.size(); ++u) {
    size_t j = i;
    while (j < keys.size() && keys[j].fingerprint == keys[i].fingerprint) ++j;
    start[slot_of[u] + 1] = static_cast<uint32_t>(j - i);
    i = j;
  }
  for (size_t s = 0; s < n; ++s) start[s + 1] += start[s];
  for (size_t s = 0; s < n; ++s) {
    snap->slots_[s].begin = start[s];
    snap->slots_[s].end = start[s + 1];
  }
  snap->entries_.resize(keys.size());
  for (size_t i = 0, u = 0; i < keys.size(); ++u) {
    uint32_t out = start[slot_of[u]];
    const uint64_t fp = keys[i].fingerprint;
    while (i < keys.size() && keys[i].fingerprint == fp)
      snap->entries_[out++] = keys[i++].subscription;
  }
  snap->owned_ = std::move(subscriptions);
  return snap;
}

void Snapshot::FindMany(const uint64_t* fps, int n, Candidates* out) const {
  HERALD_ASSERT(n <= kMaxProbes);
  if (slots_.empty()) {
    for (int i = 0; i < n; ++i) out[i] = Candidates();
    return;
  }
  // Three passes so the loads of all probes overlap: pilots, then slots, then candidates.
  Mphf::Probe probes[kMaxProbes];
  for (int i = 0; i < n; ++i) probes[i] = mphf_.Prepare(fps[i]);
  const Slot* slots[kMaxProbes];
  for (int i = 0; i < n; ++i) {
    slots[i] = &slots_[mphf_.Finish(probes[i])];
    __builtin_prefetch(slots[i]);
  }
  for (int i = 0; i < n; ++i) {
    const Slot& s = *slots[i];
    if (s.fingerprint != fps[i]) {
      out[i] = Candidates();
      continue;
    }
    out[i] = Candidates(entries_.data() + s.begin, s.end - s.begin);
    __builtin_prefetch(out[i].data());
  }
}

size_t Snapshot::IndexBytes() const {
  return mphf_.MemoryBytes() + slots_.capacity() * sizeof(Slot) +
         entries_.capacity() * sizeof(const CompiledSubscription*);
}

std::shared_ptr<const Overlay> Overlay::Build(const std::vector<Change>& changes,
                                              const Catalog& catalog) {
  auto overlay = std::make_shared<Overlay>();
  overlay->masks_.Init(catalog);
  absl::flat_hash_map<uint64_t, SubRef> added;
  for (const auto& c : changes) {
    if (c.before && added.erase(c.before->uid) == 0) overlay->removed_.insert(c.before->uid);
    if (c.after) added[c.after->uid] = c.after;
  }
  overlay->owned_.reserve(added.size());
  for (auto& [uid, sub] : added) overlay->owned_.push_back(std::move(sub));
  std::sort(overlay->owned_.begin(), overlay->owned_.end(),
            [](const SubRef& a, const SubRef& b) { return a->created_seq < b->created_seq; });
  for (const auto& s : overlay->owned_) {
    ForEachKey(*s, catalog, [&](uint64_t fp, Kind kind, bool any, uint32_t id) {
      overlay->added_[fp].push_back(s.get());
      overlay->masks_.Add(kind, any, id);
    });
  }
  return overlay;
}

}  // namespace herald::index
