// herald::Engine: the control plane (validated CRUD over subscriptions, profiles and security
// settings, committed to the index manager) over the data plane (router.h).
#include <algorithm>
#include <atomic>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/api/router.h"
#include "engine/common/assert.h"
#include "engine/common/mutex.h"
#include "engine/common/strings.h"
#include "engine/dispatch/dispatcher.h"
#include "engine/dispatch/notification_builder.h"
#include "engine/dispatch/profile_queue.h"
#include "engine/index/index_manager.h"
#include "engine/ingest/block_pool.h"
#include "herald/engine.h"

namespace herald {
namespace {

struct ProfileEntry {
  NotificationProfile profile;
  dispatch::ProfileQueue* queue = nullptr;
  size_t subscriptions = 0;  // how many subscriptions reference this profile
};

struct SecurityEntry {
  SecuritySetting security;
  size_t profiles = 0;
};

struct CertificateEntry {
  ClientCertificate certificate;
  size_t profiles = 0;
};

struct SubscriptionEntry {
  Subscription subscription;
  internal::SubRef compiled;  // compiled->created_seq orders listings
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(EngineOptions options, std::shared_ptr<const Catalog> catalog)
      : options_(std::move(options)),
        catalog_(std::move(catalog)),
        index_(catalog_, {.publish_interval = options_.publish_interval, .log = options_.log}) {
    if (options_.sink) {
      dispatcher_ =
          std::make_unique<dispatch::Dispatcher>(options_.sink, options_.dispatch_threads);
    }
  }

  ~EngineImpl() override {
    if (dispatcher_) dispatcher_->Stop();
  }

  const Catalog& catalog() const override { return *catalog_; }

  // --- security settings ---------------------------------------------------------------------
  absl::Status CreateSecurity(const SecuritySetting& s) override {
    if (auto errors = Validate(s); !errors.empty()) return ValidationError(errors);
    MutexLock lock(mu_);
    if (security_.contains(s.auth_id)) {
      return absl::AlreadyExistsError(Cat("security setting ", s.auth_id, " already exists"));
    }
    security_[s.auth_id] = SecurityEntry{s, 0};
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status UpdateSecurity(const SecuritySetting& s) override {
    if (auto errors = Validate(s); !errors.empty()) return ValidationError(errors);
    MutexLock lock(mu_);
    auto it = security_.find(s.auth_id);
    if (it == security_.end()) return NotFound("security setting", s.auth_id);
    it->second.security = s;
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status DeleteSecurity(std::string_view auth_id) override {
    MutexLock lock(mu_);
    auto it = security_.find(ToAbsl(auth_id));
    if (it == security_.end()) return NotFound("security setting", auth_id);
    if (it->second.profiles > 0) {
      return absl::FailedPreconditionError(
          Cat("security setting ", auth_id, " is used by ", it->second.profiles, " profile(s)"));
    }
    security_.erase(it);
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::StatusOr<SecuritySetting> GetSecurity(std::string_view auth_id) const override {
    MutexLock lock(mu_);
    auto it = security_.find(ToAbsl(auth_id));
    if (it == security_.end()) return NotFound("security setting", auth_id);
    return it->second.security;
  }

  // --- certificates ---------------------------------------------------------------------------
  absl::Status CreateCertificate(const ClientCertificate& c) override {
    if (!IsValidId(c.certificate_id)) {
      return ValidationError({{"certificateId", {"must be 1..255 characters of [A-Za-z0-9_-]"}}});
    }
    MutexLock lock(mu_);
    auto [it, created] = certificates_.try_emplace(c.certificate_id, CertificateEntry{c, 0});
    if (!created) {
      return absl::AlreadyExistsError(Cat("certificate ", c.certificate_id, " already exists"));
    }
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status DeleteCertificate(std::string_view certificate_id) override {
    MutexLock lock(mu_);
    auto it = certificates_.find(ToAbsl(certificate_id));
    if (it == certificates_.end()) return NotFound("certificate", certificate_id);
    if (it->second.profiles > 0) {
      return absl::FailedPreconditionError(
          Cat("certificate ", certificate_id, " is used by ", it->second.profiles, " profile(s)"));
    }
    certificates_.erase(it);
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::StatusOr<ClientCertificate> GetCertificate(std::string_view certificate_id) const override {
    MutexLock lock(mu_);
    auto it = certificates_.find(ToAbsl(certificate_id));
    if (it == certificates_.end()) return NotFound("certificate", certificate_id);
    return it->second.certificate;
  }

  // --- profiles -------------------------------------------------------------------------------
  absl::Status CreateProfile(const NotificationProfile& p) override {
    ValidationErrors errors = Validate(p);
    MutexLock lock(mu_);
    CheckSecurityExists(p, errors);
    if (!errors.empty()) return ValidationError(errors);
    if (profiles_.contains(p.profile_id)) {
      return absl::AlreadyExistsError(Cat("profile ", p.profile_id, " already exists"));
    }
    dispatch::ProfileQueue*& queue = queues_by_id_[p.profile_id];
    if (!queue) {
      queues_.push_back(std::make_unique<dispatch::ProfileQueue>(
          p.profile_id, options_.queue_max_notifications, options_.queue_max_bytes, options_.log));
      queue = queues_.back().get();
      queue->set_listener(dispatcher_.get());
    }
    queue->set_fifo(p.ordering == "KEY");
    Reference(p, +1);
    profiles_[p.profile_id] = ProfileEntry{p, queue, 0};
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status UpdateProfile(const NotificationProfile& p) override {
    ValidationErrors errors = Validate(p);
    MutexLock lock(mu_);
    CheckSecurityExists(p, errors);
    if (!errors.empty()) return ValidationError(errors);
    auto it = profiles_.find(p.profile_id);
    if (it == profiles_.end()) return NotFound("profile", p.profile_id);
    Reference(it->second.profile, -1);
    Reference(p, +1);
    it->second.queue->set_fifo(p.ordering == "KEY");
    it->second.profile = p;
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status DeleteProfile(std::string_view profile_id) override {
    MutexLock lock(mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    if (it == profiles_.end()) return NotFound("profile", profile_id);
    if (it->second.subscriptions > 0) {
      return absl::FailedPreconditionError(Cat("profile ", profile_id, " is used by ",
                                               it->second.subscriptions, " subscription(s)"));
    }
    Reference(it->second.profile, -1);
    // Its outstanding notifications no longer hold anything back; a profile re-created with
    // this id starts afresh.
    it->second.queue->tracker().Reset();
    profiles_.erase(it);
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::StatusOr<NotificationProfile> GetProfile(std::string_view profile_id) const override {
    MutexLock lock(mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    if (it == profiles_.end()) return NotFound("profile", profile_id);
    return it->second.profile;
  }

  // --- subscriptions --------------------------------------------------------------------------
  absl::Status CreateSubscription(const Subscription& s) override {
    ValidationErrors errors = Validate(s, *catalog_);
    MutexLock lock(mu_);
    auto profile = CheckProfileExists(s, errors);
    if (!errors.empty()) return ValidationError(errors);
    if (subscriptions_.contains(s.subscription_id)) {
      return absl::AlreadyExistsError(Cat("subscription ", s.subscription_id, " already exists"));
    }
    SubscriptionEntry entry{Canonical(s), {}};
    size_t& in_channel = per_channel_[entry.subscription.channel];
    if (in_channel >= options_.max_subscriptions_per_channel) {
      return ChannelFull(entry.subscription.channel);
    }
    ++in_channel;
    entry.compiled = index::Compile(entry.subscription, *catalog_, next_uid_++, next_created_++,
                                    GroupId(s.group), profile->second.queue);
    ++profile->second.subscriptions;
    last_commit_ = index_.Commit({}, entry.compiled);
    subscriptions_.emplace(s.subscription_id, std::move(entry));
    return absl::OkStatus();
  }

  absl::Status UpdateSubscription(const Subscription& s) override {
    ValidationErrors errors = Validate(s, *catalog_);
    MutexLock lock(mu_);
    auto profile = CheckProfileExists(s, errors);
    if (!errors.empty()) return ValidationError(errors);
    auto it = subscriptions_.find(s.subscription_id);
    if (it == subscriptions_.end()) return NotFound("subscription", s.subscription_id);
    SubscriptionEntry& entry = it->second;
    Subscription updated = Canonical(s);
    if (updated.channel != entry.subscription.channel) {
      size_t& in_channel = per_channel_[updated.channel];
      if (in_channel >= options_.max_subscriptions_per_channel) return ChannelFull(updated.channel);
      ++in_channel;
      --per_channel_[entry.subscription.channel];
    }
    --profiles_[entry.subscription.profile_id].subscriptions;
    ++profile->second.subscriptions;
    internal::SubRef before = entry.compiled;
    entry.subscription = std::move(updated);
    entry.compiled = index::Compile(entry.subscription, *catalog_, next_uid_++, before->created_seq,
                                    GroupId(s.group), profile->second.queue);
    last_commit_ = index_.Commit(std::move(before), entry.compiled);
    return absl::OkStatus();
  }

  absl::Status DeleteSubscription(std::string_view subscription_id) override {
    MutexLock lock(mu_);
    auto it = subscriptions_.find(ToAbsl(subscription_id));
    if (it == subscriptions_.end()) return NotFound("subscription", subscription_id);
    --profiles_[it->second.subscription.profile_id].subscriptions;
    --per_channel_[it->second.subscription.channel];
    last_commit_ = index_.Commit(std::move(it->second.compiled), {});
    subscriptions_.erase(it);
    return absl::OkStatus();
  }

  absl::Status AddReplayRoute(const Subscription& s, uint64_t before) override {
    if (before == 0) return absl::InvalidArgumentError("a replay route needs before > 0");
    ValidationErrors errors = Validate(s, *catalog_);
    MutexLock lock(mu_);
    auto profile = profiles_.find(s.profile_id);
    if (profile == profiles_.end()) return NotFound("profile", s.profile_id);
    if (!errors.empty()) return ValidationError(errors);
    // A group of its own: it competes with nobody, and the per-profile choice prefers the
    // subscriptions in force.
    const uint64_t uid = next_uid_++;
    internal::SubRef route =
        index::Compile(Canonical(s), *catalog_, uid, next_created_++,
                       GroupId(Cat("\x01replay:", uid)), profile->second.queue, before);
    last_commit_ = index_.Commit({}, route);
    replay_routes_.push_back(std::move(route));
    return absl::OkStatus();
  }

  void ClearReplayRoutes() override {
    MutexLock lock(mu_);
    for (auto& route : replay_routes_) last_commit_ = index_.Commit(std::move(route), {});
    replay_routes_.clear();
  }

  absl::StatusOr<Subscription> GetSubscription(std::string_view subscription_id) const override {
    MutexLock lock(mu_);
    auto it = subscriptions_.find(ToAbsl(subscription_id));
    if (it == subscriptions_.end()) return NotFound("subscription", subscription_id);
    return it->second.subscription;
  }

  uint64_t profile_version() const override {
    return profile_version_.load(std::memory_order_acquire);
  }
  size_t subscription_count() const override {
    MutexLock lock(mu_);
    return subscriptions_.size();
  }

  std::vector<Subscription> ListSubscriptions(std::string_view channel) const override {
    std::vector<std::pair<uint64_t, const Subscription*>> order;
    MutexLock lock(mu_);
    for (const auto& [id, entry] : subscriptions_) {
      if (channel.empty() || entry.subscription.channel == channel) {
        order.emplace_back(entry.compiled->created_seq, &entry.subscription);
      }
    }
    std::sort(order.begin(), order.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<Subscription> out;
    out.reserve(order.size());
    for (const auto& [seq, s] : order) out.push_back(*s);
    return out;
  }

  std::vector<NotificationProfile> ListProfiles() const override {
    std::vector<NotificationProfile> out;
    {
      MutexLock lock(mu_);
      for (const auto& [id, entry] : profiles_) out.push_back(entry.profile);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.profile_id < b.profile_id; });
    return out;
  }

  std::vector<SecuritySetting> ListSecurity() const override {
    std::vector<SecuritySetting> out;
    {
      MutexLock lock(mu_);
      for (const auto& [id, entry] : security_) out.push_back(entry.security);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.auth_id < b.auth_id; });
    return out;
  }

  std::vector<ClientCertificate> ListCertificates() const override {
    std::vector<ClientCertificate> out;
    {
      MutexLock lock(mu_);
      for (const auto& [id, entry] : certificates_) out.push_back(entry.certificate);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.certificate_id < b.certificate_id; });
    return out;
  }

  void FlushIndex() override {
    uint64_t seq;
    {
      MutexLock lock(mu_);
      seq = last_commit_;
    }
    index_.WaitPublished(seq);
  }

  // --- data plane -----------------------------------------------------------------------------
  // --- data plane -----------------------------------------------------------------------------
  IngestBuffer NewIngestBuffer(size_t bytes) override {
    return internal::IngestBufferAccess::Wrap<IngestBuffer>(pool_.Acquire(bytes));
  }

  IngestResult Ingest(std::string_view bytes, InputFormat format, std::vector<IngestError>* errors,
                      LogPosition log) override {
    IngestBuffer buffer = NewIngestBuffer(bytes.size());
    if (!bytes.empty()) std::memcpy(buffer.data(), bytes.data(), bytes.size());
    return Ingest(std::move(buffer), bytes.size(), format, errors, log);
  }

  IngestResult Ingest(IngestBuffer buffer, size_t size, InputFormat format,
                      std::vector<IngestError>* errors, LogPosition log) override {
    if (!buffer) buffer = NewIngestBuffer(0);
    HERALD_CHECK(size <= buffer.capacity());
    return router_.Ingest(internal::IngestBufferAccess::Release(buffer), size, format, errors, log,
                          Target(log));
  }

  IngestResult IngestNative(std::string_view channel, std::string_view event,
                            std::string_view bytes, std::vector<IngestError>* errors,
                            LogPosition log) override {
    return router_.IngestNative(channel, event, bytes, errors, log, Target(log));
  }

  absl::StatusOr<size_t> Poll(std::string_view profile_id, size_t max,
                              std::vector<Notification>* out) override {
    dispatch::ProfileQueue* queue;
    {
      MutexLock lock(mu_);
      auto it = profiles_.find(ToAbsl(profile_id));
      if (it == profiles_.end()) return NotFound("profile", profile_id);
      queue = it->second.queue;
    }
    // Dequeue in chunks: sizing `out` to `max` up front would construct max empty notifications.
    constexpr size_t kChunk = 64;
    Notification chunk[kChunk];
    size_t total = 0;
    while (total < max) {
      const size_t n = queue->DequeueBulk(chunk, std::min(kChunk, max - total));
      if (n == 0) break;
      for (size_t i = 0; i < n; ++i) out->push_back(std::move(chunk[i]));
      total += n;
    }
    return total;
  }

  absl::Status Enqueue(const RoutedNotification& n, uint64_t sequence) override {
    const int channel = catalog_->FindChannel(n.channel);
    const int event = channel < 0 ? -1 : catalog_->FindEvent(channel, n.event);
    if (event < 0) {
      return absl::NotFoundError(Cat("event ", n.channel, "/", n.event, " is not in the catalog"));
    }
    if (n.key.size() > 255 || n.webhook_id.empty() || n.webhook_id.size() > UINT16_MAX) {
      return absl::InvalidArgumentError("a routed notification needs a webhook id and a short key");
    }
    const ChannelInfo& info = catalog_->channels()[channel];
    dispatch::ProfileQueue* queue;
    uint32_t generation;
    {
      MutexLock lock(mu_);  // a profile deleted meanwhile resets its tracker: a new generation
      auto it = profiles_.find(ToAbsl(n.profile_id));
      if (it == profiles_.end()) return NotFound("profile", n.profile_id);
      queue = it->second.queue;
      generation = queue->tracker().generation();
    }
    auto* handle = new internal::RouteHandle();
    handle->subscription_id = n.subscription_id;
    handle->profile_id = n.profile_id;
    handle->channel_name = info.channel;
    handle->queue = queue;
    handle->queue_generation = generation;
    internal::PayloadBlock* block =
        pool_.Acquire(n.payload.size() + n.webhook_id.size() + n.key.size());
    block->sequence = sequence;
    block->ingested_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
    char* out = block->data();
    std::string_view parts[3] = {n.payload, n.webhook_id, n.key};
    for (std::string_view& part : parts) {
      if (!part.empty()) std::memcpy(out, part.data(), part.size());
      part = {out, part.size()};
      out += part.size();
    }
    Notification note = NotificationBuilder::Make(block, handle, info.events[event].event, parts[0],
                                                  parts[1], 0, parts[2]);
    NotificationBuilder::SetPriorAttempts(
        note, static_cast<uint16_t>(std::clamp(n.prior_attempts, 0, int{UINT16_MAX})));
    internal::Unref(block);  // the notification holds both now
    internal::Unref(handle);
    if (sequence != 0) queue->tracker().Add(sequence, generation);
    if (queue->TryEnqueue(std::move(note))) return absl::OkStatus();
    if (sequence != 0) queue->tracker().Settle(sequence, generation);
    return absl::ResourceExhaustedError(Cat("the queue of profile ", n.profile_id, " is full"));
  }

  absl::StatusOr<RouteExplanation> Explain(std::string_view envelope) const override {
    return router_.Explain(envelope);
  }

  Counters counters() const override {
    Counters c;
    router_.AddCounters(c);
    c.payload_bytes = pool_.live_bytes();
    return c;
  }

  std::vector<ProfileProgress> DeliveryProgress(size_t max_listed) const override {
    std::vector<ProfileProgress> out;
    MutexLock lock(mu_);
    out.reserve(profiles_.size());
    for (const auto& [id, entry] : profiles_) {
      const dispatch::SequenceTracker& tracker = entry.queue->tracker();
      ProfileProgress& p = out.emplace_back();
      p.profile_id = id;
      // Listed first: the oldest read after it is no newer than the list's first entry.
      if (max_listed > 0) p.listed_all = tracker.List(&p.unsettled, max_listed);
      p.oldest_unsettled = tracker.Oldest();
      p.outstanding = tracker.outstanding();
    }
    return out;
  }

  absl::Status SetReplayPlan(std::string_view profile_id, ReplayPlan plan) override {
    MutexLock lock(mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    if (it == profiles_.end()) return NotFound("profile", profile_id);
    if (!std::is_sorted(plan.only.begin(), plan.only.end())) {
      return absl::InvalidArgumentError("ReplayPlan::only must be ascending");
    }
    it->second.queue->SetReplayPlan(plan.floor, plan.upto, std::move(plan.only));
    return absl::OkStatus();
  }

  absl::Status ForgetProgress(std::string_view profile_id, uint64_t before) override {
    MutexLock lock(mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    if (it == profiles_.end()) return NotFound("profile", profile_id);
    it->second.queue->tracker().Forget(before);
    return absl::OkStatus();
  }

  std::vector<QueueStats> queue_stats() const override {
    MutexLock lock(mu_);
    std::vector<QueueStats> stats;
    for (const auto& [id, entry] : profiles_) {
      stats.push_back(
          {id, entry.queue->depth(), entry.queue->bytes(), entry.queue->back_pressured()});
    }
    std::sort(stats.begin(), stats.end(),
              [](const QueueStats& a, const QueueStats& b) { return a.profile_id < b.profile_id; });
    return stats;
  }

 private:
  static absl::Status NotFound(std::string_view kind, std::string_view id) {
    return absl::NotFoundError(Cat(kind, " ", id, " not found"));
  }

  // The queue a LogPosition restricts routing to (nullptr for an unknown profile).
  const dispatch::ProfileQueue* Target(const LogPosition& log) {
    if (log.only_profile.empty()) return nullptr;
    MutexLock lock(mu_);
    auto it = profiles_.find(ToAbsl(log.only_profile));
    return it == profiles_.end() ? nullptr : it->second.queue;
  }

  void CheckSecurityExists(const NotificationProfile& p, ValidationErrors& errors)
      HERALD_REQUIRES(mu_) {
    if (!p.auth_id.empty() && !security_.contains(p.auth_id)) {
      errors["security.authId"].push_back(Cat("security setting ", p.auth_id, " does not exist"));
    }
    if (!p.client_certificate_id.empty() && !certificates_.contains(p.client_certificate_id)) {
      errors["clientCertificateId"].push_back(
          Cat("certificate ", p.client_certificate_id, " does not exist"));
    }
  }

  // Counts `p`'s references to its security setting and certificate (which exist: checked).
  void Reference(const NotificationProfile& p, int delta) HERALD_REQUIRES(mu_) {
    if (!p.auth_id.empty()) security_[p.auth_id].profiles += delta;
    if (!p.client_certificate_id.empty()) certificates_[p.client_certificate_id].profiles += delta;
  }

  absl::flat_hash_map<std::string, ProfileEntry>::iterator CheckProfileExists(
      const Subscription& s, ValidationErrors& errors) HERALD_REQUIRES(mu_) {
    auto it = profiles_.find(s.profile_id);
    if (it == profiles_.end() && !s.profile_id.empty() && IsValidId(s.profile_id)) {
      errors["profile.profileId"].push_back(Cat("profile ", s.profile_id, " does not exist"));
    }
    return it;
  }

  absl::Status ChannelFull(std::string_view channel) const {
    return absl::ResourceExhaustedError(Cat("channel ", channel, " has reached its limit of ",
                                            options_.max_subscriptions_per_channel,
                                            " subscriptions (max_subscriptions_per_channel)"));
  }

  Subscription Canonical(const Subscription& s) const {
    Subscription c = s;
    c.channel = catalog_->channels()[catalog_->FindChannel(s.channel)].channel;
    return c;
  }

  uint32_t GroupId(const std::string& group) HERALD_REQUIRES(mu_) {
    auto [it, inserted] = groups_.try_emplace(group, static_cast<uint32_t>(groups_.size()));
    return it->second;
  }

  const EngineOptions options_;
  const std::shared_ptr<const Catalog> catalog_;
  // Destruction runs bottom-up: dispatcher, queues' notifications, index, then the pool.
  ingest::BlockPool pool_;

  // herald::Mutex: see IndexManager (ThreadSanitizer cannot see Debian's absl::Mutex ordering).
  mutable Mutex mu_;
  // Subscriptions per canonical channel.
  absl::flat_hash_map<std::string, size_t> per_channel_ HERALD_GUARDED_BY(mu_);
  std::atomic<uint64_t> profile_version_{0};
  absl::flat_hash_map<std::string, SecurityEntry> security_ HERALD_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, CertificateEntry> certificates_ HERALD_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ProfileEntry> profiles_ HERALD_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, SubscriptionEntry> subscriptions_ HERALD_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> groups_ HERALD_GUARDED_BY(mu_);
  std::vector<internal::SubRef> replay_routes_ HERALD_GUARDED_BY(mu_);
  uint64_t next_uid_ HERALD_GUARDED_BY(mu_) = 1;
  uint64_t next_created_ HERALD_GUARDED_BY(mu_) = 1;
  uint64_t last_commit_ HERALD_GUARDED_BY(mu_) = 0;

  index::IndexManager index_;
  api::Router router_{{.max_event_bytes = options_.max_event_bytes,
                       .max_payload_depth = options_.max_payload_depth,
                       .fanout = options_.fanout},
                      catalog_,
                      index_,
                      pool_};
  // Queues live as long as the engine (a re-created profile id reuses its queue), so routers
  // and dispatch threads can hold plain pointers.
  absl::flat_hash_map<std::string, dispatch::ProfileQueue*> queues_by_id_ HERALD_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<dispatch::ProfileQueue>> queues_ HERALD_GUARDED_BY(mu_);
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(EngineOptions options) {
  std::shared_ptr<const Catalog> catalog = options.catalog;
  if (!catalog) {
    if (options.catalog_path.empty()) {
      return absl::InvalidArgumentError("EngineOptions: set catalog or catalog_path");
    }
    auto loaded = Catalog::Load(options.catalog_path);
    if (!loaded.ok()) return loaded.status();
    catalog = *std::move(loaded);
  }
  if (options.max_event_bytes == 0 || options.queue_max_notifications == 0 ||
      options.queue_max_bytes == 0 || options.max_payload_depth < 1) {
    return absl::InvalidArgumentError(
        "EngineOptions: max_event_bytes, max_payload_depth and queue bounds must be positive");
  }
  return std::unique_ptr<Engine>(new EngineImpl(std::move(options), std::move(catalog)));
}

}  // namespace herald
