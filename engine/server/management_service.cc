#include "engine/server/management_service.h"

#include "engine/common/strings.h"
#include "engine/store/config_records.h"

namespace herald::server {

using store::ConfigKind;

namespace {

// The engine's operations on each kind of entry, for the steps that change them.
template <typename T>
struct EngineOps;

template <>
struct EngineOps<ClientCertificate> {
  static constexpr ConfigKind kKind = ConfigKind::kCertificate;
  static const std::string& Id(const ClientCertificate& v) { return v.certificate_id; }
  static absl::Status Create(Engine& e, const ClientCertificate& v) {
    return e.CreateCertificate(v);
  }
  static absl::Status Delete(Engine& e, std::string_view id) { return e.DeleteCertificate(id); }
  static absl::StatusOr<ClientCertificate> Get(Engine& e, std::string_view id) {
    return e.GetCertificate(id);
  }
};

template <>
struct EngineOps<SecuritySetting> {
  static constexpr ConfigKind kKind = ConfigKind::kSecurity;
  static const std::string& Id(const SecuritySetting& v) { return v.auth_id; }
  static absl::Status Create(Engine& e, const SecuritySetting& v) { return e.CreateSecurity(v); }
  static absl::Status Update(Engine& e, const SecuritySetting& v) { return e.UpdateSecurity(v); }
  static absl::Status Delete(Engine& e, std::string_view id) { return e.DeleteSecurity(id); }
  static absl::StatusOr<SecuritySetting> Get(Engine& e, std::string_view id) {
    return e.GetSecurity(id);
  }
};

template <>
struct EngineOps<NotificationProfile> {
  static constexpr ConfigKind kKind = ConfigKind::kProfile;
  static const std::string& Id(const NotificationProfile& v) { return v.profile_id; }
  static absl::Status Create(Engine& e, const NotificationProfile& v) { return e.CreateProfile(v); }
  static absl::Status Update(Engine& e, const NotificationProfile& v) { return e.UpdateProfile(v); }
  static absl::Status Delete(Engine& e, std::string_view id) { return e.DeleteProfile(id); }
  static absl::StatusOr<NotificationProfile> Get(Engine& e, std::string_view id) {
    return e.GetProfile(id);
  }
};

template <>
struct EngineOps<Subscription> {
  static constexpr ConfigKind kKind = ConfigKind::kSubscription;
  static const std::string& Id(const Subscription& v) { return v.subscription_id; }
  static absl::Status Create(Engine& e, const Subscription& v) { return e.CreateSubscription(v); }
  static absl::Status Update(Engine& e, const Subscription& v) { return e.UpdateSubscription(v); }
  static absl::Status Delete(Engine& e, std::string_view id) { return e.DeleteSubscription(id); }
};

}  // namespace

template <typename T>
ManagementService::Step ManagementService::CreateStep(const T& value) {
  using Ops = EngineOps<T>;
  return {[this, &value] { return Ops::Create(engine_, value); },
          [this, &value] { (void)Ops::Delete(engine_, Ops::Id(value)); }, store::PutWrite(value),
          /*creates=*/true};
}

template <typename T>
ManagementService::Step ManagementService::UpdateStep(const T& value,
                                                      const absl::StatusOr<T>& before) {
  using Ops = EngineOps<T>;
  return {[this, &value] { return Ops::Update(engine_, value); },
          [this, &before] {
            if (before.ok()) (void)Ops::Update(engine_, *before);
          },
          store::PutWrite(value)};
}

template <typename T>
ManagementService::Step ManagementService::DeleteStep(const std::string& id,
                                                      const absl::StatusOr<T>& before) {
  using Ops = EngineOps<T>;
  return {[this, &id] { return Ops::Delete(engine_, id); },
          [this, &before] {
            if (before.ok()) (void)Ops::Create(engine_, *before);
          },
          store::DeleteWrite(Ops::kKind, id)};
}

template <typename T>
absl::Status ManagementService::DeleteLocked(std::string_view id, uint64_t if_match) {
  using Ops = EngineOps<T>;
  const std::string key(id);
  const auto before = Ops::Get(engine_, key);
  if (absl::IsNotFound(before.status())) {
    return DeleteStoredOnlyLocked(Ops::kKind, key, before.status());
  }
  return RunLocked({DeleteStep(key, before)}, nullptr, if_match);
}

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

absl::Status ManagementService::ExpectRevisions(std::vector<store::ConfigWrite>& writes,
                                                const std::vector<bool>& creates) const {
  for (size_t i = 0; i < writes.size(); ++i) {
    store::ConfigWrite& w = writes[i];
    if (w.expected_revision != store::kAnyRevision) continue;  // the client's If-Match
    if (creates[i]) {
      w.expected_revision = 0;
      continue;
    }
    const auto stored = config_->Get(w.kind, w.id);
    if (!stored) {
      return absl::FailedPreconditionError(Cat(store::ConfigKindName(w.kind), " ", w.id,
                                               " was deleted meanwhile by another instance"));
    }
    w.expected_revision = stored->revision;
  }
  return absl::OkStatus();
}

absl::Status ManagementService::Persist(std::vector<store::ConfigWrite> writes,
                                        const std::vector<bool>& creates) {
  if (!config_ || writes.empty()) return absl::OkStatus();
  if (config_->shared()) {
    if (absl::Status s = ExpectRevisions(writes, creates); !s.ok()) return s;
  }
  auto committed = config_->Commit(writes);
  if (committed.ok()) return absl::OkStatus();
  if (committed.status().code() == absl::StatusCode::kFailedPrecondition) {
    return committed.status();  // a lost race: the caller reads again
  }
  return absl::UnavailableError(Cat("the change could not be persisted and was undone: ",
                                    ToStd(committed.status().message())));
}

absl::Status ManagementService::RunLocked(std::vector<Step> steps, const Subscription* rerouted,
                                          uint64_t if_match) {
  if (if_match != store::kAnyRevision) {
    const store::ConfigWrite& w = steps.front().write;
    const auto stored = config_ ? config_->Get(w.kind, w.id) : std::nullopt;
    if (!stored || stored->revision != if_match) {
      return absl::AbortedError(Cat(store::ConfigKindName(w.kind), " ", w.id, " is at revision ",
                                    stored ? stored->revision : 0, ", not ", if_match,
                                    " (If-Match)"));
    }
    steps.front().write.expected_revision = if_match;
  }
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
  std::vector<bool> creates;
  writes.reserve(steps.size());
  for (Step& step : steps) {
    writes.push_back(std::move(step.write));
    creates.push_back(step.creates);
  }
  if (absl::Status s = Persist(std::move(writes), creates); !s.ok()) {
    undo();
    // Another change came between the check above and the write.
    if (if_match != store::kAnyRevision && absl::IsFailedPrecondition(s)) {
      return absl::AbortedError(Cat(ToStd(s.message()), " (If-Match)"));
    }
    return s;
  }
  if (route) {
    engine_.FlushIndex();  // what is logged from now on routes the new way
    events_->SealRoute(route);
  }
  return absl::OkStatus();
}

absl::Status ManagementService::DeleteStoredOnlyLocked(ConfigKind kind, const std::string& id,
                                                       const absl::Status& not_found) {
  if (!config_ || !config_->Get(kind, id)) return not_found;
  return Persist({store::DeleteWrite(kind, id)}, {false});
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
  if (inline_security) steps.push_back(CreateStep(*inline_security));
  if (inline_profile) steps.push_back(CreateStep(*inline_profile));
  steps.push_back(CreateStep(subscription));
  if (absl::Status s = RunLocked(std::move(steps)); !s.ok()) return s;
  if (deliverer_ && inline_profile) deliverer_->Revalidate(inline_profile->profile_id);
  return absl::OkStatus();
}

absl::Status ManagementService::UpdateSubscription(std::string_view channel,
                                                   const Subscription& subscription,
                                                   uint64_t if_match) {
  MutexLock lock(mu_);
  auto before = engine_.GetSubscription(subscription.subscription_id);
  if (!before.ok() || before->channel != channel) {
    return absl::NotFoundError(
        Cat("subscription ", subscription.subscription_id, " not found in ", channel));
  }
  return RunLocked({UpdateStep(subscription, before)}, &*before, if_match);
}

absl::Status ManagementService::DeleteSubscription(std::string_view channel, std::string_view id,
                                                   uint64_t if_match) {
  MutexLock lock(mu_);
  const std::string key(id);
  auto before = engine_.GetSubscription(key);
  absl::Status not_found = absl::NotFoundError(Cat("subscription ", id, " not found in ", channel));
  if (!before.ok()) {
    // Stored but refused at load: its record names its channel, unless it no longer reads.
    const auto stored = config_ ? config_->Get(ConfigKind::kSubscription, key) : std::nullopt;
    if (!stored) return not_found;
    const auto record = store::DecodeSubscriptionRecord(stored->value);
    if (record.ok() && record->channel != channel) return not_found;
    return DeleteStoredOnlyLocked(ConfigKind::kSubscription, key, not_found);
  }
  if (before->channel != channel) return not_found;
  return RunLocked({DeleteStep(key, before)}, &*before, if_match);
}

absl::Status ManagementService::CreateProfile(NotificationProfile profile,
                                              std::optional<SecuritySetting> inline_security) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(&profile, inline_security ? &*inline_security : nullptr);
      !s.ok()) {
    return s;
  }
  std::vector<Step> steps;
  if (inline_security) steps.push_back(CreateStep(*inline_security));
  steps.push_back(CreateStep(profile));
  if (absl::Status s = RunLocked(std::move(steps)); !s.ok()) return s;
  // A profile created again with a deleted one's id is asked afresh.
  if (deliverer_) deliverer_->Revalidate(profile.profile_id);
  return absl::OkStatus();
}

absl::Status ManagementService::UpdateProfile(NotificationProfile profile, uint64_t if_match) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(&profile, nullptr); !s.ok()) return s;
  const auto before = engine_.GetProfile(profile.profile_id);
  if (absl::Status s = RunLocked({UpdateStep(profile, before)}, nullptr, if_match); !s.ok()) {
    return s;
  }
  if (deliverer_) deliverer_->Revalidate(profile.profile_id);
  // An update is how an operator says a disabled (410 Gone) receiver is back.
  if (deliverer_ && deliverer_->disabled(profile.profile_id)) {
    if (absl::Status s = deliverer_->Enable(profile.profile_id); !s.ok()) {
      return absl::UnavailableError(
          Cat("the profile could not be enabled again: ", ToStd(s.message())));
    }
  }
  return absl::OkStatus();
}

absl::Status ManagementService::DeleteProfile(std::string_view id, uint64_t if_match) {
  MutexLock lock(mu_);
  return DeleteLocked<NotificationProfile>(id, if_match);
}

absl::Status ManagementService::CreateCertificate(const ClientCertificate& certificate) {
  MutexLock lock(mu_);
  return RunLocked({CreateStep(certificate)});
}

absl::Status ManagementService::DeleteCertificate(std::string_view id) {
  MutexLock lock(mu_);
  return DeleteLocked<ClientCertificate>(id, store::kAnyRevision);
}

absl::Status ManagementService::CreateSecurity(SecuritySetting security) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(nullptr, &security); !s.ok()) return s;
  return RunLocked({CreateStep(security)});
}

absl::Status ManagementService::UpdateSecurity(SecuritySetting security, uint64_t if_match) {
  MutexLock lock(mu_);
  if (absl::Status s = CheckLocked(nullptr, &security); !s.ok()) return s;
  const auto before = engine_.GetSecurity(security.auth_id);
  return RunLocked({UpdateStep(security, before)}, nullptr, if_match);
}

absl::Status ManagementService::DeleteSecurity(std::string_view id, uint64_t if_match) {
  MutexLock lock(mu_);
  return DeleteLocked<SecuritySetting>(id, if_match);
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
  if (absl::Status s = Persist(std::move(writes), std::vector<bool>(created.size(), true));
      !s.ok()) {
    for (const Subscription* c : created) (void)engine_.DeleteSubscription(c->subscription_id);
    return s;
  }
  return absl::OkStatus();
}

void ManagementService::ApplyWatched(const store::ConfigEntry& change,
                                     const std::function<bool(const store::ConfigEntry&)>& current,
                                     const std::function<void(std::string_view)>& log) {
  MutexLock lock(mu_);
  if (current && !current(change)) return;
  if (absl::Status s = store::ApplyEntry(engine_, change, log); !s.ok()) {
    if (log) {
      log(Cat("a change from another instance does not apply here: ",
              store::ConfigKindName(change.kind), " ", change.id, ": ", ToStd(s.message())));
    }
    return;
  }
  if (change.kind != ConfigKind::kProfile || change.deleted || !deliverer_) return;
  // As an update through this instance would: asked afresh, and enabled again if disabled.
  deliverer_->Revalidate(change.id);
  if (deliverer_->disabled(change.id)) (void)deliverer_->Enable(change.id);
}

}  // namespace herald::server
