// Every change to the config (DESIGN §2, §7): the engine's change, its write to the ConfigStore,
// and — when the store refuses — the engine's change undone, so what is answered, what routes and
// what a restart loads never disagree. Changes are serialized: the store records them in the
// order the engine applied them, and an undo never races another change.
//
// Errors: the engine's (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition,
// ResourceExhausted), the store's FailedPrecondition (a revision race), or Unavailable when the
// store could not persist the change, which was undone.
#pragma once

#include <functional>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "engine/store/config_store.h"
#include "engine/store/event_log.h"
#include "herald/engine.h"
#include "herald/webhook_deliverer.h"

namespace herald::server {

class ManagementService {
 public:
  // `config`, when given, makes every change durable before it returns; `events`, when given,
  // keeps what a changed subscription routed so a replay routes it the same way; `deliverer`,
  // when given, is enabled again for a profile it disabled when that profile is updated.
  ManagementService(Engine& engine, store::ConfigStore* config, store::EventLog* events,
                    WebhookDeliverer* deliverer);

  // With the inline security setting and profile, created first, all durable together.
  absl::Status CreateSubscription(const Subscription& subscription,
                                  const SecuritySetting* inline_security,
                                  const NotificationProfile* inline_profile);
  // The subscription must exist in `channel` (canonical), else NotFound.
  absl::Status UpdateSubscription(std::string_view channel, const Subscription& subscription);
  absl::Status DeleteSubscription(std::string_view channel, std::string_view id);

  absl::Status CreateProfile(const NotificationProfile& profile,
                             const SecuritySetting* inline_security);
  absl::Status UpdateProfile(const NotificationProfile& profile);
  absl::Status DeleteProfile(std::string_view id);

  absl::Status CreateSecurity(const SecuritySetting& security);
  absl::Status UpdateSecurity(const SecuritySetting& security);
  absl::Status DeleteSecurity(std::string_view id);

  // Creates each subscription it can, `results[i]` saying how subscriptions[i] fared; the ones
  // created are persisted with one write. When that write fails they are all undone and the
  // error is returned.
  absl::Status Import(std::span<const Subscription> subscriptions,
                      std::vector<absl::Status>* results);

 private:
  // One engine change with its undo and the store write that records it.
  struct Step {
    std::function<absl::Status()> apply;
    std::function<void()> undo;
    store::ConfigWrite write;
  };
  // Applies the steps in order (undoing the applied ones when one fails), persists their writes
  // as one change (undoing them all when that fails). `rerouted`: the subscription as it was
  // before the change, whose routes are kept for a replay.
  absl::Status Run(std::vector<Step> steps, const Subscription* rerouted = nullptr);
  absl::Status Persist(std::span<const store::ConfigWrite> writes);

  Engine& engine_;
  store::ConfigStore* const config_;
  store::EventLog* const events_;
  WebhookDeliverer* const deliverer_;
  std::mutex mu_;  // one change at a time, from its engine change to its store write or undo
};

}  // namespace herald::server
