// A subscription compiled for matching: canonical channel, event bitset, criteria with hashes,
// its group and its profile's queue. Immutable and reference-counted: the index snapshot, the
// overlay and every queued Notification hold references, so an update or delete never pulls a
// subscription out from under a router or a consumer.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/common/hash.h"
#include "engine/dispatch/profile_queue.h"
#include "engine/dispatch/route_handle.h"
#include "herald/catalog.h"
#include "herald/subscription.h"

namespace herald::internal {

struct CompiledCriterion {
  bool has_app = false;
  bool has_entity = false;
  uint64_t app_hash = 0;
  uint64_t entity_hash = 0;
  std::string app;
  std::string entity;
};

// The handle part (names, queue, reference count) is what notifications keep.
struct CompiledSubscription : RouteHandle {
  alignas(64) uint64_t uid = 0;  // unique per version: an update makes a new one
  uint64_t created_seq = 0;      // creation order, kept across updates (tie-break)
  uint16_t channel = 0;
  bool events_any = true;
  uint64_t event_bits[2] = {0, 0};
  uint32_t group_id = 0;  // interned group name
  std::vector<CompiledCriterion> criteria;
  std::vector<std::string> resources;
  std::vector<std::string> users;
  std::string group;
  // > 0: a replay route (Engine::AddReplayRoute), for logged inputs below it only.
  uint64_t replay_before = 0;

  bool HasEvent(int event_index) const {
    return (event_bits[event_index >> 6] >> (event_index & 63)) & 1;
  }
};

// Intrusive owning pointer.
class SubRef {
 public:
  SubRef() = default;
  // Adopts a fresh object (refs == 1).
  static SubRef Adopt(const CompiledSubscription* s) {
    SubRef r;
    r.p_ = s;
    return r;
  }
  explicit SubRef(const CompiledSubscription* s) : p_(s) {
    if (p_) Ref(p_);
  }
  SubRef(const SubRef& o) : p_(o.p_) {
    if (p_) Ref(p_);
  }
  SubRef(SubRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  SubRef& operator=(SubRef o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~SubRef() {
    if (p_) Unref(p_);
  }
  const CompiledSubscription* get() const { return p_; }
  const CompiledSubscription* operator->() const { return p_; }
  const CompiledSubscription& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  const CompiledSubscription* p_ = nullptr;
};

}  // namespace herald::internal

namespace herald::index {

using internal::CompiledSubscription;
using internal::SubRef;

// The routing keys of one event, hashed once.
struct RouteKeys {
  uint32_t pair_id = 0;
  uint16_t channel = 0;
  uint16_t event_index = 0;
  std::string_view app, entity, resource, user;
  uint64_t app_hash = 0, entity_hash = 0, resource_hash = 0, user_hash = 0;

  void Hash() {
    app_hash = app.empty() ? 0 : HashBytes(app);
    entity_hash = entity.empty() ? 0 : HashBytes(entity);
    resource_hash = resource.empty() ? 0 : HashBytes(resource);
    user_hash = user.empty() ? 0 : HashBytes(user);
  }
};

// Index anchor kinds: each subscription is filed under exactly one kind (its most selective
// required dimension), once per event (or once channel-wide) and per value of that dimension.
enum Kind : uint8_t { kPlain = 0, kApp, kEntity, kAppEntity, kResource, kUser, kKindCount };

inline uint64_t EventToken(uint32_t pair_id) { return pair_id; }
inline uint64_t AnyEventToken(uint16_t channel) { return (1ULL << 32) | channel; }

inline uint64_t KeyFingerprint(Kind kind, uint64_t event_token, uint64_t h1, uint64_t h2) {
  return HashCombine(HashCombine(Mix64((uint64_t{kind} << 40) ^ event_token ^ 0xa5a5ULL), h1), h2);
}

// Full verification of a candidate: true and the specificity of DESIGN §2 when it matches.
bool Matches(const CompiledSubscription& s, const RouteKeys& k, int* specificity);

// Calls f(fingerprint, kind, any_event, pair_id_or_channel) for every index key of `s`.
template <typename F>
void ForEachKey(const CompiledSubscription& s, const Catalog& catalog, F&& f) {
  const ChannelInfo& ch = catalog.channels()[s.channel];
  auto for_events = [&](Kind kind, uint64_t h1, uint64_t h2) {
    if (s.events_any) {
      f(KeyFingerprint(kind, AnyEventToken(s.channel), h1, h2), kind, true, uint32_t{s.channel});
      return;
    }
    for (size_t e = 0; e < ch.events.size(); ++e) {
      if (!s.HasEvent(static_cast<int>(e))) continue;
      const uint32_t pair = ch.events[e].pair_id;
      f(KeyFingerprint(kind, EventToken(pair), h1, h2), kind, false, pair);
    }
  };
  if (!s.criteria.empty()) {
    for (const auto& c : s.criteria) {
      if (c.has_app && c.has_entity)
        for_events(kAppEntity, c.app_hash, c.entity_hash);
      else if (c.has_app)
        for_events(kApp, c.app_hash, 0);
      else
        for_events(kEntity, c.entity_hash, 0);
    }
  } else if (!s.resources.empty()) {
    for (const auto& r : s.resources) for_events(kResource, HashBytes(r), 0);
  } else if (!s.users.empty()) {
    for (const auto& u : s.users) for_events(kUser, HashBytes(u), 0);
  } else {
    for_events(kPlain, 0, 0);
  }
}

// Compiles a validated subscription (channel may be an alias).
SubRef Compile(const Subscription& s, const Catalog& catalog, uint64_t uid, uint64_t created_seq,
               uint32_t group_id, dispatch::ProfileQueue* queue, uint64_t replay_before = 0);

}  // namespace herald::index
