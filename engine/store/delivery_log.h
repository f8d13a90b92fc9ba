// The durable front of heraldd's data plane (DESIGN §7): accepted events survive crashes and are
// delivered at least once.
//
// - Ingest appends each request's body to the Spool before routing it, so a 202 means the events
//   are persisted as `durability` promises; when the spool cannot take them nothing is routed
//   and the caller answers 503.
// - The engine tracks, per profile, the oldest spool record with a notification not yet settled
//   (delivered, or stored as a dead letter). Every cursor_interval these cursors are written to
//   data_dir/cursors (write-new, fsync, rename), then the segments every profile has passed are
//   removed.
// - Completion is out of order, so a checkpoint also lists, per profile, the records above its
//   cursor it has not settled. On start, Replay() re-routes records from the oldest cursor on,
//   each to the profiles that had not finished it: a slow or failing profile does not make the
//   others see duplicates, nor do notifications delivered ahead of it. Webhook ids do not
//   change: they are the events' eventIds, or derived from the record's position and payload.
// - A slow profile never pushes back on ingest: what its full queue refuses (during the replay
//   or live) waits in the spool, its cursor held behind it, and is offered again to that
//   profile alone, from the first refused event on, as its queue drains.
// - Cursors never pass what is fdatasynced. The replay checkpoints as it goes (what it went
//   through from the engine's progress, the rest as the cursors read at start said), so a restart
//   during it resumes where it was; segments are removed only once it is over.
//
// What was completed after the last cursor write is sent again after a crash (at least once);
// receivers dedupe on webhook-id. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/common/mutex.h"
#include "engine/store/event_log.h"
#include "engine/store/spool.h"
#include "herald/engine.h"

namespace herald::store {

absl::StatusOr<Spool::Durability> ParseDurability(std::string_view name);

// The embedded EventLog (engine/store/event_log.h).
class DeliveryLog final : public EventLog {
 public:
  struct Options {
    std::string data_dir;
    Spool::Durability durability = Spool::Durability::kBatch;
    size_t segment_bytes = 64u << 20;
    std::chrono::milliseconds cursor_interval{200};
    // Records a full queue refused are offered again, every cursor_interval, to a profile whose
    // queue holds at most this many notifications.
    size_t reoffer_queue_limit = 50'000;
    // Per profile, how many unsettled records a checkpoint lists, so a restart replays only
    // those between the profile's cursor and the frontier; with more, it replays all of them.
    size_t max_listed_unsettled = 4096;
    // Retention caps (DESIGN §7): past either, the oldest segment goes, and what the profiles
    // holding it back had not finished of it becomes their dead letters through `bury` (reason
    // "retention"). Without `bury` segments wait for every cursor.
    uint64_t retain_max_bytes = 10240ull << 20;
    std::chrono::seconds retain_max_age = std::chrono::hours(72);
    std::function<absl::Status(std::string_view profile_id, std::span<Notification>,
                               std::string_view reason)>
        bury;
    std::function<void(std::string_view)> log;
  };

  using Stats = EventLog::Stats;

  // Opens (recovers) the spool in data_dir/spool and reads the cursors; the engine must already
  // hold the persisted profiles and subscriptions.
  static absl::StatusOr<std::unique_ptr<DeliveryLog>> Open(Options options, Engine& engine);
  ~DeliveryLog() override;

  // Re-routes what the cursors say is unfinished. Call once, after the engine's sink has
  // started and before new events arrive. `stop` is asked between records: when it says yes the
  // replay ends with Cancelled, having written cursors for the records it went through, and the
  // next start goes on from there.
  absl::Status Replay(const std::function<bool()>& stop = {}) override;
  // A subscription about to be changed or deleted while its profile has unsettled records: the
  // live process delivers those to the profile as the old subscription routed them, so a replay
  // after a crash must too. KeepRoute persists the old definition (with the cursors) before the
  // change; SealRoute, after the change took effect, bounds it to the records logged so far;
  // DropRoute forgets it when the change failed. The replay routes through kept routes
  // (Engine::AddReplayRoute); a checkpoint drops a route once its profile's cursor passed it.
  // SealRoute must follow the change's FlushIndex (what is logged after routes the new way).
  absl::StatusOr<uint64_t> KeepRoute(const Subscription& before_change) override;
  void SealRoute(uint64_t route) override;
  void DropRoute(uint64_t route) override;
  // Starts writing cursors and retaining segments in the background.
  void Start() override;
  // Stops the background work and writes the cursors a last time (after delivery stopped).
  void Stop() override;

  // Appends, then routes with the record's sequence. An error means nothing was accepted.
  // Without `on_durable` the call returns once the record is as durable as the setting promises.
  // With it, the call returns once the record is written and routed, and `on_durable` follows
  // when it is durable (under `always`, after the fdatasync it shares with every record written
  // meanwhile; at once otherwise), with the fdatasync's error if that failed.
  absl::StatusOr<IngestResult> Ingest(IngestBuffer buffer, size_t size, InputFormat format,
                                      std::vector<IngestError>* errors,
                                      OnDurable on_durable = nullptr) override;
  absl::StatusOr<IngestResult> Ingest(std::string_view bytes, InputFormat format,
                                      std::vector<IngestError>* errors,
                                      OnDurable on_durable = nullptr) override;
  absl::StatusOr<IngestResult> IngestNative(std::string_view channel, std::string_view event,
                                            std::string_view bytes,
                                            std::vector<IngestError>* errors,
                                            OnDurable on_durable = nullptr) override;
  // Under `always` an answer waits for the fdatasync the request shares with others.
  bool defers_durability() const override {
    return options_.durability == Spool::Durability::kAlways;
  }
  Spool::Durability durability() const { return options_.durability; }

  Stats stats() const override;

 private:
  DeliveryLog(Options options, Engine& engine, std::unique_ptr<Spool> spool)
      : options_(std::move(options)), engine_(engine), spool_(std::move(spool)) {}

  // Appends a record of `header` + `body` while the caller's routing is registered as in
  // progress; `route(seq)` runs only when the append succeeded.
  using Router = std::function<IngestResult(uint64_t seq, std::vector<QueueRefusal>* refusals)>;
  absl::StatusOr<IngestResult> AppendAndRoute(std::string_view header, std::string_view body,
                                              const Router& route, OnDurable on_durable);
  // Routes one stored record (replay, re-offers): to every profile, or to `only_profile` from
  // its event `first_event` on.
  IngestResult Route(uint64_t seq, std::string_view record, std::vector<QueueRefusal>* refusals,
                     std::string_view only_profile = {}, uint32_t first_event = 0,
                     std::vector<Notification>* collect = nullptr);
  // While the spool is over a retention cap: the oldest segment's unfinished records become
  // dead letters of the profiles that owe them, and the segment goes.
  void EnforceRetention();
  // Keeps what full queues refused of record `seq` for Reoffer.
  void Strand(uint64_t seq, const std::vector<QueueRefusal>& refusals);
  // Offers refused records again to profiles whose queues have room; returns how many records
  // were taken.
  size_t Reoffer();
  // For an ingest's LogPosition::waiting (null when no profile has records waiting).
  std::shared_ptr<const std::vector<std::string>> Waiting() const;
  void RefreshWaiting() HERALD_REQUIRES(stranded_mu_);
  // Every record before it is routed (none is between append and the end of routing).
  uint64_t Frontier() const;
  // Computes the cursors, writes them when they changed, then drops passed segments. During the
  // replay, `replay_at` is the record it is at (every one before it routed), and no segment goes.
  absl::Status Checkpoint(uint64_t replay_at = 0);
  void Run();

  const Options options_;
  Engine& engine_;
  std::unique_ptr<Spool> spool_;

  // Records between append and the end of their routing, by slot: the spool's next sequence when
  // the slot was taken (a lower bound of the record's own), or UINT64_MAX when free.
  mutable Mutex routing_mu_;
  std::vector<uint64_t> routing_ HERALD_GUARDED_BY(routing_mu_);

  // From the cursor file read at Open.
  bool had_cursors_ = false;
  uint64_t saved_frontier_ = 0;
  struct SavedCursor {
    uint64_t cursor = 0;
    std::vector<uint64_t> unsettled;  // ascending, between the cursor and the frontier
    bool listed_all = true;
  };
  absl::flat_hash_map<std::string, SavedCursor> saved_cursors_;
  // Records a full queue refused, per profile (ascending by sequence), until Reoffer gets them
  // taken; checkpoints count them as unfinished. Ingest adds to it before its record leaves
  // routing_, so a checkpoint always sees a refused record in one or the other.
  struct Stranded {
    uint64_t seq;
    uint32_t first_event;  // from this event of the record on (1-based)
  };
  mutable Mutex stranded_mu_;
  absl::flat_hash_map<std::string, std::vector<Stranded>> stranded_ HERALD_GUARDED_BY(stranded_mu_);
  std::atomic<uint64_t> stranded_count_{0};
  // The profiles in stranded_ (LogPosition::waiting: an ordered one takes nothing newer until
  // its waiting records are in), rebuilt whenever that set changes.
  std::shared_ptr<const std::vector<std::string>> waiting_ HERALD_GUARDED_BY(stranded_mu_);
  std::atomic<bool> any_waiting_{false};
  Mutex reoffer_mu_;  // one Reoffer at a time

  struct KeptRoute {
    uint64_t id = 0;
    Subscription subscription;
    uint64_t before = UINT64_MAX;  // UINT64_MAX until sealed: every record kept
  };
  mutable Mutex routes_mu_;
  std::vector<KeptRoute> routes_ HERALD_GUARDED_BY(routes_mu_);
  uint64_t next_route_ HERALD_GUARDED_BY(routes_mu_) = 1;

  Mutex checkpoint_mu_;                    // one checkpoint at a time
  std::atomic<bool> replayed_all_{false};  // checkpoints only after Replay() succeeded
  std::string last_written_ HERALD_GUARDED_BY(checkpoint_mu_);

  std::atomic<uint64_t> appended_{0}, append_errors_{0}, appended_bytes_{0}, replayed_{0};
  std::atomic<uint64_t> cursor_writes_{0}, cursor_errors_{0}, slowest_cursor_{0};
  std::atomic<uint64_t> retention_segments_{0}, retention_dead_letters_{0};

  Mutex run_mu_;
  CondVar run_cv_;
  bool stop_ HERALD_GUARDED_BY(run_mu_) = false;
  std::thread thread_;  // started under run_mu_, joined by Stop
};

}  // namespace herald::store
