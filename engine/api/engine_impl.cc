// herald::Engine: the control plane (validated CRUD over subscriptions, profiles and security
// settings, committed to the index manager) and the data plane (router contexts that parse,
// match and enqueue with no lock shared with the control plane and no allocation in steady state).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/common/assert.h"
#include "engine/common/hash.h"
#include "engine/common/strings.h"
#include "engine/dispatch/dispatcher.h"
#include "engine/dispatch/notification_builder.h"
#include "engine/dispatch/profile_queue.h"
#include "engine/index/index_manager.h"
#include "engine/index/matcher.h"
#include "engine/ingest/block_pool.h"
#include "engine/parse/envelope_parser.h"
#include "engine/parse/native_extractor.h"
#include "herald/engine.h"

namespace herald {
namespace {

// Per-router counters, on their own cache lines; summed on read.
struct alignas(64) RouterCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> rejected_by_reason[kRejectReasonCount] = {};
  std::atomic<uint64_t> matched{0};
  std::atomic<uint64_t> unmatched{0};
  std::atomic<uint64_t> enqueued{0};
  std::atomic<uint64_t> back_pressured{0};
};

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  // Only the thread holding the router context writes its counters.
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct RouterContext {
  explicit RouterContext(parse::ParserLimits limits) : parser(limits), native(limits) {}
  std::atomic<bool> busy{false};
  parse::EnvelopeParser parser;
  parse::NativeExtractor native;
  index::Matcher matcher;
  std::shared_ptr<const index::IndexState> state;
  uint64_t state_version = ~uint64_t{0};
  RouterCounters counters;
  bool targeted = false;  // this call routes for one profile alone: `only`
  const dispatch::ProfileQueue* only = nullptr;
  uint32_t first_event = 0;  // with `targeted`: events before it are skipped
  // The log's refusal report (LogPosition::refusals), and the queues that refused this input.
  std::vector<QueueRefusal>* refusals = nullptr;
  std::vector<const dispatch::ProfileQueue*> refused;
  std::vector<Notification>* collect = nullptr;  // with `targeted`: instead of the queue

  void Begin(const LogPosition& log, const dispatch::ProfileQueue* target) {
    targeted = !log.only_profile.empty();
    only = target;
    first_event = log.first_event;
    refusals = log.sequence != 0 ? log.refusals : nullptr;
    refused.clear();
    collect = targeted ? log.collect : nullptr;
  }
};

struct ProfileEntry {
  NotificationProfile profile;
  dispatch::ProfileQueue* queue = nullptr;
  size_t subscriptions = 0;  // how many subscriptions reference this profile
};

struct SecurityEntry {
  SecuritySetting security;
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
    const int n = std::max(4, 2 * static_cast<int>(std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) {
      contexts_.push_back(std::make_unique<RouterContext>(
          parse::ParserLimits{.max_event_bytes = options_.max_event_bytes,
                              .max_payload_depth = options_.max_payload_depth}));
    }
    std::random_device rd;
    next_event_id_.store((uint64_t{rd()} << 32 | rd()) & 0x00ffffffffffffffULL);
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
    std::lock_guard lock(mu_);
    if (security_.contains(s.auth_id)) {
      return absl::AlreadyExistsError(Cat("security setting ", s.auth_id, " already exists"));
    }
    security_[s.auth_id] = SecurityEntry{s, 0};
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status UpdateSecurity(const SecuritySetting& s) override {
    if (auto errors = Validate(s); !errors.empty()) return ValidationError(errors);
    std::lock_guard lock(mu_);
    auto it = security_.find(s.auth_id);
    if (it == security_.end()) return NotFound("security setting", s.auth_id);
    it->second.security = s;
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status DeleteSecurity(std::string_view auth_id) override {
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
    auto it = security_.find(ToAbsl(auth_id));
    if (it == security_.end()) return NotFound("security setting", auth_id);
    return it->second.security;
  }

  // --- profiles -------------------------------------------------------------------------------
  absl::Status CreateProfile(const NotificationProfile& p) override {
    ValidationErrors errors = Validate(p);
    std::lock_guard lock(mu_);
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
    if (!p.auth_id.empty()) ++security_[p.auth_id].profiles;
    profiles_[p.profile_id] = ProfileEntry{p, queue, 0};
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status UpdateProfile(const NotificationProfile& p) override {
    ValidationErrors errors = Validate(p);
    std::lock_guard lock(mu_);
    CheckSecurityExists(p, errors);
    if (!errors.empty()) return ValidationError(errors);
    auto it = profiles_.find(p.profile_id);
    if (it == profiles_.end()) return NotFound("profile", p.profile_id);
    if (!it->second.profile.auth_id.empty()) --security_[it->second.profile.auth_id].profiles;
    if (!p.auth_id.empty()) ++security_[p.auth_id].profiles;
    it->second.profile = p;
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status DeleteProfile(std::string_view profile_id) override {
    std::lock_guard lock(mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    if (it == profiles_.end()) return NotFound("profile", profile_id);
    if (it->second.subscriptions > 0) {
      return absl::FailedPreconditionError(Cat("profile ", profile_id, " is used by ",
                                               it->second.subscriptions, " subscription(s)"));
    }
    if (!it->second.profile.auth_id.empty()) --security_[it->second.profile.auth_id].profiles;
    // Its outstanding notifications no longer hold anything back; a profile re-created with
    // this id starts afresh.
    it->second.queue->tracker().Reset();
    profiles_.erase(it);
    profile_version_.fetch_add(1, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::StatusOr<NotificationProfile> GetProfile(std::string_view profile_id) const override {
    std::lock_guard lock(mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    if (it == profiles_.end()) return NotFound("profile", profile_id);
    return it->second.profile;
  }

  // --- subscriptions --------------------------------------------------------------------------
  absl::Status CreateSubscription(const Subscription& s) override {
    ValidationErrors errors = Validate(s, *catalog_);
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
    for (auto& route : replay_routes_) last_commit_ = index_.Commit(std::move(route), {});
    replay_routes_.clear();
  }

  absl::StatusOr<Subscription> GetSubscription(std::string_view subscription_id) const override {
    std::lock_guard lock(mu_);
    auto it = subscriptions_.find(ToAbsl(subscription_id));
    if (it == subscriptions_.end()) return NotFound("subscription", subscription_id);
    return it->second.subscription;
  }

  uint64_t profile_version() const override {
    return profile_version_.load(std::memory_order_acquire);
  }
  size_t subscription_count() const override {
    std::lock_guard lock(mu_);
    return subscriptions_.size();
  }

  std::vector<Subscription> ListSubscriptions(std::string_view channel) const override {
    std::vector<std::pair<uint64_t, const Subscription*>> order;
    std::lock_guard lock(mu_);
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
      std::lock_guard lock(mu_);
      for (const auto& [id, entry] : profiles_) out.push_back(entry.profile);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.profile_id < b.profile_id; });
    return out;
  }

  std::vector<SecuritySetting> ListSecurity() const override {
    std::vector<SecuritySetting> out;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, entry] : security_) out.push_back(entry.security);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.auth_id < b.auth_id; });
    return out;
  }

  void FlushIndex() override {
    uint64_t seq;
    {
      std::lock_guard lock(mu_);
      seq = last_commit_;
    }
    index_.WaitPublished(seq);
  }

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
    internal::PayloadBlock* block = internal::IngestBufferAccess::Release(buffer);
    block->sequence = log.sequence;
    IngestResult result;
    const dispatch::ProfileQueue* only = Target(log);
    RouterContext& ctx = AcquireContext();
    ctx.Begin(log, only);
    const uint64_t version = index_.published_version();
    if (version != ctx.state_version) {
      ctx.state = index_.Load();
      ctx.state_version = version;
    }
    char* data = block->data();
    const size_t capacity = block->capacity + kInputPadding;
    if (format == InputFormat::kAuto)
      format = LooksLikeNdjson(data, size) ? InputFormat::kNdjson : InputFormat::kSingle;
    if (format == InputFormat::kSingle) {
      RouteOne(ctx, block, data, size, capacity, 1, 0, result, errors);
    } else {
      size_t line = 0, pos = 0;
      while (pos < size) {
        ++line;
        const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', size - pos));
        const size_t end = nl ? static_cast<size_t>(nl - data) : size;
        size_t len = end - pos;
        if (len > 0 && data[pos + len - 1] == '\r') --len;
        if (!IsBlank(data + pos, len)) {
          RouteOne(ctx, block, data + pos, len, capacity - pos, line, pos, result, errors);
        }
        pos = end + 1;
      }
    }
    ctx.busy.store(false, std::memory_order_release);
    internal::Unref(block);
    return result;
  }

  IngestResult IngestNative(std::string_view channel, std::string_view event,
                            std::string_view bytes, std::vector<IngestError>* errors,
                            LogPosition log) override {
    IngestResult result;
    const dispatch::ProfileQueue* only = Target(log);
    RouterContext& ctx = AcquireContext();
    ctx.Begin(log, only);
    const int64_t pair = catalog_->PairId(channel, event);
    if (pair < 0) {
      parse::EventView view;
      view.channel = channel;
      view.event = event;
      Reject(ctx,
             catalog_->FindChannel(channel) < 0 ? RejectReason::kUnknownChannel
                                                : RejectReason::kUnknownEvent,
             1, 0, parse::ParseOutcome{}, view, result, errors);
      ctx.busy.store(false, std::memory_order_release);
      return result;
    }
    internal::PayloadBlock* block = pool_.Acquire(bytes.size());
    block->sequence = log.sequence;
    if (!bytes.empty()) std::memcpy(block->data(), bytes.data(), bytes.size());
    const uint64_t version = index_.published_version();
    if (version != ctx.state_version) {
      ctx.state = index_.Load();
      ctx.state_version = version;
    }
    const uint32_t pair_id = static_cast<uint32_t>(pair);
    ctx.native.Extract(
        block->data(), bytes.size(), block->capacity + kInputPadding,
        catalog_->event_info(pair_id).routing_keys,
        [&](size_t, const parse::EventView& view) { Route(ctx, block, pair_id, view, result); },
        [&](size_t index, const parse::ParseOutcome& outcome) {
          Reject(ctx, outcome.reason, index, 0, outcome, parse::EventView{}, result, errors);
        });
    ctx.busy.store(false, std::memory_order_release);
    internal::Unref(block);
    return result;
  }

  absl::StatusOr<size_t> Poll(std::string_view profile_id, size_t max,
                              std::vector<Notification>* out) override {
    dispatch::ProfileQueue* queue;
    {
      std::lock_guard lock(mu_);
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

  Counters counters() const override {
    Counters c;
    for (const auto& ctx : contexts_) {
      const RouterCounters& r = ctx->counters;
      c.accepted += r.accepted.load(std::memory_order_relaxed);
      c.rejected += r.rejected.load(std::memory_order_relaxed);
      for (int i = 0; i < kRejectReasonCount; ++i) {
        c.rejected_by_reason[i] += r.rejected_by_reason[i].load(std::memory_order_relaxed);
      }
      c.matched += r.matched.load(std::memory_order_relaxed);
      c.unmatched += r.unmatched.load(std::memory_order_relaxed);
      c.enqueued += r.enqueued.load(std::memory_order_relaxed);
      c.back_pressured += r.back_pressured.load(std::memory_order_relaxed);
    }
    c.payload_bytes = pool_.live_bytes();
    return c;
  }

  std::vector<ProfileProgress> DeliveryProgress(size_t max_listed) const override {
    std::vector<ProfileProgress> out;
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    if (it == profiles_.end()) return NotFound("profile", profile_id);
    if (!std::is_sorted(plan.only.begin(), plan.only.end())) {
      return absl::InvalidArgumentError("ReplayPlan::only must be ascending");
    }
    it->second.queue->SetReplayPlan(plan.floor, plan.upto, std::move(plan.only));
    return absl::OkStatus();
  }

  absl::Status ForgetProgress(std::string_view profile_id, uint64_t before) override {
    std::lock_guard lock(mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    if (it == profiles_.end()) return NotFound("profile", profile_id);
    it->second.queue->tracker().Forget(before);
    return absl::OkStatus();
  }

  std::vector<QueueStats> queue_stats() const override {
    std::lock_guard lock(mu_);
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

  static bool IsBlank(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
    }
    return true;
  }

  // More than one non-blank line means NDJSON.
  static bool LooksLikeNdjson(const char* data, size_t len) {
    const char* nl = static_cast<const char*>(std::memchr(data, '\n', len));
    if (!nl) return false;
    const size_t rest = len - static_cast<size_t>(nl + 1 - data);
    for (size_t i = 0; i < rest; ++i) {
      const char c = nl[1 + i];
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return true;
    }
    return false;
  }

  // The queue a LogPosition restricts routing to (nullptr for an unknown profile).
  const dispatch::ProfileQueue* Target(const LogPosition& log) {
    if (log.only_profile.empty()) return nullptr;
    std::lock_guard lock(mu_);
    auto it = profiles_.find(ToAbsl(log.only_profile));
    return it == profiles_.end() ? nullptr : it->second.queue;
  }

  RouterContext& AcquireContext() {
    // Each thread starts at its own slot, so a thread keeps reusing one warm context.
    static std::atomic<size_t> next_thread_slot{0};
    thread_local const size_t thread_slot = next_thread_slot.fetch_add(1);
    const size_t n = contexts_.size();
    size_t i = thread_slot % n;
    for (;;) {
      for (size_t tries = 0; tries < n; ++tries, i = (i + 1) % n) {
        RouterContext& ctx = *contexts_[i];
        if (!ctx.busy.load(std::memory_order_relaxed) &&
            !ctx.busy.exchange(true, std::memory_order_acquire)) {
          return ctx;
        }
      }
      std::this_thread::yield();
    }
  }

  void Reject(RouterContext& ctx, RejectReason reason, size_t line, size_t base_offset,
              const parse::ParseOutcome& outcome, const parse::EventView& view,
              IngestResult& result, std::vector<IngestError>* errors) {
    ++result.rejected;
    Bump(ctx.counters.rejected);
    Bump(ctx.counters.rejected_by_reason[static_cast<int>(reason)]);
    if (errors) {
      parse::ParseOutcome o = outcome;
      o.ok = false;
      o.reason = reason;
      errors->push_back(IngestError{line, base_offset + outcome.offset, reason,
                                    parse::EnvelopeParser::Describe(o, view)});
    }
  }

  void RouteOne(RouterContext& ctx, internal::PayloadBlock* block, char* data, size_t len,
                size_t capacity, size_t line, size_t base_offset, IngestResult& result,
                std::vector<IngestError>* errors) {
    parse::EventView view;
    const parse::ParseOutcome outcome = ctx.parser.Parse(data, len, capacity, &view);
    if (!outcome.ok) {
      Reject(ctx, outcome.reason, line, base_offset, outcome, view, result, errors);
      return;
    }
    const int64_t pair = catalog_->PairId(view.channel, view.event);
    if (pair < 0) {
      const RejectReason reason = catalog_->FindChannel(view.channel) < 0
                                      ? RejectReason::kUnknownChannel
                                      : RejectReason::kUnknownEvent;
      Reject(ctx, reason, line, base_offset, outcome, view, result, errors);
      return;
    }
    Route(ctx, block, static_cast<uint32_t>(pair), view, result);
  }

  // Matches one parsed event of a known pair and enqueues its notifications.
  void Route(RouterContext& ctx, internal::PayloadBlock* block, uint32_t pair,
             const parse::EventView& view, IngestResult& result) {
    index::RouteKeys keys;
    keys.pair_id = pair;
    keys.channel = static_cast<uint16_t>(catalog_->channel_of(keys.pair_id));
    keys.event_index = static_cast<uint16_t>(catalog_->event_of(keys.pair_id));
    keys.app = view.application_id;
    keys.entity = view.entity_id;
    keys.resource = view.resource;
    keys.user = view.user;
    keys.Hash();
    ++result.accepted;
    Bump(ctx.counters.accepted);
    const auto winners = ctx.matcher.Route(*ctx.state, keys, options_.fanout == Fanout::kAll);
    if (winners.empty()) {
      Bump(ctx.counters.unmatched);
      return;
    }
    ++result.matched;
    Bump(ctx.counters.matched);
    const uint64_t seq = block->sequence;
    uint64_t generated = 0;
    if (view.event_id.empty()) {
      // From a logged input the id depends only on its position and the event's place in it, so
      // a replay sends the same webhook-id.
      // The payload too: should a lost spool tail make a sequence number come again, a
      // different event does not repeat an id a receiver has seen.
      generated =
          seq != 0 ? HashCombine(HashCombine(seq, result.accepted), StableHashBytes(view.payload))
                   : next_event_id_.fetch_add(1, std::memory_order_relaxed);
    }
    const std::string_view event_name = catalog_->event_info(keys.pair_id).event;
    // An event that is a small part of its input gets a block of its own, made for the first
    // notification and shared by the rest: what a queued or held notification keeps alive is then
    // about its own size, never a whole request body that a slow profile has one event of.
    internal::PayloadBlock* source = block;
    std::string_view payload = view.payload, event_id = view.event_id;
    // Up to 2 KiB an input is kept whole (a single event is most of its block); beyond, an event
    // under half of it is copied.
    const bool compact =
        block->capacity >= 2048 && payload.size() + event_id.size() < block->capacity / 2;
    const auto make = [&](const internal::CompiledSubscription* winner) {
      if (compact && source == block) {
        source = pool_.Acquire(payload.size() + event_id.size());
        source->sequence = block->sequence;
        char* out = source->data();
        std::memcpy(out, payload.data(), payload.size());
        if (!event_id.empty()) std::memcpy(out + payload.size(), event_id.data(), event_id.size());
        payload = {out, payload.size()};
        event_id = {out + payload.size(), event_id.size()};
      }
      return NotificationBuilder::Make(source, winner, event_name, payload, event_id, generated);
    };
    for (const auto* winner : winners) {
      dispatch::ProfileQueue* queue = winner->queue;
      if (ctx.targeted && (queue != ctx.only || result.accepted < ctx.first_event)) continue;
      if (winner->replay_before != 0 && (seq == 0 || seq >= winner->replay_before)) continue;
      if (ctx.collect) {
        ctx.collect->push_back(make(winner));
        ++result.notifications;
        continue;
      }
      if (seq != 0 && !queue->ReplayWants(seq)) continue;  // finished before the restart
      if (ctx.refusals && !ctx.refused.empty() &&
          std::find(ctx.refused.begin(), ctx.refused.end(), queue) != ctx.refused.end()) {
        ++result.deferred;  // the rest of this input waits in the log with the first refused
        Bump(ctx.counters.back_pressured);
        continue;
      }
      // Counted before it is queued: a consumer may settle it at once.
      if (seq != 0) queue->tracker().Add(seq, winner->queue_generation);
      if (queue->TryEnqueue(make(winner))) {
        ++result.notifications;
        Bump(ctx.counters.enqueued);
        continue;
      }
      if (seq != 0) queue->tracker().Settle(seq, winner->queue_generation);
      Bump(ctx.counters.back_pressured);
      if (ctx.refusals) {
        ctx.refused.push_back(queue);
        ctx.refusals->push_back({queue->profile_id(), static_cast<uint32_t>(result.accepted)});
        ++result.deferred;
      } else {
        ++result.back_pressured;
      }
    }
    if (source != block) internal::Unref(source);  // the notifications hold their own refs
  }

  // The two checks below run with mu_ held.
  void CheckSecurityExists(const NotificationProfile& p, ValidationErrors& errors) {
    if (!p.auth_id.empty() && !security_.contains(p.auth_id)) {
      errors["security.authId"].push_back(Cat("security setting ", p.auth_id, " does not exist"));
    }
  }

  absl::flat_hash_map<std::string, ProfileEntry>::iterator CheckProfileExists(
      const Subscription& s, ValidationErrors& errors) {
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

  uint32_t GroupId(const std::string& group) {
    auto [it, inserted] = groups_.try_emplace(group, static_cast<uint32_t>(groups_.size()));
    return it->second;
  }

  const EngineOptions options_;
  const std::shared_ptr<const Catalog> catalog_;
  // Destruction runs bottom-up: dispatcher, queues' notifications, index, then the pool.
  ingest::BlockPool pool_;
  std::vector<std::unique_ptr<RouterContext>> contexts_;
  std::atomic<uint64_t> next_event_id_{0};

  // std::mutex: see IndexManager (ThreadSanitizer cannot see Debian's absl::Mutex ordering).
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, size_t> per_channel_;  // subscriptions per canonical channel
  std::atomic<uint64_t> profile_version_{0};
  absl::flat_hash_map<std::string, SecurityEntry> security_;
  absl::flat_hash_map<std::string, ProfileEntry> profiles_;
  absl::flat_hash_map<std::string, SubscriptionEntry> subscriptions_;
  absl::flat_hash_map<std::string, uint32_t> groups_;
  std::vector<internal::SubRef> replay_routes_;
  uint64_t next_uid_ = 1;
  uint64_t next_created_ = 1;
  uint64_t last_commit_ = 0;

  index::IndexManager index_;
  // Queues live as long as the engine (a re-created profile id reuses its queue), so routers
  // and dispatch threads can hold plain pointers.
  absl::flat_hash_map<std::string, dispatch::ProfileQueue*> queues_by_id_;
  std::vector<std::unique_ptr<dispatch::ProfileQueue>> queues_;
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
