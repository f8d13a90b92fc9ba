#include "engine/index/compiled_subscription.h"

#include <algorithm>

namespace herald::index {

bool Matches(const CompiledSubscription& s, const RouteKeys& k, int* specificity) {
  if (s.channel != k.channel) return false;
  if (!s.events_any && !s.HasEvent(k.event_index)) return false;
  int best = 0;
  if (!s.criteria.empty()) {
    best = -1;
    for (const auto& c : s.criteria) {
      if (c.has_app && (c.app_hash != k.app_hash || c.app != k.app)) continue;
      if (c.has_entity && (c.entity_hash != k.entity_hash || c.entity != k.entity)) continue;
      best = std::max(best, int{c.has_app} + int{c.has_entity});
      if (best == 2) break;
    }
    if (best < 0) return false;
  }
  if (!s.resources.empty()) {
    if (k.resource.empty() ||
        std::find(s.resources.begin(), s.resources.end(), k.resource) == s.resources.end()) {
      return false;
    }
  }
  if (!s.users.empty()) {
    if (k.user.empty() || std::find(s.users.begin(), s.users.end(), k.user) == s.users.end()) {
      return false;
    }
  }
  *specificity = int{!s.events_any} + best + int{!s.resources.empty()} + int{!s.users.empty()};
  return true;
}

SubRef Compile(const Subscription& s, const Catalog& catalog, uint64_t uid, uint64_t created_seq,
               uint32_t group_id, dispatch::ProfileQueue* queue, uint64_t replay_before) {
  auto* c = new CompiledSubscription();
  c->replay_before = replay_before;
  const int channel = catalog.FindChannel(s.channel);
  c->uid = uid;
  c->created_seq = created_seq;
  c->channel = static_cast<uint16_t>(channel);
  c->channel_name = catalog.channels()[channel].channel;
  c->events_any = s.events.empty();
  for (const auto& e : s.events) {
    const int idx = catalog.FindEvent(channel, e);
    if (idx >= 0) c->event_bits[idx >> 6] |= uint64_t{1} << (idx & 63);
  }
  for (const auto& in : s.criteria) {
    internal::CompiledCriterion cc;
    cc.has_app = in.application_id && !in.application_id->empty();
    cc.has_entity = in.entity_id && !in.entity_id->empty();
    if (cc.has_app) {
      cc.app = *in.application_id;
      cc.app_hash = HashBytes(cc.app);
    }
    if (cc.has_entity) {
      cc.entity = *in.entity_id;
      cc.entity_hash = HashBytes(cc.entity);
    }
    if (cc.has_app || cc.has_entity) c->criteria.push_back(std::move(cc));
  }
  c->resources = s.resources;
  c->users = s.users;
  c->subscription_id = s.subscription_id;
  c->profile_id = s.profile_id;
  c->group = s.group;
  c->group_id = group_id;
  c->queue = queue;
  if (queue) c->queue_generation = queue->tracker().generation();
  return SubRef::Adopt(c);
}

}  // namespace herald::index
