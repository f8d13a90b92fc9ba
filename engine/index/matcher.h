// Per-event matching (DESIGN §2 "Matching semantics") over one pinned IndexState: a handful of
// probes (only the anchor kinds that exist for the event's pair and channel), full verification
// of the few candidates, then selection — the most specific match of each group, ties to the
// earliest created then the smaller subscriptionId — or every match with fan-out "all"; at most
// one notification per profile either way. Cost follows the number of candidates sharing the
// event's keys, never the number of subscriptions.
//
// One Matcher per router thread (it owns scratch space); steady state allocates nothing.
#pragma once

#include <span>
#include <vector>

#include "engine/index/snapshot.h"

namespace herald::index {

class Matcher {
 public:
  Matcher() {
    matches_.reserve(64);
    winners_.reserve(64);
  }
  struct Match {
    const CompiledSubscription* subscription;
    int specificity;
  };

  // The winning subscriptions for `keys`; valid until the next call.
  std::span<const CompiledSubscription* const> Route(const IndexState& state, const RouteKeys& keys,
                                                     bool fanout_all);
  // Every subscription in force that matches (replay routes left out), in `all`, and the
  // winners Route would pick among them; valid until the next call. Allocates: not the hot path.
  std::span<const CompiledSubscription* const> Explain(const IndexState& state,
                                                       const RouteKeys& keys, bool fanout_all,
                                                       std::vector<Match>* all);

 private:
  // Fills matches_: each matching subscription once, with its specificity.
  void Collect(const IndexState& state, const RouteKeys& keys);
  // Narrows matches_ to the winners, into winners_.
  void Select(bool fanout_all);
  void Consider(Candidates candidates, const RouteKeys& keys, const Overlay* removals);

  std::vector<Match> matches_;
  std::vector<const CompiledSubscription*> winners_;
};

}  // namespace herald::index
