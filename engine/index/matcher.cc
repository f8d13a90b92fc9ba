#include "engine/index/matcher.h"

#include <algorithm>

namespace herald::index {
namespace {

int MakeProbes(uint8_t mask, uint64_t token, const RouteKeys& k, uint64_t* out) {
  int n = 0;
  if (mask & (1u << kPlain)) out[n++] = KeyFingerprint(kPlain, token, 0, 0);
  if (!k.app.empty()) {
    if (mask & (1u << kApp)) out[n++] = KeyFingerprint(kApp, token, k.app_hash, 0);
    if (!k.entity.empty() && (mask & (1u << kAppEntity))) {
      out[n++] = KeyFingerprint(kAppEntity, token, k.app_hash, k.entity_hash);
    }
  }
  if (!k.entity.empty() && (mask & (1u << kEntity))) {
    out[n++] = KeyFingerprint(kEntity, token, k.entity_hash, 0);
  }
  if (!k.resource.empty() && (mask & (1u << kResource))) {
    out[n++] = KeyFingerprint(kResource, token, k.resource_hash, 0);
  }
  if (!k.user.empty() && (mask & (1u << kUser))) {
    out[n++] = KeyFingerprint(kUser, token, k.user_hash, 0);
  }
  return n;
}

}  // namespace

void Matcher::Consider(Candidates candidates, const RouteKeys& keys, const Overlay* removals) {
  for (const CompiledSubscription* s : candidates) {
    if (removals && removals->Removed(s->uid)) continue;
    int specificity;
    if (Matches(*s, keys, &specificity)) matches_.push_back({s, specificity});
  }
}

std::span<const CompiledSubscription* const> Matcher::Route(const IndexState& state,
                                                            const RouteKeys& keys,
                                                            bool fanout_all) {
  Collect(state, keys);
  if (matches_.empty()) return {};
  Select(fanout_all);
  return winners_;
}

std::span<const CompiledSubscription* const> Matcher::Explain(const IndexState& state,
                                                              const RouteKeys& keys,
                                                              bool fanout_all,
                                                              std::vector<Match>* all) {
  Collect(state, keys);
  std::erase_if(matches_, [](const Match& m) { return m.subscription->replay_before != 0; });
  all->assign(matches_.begin(), matches_.end());
  if (matches_.empty()) return {};
  Select(fanout_all);
  return winners_;
}

void Matcher::Collect(const IndexState& state, const RouteKeys& keys) {
  matches_.clear();
  winners_.clear();
  const Snapshot& base = *state.base;
  const Overlay* overlay = state.overlay && !state.overlay->empty() ? state.overlay.get() : nullptr;

  uint64_t fps[Snapshot::kMaxProbes];
  uint8_t pair_mask = base.masks().pair[keys.pair_id];
  uint8_t channel_mask = base.masks().channel[keys.channel];
  if (overlay) {
    pair_mask |= overlay->masks().pair[keys.pair_id];
    channel_mask |= overlay->masks().channel[keys.channel];
  }
  int n = MakeProbes(pair_mask, EventToken(keys.pair_id), keys, fps);
  n += MakeProbes(channel_mask, AnyEventToken(keys.channel), keys, fps + n);
  if (n == 0) return;

  Candidates found[Snapshot::kMaxProbes];
  base.FindMany(fps, n, found);
  const Overlay* removals = overlay && overlay->has_removals() ? overlay : nullptr;
  for (int i = 0; i < n; ++i) Consider(found[i], keys, removals);
  if (overlay) {
    for (int i = 0; i < n; ++i) Consider(overlay->Find(fps[i]), keys, nullptr);
  }
  if (matches_.size() > 1) {
    // A subscription can be found under several keys (e.g. two criteria pairs): keep it once.
    std::sort(matches_.begin(), matches_.end(),
              [](const Match& a, const Match& b) { return a.subscription < b.subscription; });
    matches_.erase(std::unique(matches_.begin(), matches_.end(),
                               [](const Match& a, const Match& b) {
                                 return a.subscription == b.subscription;
                               }),
                   matches_.end());
  }
}

void Matcher::Select(bool fanout_all) {
  auto better = [](const Match& a, const Match& b) {
    const auto* x = a.subscription;
    const auto* y = b.subscription;
    // A replay route never takes an event from a subscription in force.
    if ((x->replay_before != 0) != (y->replay_before != 0)) return x->replay_before == 0;
    if (a.specificity != b.specificity) return a.specificity > b.specificity;
    if (x->created_seq != y->created_seq) return x->created_seq < y->created_seq;
    return x->subscription_id < y->subscription_id;
  };
  size_t kept = matches_.size();
  if (!fanout_all && matches_.size() > 1) {
    std::sort(matches_.begin(), matches_.end(), [&](const Match& a, const Match& b) {
      if (a.subscription->group_id != b.subscription->group_id) {
        return a.subscription->group_id < b.subscription->group_id;
      }
      return better(a, b);
    });
    kept = 0;
    for (size_t i = 0; i < matches_.size(); ++i) {
      if (i == 0 || matches_[i].subscription->group_id != matches_[i - 1].subscription->group_id) {
        matches_[kept++] = matches_[i];
      }
    }
    matches_.resize(kept);
  }
  if (matches_.size() > 1) {
    // At most one notification per profile per event: the best winner speaks for the profile.
    std::sort(matches_.begin(), matches_.end(), [&](const Match& a, const Match& b) {
      if (a.subscription->queue != b.subscription->queue) {
        return a.subscription->queue < b.subscription->queue;
      }
      return better(a, b);
    });
  }
  for (size_t i = 0; i < matches_.size(); ++i) {
    if (i == 0 || matches_[i].subscription->queue != matches_[i - 1].subscription->queue) {
      winners_.push_back(matches_[i].subscription);
    }
  }
}

}  // namespace herald::index
