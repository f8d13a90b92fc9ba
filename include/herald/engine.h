// herald::Engine — the embeddable router. Load a catalog, manage subscriptions, profiles and
// security settings, ingest raw JSON events from any number of threads, and take the resulting
// notifications either by polling a profile's queue or through a Sink.
//
//   auto engine = herald::Engine::Create({.catalog_path = "configs/catalog.json"}).value();
//   engine->CreateProfile({.profile_id = "p1", .webhook = {.notify_url = "https://x/hook"}});
//   engine->CreateSubscription({.subscription_id = "s1", .channel = "SMS",
//                               .events = {"DELIVERY"}, .profile_id = "p1"});
//   engine->Ingest(R"({"channel":"SMS","event":"DELIVERY","payload":{}})");
//   std::vector<herald::Notification> out;
//   engine->Poll("p1", 100, &out);
//
// Thread-safety: every method may be called from any thread. Ingest never blocks on the
// control plane: routers read immutable index snapshots, and a committed change becomes visible to
// routing within 100 ms (at once after FlushIndex()).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "herald/catalog.h"
#include "herald/certificate.h"
#include "herald/event.h"
#include "herald/sink.h"
#include "herald/status.h"
#include "herald/subscription.h"

namespace herald {

enum class Fanout : uint8_t {
  kGroupWinner,  // one notification per group: the most specific match wins (the platform's rule)
  kAll,          // every matching subscription (classic webhook fan-out)
};

enum class InputFormat : uint8_t {
  kAuto,    // NDJSON when the input holds more than one non-blank line, else one envelope
  kSingle,  // exactly one envelope
  kNdjson,  // newline-delimited envelopes
};

struct EngineOptions {
  // Either a loaded catalog or a path to load one from.
  std::shared_ptr<const Catalog> catalog;
  std::string catalog_path;

  Fanout fanout = Fanout::kGroupWinner;
  size_t max_event_bytes = 1 << 20;  // larger events are rejected as kOversize
  int max_payload_depth = 64;        // deeper payloads are rejected as kTooDeep

  // More subscriptions in one channel are refused with ResourceExhausted.
  size_t max_subscriptions_per_channel = 10'000'000;

  // Per-profile queue bounds; a full queue refuses the notification and counts back-pressure.
  size_t queue_max_notifications = 100'000;
  size_t queue_max_bytes = 256u << 20;

  // With a sink, dispatch threads drain every profile's queue into it; without, call Poll().
  Sink* sink = nullptr;
  int dispatch_threads = 1;

  // How often pending index changes are published (the visibility bound is this plus the
  // time to build a small overlay).
  std::chrono::milliseconds publish_interval{5};

  // Diagnostics (index rebuilds, slow-consumer transitions). The library never prints itself.
  std::function<void(std::string_view)> log;
};

// Monotonic counters; a snapshot summed over all router threads.
struct Counters {
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t rejected_by_reason[kRejectReasonCount] = {};
  uint64_t matched = 0;         // accepted events with at least one notification
  uint64_t unmatched = 0;       // accepted events that matched no subscription
  uint64_t enqueued = 0;        // notifications put on a profile queue
  uint64_t back_pressured = 0;  // notifications refused by a full queue
  // A gauge, not a counter: bytes of input buffers alive — inputs being routed and the payloads
  // that queued and held notifications keep (a small event of a large input has its own copy).
  uint64_t payload_bytes = 0;
};

struct QueueStats {
  std::string profile_id;
  uint64_t depth = 0;
  uint64_t bytes = 0;
  uint64_t back_pressured = 0;
};

struct ProfileProgress {
  std::string profile_id;
  uint64_t oldest_unsettled = UINT64_MAX;
  uint64_t outstanding = 0;  // notifications not yet settled
  // The distinct sequences with a notification not settled, ascending (completion is out of
  // order: settled ones above the oldest are left out), up to DeliveryProgress's `max_listed`;
  // `listed_all` is false when there were more.
  std::vector<uint64_t> unsettled;
  bool listed_all = true;
};

// A full queue's refusal of a logged input's events (see LogPosition::refusals).
struct QueueRefusal {
  std::string profile_id;
  // The input's events from this one on were refused (1-based, counting its accepted events).
  uint32_t first_event = 0;
};

// Where an input sits in a durable log in front of the engine (heraldd's spool).
struct LogPosition {
  LogPosition() = default;
  LogPosition(uint64_t seq) : sequence(seq) {}  // NOLINT: a bare sequence reads naturally
  LogPosition(uint64_t seq, std::string_view profile, uint32_t first = 0)
      : sequence(seq), only_profile(profile), first_event(first) {}

  // > 0: the notifications count in DeliveryProgress until settled, generated webhook ids derive
  // from it (a replay makes the same ids), and replay plans apply.
  uint64_t sequence = 0;
  // Non-empty: route for this profile alone (offering an input again to a profile whose full
  // queue refused it; the others had it). An unknown profile routes nothing.
  std::string_view only_profile;
  // With only_profile: the input's events before this one (1-based, counting accepted events)
  // were taken before and are skipped.
  uint32_t first_event = 0;
  // Non-null (with a sequence): the log keeps what a full queue refuses and offers it again
  // later. Once a profile's queue refuses one of the input's events it refuses the rest of them
  // too, and each such profile is reported here once; the result counts them as `deferred`,
  // not `back_pressured`.
  std::vector<QueueRefusal>* refusals = nullptr;
  // With refusals: profiles with earlier inputs still waiting in the log. A profile ordered by
  // key (`ordering` KEY) among them refuses this input too, so it never overtakes those.
  std::span<const std::string> waiting;
  // Non-null: the notifications are appended here instead of queued, and not tracked (with
  // only_profile, the log turns an input it must drop into dead letters; without, the log hands
  // every profile's notifications to their owners elsewhere: Engine::Enqueue).
  std::vector<Notification>* collect = nullptr;
};

// What a replayed input owes a profile after a restart: nothing below `floor`; in
// [floor, upto) only the sequences in `only` (ascending); from `upto` on, everything.
struct ReplayPlan {
  uint64_t floor = 0;
  uint64_t upto = 0;
  std::vector<uint64_t> only;
};

// A notification routed elsewhere (another instance, in heraldd's distributed mode), to deliver
// here: Engine::Enqueue. Every view is copied.
struct RoutedNotification {
  std::string_view profile_id;
  std::string_view subscription_id;
  std::string_view channel;  // the catalog's names
  std::string_view event;
  std::string_view webhook_id;  // Notification::webhook_id() where it was routed
  std::string_view key;
  std::string_view payload;
  int prior_attempts = 0;  // made elsewhere before (Notification::prior_attempts)
};

// What routing one envelope would do (Engine::Explain).
struct ExplainedMatch {
  std::string subscription_id;
  std::string group;
  std::string profile_id;
  int specificity = 0;  // DESIGN §2: events, criteria halves, resources, users
  bool winner = false;  // notified: its group's winner (or every match with Fanout::kAll)
};
struct RouteExplanation {
  std::string channel;  // canonical names
  std::string event;
  std::vector<ExplainedMatch> matches;  // every matching subscription, winners first
  std::vector<std::string> profiles;    // those that would get a notification, once each
};

class Engine;

// A pooled, padded buffer to read input into (e.g. an HTTP body as it arrives), then hand to
// Engine::Ingest without another copy; notifications slice their payloads from it. Move-only.
class IngestBuffer {
 public:
  IngestBuffer() = default;
  IngestBuffer(IngestBuffer&& other) noexcept : block_(other.block_) { other.block_ = nullptr; }
  IngestBuffer& operator=(IngestBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      block_ = other.block_;
      other.block_ = nullptr;
    }
    return *this;
  }
  IngestBuffer(const IngestBuffer&) = delete;
  IngestBuffer& operator=(const IngestBuffer&) = delete;
  ~IngestBuffer() { Reset(); }

  explicit operator bool() const { return block_ != nullptr; }
  char* data();
  size_t capacity() const;  // usable bytes; kInputPadding more follow them

 private:
  friend struct internal::IngestBufferAccess;
  void Reset();
  internal::PayloadBlock* block_ = nullptr;
};

class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(EngineOptions options);
  virtual ~Engine() = default;

  virtual const Catalog& catalog() const = 0;

  // --- control plane -------------------------------------------------------------------------
  // Create fails with AlreadyExists for a taken id; Update/Delete/Get with NotFound for a missing
  // one; a reference to a missing profile or security setting is a validation error; deleting
  // something still referenced is FailedPrecondition; a channel at its
  // max_subscriptions_per_channel is ResourceExhausted.
  virtual absl::Status CreateSecurity(const SecuritySetting& security) = 0;
  virtual absl::Status UpdateSecurity(const SecuritySetting& security) = 0;
  virtual absl::Status DeleteSecurity(std::string_view auth_id) = 0;
  virtual absl::StatusOr<SecuritySetting> GetSecurity(std::string_view auth_id) const = 0;

  // Certificates are created and deleted, never updated (the platform's API); a profile names
  // one by clientCertificateId (a missing one is a validation error, as for authId).
  virtual absl::Status CreateCertificate(const ClientCertificate& certificate) = 0;
  virtual absl::Status DeleteCertificate(std::string_view certificate_id) = 0;
  virtual absl::StatusOr<ClientCertificate> GetCertificate(
      std::string_view certificate_id) const = 0;

  virtual absl::Status CreateProfile(const NotificationProfile& profile) = 0;
  virtual absl::Status UpdateProfile(const NotificationProfile& profile) = 0;
  virtual absl::Status DeleteProfile(std::string_view profile_id) = 0;
  virtual absl::StatusOr<NotificationProfile> GetProfile(std::string_view profile_id) const = 0;

  virtual absl::Status CreateSubscription(const Subscription& subscription) = 0;
  virtual absl::Status UpdateSubscription(const Subscription& subscription) = 0;
  virtual absl::Status DeleteSubscription(std::string_view subscription_id) = 0;
  virtual absl::StatusOr<Subscription> GetSubscription(std::string_view subscription_id) const = 0;
  virtual size_t subscription_count() const = 0;
  // Bumped by every change to a profile, security setting or certificate, so a deliverer can cache
  // them.
  virtual uint64_t profile_version() const = 0;

  // Snapshots for listing, copied under the control-plane lock. Subscriptions of `channel`
  // (every channel when empty) come newest first; profiles and security settings by id.
  virtual std::vector<Subscription> ListSubscriptions(std::string_view channel = {}) const = 0;
  virtual std::vector<NotificationProfile> ListProfiles() const = 0;
  virtual std::vector<SecuritySetting> ListSecurity() const = 0;
  virtual std::vector<ClientCertificate> ListCertificates() const = 0;

  // Blocks until every change committed before the call is visible to routing.
  virtual void FlushIndex() = 0;

  // --- data plane ----------------------------------------------------------------------------
  // Ingests one envelope or NDJSON. Bad events are counted, reported in `errors` when given, and
  // never stop the batch: the good lines of an NDJSON input are routed. The bytes are copied once
  // into a pooled buffer that the notifications share.
  //
  // `log`: the input's place in a durable log the embedder appended it to (see LogPosition).
  virtual IngestResult Ingest(std::string_view bytes, InputFormat format = InputFormat::kAuto,
                              std::vector<IngestError>* errors = nullptr, LogPosition log = {}) = 0;

  // A buffer of at least `bytes` usable bytes, for the Ingest overload below.
  virtual IngestBuffer NewIngestBuffer(size_t bytes) = 0;
  // Ingests the first `size` bytes of `buffer` in place (no copy).
  virtual IngestResult Ingest(IngestBuffer buffer, size_t size,
                              InputFormat format = InputFormat::kAuto,
                              std::vector<IngestError>* errors = nullptr, LogPosition log = {}) = 0;

  // Ingests a channel's native payload for (channel, event): each results[] item (or the whole
  // body when it has no results array) is routed on its own, its routing keys read at the
  // catalog's JSON pointers; `errors` lines are item numbers. Unknown channel or event: one
  // rejection with that reason.
  virtual IngestResult IngestNative(std::string_view channel, std::string_view event,
                                    std::string_view bytes,
                                    std::vector<IngestError>* errors = nullptr,
                                    LogPosition log = {}) = 0;

  // Moves up to `max` notifications of the profile's queue into `out` (appended).
  // Returns how many; NotFound for an unknown profile.
  virtual absl::StatusOr<size_t> Poll(std::string_view profile_id, size_t max,
                                      std::vector<Notification>* out) = 0;

  // Queues a notification routed elsewhere on its profile's queue, as if routed here; with a
  // `sequence` > 0 it counts in DeliveryProgress until settled. NotFound for an unknown profile,
  // channel or event; InvalidArgument for a key over 255 bytes or an empty webhook id;
  // ResourceExhausted while the queue is full (offer it again later).
  virtual absl::Status Enqueue(const RoutedNotification& notification, uint64_t sequence) = 0;

  // Routes one envelope without delivering it: which subscriptions match, their specificity, the
  // winners and the profiles they notify, as Ingest would decide now. InvalidArgument (with the
  // reason Ingest would report) for an envelope Ingest would reject.
  virtual absl::StatusOr<RouteExplanation> Explain(std::string_view envelope) const = 0;

  virtual Counters counters() const = 0;
  virtual std::vector<QueueStats> queue_stats() const = 0;

  // --- delivery progress (a durable log in front of the engine) ------------------------------
  // Per profile, the oldest input sequence with a notification not yet settled
  // (Notification::Settle), or UINT64_MAX when none is outstanding, and up to `max_listed` of the
  // unsettled sequences. Inputs being ingested at the moment are the caller's to account for.
  virtual std::vector<ProfileProgress> DeliveryProgress(size_t max_listed = 0) const = 0;
  // After a restart, before replaying the log: which replayed inputs make notifications for the
  // profile (the rest it had finished). Not while inputs are being ingested. NotFound for an
  // unknown profile.
  virtual absl::Status SetReplayPlan(std::string_view profile_id, ReplayPlan plan) = 0;
  // The log dropped its inputs before `before` for this profile (retention, after making them
  // dead letters): they no longer hold back its progress, and settling their notifications
  // later is ignored. NotFound for an unknown profile.
  virtual absl::Status ForgetProgress(std::string_view profile_id, uint64_t before) = 0;
  // Replay after a restart: routes logged inputs below `before` as if `subscription`, since
  // changed or deleted, were still in force for its profile, which had not settled them then
  // (the live process would have delivered them). It never takes an event from a subscription
  // in force, is not listed, and lasts until ClearReplayRoutes (after the replay). NotFound when
  // its profile is gone; InvalidArgument when it no longer validates.
  virtual absl::Status AddReplayRoute(const Subscription& subscription, uint64_t before) = 0;
  virtual void ClearReplayRoutes() = 0;
};

}  // namespace herald
