// The webhook deliverer: profiles sharded over workers (see worker.h), the dead-letter store and
// its writer, the shared resolver, and the start and stop order of all of them.
#include "herald/webhook_deliverer.h"

#include <unistd.h>

// clang-format off
#include <utility>
#include <boost/asio/post.hpp>
// clang-format on
#include <simdjson.h>

#include <future>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "engine/common/mutex.h"
#include "engine/common/strings.h"
#include "engine/deliver/worker.h"

namespace herald {
namespace deliver {
namespace {

using SteadyClock = std::chrono::steady_clock;

class Deliverer final : public WebhookDeliverer, public WorkerHost {
 public:
  explicit Deliverer(DelivererOptions options)
      : options_(std::move(options)),
        deliveries_(options_.delivery_log_entries, options_.delivery_log_body_bytes) {}
  ~Deliverer() override { Stop(milliseconds(0)); }

  absl::Status Init() {
    resolver_ = std::make_unique<Resolver>(options_.resolve);
    if (options_.dead_letters != nullptr) {
      dead_letters_ = options_.dead_letters;
    } else {
      auto store = DeadLetterStore::Open({.dir = options_.data_dir,
                                          .max_bytes = options_.dead_letters_max_bytes,
                                          .max_age = options_.dead_letters_max_age,
                                          .log = options_.log,
                                          .sync = options_.dead_letters_sync,
                                          .compaction_due = [this] { writer_->CompactIfDue(); }});
      if (!store.ok()) return store.status();
      dead_letters_ = std::move(*store);
    }
    writer_ = std::make_unique<DeadLetterWriter>(*dead_letters_);
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
      auto worker = Worker::Create(*this, options_);
      if (!worker.ok()) return worker.status();
      workers_.push_back(std::move(*worker));
    }
    // A profile disabled (a 410) or enabled through another instance is so here too. Once the
    // workers exist (State() shards over them), and before the sweep below, which misses none.
    dead_letters_->OnDisabledElsewhere([this](const std::string& id, bool disabled) {
      ReaderLock lifecycle(lifecycle_mu_);
      if (!stopping_.load()) State(id).disabled.store(disabled);
    });
    for (const auto& id : dead_letters_->disabled()) State(id).disabled.store(true);
    return absl::OkStatus();
  }

  void Start(Engine& engine) override {
    engine_ = &engine;
    for (auto& w : workers_) w->Run();
  }

  void Stop(milliseconds grace) override;

  void Deliver(std::string_view profile_id, std::span<Notification> batch) override {
    ReaderLock lifecycle(lifecycle_mu_);
    if (stopping_.load(std::memory_order_acquire)) {
      // Raced with Stop(): keep them, like everything else still held then.
      KeepStopped(profile_id, batch);
      return;
    }
    ProfileState& p = State(profile_id);
    std::vector<Item> items;
    items.reserve(batch.size());
    for (auto& n : batch) items.push_back(Item{std::move(n), nullptr});
    Hand(p, std::move(items));
  }

  size_t Capacity(std::string_view profile_id) override {
    ReaderLock lifecycle(lifecycle_mu_);
    if (stopping_.load(std::memory_order_acquire)) return 0;
    const uint64_t held = State(profile_id).held.load(std::memory_order_relaxed);
    return held >= options_.max_held_per_profile ? 0 : options_.max_held_per_profile - held;
  }

  std::vector<ProfileDeliveryStats> stats() const override;
  bool disabled(std::string_view profile_id) const override {
    ReaderLock lock(profiles_mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    return it != profiles_.end() && it->second->disabled.load();
  }
  absl::Status Enable(std::string_view profile_id) override {
    // Through the writer, after any "disabled" a worker queued.
    std::promise<absl::Status> written;
    writer_->SetDisabled(std::string(profile_id), false,
                         [&](const absl::Status& s) { written.set_value(s); });
    if (auto s = written.get_future().get(); !s.ok()) return s;
    ReaderLock lifecycle(lifecycle_mu_);
    if (stopping_.load()) return absl::OkStatus();
    ProfileState& p = State(profile_id);
    if (p.disabled.exchange(false) && options_.log) {
      options_.log(Cat("delivery: profile ", profile_id, " enabled again"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<DeadLetterPage> ListDeadLetters(std::string_view profile_id, size_t page,
                                                 size_t size) const override {
    return dead_letters_->List(profile_id, page, size);
  }
  absl::StatusOr<size_t> DeleteDeadLetters(std::string_view profile_id,
                                           const std::vector<uint64_t>& ids) override {
    return dead_letters_->Delete(profile_id, ids);
  }
  DeadLetterStats dead_letter_stats() const override {
    const auto s = dead_letters_->stats();
    return {.letters = s.letters, .bytes = s.bytes, .dropped = s.dropped};
  }
  absl::StatusOr<size_t> Replay(std::string_view profile_id,
                                const std::vector<uint64_t>& ids) override;
  std::map<std::string, uint64_t> dead_letter_counts() const override {
    return dead_letters_->CountByProfile();
  }
  std::vector<std::pair<double, uint64_t>> end_to_end_latency() const override {
    return end_to_end_.Buckets();
  }
  std::vector<DeliveryAttempt> Deliveries(const DeliveryQuery& query,
                                          uint64_t* last_id) const override {
    return deliveries_.Query(query, last_id);
  }
  uint64_t last_delivery_id() const override { return deliveries_.last_id(); }
  absl::StatusOr<uint64_t> Resend(uint64_t delivery_id) override;
  void Revalidate(std::string_view profile_id) override {
    ReaderLock lifecycle(lifecycle_mu_);
    if (stopping_.load(std::memory_order_acquire) || engine_ == nullptr) return;
    ProfileState* p = nullptr;
    {
      ReaderLock lock(profiles_mu_);
      auto it = profiles_.find(ToAbsl(profile_id));
      if (it == profiles_.end()) return;
      p = it->second.get();
    }
    if (p->validation_stat.load() == ProfileState::Validation::kNone) return;
    p->revalidate.store(true);
    PostPump(*p);
  }
  void TestConnection(std::string url, ClientCertificate certificate, milliseconds timeout,
                      std::function<void(absl::Status)> done) override {
    ReaderLock lifecycle(lifecycle_mu_);
    if (stopping_.load(std::memory_order_acquire) || engine_ == nullptr) {
      return done(absl::UnavailableError("the deliverer is stopping"));
    }
    workers_[next_probe_.fetch_add(1) % workers_.size()]->TestConnection(
        std::move(url), std::move(certificate), timeout, std::move(done));
  }
  absl::Status BuryUndelivered(std::string_view profile_id, std::span<Notification> notifications,
                               std::string_view reason) override {
    if (notifications.empty()) return absl::OkStatus();
    std::vector<DeadLetter> letters;
    for (const auto& n : notifications) {
      letters.push_back({.profile_id = std::string(profile_id),
                         .subscription_id = std::string(n.subscription_id()),
                         .channel = std::string(n.channel()),
                         .event = std::string(n.event()),
                         .webhook_id = std::string(n.webhook_id()),
                         .payload = std::string(n.payload()),
                         .last_error = std::string(reason),
                         .failed_at_ms = Clock::System().UnixMillis()});
    }
    if (auto s = dead_letters_->Add(letters); !s.ok()) return s;
    ReaderLock lifecycle(lifecycle_mu_);
    if (!stopping_.load()) {
      State(profile_id).dead_lettered.fetch_add(letters.size(), std::memory_order_release);
    }
    return absl::OkStatus();
  }

  // For workers.
  const DelivererOptions& options() const override { return options_; }
  Engine* engine() const override { return engine_; }
  DeadLetters& dead_letters() override { return *dead_letters_; }
  DeadLetterWriter& writer() override { return *writer_; }
  Resolver& resolver() override { return *resolver_; }
  DeliveryRing& deliveries() override { return deliveries_; }
  LatencyHistogram& end_to_end() override { return end_to_end_; }
  void PostPump(ProfileState& p) {
    asio::post(p.worker->io(), [&p] { p.worker->Pump(p); });
  }

 private:
  ProfileState& State(std::string_view profile_id) {
    {
      ReaderLock lock(profiles_mu_);
      auto it = profiles_.find(ToAbsl(profile_id));
      if (it != profiles_.end()) return *it->second;
    }
    WriterLock lock(profiles_mu_);
    auto& slot = profiles_[ToAbsl(profile_id)];
    if (!slot) {
      Worker* w = workers_[absl::Hash<std::string_view>{}(profile_id) % workers_.size()].get();
      slot = std::make_unique<ProfileState>(
          std::string(profile_id), w, w->io(), w->clock(),
          CircuitBreaker::Options{.failures = options_.breaker_failures,
                                  .open = options_.breaker_open,
                                  .open_max = options_.breaker_open_max});
    }
    return *slot;
  }

  void Hand(ProfileState& p, std::vector<Item> items) {
    p.held.fetch_add(items.size(), std::memory_order_relaxed);
    bool post = false;
    {
      MutexLock lock(p.inbox_mu);
      for (auto& item : items) p.inbox.push_back(std::move(item));
      post = !p.pump_posted;
      p.pump_posted = true;
    }
    if (post) PostPump(p);
  }

  // Notifications handed over after Stop() began become dead letters at once.
  void KeepStopped(std::string_view profile_id, std::span<Notification> batch);

  DelivererOptions options_;
  Engine* engine_ = nullptr;
  // Capacity/Deliver/Replay/Enable hold it shared; Stop() takes it once to set stopping_, so no
  // handover is half done when the workers go away.
  SharedMutex lifecycle_mu_;
  std::shared_ptr<DeadLetters> dead_letters_;
  std::unique_ptr<DeadLetterWriter> writer_;  // the workers' writes to dead_letters_
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Resolver> resolver_;  // reset before the workers go (Stop)
  DeliveryRing deliveries_;
  LatencyHistogram end_to_end_;
  mutable SharedMutex profiles_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<ProfileState>> profiles_
      HERALD_GUARDED_BY(profiles_mu_);
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::atomic<size_t> next_probe_{0};
};

// --- deliverer ----------------------------------------------------------------------------------

void Deliverer::Stop(milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  if (engine_) {
    // Let what is held be delivered, within the grace period; what only waits for a retry
    // timer is not worth waiting for.
    const auto deadline = SteadyClock::now() + grace;
    for (;;) {
      bool idle = true;
      for (const auto& q : engine_->queue_stats()) idle = idle && q.depth == 0;
      {
        ReaderLock lock(profiles_mu_);
        for (const auto& [id, p] : profiles_) {
          idle = idle && p->held.load() == p->awaiting_retry.load();
        }
      }
      if (idle || SteadyClock::now() >= deadline) break;
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  {
    WriterLock lifecycle(lifecycle_mu_);
    stopping_.store(true, std::memory_order_release);  // the dispatcher parks every profile now
  }
  if (dead_letters_ != nullptr) dead_letters_->OnDisabledElsewhere(nullptr);  // it may outlive us
  std::vector<ProfileState*> all;
  {
    ReaderLock lock(profiles_mu_);
    for (const auto& [id, p] : profiles_) all.push_back(p.get());
  }
  for (auto& w : workers_) {
    std::vector<ProfileState*> mine;
    for (ProfileState* p : all) {
      if (p->worker == w.get()) mine.push_back(p);
    }
    if (engine_) {
      asio::post(w->io(), [worker = w.get(), mine] { worker->Drain(mine); });
    } else {
      w->io().stop();
    }
    w->Join();
  }
  // The notifications the engine still queues.
  if (engine_) {
    for (const auto& q : engine_->queue_stats()) {
      std::vector<Notification> left;
      (void)engine_->Poll(q.profile_id, SIZE_MAX, &left);
      KeepStopped(q.profile_id, left);
    }
  }
  // Destroys the profiles (their timers first) and then the workers' pending operations, with
  // the notifications they hold, while the engine is still alive.
  {
    WriterLock lock(profiles_mu_);
    profiles_.clear();
  }
  resolver_.reset();  // no lookup answer is posted to the workers from here on
  workers_.clear();
}

void Deliverer::KeepStopped(std::string_view profile_id, std::span<Notification> batch) {
  if (batch.empty()) return;
  if (options_.log_replays_unsettled) {
    for (auto& n : batch) n.Reset();  // unsettled: the log replays them after a restart
    return;
  }
  std::vector<DeadLetter> letters;
  for (const auto& n : batch) {
    letters.push_back({.profile_id = std::string(profile_id),
                       .subscription_id = std::string(n.subscription_id()),
                       .channel = std::string(n.channel()),
                       .event = std::string(n.event()),
                       .webhook_id = std::string(n.webhook_id()),
                       .payload = std::string(n.payload()),
                       .last_error = std::string(kStoppedError),
                       .failed_at_ms = Clock::System().UnixMillis()});
  }
  const auto s = dead_letters_->Add(letters);
  if (options_.log) {
    options_.log(s.ok() ? Cat("delivery: profile ", profile_id, ": ", letters.size(),
                              " undelivered notification(s) kept as dead letters")
                        : Cat("delivery: profile ", profile_id, ": keeping ", letters.size(),
                              " undelivered notification(s) failed: ", ToStd(s.message())));
  }
}

std::vector<ProfileDeliveryStats> Deliverer::stats() const {
  std::vector<ProfileDeliveryStats> out;
  ReaderLock lock(profiles_mu_);
  for (const auto& [id, p] : profiles_) {
    out.push_back({.profile_id = id,
                   .delivered = p->delivered.load(),
                   .failed = p->failed.load(),
                   .retried = p->retried.load(),
                   .dead_lettered = p->dead_lettered.load(),
                   .requests = p->requests.load(),
                   .in_flight = p->in_flight_stat.load(),
                   .held = p->held.load(),
                   .disabled = p->disabled.load(),
                   .circuit_open = p->circuit_open.load(),
                   .failing = p->failing_stat.load(),
                   .latency_buckets = p->latency.Buckets(),
                   .latency_sum_seconds = p->latency.sum_seconds()});
    MutexLock stats(p->stats_mu);
    ProfileDeliveryStats& s = out.back();
    s.last_error = p->last_error;
    s.last_error_at_ms = p->last_error_at_ms;
    s.last_success_at_ms = p->last_success_at_ms;
    std::tie(s.recent_requests, s.recent_succeeded) =
        p->recent.Sum(p->worker->clock().UnixMillis());
    using V = ProfileState::Validation;
    switch (p->validation_stat.load()) {
      case V::kNone:
        break;
      case V::kPending:
        s.validation = "pending";
        break;
      case V::kAllowed:
        s.validation = "allowed";
        break;
      case V::kRefused:
        s.validation = "refused";
        break;
    }
    s.validation_error = p->validation_error;
    s.allowed_rate_per_minute = p->allowed_rate_per_minute;
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.profile_id < b.profile_id; });
  return out;
}

absl::StatusOr<size_t> Deliverer::Replay(std::string_view profile_id,
                                         const std::vector<uint64_t>& ids) {
  ReaderLock lifecycle(lifecycle_mu_);
  if (engine_ == nullptr || stopping_.load()) {
    return absl::FailedPreconditionError("the deliverer is not running");
  }
  if (auto profile = engine_->GetProfile(profile_id); !profile.ok()) return profile.status();
  auto letters = dead_letters_->BeginReplay(profile_id, ids);
  if (!letters.ok()) return letters.status();
  std::vector<Item> items;
  for (auto& letter : *letters) {
    auto owned = std::make_shared<DeadLetter>(std::move(letter));
    owned->payload.reserve(owned->payload.size() + simdjson::SIMDJSON_PADDING);
    items.push_back(Item{Notification(), std::move(owned)});
  }
  const size_t n = items.size();
  if (n > 0) Hand(State(profile_id), std::move(items));
  return n;
}

absl::StatusOr<uint64_t> Deliverer::Resend(uint64_t delivery_id) {
  auto found = deliveries_.Get(delivery_id);
  if (!found.ok()) return found.status();
  const auto& [attempt, body] = *found;
  {
    ReaderLock lifecycle(lifecycle_mu_);
    if (engine_ == nullptr || stopping_.load()) {
      return absl::FailedPreconditionError("the deliverer is not running");
    }
    if (auto profile = engine_->GetProfile(attempt.profile_id); !profile.ok()) {
      return profile.status();
    }
  }
  // Kept before it is sent: the store is where a stop or a crash finds it.
  std::vector<DeadLetter> letters{{.profile_id = attempt.profile_id,
                                   .subscription_id = "",
                                   .channel = attempt.channel,
                                   .event = attempt.event,
                                   .webhook_id = attempt.webhook_id,
                                   .payload = *body,
                                   .attempts = 0,
                                   .last_error = Cat("resend of delivery ", delivery_id),
                                   .failed_at_ms = Clock::System().UnixMillis()}};
  if (auto s = dead_letters_->Add(letters); !s.ok()) return s;
  const uint64_t id = letters[0].id;
  if (auto replayed = Replay(attempt.profile_id, {id}); !replayed.ok()) {
    // Not queued (the profile went, or a stop began): the caller is told, so nothing stays behind
    // to be sent once more later.
    (void)dead_letters_->Delete(attempt.profile_id, {id});
    return replayed.status();
  }
  return id;
}

}  // namespace
}  // namespace deliver

absl::StatusOr<std::unique_ptr<WebhookDeliverer>> WebhookDeliverer::Create(
    DelivererOptions options) {
  if (options.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("retry.max_attempts must be at least 1");
  }
  if (options.origin.empty()) {
    char host[256] = {};
    options.origin = gethostname(host, sizeof host - 1) == 0 && host[0] ? host : "herald";
  }
  auto deliverer = std::make_unique<deliver::Deliverer>(std::move(options));
  if (auto s = deliverer->Init(); !s.ok()) return s;
  return deliverer;
}

}  // namespace herald
