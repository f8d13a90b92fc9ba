// The immutable routing index (DESIGN §2 "Index"). A snapshot maps the 64-bit fingerprints of
// routing tuples through a minimal perfect hash to flat candidate ranges (CSR: offsets + entries).
// A lookup verifies the stored fingerprint so non-members miss; candidates are then fully
// verified (Matches) so a fingerprint collision can never change a routing decision.
//
// Recent changes live in a small Overlay (adds + tombstones) published together with the
// snapshot as one IndexState; the IndexManager folds the overlay into a new snapshot in the
// background. All three are immutable once published and shared by any number of routers.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "engine/common/mphf.h"
#include "engine/index/compiled_subscription.h"
#include "herald/catalog.h"

namespace herald::index {

using Candidates = std::span<const CompiledSubscription* const>;

// Which anchor kinds exist, per pair (specific events) and per channel (every-event
// subscriptions): lets a router skip probes that cannot hit. Bit = Kind.
struct KindMasks {
  std::vector<uint8_t> pair;
  std::vector<uint8_t> channel;
  void Init(const Catalog& catalog) {
    pair.assign(catalog.pair_count(), 0);
    channel.assign(catalog.channels().size(), 0);
  }
  void Add(Kind kind, bool any_event, uint32_t id) {
    (any_event ? channel : pair)[id] |= static_cast<uint8_t>(1u << kind);
  }
};

class Snapshot {
 public:
  static std::shared_ptr<const Snapshot> Build(std::vector<SubRef> subscriptions,
                                               const Catalog& catalog, uint64_t version);

  // Up to 16 fingerprints at once, with the memory loads of all probes overlapped.
  static constexpr int kMaxProbes = 16;
  void FindMany(const uint64_t* fingerprints, int n, Candidates* out) const;

  uint64_t version() const { return version_; }
  size_t subscription_count() const { return owned_.size(); }
  size_t key_count() const { return slots_.size(); }
  const KindMasks& masks() const { return masks_; }
  // Bytes of the index proper (hash, fingerprints, offsets, entries), excluding the subscriptions.
  size_t IndexBytes() const;

 private:
  uint64_t version_ = 0;
  Mphf mphf_;
  // One cache line holds a slot's fingerprint and its candidate range together.
  struct Slot {
    uint64_t fingerprint;
    uint32_t begin;
    uint32_t end;
  };
  std::vector<Slot> slots_;
  std::vector<const CompiledSubscription*> entries_;
  std::vector<SubRef> owned_;
  KindMasks masks_;
};

class Overlay {
 public:
  struct Change {
    uint64_t seq = 0;
    SubRef before;  // empty on create
    SubRef after;   // empty on delete
  };
  // Applies `changes` (in commit order) on top of a base snapshot.
  static std::shared_ptr<const Overlay> Build(const std::vector<Change>& changes,
                                              const Catalog& catalog);

  bool empty() const { return removed_.empty() && added_.empty(); }
  bool has_removals() const { return !removed_.empty(); }
  bool Removed(uint64_t uid) const { return removed_.contains(uid); }
  Candidates Find(uint64_t fingerprint) const {
    auto it = added_.find(fingerprint);
    return it == added_.end() ? Candidates() : Candidates(it->second);
  }
  const KindMasks& masks() const { return masks_; }
  size_t added_count() const { return owned_.size(); }

 private:
  absl::flat_hash_set<uint64_t> removed_;  // uids of base subscriptions superseded
  absl::flat_hash_map<uint64_t, std::vector<const CompiledSubscription*>> added_;
  std::vector<SubRef> owned_;
  KindMasks masks_;
};

struct IndexState {
  std::shared_ptr<const Snapshot> base;
  std::shared_ptr<const Overlay> overlay;
  uint64_t version = 0;  // every change with seq <= version is visible
};

}  // namespace herald::index
