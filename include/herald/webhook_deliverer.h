// herald::WebhookDeliverer — the library's webhook delivery (DESIGN §5), a Sink an embedder
// hands to the Engine (or writes its own instead).
//
//   auto deliverer = herald::WebhookDeliverer::Create({.threads = 2}).value();
//   auto engine = herald::Engine::Create({.catalog_path = ..., .sink = deliverer.get()}).value();
//   deliverer->Start(*engine);   // before events are ingested
//   ...
//   deliverer->Stop(std::chrono::seconds(5));  // before the engine is destroyed
//
// Each profile's notifications are POSTed to its notifyUrl: alone when only one is waiting, else
// batched as {"results":[…]} of up to maxBucketSize items; signed and authenticated per its
// security setting; at most windowSize requests in flight and rateLimit requests per second;
// retried on connect errors, timeouts, 408, 429 and 5xx on the profile's (or the default)
// schedule, honouring Retry-After; other statuses and exhausted retries become dead letters,
// kept (in data_dir when given) until replayed. 410 Gone disables the profile until it is
// updated. A circuit breaker per profile probes a failing receiver instead of hammering it.
// Profiles are sharded over worker threads, and no receiver can delay another profile.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "herald/engine.h"
#include "herald/sink.h"
#include "herald/subscription.h"

namespace herald {
namespace deliver {
class DeadLetters;
}

struct DelivererOptions {
  int threads = 1;       // delivery workers (io threads); profiles are sharded over them
  std::string data_dir;  // dead letters and disabled profiles persist here; empty = in memory
  // Dead letters are bounded: past either, the oldest go (counted in DeadLetterStats::dropped).
  uint64_t dead_letters_max_bytes = 1024ull << 20;  // of their records; 0 = unbounded
  std::chrono::milliseconds dead_letters_max_age = std::chrono::hours(168);  // 0 = unbounded
  std::string ca_file;  // PEM CA bundle to verify receivers with; empty = the system's
  bool allow_private_targets = false;  // let webhooks target loopback and private addresses
  // For profiles without a `retry` of their own. Empty delays = the platform's schedule,
  // 1 min + n² min before retry n; each delay gets ±jitter.
  RetryPolicy retry;
  double jitter = 0.2;
  // After this many consecutive failed requests a profile's circuit opens: no requests for
  // breaker_open (doubling per failed probe, up to breaker_open_max), then one probe.
  int breaker_failures = 5;
  std::chrono::milliseconds breaker_open{1000};
  std::chrono::milliseconds breaker_open_max{60000};
  // Notifications a profile may hold (waiting, in flight, awaiting retry) before the engine
  // keeps the rest in its bounded queue.
  size_t max_held_per_profile = 10'000;
  // The notifications come from a durable log that replays every unsettled one after a restart
  // (heraldd's spool; see Notification::Settle). Stop() then leaves what it could not deliver to
  // the log instead of making it dead letters.
  bool log_replays_unsettled = false;
  // Distributed mode: when set, a failed request whose items all came from the engine with a
  // log position is retried through that log instead of a timer here. The function takes them
  // all or none (false: the retry stays here); the log hands them back after `delay`, each with
  // Notification::prior_attempts() counting the attempts made, and the deliverer settles them
  // here as handed over.
  std::function<bool(std::span<Notification* const> notifications, std::chrono::milliseconds delay)>
      retry_through_log;
  // Looks up a receiver's host name (its addresses as text), blocking: the system's resolver
  // (getaddrinfo) when empty. It runs on threads of its own, once per name at a time, and a
  // delivery waits for it at most its connectTimeout.
  std::function<absl::StatusOr<std::vector<std::string>>(std::string_view host)> resolve;
  // The latest requests kept for WebhookDeliverer::Deliveries (0: none), and the bytes of their
  // whole bodies kept so that they can be resent (the oldest go first).
  size_t delivery_log_entries = 1000;
  size_t delivery_log_body_bytes = 32u << 20;
  // The name CloudEvents endpoint validation gives receivers (WebHook-Request-Origin), and every
  // request of a CLOUDEVENTS profile carries as Origin: the host name when empty.
  std::string origin;
  // Where dead letters and disabled profiles are kept instead of data_dir: heraldd's
  // distributed mode shares them on JetStream. Internal to herald; bounds are the store's own.
  std::shared_ptr<deliver::DeadLetters> dead_letters;
  // The dead letters' fdatasync(2): a test's stand-in when set.
  int (*dead_letters_sync)(int fd) = nullptr;
  std::function<void(std::string_view)> log;
};

struct DeadLetter {
  uint64_t id = 0;
  std::string profile_id;
  std::string subscription_id;
  std::string channel;
  std::string event;
  std::string webhook_id;
  std::string payload;  // verbatim
  int attempts = 0;
  int last_status = 0;  // 0: no response
  std::string last_error;
  int64_t failed_at_ms = 0;  // Unix time
};

// One webhook request as the deliverer saw it (WebhookDeliverer::Deliveries).
struct DeliveryAttempt {
  uint64_t id = 0;    // ascending, per deliverer
  int64_t at_ms = 0;  // Unix time the request ended
  std::string profile_id;
  std::string webhook_id;
  std::string channel;  // the request's distinct values, comma-separated
  std::string event;
  size_t notifications = 0;
  int status = 0;     // 0: no response
  std::string error;  // why it failed: the transport's error, or the status and body excerpt
  double latency_ms = 0;
  int attempt = 0;  // 1-based, of max_attempts
  int max_attempts = 0;
  // "delivered", "retrying" (next_retry_at_ms says when) or "dead-lettered".
  std::string outcome;
  int64_t next_retry_at_ms = 0;  // Unix time; 0 unless retrying
  bool replay = false;           // of a dead letter or a resend
  bool resendable = false;       // its body is still kept
  struct Excerpt {
    std::vector<std::pair<std::string, std::string>> headers;  // credentials redacted
    std::string body;                                          // the first bytes
    size_t body_bytes = 0;                                     // of the whole body
  };
  std::string method = "POST";
  std::string url;  // userinfo dropped, query values redacted
  Excerpt request;
  Excerpt response;
};

// Which attempts Deliveries returns; empty fields match everything.
struct DeliveryQuery {
  std::string profile_id;
  std::string status;  // "2xx", "4xx", "5xx" (any class "Nxx") or "error" (no response)
  std::string event;   // an event name, or CHANNEL:EVENT
  uint64_t after = 0;  // only ids above it
  size_t limit = 100;
};

struct ProfileDeliveryStats {
  std::string profile_id;
  uint64_t delivered = 0;  // notifications a receiver answered 2xx for
  uint64_t failed = 0;     // failed attempts, per notification
  uint64_t retried = 0;    // notifications scheduled for another attempt
  uint64_t dead_lettered = 0;
  uint64_t requests = 0;   // HTTP requests answered or failed
  uint64_t in_flight = 0;  // requests
  uint64_t held = 0;       // notifications waiting, in flight or awaiting retry
  bool disabled = false;   // by 410 Gone, until the profile is updated
  bool circuit_open = false;
  bool failing = false;  // its latest request failed
  // CloudEvents endpoint validation (CLOUDEVENTS profiles, before their first delivery): ""
  // until it is asked for, then "pending", "allowed" or "refused"; why it is not allowed (a
  // refusal, or a receiver not reached yet), and the rate it allows in requests per minute
  // (WebHook-Allowed-Rate; 0: any).
  std::string validation;
  std::string validation_error;
  int64_t allowed_rate_per_minute = 0;
  // The latest failure (the transport's error, or the status and body excerpt) and when, and
  // the latest success; 0 when none yet. Unix ms.
  std::string last_error;
  int64_t last_error_at_ms = 0;
  int64_t last_success_at_ms = 0;
  // Requests over the last 5 minutes, first attempts and retries (replays and resends left
  // out), and of those the ones answered 2xx.
  uint64_t recent_requests = 0;
  uint64_t recent_succeeded = 0;
  // Request latency: cumulative counts per upper bound (seconds), the last bound +inf.
  std::vector<std::pair<double, uint64_t>> latency_buckets;
  double latency_sum_seconds = 0;
};

struct DeadLetterPage {
  std::vector<DeadLetter> results;
  size_t total = 0;
};

struct DeadLetterStats {
  uint64_t letters = 0;
  uint64_t bytes = 0;    // of their records
  uint64_t dropped = 0;  // removed by dead_letters_max_bytes or dead_letters_max_age
};

// The SSRF guard at write time, for webhook and OAuth token URLs: the URL must parse (http or
// https), and unless `allow_private` a host that is, or resolves to, a loopback, private,
// link-local (cloud metadata), multicast or otherwise non-public address is refused. A name that
// does not resolve now is accepted: the deliverer checks the resolved addresses again on every
// connection (DNS rebinding).
absl::Status CheckWebhookTarget(std::string_view url, bool allow_private);

class WebhookDeliverer : public Sink {
 public:
  static absl::StatusOr<std::unique_ptr<WebhookDeliverer>> Create(DelivererOptions options);
  ~WebhookDeliverer() override = default;

  // Reads profiles and security settings from `engine`; call before events are ingested.
  virtual void Start(Engine& engine) = 0;
  // Waits up to `grace` for held notifications to be delivered, then stops the workers; whatever
  // is still undelivered becomes a dead letter ("stopped before delivery"), so nothing is lost
  // (with log_replays_unsettled, it stays unsettled for the log to replay instead).
  virtual void Stop(std::chrono::milliseconds grace) = 0;

  virtual std::vector<ProfileDeliveryStats> stats() const = 0;
  virtual bool disabled(std::string_view profile_id) const = 0;
  // Re-enables a profile disabled by 410 Gone (heraldd does so when the profile is updated).
  virtual absl::Status Enable(std::string_view profile_id) = 0;

  // Dead letters of a profile (every profile when empty), oldest first; an error when their
  // payloads cannot be read back from data_dir.
  virtual absl::StatusOr<DeadLetterPage> ListDeadLetters(std::string_view profile_id, size_t page,
                                                         size_t size) const = 0;
  // Deletes a profile's dead letters (those of `ids`, or all when empty); returns how many.
  virtual absl::StatusOr<size_t> DeleteDeadLetters(std::string_view profile_id,
                                                   const std::vector<uint64_t>& ids) = 0;
  virtual DeadLetterStats dead_letter_stats() const = 0;
  // Dead letters kept per profile.
  virtual std::map<std::string, uint64_t> dead_letter_counts() const = 0;
  // Latency from ingest (Engine::Ingest) to the receiver's 2xx, per notification delivered
  // (replays left out): cumulative counts per upper bound (seconds), the last bound +inf.
  virtual std::vector<std::pair<double, uint64_t>> end_to_end_latency() const = 0;

  // The latest requests, newest first (DelivererOptions::delivery_log_entries); `last_id`, when
  // given, gets the latest id recorded, read together with them (a tail resumes after it).
  virtual std::vector<DeliveryAttempt> Deliveries(const DeliveryQuery& query,
                                                  uint64_t* last_id = nullptr) const = 0;
  // The id of the latest request recorded (0: none yet).
  virtual uint64_t last_delivery_id() const = 0;
  // Sends a recorded request's body again, to its profile, with its webhook-id: kept as a dead
  // letter and replayed, so a stop or crash loses it no more than any other. Returns its dead
  // letter's id. NotFound once it left the ring (or its profile is gone); FailedPrecondition
  // when its body is no longer kept.
  virtual absl::StatusOr<uint64_t> Resend(uint64_t delivery_id) = 0;
  // Re-queues a profile's dead letters (those of `ids`, or all when empty) for delivery with
  // their original webhook-id; returns how many. NotFound for an unknown profile.
  virtual absl::StatusOr<size_t> Replay(std::string_view profile_id,
                                        const std::vector<uint64_t>& ids) = 0;
  // Stores notifications that were never attempted as the profile's dead letters, with `reason`
  // as their error (a log dropping what it could no longer keep: "retention"). Any thread.
  // A CLOUDEVENTS profile's receiver is asked again for endpoint validation, at once (heraldd
  // does so when the profile is updated): a refusal is not final once the receiver is fixed.
  virtual void Revalidate(std::string_view profile_id) = 0;
  // The certificates API's connection test: connects to `url` and, for https, completes a TLS
  // handshake presenting `certificate`, sending no request. `done` gets OK or why not, once, on
  // a delivery thread (Unavailable when stopped first).
  virtual void TestConnection(std::string url, ClientCertificate certificate,
                              std::chrono::milliseconds timeout,
                              std::function<void(absl::Status)> done) = 0;
  virtual absl::Status BuryUndelivered(std::string_view profile_id,
                                       std::span<Notification> notifications,
                                       std::string_view reason) = 0;
};

}  // namespace herald
