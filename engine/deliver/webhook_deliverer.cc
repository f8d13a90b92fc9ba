// The webhook deliverer. Profiles are sharded over workers; each worker is one thread running an
// io_context, and owns its profiles' state (waiting notifications, retry timers, rate limiter,
// circuit breaker), its HTTP client with the connection pools, and its OAuth token cache — so
// none of that needs a lock. Dispatch threads hand notifications over through a small per-profile
// inbox and post one pump to the worker when the inbox goes from empty to not.
#include "herald/webhook_deliverer.h"

// clang-format off
#include <utility>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
// clang-format on
#include <simdjson.h>
#include <time.h>

#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "engine/common/hash.h"
#include "engine/common/http_syntax.h"
#include "engine/common/latency_histogram.h"
#include "engine/common/strings.h"
#include "engine/deliver/circuit_breaker.h"
#include "engine/deliver/dead_letter_writer.h"
#include "engine/deliver/dead_letters.h"
#include "engine/deliver/http_client.h"
#include "engine/deliver/retry_schedule.h"
#include "engine/deliver/signing.h"
#include "engine/deliver/token_bucket.h"
#include "engine/deliver/url.h"

namespace herald {
namespace deliver {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kStoppedError = "stopped before delivery";
// An access token longer than this would crowd the 8 KiB of request headers (DESIGN §5).
constexpr size_t kMaxTokenBytes = 4096;
// Each x-herald-* header of a batch lists its distinct values up to this many bytes.
constexpr size_t kMaxListedBytes = 1024;

int64_t UnixMillis() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One notification held by the deliverer: from the engine, or a replayed dead letter.
struct Item {
  Notification notification;
  std::shared_ptr<const DeadLetter> letter;  // its payload has SIMDJSON_PADDING spare capacity

  std::string_view payload() const { return letter ? letter->payload : notification.payload(); }
  std::string_view webhook_id() const {
    return letter ? letter->webhook_id : notification.webhook_id();
  }
  std::string_view subscription_id() const {
    return letter ? letter->subscription_id : notification.subscription_id();
  }
  std::string_view channel() const { return letter ? letter->channel : notification.channel(); }
  std::string_view event() const { return letter ? letter->event : notification.event(); }
};

// A dead letter on its way to the store, with what it settles once stored: the notification it
// came from (settled), or the replayed letter it replaces (removed in the same write).
struct Burial {
  DeadLetter letter;
  Notification source;
  uint64_t replaces = 0;
};

// One request's worth of notifications; kept together across retries, so its webhook-id and
// body stay the same.
struct Batch {
  std::vector<Item> items;
  std::string id;
  std::string body;  // {"results":[…]}; empty for a lone notification, sent verbatim
  int attempts = 0;
  int last_status = 0;
  std::string last_error;
  bool probe = false;  // the one request of a half-open circuit
  // The x-herald-* header values: each distinct value once, comma-separated.
  std::string subscriptions, channels, events;

  std::string_view request_body() const { return body.empty() ? items[0].payload() : body; }
};

struct ProfileConfig {
  NotificationProfile profile;
  std::optional<SecuritySetting> security;
  absl::StatusOr<Url> url = absl::UnknownError("unset");
  RetryPolicy retry;
};

struct OAuthToken {
  std::string fingerprint;  // of the setting the token was fetched with
  std::string token;
  Clock::time_point expires = Clock::time_point::max();
  bool fetching = false;
  std::unique_ptr<asio::steady_timer> fetched;  // waiters wait on it; cancelled when done
  uint64_t fetches = 0;                         // completed fetches
  absl::Status error;                           // of the last fetch
};

class Worker;

struct ProfileState {
  ProfileState(std::string profile_id, Worker* owner, asio::io_context& io,
               CircuitBreaker::Options breaker_options)
      : id(std::move(profile_id)),
        worker(owner),
        retry_timer(io),
        gate_timer(io),
        breaker(breaker_options) {}

  const std::string id;
  Worker* const worker;

  // Dispatch threads → worker.
  std::mutex inbox_mu;
  std::vector<Item> inbox;
  bool pump_posted = false;
  std::atomic<uint64_t> held{0};
  std::atomic<uint64_t> awaiting_retry{0};  // of `held`, those in `retries`

  // Worker thread only.
  uint64_t config_version = ~uint64_t{0};
  std::shared_ptr<const ProfileConfig> config;
  std::deque<Item> ready;
  std::deque<std::unique_ptr<Batch>> due;
  std::multimap<Clock::time_point, std::unique_ptr<Batch>> retries;
  std::set<Batch*> sending;
  std::vector<Burial> unwritten;  // dead letters the store refused; written again by Pump
  asio::steady_timer retry_timer;
  Clock::time_point retry_timer_at = Clock::time_point::max();
  asio::steady_timer gate_timer;  // the rate limiter's or the open circuit's wait
  Clock::time_point gate_timer_at = Clock::time_point::max();
  TokenBucket bucket;
  CircuitBreaker breaker;
  uint32_t in_flight = 0;

  // Read by any thread.
  std::atomic<uint64_t> delivered{0}, failed{0}, retried{0}, dead_lettered{0}, requests{0};
  std::atomic<uint64_t> in_flight_stat{0};
  std::atomic<bool> disabled{false};
  std::atomic<bool> circuit_open{false};
  LatencyHistogram latency;
};

class Deliverer;

class Worker {
 public:
  Worker(Deliverer& deliverer, std::unique_ptr<HttpClient> client, double jitter)
      : deliverer_(deliverer),
        client_(std::move(client)),
        retry_schedule_(jitter, std::random_device{}()) {}

  static absl::StatusOr<std::unique_ptr<Worker>> Create(Deliverer& deliverer,
                                                        const DelivererOptions& options);
  ~Worker() { Join(); }

  asio::io_context& io() { return io_; }
  void Run() {
    thread_ = std::thread([this] { io_.run(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  // Posted by Deliverer: moves the inbox in and sends what the profile's limits allow.
  void Pump(ProfileState& p);
  // Stop: turns everything the worker's profiles hold into dead letters, then stops the loop.
  void Drain(std::vector<ProfileState*> profiles);

 private:
  bool RefreshConfig(ProfileState& p);
  std::unique_ptr<Batch> FormBatch(ProfileState& p, const ProfileConfig& config);
  std::optional<std::pair<std::string_view, size_t>> ResultsOf(std::string_view payload);
  asio::awaitable<void> Send(ProfileState* p, std::unique_ptr<Batch> batch,
                             std::shared_ptr<const ProfileConfig> config);
  // One request of `batch` (two with an OAuth token refused once); may throw.
  asio::awaitable<ClientResponse> Attempt(const Batch& batch, const ProfileConfig& config);
  // `stale`: a token the receiver refused, to be replaced (the caller keeps it alive).
  asio::awaitable<absl::StatusOr<std::string>> Token(const SecuritySetting& security,
                                                     std::string_view stale);
  void OnResult(ProfileState& p, std::unique_ptr<Batch> batch, const ProfileConfig& config,
                const ClientResponse& response);
  // A failed request the breaker counts; logs when it opened the circuit.
  void BreakerFailure(ProfileState& p, bool probe);
  void ArmRetryTimer(ProfileState& p);
  void ArmGate(ProfileState& p, Clock::time_point at);
  static DeadLetter LetterOf(const ProfileState& p, const Item& item, int attempts, int status,
                             std::string_view error);
  // The item as a dead letter, with its source notification or the replayed letter it replaces.
  static Burial BurialOf(const ProfileState& p, Item& item, int attempts, int status,
                         std::string_view error);
  // Hands dead letters to the writer; once stored, Buried settles what they came from.
  void Bury(ProfileState& p, std::vector<Burial> burials);
  // When the store refused them, keeps them to write again (never re-sends).
  void Buried(ProfileState& p, std::vector<Burial> burials, const absl::Status& status,
              size_t stored);
  // From the writer's thread: `fn` runs on this worker's thread (see Collect).
  void Completed(std::function<void()> fn);
  // Runs what Completed queued; posted, and called by Drain once the writer is flushed.
  void Collect();
  // Takes the replayed dead letters out of everything the profile holds (a stop): they are still
  // in the store, and a later replay sends them.
  void ReleaseReplays(ProfileState& p);
  void DeadLetterAll(ProfileState& p, int status, std::string_view error);
  // Stop with a log that replays unsettled notifications: drops them (unsettled) and puts only
  // replayed dead letters back in the store.
  void LeaveToLog(ProfileState& p);

  Deliverer& deliverer_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::unique_ptr<HttpClient> client_;
  simdjson::ondemand::parser parser_;
  // Node-stable: a fetch holds a reference to its entry across co_await.
  absl::node_hash_map<std::string, OAuthToken> tokens_;
  RetrySchedule retry_schedule_;
  std::mutex completed_mu_;
  std::vector<std::function<void()>> completed_;
  bool collect_posted_ = false;
  std::thread thread_;
};

class Deliverer final : public WebhookDeliverer {
 public:
  explicit Deliverer(DelivererOptions options) : options_(std::move(options)) {}
  ~Deliverer() override { Stop(milliseconds(0)); }

  absl::Status Init() {
    resolver_ = std::make_unique<Resolver>(options_.resolve);
    auto store = DeadLetterStore::Open({.dir = options_.data_dir,
                                        .max_bytes = options_.dead_letters_max_bytes,
                                        .max_age = options_.dead_letters_max_age,
                                        .log = options_.log,
                                        .sync = options_.dead_letters_sync,
                                        .compaction_due = [this] { writer_->CompactIfDue(); }});
    if (!store.ok()) return store.status();
    dead_letters_ = std::move(*store);
    writer_ = std::make_unique<DeadLetterWriter>(*dead_letters_);
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
      auto worker = Worker::Create(*this, options_);
      if (!worker.ok()) return worker.status();
      workers_.push_back(std::move(*worker));
    }
    for (const auto& id : dead_letters_->disabled()) State(id).disabled.store(true);
    return absl::OkStatus();
  }

  void Start(Engine& engine) override {
    engine_ = &engine;
    for (auto& w : workers_) w->Run();
  }

  void Stop(milliseconds grace) override;

  void Deliver(std::string_view profile_id, std::span<Notification> batch) override {
    std::shared_lock lifecycle(lifecycle_mu_);
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
    std::shared_lock lifecycle(lifecycle_mu_);
    if (stopping_.load(std::memory_order_acquire)) return 0;
    const uint64_t held = State(profile_id).held.load(std::memory_order_relaxed);
    return held >= options_.max_held_per_profile ? 0 : options_.max_held_per_profile - held;
  }

  std::vector<ProfileDeliveryStats> stats() const override;
  bool disabled(std::string_view profile_id) const override {
    std::shared_lock lock(profiles_mu_);
    auto it = profiles_.find(ToAbsl(profile_id));
    return it != profiles_.end() && it->second->disabled.load();
  }
  absl::Status Enable(std::string_view profile_id) override {
    // Through the writer, after any "disabled" a worker queued.
    std::promise<absl::Status> written;
    writer_->SetDisabled(std::string(profile_id), false,
                         [&](const absl::Status& s) { written.set_value(s); });
    if (auto s = written.get_future().get(); !s.ok()) return s;
    std::shared_lock lifecycle(lifecycle_mu_);
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
                         .failed_at_ms = UnixMillis()});
    }
    if (auto s = dead_letters_->Add(letters); !s.ok()) return s;
    std::shared_lock lifecycle(lifecycle_mu_);
    if (!stopping_.load()) {
      State(profile_id).dead_lettered.fetch_add(letters.size(), std::memory_order_release);
    }
    return absl::OkStatus();
  }

  // For workers.
  const DelivererOptions& options() const { return options_; }
  Engine* engine() const { return engine_; }
  DeadLetterStore& dead_letters() { return *dead_letters_; }
  DeadLetterWriter& writer() { return *writer_; }
  Resolver& resolver() { return *resolver_; }
  void PostPump(ProfileState& p) {
    asio::post(p.worker->io(), [&p] { p.worker->Pump(p); });
  }

 private:
  ProfileState& State(std::string_view profile_id) {
    {
      std::shared_lock lock(profiles_mu_);
      auto it = profiles_.find(ToAbsl(profile_id));
      if (it != profiles_.end()) return *it->second;
    }
    std::unique_lock lock(profiles_mu_);
    auto& slot = profiles_[ToAbsl(profile_id)];
    if (!slot) {
      Worker* w = workers_[absl::Hash<std::string_view>{}(profile_id) % workers_.size()].get();
      slot = std::make_unique<ProfileState>(
          std::string(profile_id), w, w->io(),
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
      std::lock_guard lock(p.inbox_mu);
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
  std::shared_mutex lifecycle_mu_;
  std::unique_ptr<DeadLetterStore> dead_letters_;
  std::unique_ptr<DeadLetterWriter> writer_;  // the workers' writes to dead_letters_
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Resolver> resolver_;  // reset before the workers go (Stop)
  mutable std::shared_mutex profiles_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<ProfileState>> profiles_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
};

// --- worker -------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(Deliverer& deliverer,
                                                       const DelivererOptions& options) {
  auto worker = std::make_unique<Worker>(deliverer, nullptr, options.jitter);
  auto client =
      HttpClient::Create(worker->io_, {.ca_file = options.ca_file,
                                       .allow_private_targets = options.allow_private_targets,
                                       .resolver = &deliverer.resolver()});
  if (!client.ok()) return client.status();
  worker->client_ = std::move(*client);
  return worker;
}

bool Worker::RefreshConfig(ProfileState& p) {
  Engine* engine = deliverer_.engine();
  const uint64_t version = engine->profile_version();
  if (p.config && version == p.config_version) return true;
  auto profile = engine->GetProfile(p.id);
  if (!profile.ok()) {
    p.config.reset();
    return false;
  }
  auto config = std::make_shared<ProfileConfig>();
  config->profile = std::move(*profile);
  if (!config->profile.auth_id.empty()) {
    auto security = engine->GetSecurity(config->profile.auth_id);
    if (security.ok()) config->security = std::move(*security);
  }
  config->url = ParseUrl(config->profile.webhook.notify_url);
  config->retry = config->profile.retry ? *config->profile.retry : deliverer_.options().retry;
  if (!p.config || p.config->profile.rate_limit != config->profile.rate_limit) {
    p.bucket.Reset(config->profile.rate_limit);
  }
  p.config = std::move(config);
  p.config_version = version;
  return true;
}

void Worker::Pump(ProfileState& p) {
  {
    std::lock_guard lock(p.inbox_mu);
    for (auto& item : p.inbox) p.ready.push_back(std::move(item));
    p.inbox.clear();
    p.pump_posted = false;
  }
  if (!p.unwritten.empty()) Bury(p, std::exchange(p.unwritten, {}));
  if (!RefreshConfig(p)) {
    DeadLetterAll(p, 0, Cat("profile ", p.id, " no longer exists"));
    return;
  }
  if (p.disabled.load()) {
    DeadLetterAll(p, 410, "profile disabled: its receiver answered 410 Gone");
    return;
  }
  const auto now = Clock::now();
  while (!p.retries.empty() && p.retries.begin()->first <= now) {
    p.awaiting_retry.fetch_sub(p.retries.begin()->second->items.size(), std::memory_order_relaxed);
    p.due.push_back(std::move(p.retries.begin()->second));
    p.retries.erase(p.retries.begin());
  }
  ArmRetryTimer(p);
  const ProfileConfig& config = *p.config;
  while (!p.due.empty() || !p.ready.empty()) {
    const CircuitBreaker::State breaker = p.breaker.Admit();
    if (breaker == CircuitBreaker::State::kOpen) {
      ArmGate(p, p.breaker.open_until());
      return;
    }
    const bool probe = breaker == CircuitBreaker::State::kHalfOpen;  // one request
    const uint32_t window = probe ? 1 : static_cast<uint32_t>(config.profile.window_size);
    if (p.in_flight >= window) return;
    // Adaptive batching: with a request already in flight, a partial batch waits for it to
    // finish (or for a full batch) instead of going out thin. An idle profile sends at once, so
    // a lone notification never waits; under load batches fill and the window opens up.
    if (p.due.empty() && p.in_flight > 0 &&
        p.ready.size() < static_cast<size_t>(config.profile.max_bucket_size)) {
      return;
    }
    if (config.profile.rate_limit) {
      if (const auto at = p.bucket.Take(*config.profile.rate_limit)) {
        ArmGate(p, *at);
        return;
      }
    }
    std::unique_ptr<Batch> batch;
    if (!p.due.empty()) {
      batch = std::move(p.due.front());
      p.due.pop_front();
    } else {
      batch = FormBatch(p, config);
    }
    batch->probe = probe;
    ++p.in_flight;
    p.in_flight_stat.store(p.in_flight, std::memory_order_relaxed);
    // Registered now, not when the coroutine starts (co_spawn only posts its first step), so a
    // Stop() in between still finds it.
    p.sending.insert(batch.get());
    asio::co_spawn(io_, Send(&p, std::move(batch), p.config), asio::detached);
  }
}

std::optional<std::pair<std::string_view, size_t>> Worker::ResultsOf(std::string_view payload) {
  // Payloads sit in padded buffers (engine blocks, or dead letters reserved with padding).
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  simdjson::ondemand::array results;
  size_t fields = 0, count = 0;
  std::string_view raw;
  if (parser_.iterate(payload.data(), payload.size(), payload.size() + simdjson::SIMDJSON_PADDING)
              .get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(object) != simdjson::SUCCESS ||
      object.count_fields().get(fields) != simdjson::SUCCESS || fields != 1 ||
      object["results"].get_array().get(results) != simdjson::SUCCESS ||
      results.count_elements().get(count) != simdjson::SUCCESS ||
      results.raw_json().get(raw) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  // "[ a, b ]" → "a, b"
  raw.remove_prefix(1);
  while (!raw.empty() && raw.back() != ']') raw.remove_suffix(1);
  if (!raw.empty()) raw.remove_suffix(1);
  return std::make_pair(raw, count);
}

std::unique_ptr<Batch> Worker::FormBatch(ProfileState& p, const ProfileConfig& config) {
  auto batch = std::make_unique<Batch>();
  const size_t max_items = static_cast<size_t>(config.profile.max_bucket_size);
  if (p.ready.size() == 1 || max_items == 1) {
    batch->items.push_back(std::move(p.ready.front()));
    p.ready.pop_front();
  } else {
    // More than one waiting: {"results":[…]}, each payload contributing its own results items
    // when it is {"results":[…]} itself.
    std::string body = R"({"results":[)";
    size_t items = 0;
    bool empty = true;
    while (!p.ready.empty() && items < max_items) {
      Item& item = p.ready.front();
      const std::string_view payload = item.payload();
      auto results = ResultsOf(payload);
      const std::string_view part = results ? results->first : payload;
      const size_t n = results ? results->second : 1;
      if (!batch->items.empty() && items + n > max_items) break;
      if (!part.empty()) {
        if (!empty) body += ',';
        body += part;
        empty = false;
      }
      items += n;
      batch->items.push_back(std::move(item));
      p.ready.pop_front();
    }
    body += "]}";
    if (batch->items.size() > 1) batch->body = std::move(body);
  }
  // Each distinct value once while they fit in kMaxListedBytes, then ",+N" for the N left out,
  // so a batch's headers stay within what receivers take (8 KiB in all, DESIGN §5).
  auto joined = [&](auto field) {
    absl::flat_hash_set<std::string_view> seen;
    std::string out;
    size_t left_out = 0;
    for (const auto& item : batch->items) {
      const std::string_view v = (item.*field)();
      if (!seen.insert(v).second) continue;
      if (out.size() + v.size() + 1 > kMaxListedBytes) {
        ++left_out;
      } else {
        out += Cat(out.empty() ? "" : ",", v);
      }
    }
    if (left_out > 0) out += Cat(",+", left_out);
    return out;
  };
  batch->subscriptions = joined(&Item::subscription_id);
  batch->channels = joined(&Item::channel);
  batch->events = joined(&Item::event);
  if (batch->items.size() == 1) {
    batch->id = std::string(batch->items[0].webhook_id());
  } else {
    // The same members give the same id in every process (DESIGN §5), so a receiver can
    // de-duplicate a retried batch, across restarts too.
    std::string ids;
    for (const auto& item : batch->items) ids += Cat(item.webhook_id(), "\n");
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(StableHashBytes(ids)));
    batch->id = Cat("batch-", std::string_view(hex, 16));
  }
  return batch;
}

asio::awaitable<absl::StatusOr<std::string>> Worker::Token(const SecuritySetting& security,
                                                           std::string_view stale) {
  const std::string fingerprint =
      Cat(security.token_url, "\n", security.client_id, "\n", security.client_secret, "\n",
          security.scope, "\n", security.grant_type, "\n", security.username, "\n",
          security.password, "\n", security.resource, "\n", security.refresh_token);
  OAuthToken& entry = tokens_[security.auth_id];
  for (;;) {
    const bool current = entry.fingerprint == fingerprint && !entry.token.empty() &&
                         Clock::now() < entry.expires && entry.token != stale;
    if (current) co_return entry.token;
    if (!entry.fetching) break;
    // Another request is fetching: wait for it (the timer is cancelled when it is done), and
    // share its failure rather than trying again at once.
    const uint64_t seen = entry.fetches;
    boost::system::error_code ec;
    co_await entry.fetched->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (entry.fetches != seen && !entry.error.ok()) co_return entry.error;
    stale = {};
  }
  entry.fetching = true;
  entry.fetched = std::make_unique<asio::steady_timer>(io_, Clock::time_point::max());
  absl::StatusOr<std::string> result = absl::UnavailableError("no token");
  auto url = ParseUrl(security.token_url);
  if (!url.ok()) {
    result = url.status();
  } else {
    const std::string form = TokenRequestForm(security);
    std::vector<std::pair<std::string, std::string>> headers = security.headers;
    headers.emplace_back("accept", "application/json");
    const ClientRequest request{
        .url = &*url,
        .content_type = "application/x-www-form-urlencoded",
        .headers = &headers,
        .body = form,
        .connect_timeout = milliseconds(NotificationProfile::kDefaultConnectTimeoutMs),
        .read_timeout = milliseconds(NotificationProfile::kDefaultReadTimeoutMs)};
    ClientResponse response = co_await client_->Send(request);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    std::string_view token;
    if (response.status == 0) {
      result =
          absl::UnavailableError(Cat("token request to ", url->host_header, ": ", response.error));
    } else if (response.status < 200 || response.status > 299) {
      result = absl::UnavailableError(
          Cat("token endpoint ", url->host_header, " answered HTTP ", response.status));
    } else if (parser.parse(response.body).get(root) != simdjson::SUCCESS ||
               root["access_token"].get_string().get(token) != simdjson::SUCCESS || token.empty()) {
      result = absl::UnavailableError(
          Cat("token endpoint ", url->host_header, " answered without an access_token"));
    } else if (!IsHeaderValue(token) || token.size() > kMaxTokenBytes) {
      result = absl::UnavailableError(
          Cat("token endpoint ", url->host_header, " answered an access_token that cannot be sent ",
              "in a header (a control character, or over ", kMaxTokenBytes, " bytes)"));
    } else {
      entry.token = std::string(token);
      entry.fingerprint = fingerprint;
      entry.expires = Clock::time_point::max();
      int64_t expires_in = 0;
      if (root["expires_in"].get_int64().get(expires_in) == simdjson::SUCCESS && expires_in > 0) {
        // At most a year (a larger value would overflow the clock), refreshed a little early so
        // a token does not expire on its way to the receiver.
        expires_in = std::min<int64_t>(expires_in, 365LL * 24 * 3600);
        const int64_t margin_ms = std::min<int64_t>(30'000, expires_in * 100);
        entry.expires = Clock::now() + milliseconds(expires_in * 1000 - margin_ms);
      }
      result = entry.token;
    }
  }
  entry.fetching = false;
  entry.error = result.ok() ? absl::OkStatus() : result.status();
  ++entry.fetches;
  entry.fetched->cancel();
  co_return result;
}

asio::awaitable<void> Worker::Send(ProfileState* p, std::unique_ptr<Batch> batch,
                                   std::shared_ptr<const ProfileConfig> config) {
  ++batch->attempts;
  const auto start = Clock::now();
  ClientResponse response;
  // Whatever goes wrong in an attempt ends it as a failed attempt with its reason: the batch is
  // settled, retried or buried by OnResult, never left dangling in `sending`.
  try {
    response = co_await Attempt(*batch, *config);
  } catch (const std::exception& e) {
    response = {};
    response.error = Cat("internal error while sending: ", e.what());
    if (deliverer_.options().log) {
      deliverer_.options().log(
          Cat("delivery: profile ", p->id, ": request ", batch->id, " failed: ", response.error));
    }
  }
  p->latency.Observe(std::chrono::duration<double>(Clock::now() - start).count());
  p->requests.fetch_add(1, std::memory_order_relaxed);
  p->sending.erase(batch.get());
  OnResult(*p, std::move(batch), *config, response);
}

asio::awaitable<ClientResponse> Worker::Attempt(const Batch& batch, const ProfileConfig& config) {
  ClientResponse response;
  if (!config.url.ok()) {
    response.error = std::string(ToStd(config.url.status().message()));
    response.refused = true;
  } else {
    const NotificationProfile& profile = config.profile;
    const std::string_view body = batch.request_body();
    const bool oauth = config.security && config.security->type == SecurityType::kOAuth;
    std::string token;
    for (int round = 0; round < 2; ++round) {
      std::vector<std::pair<std::string, std::string>> headers = profile.headers;
      const int64_t timestamp = UnixMillis() / 1000;
      headers.emplace_back("webhook-id", batch.id);
      headers.emplace_back("webhook-timestamp", std::to_string(timestamp));
      headers.emplace_back("x-herald-subscription", batch.subscriptions);
      headers.emplace_back("x-herald-channel", batch.channels);
      headers.emplace_back("x-herald-event", batch.events);
      if (config.security) {
        const SecuritySetting& security = *config.security;
        if (security.type == SecurityType::kHmac) {
          headers.emplace_back("webhook-signature",
                               WebhookSignature(security, batch.id, timestamp, body));
        } else if (security.type == SecurityType::kBasic) {
          headers.emplace_back("authorization",
                               BasicAuthorization(security.username, security.password));
        } else if (oauth) {
          const std::string_view stale = round == 0 ? std::string_view() : token;
          auto fetched = co_await Token(security, stale);
          if (!fetched.ok()) {
            response = {};
            response.error = std::string(ToStd(fetched.status().message()));
            break;
          }
          token = std::move(*fetched);
          headers.emplace_back("authorization", Cat("Bearer ", token));
        }
      }
      // Named, not a temporary: GCC 12 destroys temporaries of a co_await expression twice.
      const ClientRequest request{
          .url = &*config.url,
          .content_type = profile.webhook.content_type.empty()
                              ? std::string_view("application/json")
                              : std::string_view(profile.webhook.content_type),
          .headers = &headers,
          .body = body,
          .connect_timeout = milliseconds(profile.connect_timeout_ms),
          .read_timeout = milliseconds(profile.read_timeout_ms)};
      response = co_await client_->Send(request);
      // A 401 with OAuth: the token may have been revoked; fetch a new one, once.
      if (!(oauth && response.status == 401)) break;
    }
  }
  co_return response;
}

void Worker::BreakerFailure(ProfileState& p, bool probe) {
  if (!p.breaker.Failed(probe)) return;
  p.circuit_open.store(true);
  if (deliverer_.options().log) {
    deliverer_.options().log(
        Cat("delivery: profile ", p.id, ": circuit open after ", p.breaker.consecutive_failures(),
            " consecutive failures; next probe in ", p.breaker.open_for().count(), " ms"));
  }
}

void Worker::OnResult(ProfileState& p, std::unique_ptr<Batch> batch, const ProfileConfig& config,
                      const ClientResponse& response) {
  --p.in_flight;
  p.in_flight_stat.store(p.in_flight, std::memory_order_relaxed);
  const size_t n = batch->items.size();
  const int status = response.status;
  if (status >= 200 && status <= 299) {
    // held first: whoever sees the outcome counter move also sees held (and failed) settled.
    // A replayed dead letter leaves the store now that it is delivered.
    std::vector<uint64_t> replayed;
    for (auto& item : batch->items) {
      if (item.letter) {
        replayed.push_back(item.letter->id);
      } else {
        item.notification.Settle();
      }
    }
    if (!replayed.empty()) {
      const size_t count = replayed.size();
      deliverer_.writer().Remove(
          std::move(replayed), [this, id = p.id, count](const absl::Status& s) {
            if (s.ok() || !deliverer_.options().log) return;
            deliverer_.options().log(Cat("delivery: profile ", id, ": removing ", count,
                                         " delivered dead letter(s) from the store: ",
                                         ToStd(s.message()), "; a later replay sends them again"));
          });
    }
    p.held.fetch_sub(n, std::memory_order_relaxed);
    p.delivered.fetch_add(n, std::memory_order_release);
    if (p.breaker.Succeeded()) {
      p.circuit_open.store(false);
      if (deliverer_.options().log) {
        deliverer_.options().log(Cat("delivery: profile ", p.id, ": circuit closed"));
      }
    }
    batch.reset();
    Pump(p);
    return;
  }
  p.failed.fetch_add(n, std::memory_order_relaxed);
  batch->last_status = status;
  batch->last_error = status == 0 ? response.error : Cat("HTTP ", status);
  const bool transport = status == 0 && !response.refused;
  if (transport || status == 408 || status >= 500) BreakerFailure(p, batch->probe);
  if (status == 410) {
    p.disabled.store(true);
    deliverer_.writer().SetDisabled(p.id, true, [this, id = p.id](const absl::Status& s) {
      if (s.ok() || !deliverer_.options().log) return;
      deliverer_.options().log(
          Cat("delivery: recording that profile ", id, " is disabled: ", ToStd(s.message())));
    });
    if (deliverer_.options().log) {
      deliverer_.options().log(Cat("delivery: profile ", p.id,
                                   " disabled: its receiver answered 410 Gone; update the "
                                   "profile to enable it again"));
    }
  }
  const bool retryable = transport || status == 408 || status == 429 || status >= 500;
  if (retryable && batch->attempts < config.retry.max_attempts) {
    const auto delay = retry_schedule_.Delay(config.retry, batch->attempts, response.retry_after);
    p.retried.fetch_add(n, std::memory_order_relaxed);
    p.awaiting_retry.fetch_add(n, std::memory_order_relaxed);
    p.retries.emplace(Clock::now() + delay, std::move(batch));
  } else {
    std::vector<Burial> burials;
    for (auto& item : batch->items) {
      burials.push_back(BurialOf(p, item, batch->attempts, batch->last_status, batch->last_error));
    }
    Bury(p, std::move(burials));
  }
  Pump(p);
}

DeadLetter Worker::LetterOf(const ProfileState& p, const Item& item, int attempts, int status,
                            std::string_view error) {
  return {.profile_id = p.id,
          .subscription_id = std::string(item.subscription_id()),
          .channel = std::string(item.channel()),
          .event = std::string(item.event()),
          .webhook_id = std::string(item.webhook_id()),
          .payload = std::string(item.payload()),
          .attempts = attempts,
          .last_status = status,
          .last_error = std::string(error),
          .failed_at_ms = UnixMillis()};
}

Burial Worker::BurialOf(const ProfileState& p, Item& item, int attempts, int status,
                        std::string_view error) {
  return {.letter = LetterOf(p, item, attempts, status, error),
          .source = std::move(item.notification),
          .replaces = item.letter ? item.letter->id : 0};
}

void Worker::Bury(ProfileState& p, std::vector<Burial> burials) {
  if (burials.empty()) return;
  std::vector<DeadLetter> letters;
  std::vector<uint64_t> replaces;
  for (const auto& b : burials) {
    letters.push_back(b.letter);
    replaces.push_back(b.replaces);
  }
  auto held = std::make_shared<std::vector<Burial>>(std::move(burials));
  deliverer_.writer().Add(
      std::move(letters), std::move(replaces),
      [this, &p, held](const absl::Status& s, size_t stored) {
        Completed([this, &p, held, s, stored] { Buried(p, std::move(*held), s, stored); });
      });
}

void Worker::Buried(ProfileState& p, std::vector<Burial> burials, const absl::Status& status,
                    size_t stored) {
  const size_t n = burials.size();
  if (!status.ok()) {
    // Not on disk yet: keep them (still held) and write again shortly — never send again.
    if (deliverer_.options().log) {
      deliverer_.options().log(Cat("delivery: profile ", p.id, ": writing ", n,
                                   " dead letter(s): ", ToStd(status.message()), "; will retry"));
    }
    for (auto& b : burials) p.unwritten.push_back(std::move(b));
    ArmGate(p, Clock::now() + std::chrono::seconds(1));
    return;
  }
  // Stored, or (replayed letters the user deleted meanwhile) gone for good.
  for (auto& b : burials) b.source.Settle();
  p.held.fetch_sub(n, std::memory_order_relaxed);
  p.dead_lettered.fetch_add(stored, std::memory_order_release);
}

void Worker::Completed(std::function<void()> fn) {
  bool post = false;
  {
    std::lock_guard lock(completed_mu_);
    completed_.push_back(std::move(fn));
    post = !std::exchange(collect_posted_, true);
  }
  if (post) asio::post(io_, [this] { Collect(); });
}

void Worker::Collect() {
  std::vector<std::function<void()>> completed;
  {
    std::lock_guard lock(completed_mu_);
    completed.swap(completed_);
    collect_posted_ = false;
  }
  for (auto& fn : completed) fn();
}

void Worker::ReleaseReplays(ProfileState& p) {
  std::vector<uint64_t> ids;
  auto release = [&](std::vector<Item>& items) {
    std::erase_if(items, [&](const Item& item) {
      if (item.letter) ids.push_back(item.letter->id);
      return item.letter != nullptr;
    });
  };
  for (auto& b : p.due) release(b->items);
  for (auto& [at, b] : p.retries) release(b->items);
  std::erase_if(p.ready, [&](const Item& item) {
    if (item.letter) ids.push_back(item.letter->id);
    return item.letter != nullptr;
  });
  // Letters that failed again but whose replacement the store refused: the original is there.
  std::erase_if(p.unwritten, [&](const Burial& b) {
    if (b.replaces != 0 && b.source.empty()) ids.push_back(b.replaces);
    return b.replaces != 0 && b.source.empty();
  });
  for (const Batch* b : p.sending) {
    for (const Item& item : b->items) {
      if (item.letter) ids.push_back(item.letter->id);
    }
  }
  deliverer_.dead_letters().EndReplay(ids);
}

void Worker::LeaveToLog(ProfileState& p) {
  size_t left = 0;
  for (auto& b : p.due) left += b->items.size();
  for (auto& [at, b] : p.retries) left += b->items.size();
  left += p.ready.size();
  p.due.clear();
  p.retries.clear();
  p.ready.clear();
  // Dead letters the store refused come from the spool: it replays their notifications.
  left += p.unwritten.size();
  p.unwritten.clear();
  if (left > 0 && deliverer_.options().log) {
    deliverer_.options().log(Cat("delivery: profile ", p.id, ": ", left,
                                 " undelivered notification(s) left to the spool's replay"));
  }
}

void Worker::DeadLetterAll(ProfileState& p, int status, std::string_view error) {
  std::vector<Burial> burials;
  for (auto& b : p.due) {
    for (auto& item : b->items) burials.push_back(BurialOf(p, item, b->attempts, status, error));
  }
  p.due.clear();
  for (auto& [at, b] : p.retries) {
    for (auto& item : b->items) burials.push_back(BurialOf(p, item, b->attempts, status, error));
  }
  p.retries.clear();
  p.awaiting_retry.store(0, std::memory_order_relaxed);
  for (auto& item : p.ready) burials.push_back(BurialOf(p, item, 0, status, error));
  p.ready.clear();
  Bury(p, std::move(burials));
}

void Worker::ArmRetryTimer(ProfileState& p) {
  if (p.retries.empty()) return;
  const auto at = p.retries.begin()->first;
  if (at >= p.retry_timer_at) return;
  p.retry_timer_at = at;
  p.retry_timer.expires_at(at);
  p.retry_timer.async_wait([this, &p](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed earlier, or stopping
    p.retry_timer_at = Clock::time_point::max();
    Pump(p);
  });
}

void Worker::ArmGate(ProfileState& p, Clock::time_point at) {
  if (at >= p.gate_timer_at) return;
  p.gate_timer_at = at;
  p.gate_timer.expires_at(at);
  p.gate_timer.async_wait([this, &p](const boost::system::error_code& ec) {
    if (ec) return;
    p.gate_timer_at = Clock::time_point::max();
    Pump(p);
  });
}

void Worker::Drain(std::vector<ProfileState*> profiles) {
  for (ProfileState* p : profiles) {
    {
      std::lock_guard lock(p->inbox_mu);
      for (auto& item : p->inbox) p->ready.push_back(std::move(item));
      p->inbox.clear();
    }
    // Replayed dead letters are still in the store: a later replay sends them.
    ReleaseReplays(*p);
    // Requests still in flight are abandoned: their notifications become dead letters too
    // (the receiver may have them already; replay may then duplicate, never lose). With a log
    // that replays unsettled notifications, they are left to it.
    const bool leave = deliverer_.options().log_replays_unsettled;
    std::vector<Burial> burials;
    for (const Batch* b : p->sending) {
      for (const auto& item : b->items) {
        if (!leave && !item.letter) {
          burials.push_back({.letter = LetterOf(*p, item, b->attempts, 0, kStoppedError)});
        }
      }
    }
    p->sending.clear();
    Bury(*p, std::move(burials));
    // Burials settle before what is left is counted: those the store refused are among it.
    deliverer_.writer().Flush();
    Collect();
    if (leave) {
      LeaveToLog(*p);
    } else {
      DeadLetterAll(*p, 0, kStoppedError);
      deliverer_.writer().Flush();
      Collect();
    }
    if (!p->unwritten.empty() && deliverer_.options().log) {
      deliverer_.options().log(Cat("delivery: profile ", p->id, ": ", p->unwritten.size(),
                                   " undelivered notification(s) LOST: the dead-letter store "
                                   "refused them"));
    }
    p->retry_timer.cancel();
    p->gate_timer.cancel();
  }
  client_->CloseIdle();
  work_.reset();
  io_.stop();
}

// --- deliverer ----------------------------------------------------------------------------------

void Deliverer::Stop(milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  if (engine_) {
    // Let what is held be delivered, within the grace period; what only waits for a retry
    // timer is not worth waiting for.
    const auto deadline = Clock::now() + grace;
    for (;;) {
      bool idle = true;
      for (const auto& q : engine_->queue_stats()) idle = idle && q.depth == 0;
      {
        std::shared_lock lock(profiles_mu_);
        for (const auto& [id, p] : profiles_) {
          idle = idle && p->held.load() == p->awaiting_retry.load();
        }
      }
      if (idle || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  {
    std::unique_lock lifecycle(lifecycle_mu_);
    stopping_.store(true, std::memory_order_release);  // the dispatcher parks every profile now
  }
  std::vector<ProfileState*> all;
  {
    std::shared_lock lock(profiles_mu_);
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
    std::unique_lock lock(profiles_mu_);
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
                       .failed_at_ms = UnixMillis()});
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
  std::shared_lock lock(profiles_mu_);
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
                   .latency_buckets = p->latency.Buckets(),
                   .latency_sum_seconds = p->latency.sum_seconds()});
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.profile_id < b.profile_id; });
  return out;
}

absl::StatusOr<size_t> Deliverer::Replay(std::string_view profile_id,
                                         const std::vector<uint64_t>& ids) {
  std::shared_lock lifecycle(lifecycle_mu_);
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

}  // namespace
}  // namespace deliver

absl::StatusOr<std::unique_ptr<WebhookDeliverer>> WebhookDeliverer::Create(
    DelivererOptions options) {
  if (options.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("retry.max_attempts must be at least 1");
  }
  auto deliverer = std::make_unique<deliver::Deliverer>(std::move(options));
  if (auto s = deliverer->Init(); !s.ok()) return s;
  return deliverer;
}

}  // namespace herald
