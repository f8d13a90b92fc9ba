#include "engine/server/management_service.h"

#include "engine/common/strings.h"
#include "engine/store/config_records.h"

namespace herald::server {

using store::ConfigKind;

ManagementService::ManagementService(Engine& engine, store::ConfigStore* config,
                                     store::EventLog* events, WebhookDeliverer* deliverer,
                                     Check check)
    : engine_(engine),
      config_(config),
      events_(events),
      deliverer_(deliverer),
      check_(std::move(check)) {}

absl::Status ManagementService::CheckLocked(NotificationProfile* profile,
                                            SecuritySetting* security) const {
  if (!check_) return absl::OkStatus();
  const ValidationErrors errors = check_(profile, security);
  return errors.empty() ? absl::OkStatus() : ValidationError(errors);
}

absl::Status ManagementService::Persist(std::span<const store::ConfigWrite> writes) {
  if (!config_ || writes.empty()) return absl::OkStatus();
  auto committed = config_->Commit(writes);
  if (committed.ok()) return absl::OkStatus();
  if (committed.status().code() == absl::StatusCode::kFailedPrecondition) {
    return committed.status();  // a lost race: the caller reads again
  }
  return absl::UnavailableError(Cat("the change could not be persisted and was undone: ",
                                    ToStd(committed.status().message())));
}

absl::Status ManagementService::RunLocked(std::vector<Step> steps, const Subscription* rerouted) {
  // What the profile had not settled when the change came still goes to it after a crash.
  uint64_t route = 0;
  if (events_ && rerouted) {
    auto kept = events_->KeepRoute(*rerouted);
    if (!kept.ok()) {
      return absl::UnavailableError(
          Cat("the change could not be persisted: ", ToStd(kept.status().message())));
    }
    route = *kept;
  }
  size_t applied = 0;
  auto undo = [&] {
    while (applied > 0) steps[--applied].undo();
    if (route) events_->DropRoute(route);
  };
  for (Step& step : steps) {
    if (absl::Status s = step.apply(); !s.ok()) {
      undo();
      return s;
    }
    ++applied;
  }
  std::vector<store::ConfigWrite> writes;
  writes.reserve(steps.size());
  for (Step& step : steps) writes.push_back(std::move(step.write));
  if (absl::Status s = Persist(writes); !s.ok()) {
    undo();
    return s;
  }
  if (route) {
    engine_.FlushIndex();  // what is logged from now on routes the new way
    events_->SealRoute(route);
  }
  return absl::OkStatus();
}

absl::Status ManagementService::CreateSubscription(
    const Subscription& subscription, std::optional<SecuritySetting> inline_security,
    std::optional<NotificationProfile> inline_profile) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(inline_profile ? &*inline_profile : nullptr,
                                   inline_security ? &*inline_security : nullptr);
      !s.ok()) {
    return s;
  }
  std::vector<Step> steps;
  if (inline_security) {
    steps.push_back({[&] { return engine_.CreateSecurity(*inline_security); },
                     [&] { (void)engine_.DeleteSecurity(inline_security->auth_id); },
                     store::PutWrite(*inline_security)});
  }
  if (inline_profile) {
    steps.push_back({[&] { return engine_.CreateProfile(*inline_profile); },
                     [&] { (void)engine_.DeleteProfile(inline_profile->profile_id); },
                     store::PutWrite(*inline_profile)});
  }
  steps.push_back({[&] { return engine_.CreateSubscription(subscription); },
                   [&] { (void)engine_.DeleteSubscription(subscription.subscription_id); },
                   store::PutWrite(subscription)});
  return RunLocked(std::move(steps));
}

absl::Status ManagementService::UpdateSubscription(std::string_view channel,
                                                   const Subscription& subscription) {
  MutexLock lock(mu_);
  auto before = engine_.GetSubscription(subscription.subscription_id);
  if (!before.ok() || before->channel != channel) {
    return absl::NotFoundError(
        Cat("subscription ", subscription.subscription_id, " not found in ", channel));
  }
  std::vector<Step> steps;
  steps.push_back({[&] { return engine_.UpdateSubscription(subscription); },
                   [&] { (void)engine_.UpdateSubscription(*before); },
                   store::PutWrite(subscription)});
  return RunLocked(std::move(steps), &*before);
}

absl::Status ManagementService::DeleteSubscription(std::string_view channel, std::string_view id) {
  MutexLock lock(mu_);
  const std::string key(id);
  auto before = engine_.GetSubscription(key);
  if (!before.ok() || before->channel != channel) {
    return absl::NotFoundError(Cat("subscription ", id, " not found in ", channel));
  }
  std::vector<Step> steps;
  steps.push_back({[&] { return engine_.DeleteSubscription(key); },
                   [&] { (void)engine_.CreateSubscription(*before); },
                   store::DeleteWrite(ConfigKind::kSubscription, id)});
  return RunLocked(std::move(steps), &*before);
}

absl::Status ManagementService::CreateProfile(NotificationProfile profile,
                                              std::optional<SecuritySetting> inline_security) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(&profile, inline_security ? &*inline_security : nullptr);
      !s.ok()) {
    return s;
  }
  std::vector<Step> steps;
  if (inline_security) {
    steps.push_back({[&] { return engine_.CreateSecurity(*inline_security); },
                     [&] { (void)engine_.DeleteSecurity(inline_security->auth_id); },
                     store::PutWrite(*inline_security)});
  }
  steps.push_back({[&] { return engine_.CreateProfile(profile); },
                   [&] { (void)engine_.DeleteProfile(profile.profile_id); },
                   store::PutWrite(profile)});
  return RunLocked(std::move(steps));
}

absl::Status ManagementService::UpdateProfile(NotificationProfile profile) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(&profile, nullptr); !s.ok()) return s;
  auto before = engine_.GetProfile(profile.profile_id);
  std::vector<Step> steps;
  steps.push_back({[&] { return engine_.UpdateProfile(profile); },
                   [&] {
                     if (before.ok()) (void)engine_.UpdateProfile(*before);
                   },
                   store::PutWrite(profile)});
  if (absl::Status s = RunLocked(std::move(steps)); !s.ok()) return s;
  // An update is how an operator says a disabled (410 Gone) receiver is back.
  if (deliverer_ && deliverer_->disabled(profile.profile_id)) {
    if (absl::Status s = deliverer_->Enable(profile.profile_id); !s.ok()) {
      return absl::UnavailableError(
          Cat("the profile could not be enabled again: ", ToStd(s.message())));
    }
  }
  return absl::OkStatus();
}

absl::Status ManagementService::DeleteProfile(std::string_view id) {
  MutexLock lock(mu_);
  const std::string key(id);
  auto before = engine_.GetProfile(key);
  std::vector<Step> steps;
  steps.push_back({[&] { return engine_.DeleteProfile(key); },
                   [&] {
                     if (before.ok()) (void)engine_.CreateProfile(*before);
                   },
                   store::DeleteWrite(ConfigKind::kProfile, id)});
  return RunLocked(std::move(steps));
}

absl::Status ManagementService::CreateSecurity(SecuritySetting security) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(nullptr, &security); !s.ok()) return s;
  std::vector<Step> steps;
  steps.push_back({[&] { return engine_.CreateSecurity(security); },
                   [&] { (void)engine_.DeleteSecurity(security.auth_id); },
                   store::PutWrite(security)});
  return RunLocked(std::move(steps));
}

absl::Status ManagementService::UpdateSecurity(SecuritySetting security) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(nullptr, &security); !s.ok()) return s;
  auto before = engine_.GetSecurity(security.auth_id);
  std::vector<Step> steps;
  steps.push_back({[&] { return engine_.UpdateSecurity(security); },
                   [&] {
                     if (before.ok()) (void)engine_.UpdateSecurity(*before);
                   },
                   store::PutWrite(security)});
  return RunLocked(std::move(steps));
}

absl::Status ManagementService::DeleteSecurity(std::string_view id) {
  MutexLock lock(mu_);
  const std::string key(id);
  auto before = engine_.GetSecurity(key);
  std::vector<Step> steps;
  steps.push_back({[&] { return engine_.DeleteSecurity(key); },
                   [&] {
                     if (before.ok()) (void)engine_.CreateSecurity(*before);
                   },
                   store::DeleteWrite(ConfigKind::kSecurity, id)});
  return RunLocked(std::move(steps));
}

absl::Status ManagementService::Import(std::span<const Subscription> subscriptions,
                                       std::vector<absl::Status>* results) {
  MutexLock lock(mu_);
  results->clear();
  std::vector<store::ConfigWrite> writes;
  std::vector<const Subscription*> created;
  for (const Subscription& s : subscriptions) {
    absl::Status st = engine_.CreateSubscription(s);
    if (st.ok()) {
      created.push_back(&s);
      writes.push_back(store::PutWrite(s));
    }
    results->push_back(std::move(st));
  }
  if (absl::Status s = Persist(writes); !s.ok()) {
    for (const Subscription* c : created) (void)engine_.DeleteSubscription(c->subscription_id);
    return s;
  }
  return absl::OkStatus();
}

}  // namespace herald::server
