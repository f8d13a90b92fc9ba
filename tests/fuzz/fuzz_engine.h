// The engine the data-plane fuzz targets ingest into: small limits, so oversize and depth paths
// are reached, and a few subscriptions (one per group) so matching and enqueueing run too.
#pragma once

#include <cstdlib>

#include "herald/engine.h"

namespace herald::fuzz {

inline Engine& FuzzEngine() {
  static Engine* engine = [] {
    auto e = Engine::Create({.catalog_path = "configs/catalog.json",
                             .max_event_bytes = 4096,
                             .max_payload_depth = 16,
                             .queue_max_notifications = 64});
    if (!e.ok()) std::abort();
    const bool ok =
        (*e)->CreateProfile({.profile_id = "p", .webhook = {.notify_url = "https://x.test/"}})
            .ok() &&
        (*e)->CreateSubscription({.subscription_id = "s", .channel = "SMS", .profile_id = "p"})
            .ok() &&
        (*e)->CreateSubscription({.subscription_id = "t",
                                  .channel = "EMAIL",
                                  .events = {"OPEN"},
                                  .criteria = {Criterion{"a1", std::nullopt}},
                                  .group = "g",
                                  .profile_id = "p"})
            .ok();
    if (!ok) std::abort();
    (*e)->FlushIndex();
    return e->release();
  }();
  return *engine;
}

}  // namespace herald::fuzz
