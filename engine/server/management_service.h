// Every change to the config (DESIGN §2, §7): the engine's change, its write to the ConfigStore,
// and — when the store refuses — the engine's change undone, so what is answered, what routes and
// what a restart loads never disagree. Changes are serialized: the store records them in the
// order the engine applied them, and an undo never races another change.
//
// Errors: the engine's (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition,
// ResourceExhausted), the store's FailedPrecondition (a revision race), Aborted when the stored
// revision is not the `if_match` an update or delete asked for (HTTP If-Match: 412), or
// Unavailable when the store could not persist the change, which was undone.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "engine/common/mutex.h"
#include "engine/store/config_store.h"
#include "engine/store/event_log.h"
#include "herald/engine.h"
#include "herald/status.h"
#include "herald/webhook_deliverer.h"

namespace herald::server {

class ManagementService {
 public:
  // Before a write of a profile or security setting, with the change's lock held: may complete
  // the values (masked secrets sent back take the stored ones) and returns the field errors that
  // refuse them (answered 400).
  using Check = std::function<ValidationErrors(NotificationProfile*, SecuritySetting*)>;

  // `config`, when given, makes every change durable before it returns; `events`, when given,
  // keeps what a changed subscription routed so a replay routes it the same way; `deliverer`,
  // when given, is enabled again for a profile it disabled when that profile is updated.
  ManagementService(Engine& engine, store::ConfigStore* config, store::EventLog* events,
                    WebhookDeliverer* deliverer, Check check = {});

  // With the inline security setting and profile, created first, all durable together.
  absl::Status CreateSubscription(const Subscription& subscription,
                                  std::optional<SecuritySetting> inline_security,
                                  std::optional<NotificationProfile> inline_profile);
  // The subscription must exist in `channel` (canonical), else NotFound.
  absl::Status UpdateSubscription(std::string_view channel, const Subscription& subscription,
                                  uint64_t if_match = store::kAnyRevision);
  absl::Status DeleteSubscription(std::string_view channel, std::string_view id,
                                  uint64_t if_match = store::kAnyRevision);

  absl::Status CreateProfile(NotificationProfile profile,
                             std::optional<SecuritySetting> inline_security);
  absl::Status UpdateProfile(NotificationProfile profile, uint64_t if_match = store::kAnyRevision);
  absl::Status DeleteProfile(std::string_view id, uint64_t if_match = store::kAnyRevision);

  absl::Status CreateCertificate(const ClientCertificate& certificate);
  absl::Status DeleteCertificate(std::string_view id);

  absl::Status CreateSecurity(SecuritySetting security);
  absl::Status UpdateSecurity(SecuritySetting security, uint64_t if_match = store::kAnyRevision);
  absl::Status DeleteSecurity(std::string_view id, uint64_t if_match = store::kAnyRevision);

  // Creates each subscription it can, `results[i]` saying how subscriptions[i] fared; the ones
  // created are persisted with one write. When that write fails they are all undone and the
  // error is returned.
  absl::Status Import(std::span<const Subscription> subscriptions,
                      std::vector<absl::Status>* results);

  // A change another instance made to a shared store (ConfigStore::Watch), applied to the
  // engine unless `current` says it no longer is (asked under the lock, so it never undoes a
  // newer local change). What does not apply is said through `log`.
  void ApplyWatched(const store::ConfigEntry& change,
                    const std::function<bool(const store::ConfigEntry&)>& current,
                    const std::function<void(std::string_view)>& log);

 private:
  // One engine change with its undo and the store write that records it.
  struct Step {
    std::function<absl::Status()> apply;
    std::function<void()> undo;
    store::ConfigWrite write;
    bool creates = false;
  };
  // The steps that create, update (undone by restoring `before`) and delete (undone by creating
  // `before` again) one security setting, profile or subscription. They refer to their
  // arguments, which outlive RunLocked.
  template <typename T>
  Step CreateStep(const T& value);
  template <typename T>
  Step UpdateStep(const T& value, const absl::StatusOr<T>& before);
  template <typename T>
  Step DeleteStep(const std::string& id, const absl::StatusOr<T>& before);
  // With mu_ held: applies the steps in order (undoing the applied ones when one fails),
  // persists their writes as one change (undoing them all when that fails). `rerouted`: the
  // subscription as it was before the change, whose routes are kept for a replay.
  // `if_match`: the revision the stored entry of the (single) step must have.
  absl::Status RunLocked(std::vector<Step> steps, const Subscription* rerouted = nullptr,
                         uint64_t if_match = store::kAnyRevision) HERALD_REQUIRES(mu_);
  // With mu_ held: deletes a certificate, security setting or profile (or, when only the store
  // holds it, its stored entry).
  template <typename T>
  absl::Status DeleteLocked(std::string_view id, uint64_t if_match) HERALD_REQUIRES(mu_);
  // With a shared store, each write states the revision it is based on: none for a creation,
  // the stored one otherwise (FailedPrecondition when the store no longer has the entry).
  // `creates[i]`: writes[i] creates its entry.
  absl::Status ExpectRevisions(std::vector<store::ConfigWrite>& writes,
                               const std::vector<bool>& creates) const;
  absl::Status Persist(std::vector<store::ConfigWrite> writes, const std::vector<bool>& creates);
  // A delete of what the engine does not hold: the store may (it refused the entry at load, as
  // no longer applying), and then loses it; otherwise `not_found`.
  absl::Status DeleteStoredOnlyLocked(store::ConfigKind kind, const std::string& id,
                                      const absl::Status& not_found) HERALD_REQUIRES(mu_);
  // With mu_ held: the check's errors as a status.
  absl::Status CheckLocked(NotificationProfile* profile, SecuritySetting* security) const
      HERALD_REQUIRES(mu_);

  Engine& engine_;
  store::ConfigStore* const config_;
  store::EventLog* const events_;
  WebhookDeliverer* const deliverer_;
  const Check check_;
  // One change at a time, from reading what it changes to its store write or undo.
  Mutex mu_;
};

}  // namespace herald::server
