// A delivery worker: one thread running an io_context, owning its profiles' state (waiting
// notifications, retry timers, rate limiter, circuit breaker), its HTTP client with the
// connection pools, and its OAuth token cache, so none of that needs a lock. Dispatch threads
// hand notifications over through a small per-profile inbox and post one pump to the worker
// when the inbox goes from empty to not. Dead letters go to the DeadLetterWriter; what they
// settle is settled back on the worker once they are stored.
#pragma once

// clang-format off
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
// clang-format on
#include <re2/re2.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/common/latency_histogram.h"
#include "engine/common/mutex.h"
#include "engine/deliver/batch.h"
#include "engine/deliver/circuit_breaker.h"
#include "engine/deliver/clock.h"
#include "engine/deliver/dead_letter_writer.h"
#include "engine/deliver/dead_letters.h"
#include "engine/deliver/delivery_ring.h"
#include "engine/deliver/http_client.h"
#include "engine/deliver/oauth_tokens.h"
#include "engine/deliver/resolver.h"
#include "engine/deliver/retry_schedule.h"
#include "engine/deliver/success_window.h"
#include "engine/deliver/token_bucket.h"
#include "engine/deliver/url.h"
#include "herald/engine.h"
#include "herald/webhook_deliverer.h"

namespace herald::deliver {

namespace asio = boost::asio;
using std::chrono::milliseconds;

inline constexpr std::string_view kStoppedError = "stopped before delivery";

// A dead letter on its way to the store, with what it settles once stored: the notification it
// came from (settled), or the replayed letter it replaces (removed in the same write).
struct Burial {
  DeadLetter letter;
  Notification source;
  uint64_t replaces = 0;
};

struct ProfileConfig {
  NotificationProfile profile;
  std::optional<SecuritySetting> security;
  absl::StatusOr<Url> url = absl::UnknownError("unset");
  RetryPolicy retry;
  bool cloudevents = false;  // payloadFormat CLOUDEVENTS
  bool ordered = false;      // ordering KEY
  // responseRegex (over the status line, "200 OK") and responseBodyRegex: a 2xx counts as
  // delivered only when both match somewhere; null when not set.
  std::unique_ptr<const RE2> status_re;
  std::unique_ptr<const RE2> body_re;
  // clientCertificateId and enabledSSLProtocols: the TLS context (null: the default), or why it
  // cannot be made (every attempt fails with it until the config changes).
  absl::StatusOr<std::shared_ptr<const TlsSettings>> tls = nullptr;
};

class Worker;

struct ProfileState {
  ProfileState(std::string profile_id, Worker* owner, asio::io_context& io, const Clock& clock,
               CircuitBreaker::Options breaker_options)
      : id(std::move(profile_id)),
        worker(owner),
        retry_timer(clock.NewAlarm(io)),
        gate_timer(clock.NewAlarm(io)),
        bucket(clock),
        breaker(breaker_options, clock) {}

  const std::string id;
  Worker* const worker;

  // Dispatch threads → worker.
  Mutex inbox_mu;
  std::vector<Item> inbox HERALD_GUARDED_BY(inbox_mu);
  bool pump_posted HERALD_GUARDED_BY(inbox_mu) = false;
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
  // Failing since the last success: logged once when it starts (and when its status changes),
  // and once when a request succeeds again, never once per request.
  bool failing = false;
  int failing_status = 0;
  uint64_t failed_requests = 0;
  std::unique_ptr<Alarm> retry_timer;
  Clock::time_point retry_timer_at = Clock::time_point::max();
  std::unique_ptr<Alarm> gate_timer;  // the rate limiter's or the open circuit's wait
  Clock::time_point gate_timer_at = Clock::time_point::max();
  TokenBucket bucket;
  CircuitBreaker breaker;
  uint32_t in_flight = 0;
  // CloudEvents endpoint validation: a CLOUDEVENTS profile sends nothing before its receiver
  // allowed this origin; asked again when the profile changes (validated_for says as what).
  enum class Validation : uint8_t { kNone, kPending, kAllowed, kRefused };
  Validation validation = Validation::kNone;
  bool validating = false;  // the OPTIONS request is out
  NotificationProfile validated_for;
  std::optional<double> allowed_rate;  // requests per second, from WebHook-Allowed-Rate
  int refused_status = 0;
  std::string refusal;
  Clock::time_point validate_at{};  // a receiver not reached is asked again then
  milliseconds validate_backoff{0};
  int validate_attempts = 0;  // unanswered, since the last answer

  // Read by any thread.
  std::atomic<uint64_t> delivered{0}, failed{0}, retried{0}, dead_lettered{0}, requests{0};
  std::atomic<uint64_t> in_flight_stat{0};
  std::atomic<bool> disabled{false};
  std::atomic<bool> circuit_open{false};
  std::atomic<bool> failing_stat{false};
  std::atomic<Validation> validation_stat{Validation::kNone};
  std::atomic<bool> revalidate{false};  // WebhookDeliverer::Revalidate
  LatencyHistogram latency;
  // For the operations API: written by the worker once per request.
  mutable Mutex stats_mu;
  std::string last_error HERALD_GUARDED_BY(stats_mu);
  int64_t last_error_at_ms HERALD_GUARDED_BY(stats_mu) = 0;
  int64_t last_success_at_ms HERALD_GUARDED_BY(stats_mu) = 0;
  SuccessWindow recent HERALD_GUARDED_BY(stats_mu);
  std::string validation_error HERALD_GUARDED_BY(stats_mu);
  int64_t allowed_rate_per_minute HERALD_GUARDED_BY(stats_mu) = 0;
};

// What a worker needs of the deliverer that owns it.
class WorkerHost {
 public:
  virtual const DelivererOptions& options() const = 0;
  virtual Engine* engine() const = 0;
  virtual DeadLetters& dead_letters() = 0;
  virtual DeadLetterWriter& writer() = 0;
  virtual Resolver& resolver() = 0;
  virtual DeliveryRing& deliveries() = 0;
  // Ingest to 2xx, per notification delivered (see WebhookDeliverer::end_to_end_latency).
  virtual LatencyHistogram& end_to_end() = 0;

 protected:
  ~WorkerHost() = default;
};

class Worker {
 public:
  Worker(WorkerHost& host, double jitter, const Clock& clock = Clock::System())
      : host_(host), clock_(clock), retry_schedule_(jitter, std::random_device{}(), clock) {}

  // `clock` times retries, gates, breakers, rate limits, tokens and dead letters.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(WorkerHost& host,
                                                        const DelivererOptions& options,
                                                        const Clock& clock = Clock::System());
  ~Worker() { Join(); }

  asio::io_context& io() { return io_; }
  const Clock& clock() const { return clock_; }
  void Run() {
    thread_ = std::thread([this] { io_.run(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  // Posted by Deliverer: moves the inbox in and sends what the profile's limits allow.
  void Pump(ProfileState& p);
  // WebhookDeliverer::TestConnection, on this worker's client.
  void TestConnection(std::string url, ClientCertificate certificate, milliseconds timeout,
                      std::function<void(absl::Status)> done);
  // Stop: turns everything the worker's profiles hold into dead letters, then stops the loop.
  void Drain(const std::vector<ProfileState*>& profiles);

 private:
  bool RefreshConfig(ProfileState& p);
  // ordering KEY: the next batch of the first waiting notification of each key that has no
  // request out (in flight or awaiting a retry), at most one per key; null when there is none.
  std::unique_ptr<Batch> FormOrdered(ProfileState& p, size_t max_items);
  // Calls its function once: with the probe's outcome, or Unavailable when the loop stopped
  // before the probe ran (the coroutine's frame destroyed unrun).
  struct Once {
    Once() = default;
    Once(const Once&) = delete;
    std::function<void(absl::Status)> fn;
    void operator()(absl::Status s) { std::exchange(fn, nullptr)(std::move(s)); }
    ~Once() {
      if (fn) fn(absl::UnavailableError("the deliverer stopped before the connection test ran"));
    }
  };
  // A CLOUDEVENTS profile's gate: true once its receiver allowed deliveries. Otherwise starts
  // the validation (or waits for it), or dead-letters what the profile holds when refused.
  bool Validated(ProfileState& p);
  asio::awaitable<void> Validate(ProfileState* p, std::shared_ptr<const ProfileConfig> config);
  void OnValidated(ProfileState& p, const ProfileConfig& config, const ClientResponse& response);
  // Back to not validated, shown as such: the profile is gone, or no longer CLOUDEVENTS.
  void ForgetValidation(ProfileState& p);
  asio::awaitable<void> Probe(std::string url, ClientCertificate certificate, milliseconds timeout,
                              std::shared_ptr<Once> done);
  asio::awaitable<void> Send(ProfileState* p, std::unique_ptr<Batch> batch,
                             std::shared_ptr<const ProfileConfig> config);
  // One request of `batch` (two with an OAuth token refused once); may throw. `sent`: the
  // headers of the last request made, credentials redacted.
  asio::awaitable<ClientResponse> Attempt(const Batch& batch, const ProfileConfig& config,
                                          std::vector<std::pair<std::string, std::string>>* sent);
  // `record`: the request as the delivery ring keeps it, completed here with the outcome.
  void OnResult(ProfileState& p, std::unique_ptr<Batch> batch, const ProfileConfig& config,
                const ClientResponse& response, DeliveryAttempt record);
  // A failed request the breaker counts; logs when it opened the circuit.
  void BreakerFailure(ProfileState& p, bool probe);
  // Logs a change of the profile's failing state (`status` 0: no answer), with the reason.
  void NoteFailure(ProfileState& p, int status, std::string_view reason);
  void NoteSuccess(ProfileState& p);
  // DelivererOptions::retry_through_log: true when the log took the batch to retry it.
  bool RetryThroughLog(ProfileState& p, Batch& batch, milliseconds delay);
  void ArmRetryTimer(ProfileState& p);
  void ArmGate(ProfileState& p, Clock::time_point at);
  DeadLetter LetterOf(const ProfileState& p, const Item& item, int attempts, int status,
                      std::string_view error) const;
  // The item as a dead letter, with its source notification or the replayed letter it replaces.
  Burial BurialOf(const ProfileState& p, Item& item, int attempts, int status,
                  std::string_view error) const;
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

  WorkerHost& host_;
  const Clock& clock_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::unique_ptr<HttpClient> client_;
  std::unique_ptr<OAuthTokens> tokens_;
  BatchBuilder batches_;
  RetrySchedule retry_schedule_;
  Mutex completed_mu_;
  std::vector<std::function<void()>> completed_ HERALD_GUARDED_BY(completed_mu_);
  bool collect_posted_ HERALD_GUARDED_BY(completed_mu_) = false;
  std::thread thread_;
};

}  // namespace herald::deliver
