// The event seam (DESIGN §7): where accepted ingest requests are made durable and from where they
// are routed, so that a 202 means nothing is lost. The embedded DeliveryLog implements it over the
// segmented spool with per-profile cursors (Append, Read and Commit with out-of-order
// completion, retention behind the slowest cursor); the JetStream mode implements it over a
// stream and a shared consumer. The seam sits above routing because the two route in different
// places: the embedded log routes each request as it is appended, JetStream routes behind the
// stream, on whichever instance its consumer hands the event to.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "herald/engine.h"

namespace herald::store {

class EventLog {
 public:
  struct Stats {
    uint64_t appended = 0;       // records (ingest requests)
    uint64_t append_errors = 0;  // requests refused because the log could not take them
    uint64_t appended_bytes = 0;
    uint64_t first_seq = 0;  // the oldest record kept
    uint64_t next_seq = 0;
    uint64_t segments = 0;
    uint64_t fsyncs = 0;
    uint64_t replayed = 0;  // records re-routed at start
    uint64_t cursor_writes = 0;
    uint64_t cursor_errors = 0;
    uint64_t slowest_cursor = 0;    // the oldest record some profile still needs
    uint64_t waiting_for_room = 0;  // (profile, record) pairs a full queue refused, not yet taken
    uint64_t spool_bytes = 0;
    uint64_t retention_segments = 0;      // segments dropped by a retention cap
    uint64_t retention_dead_letters = 0;  // notifications they turned into dead letters
  };

  virtual ~EventLog() = default;

  // Makes a request durable, then routes it. An error means nothing was accepted. Without
  // `on_durable` the call returns once the request is as durable as the log promises. With it,
  // the call may return once the request is written and routed, and `on_durable` follows when
  // it is durable, with the error if that failed (see defers_durability()).
  using OnDurable = std::function<void(absl::Status)>;
  virtual absl::StatusOr<IngestResult> Ingest(IngestBuffer buffer, size_t size, InputFormat format,
                                              std::vector<IngestError>* errors,
                                              OnDurable on_durable = nullptr) = 0;
  virtual absl::StatusOr<IngestResult> Ingest(std::string_view bytes, InputFormat format,
                                              std::vector<IngestError>* errors,
                                              OnDurable on_durable = nullptr) = 0;
  virtual absl::StatusOr<IngestResult> IngestNative(std::string_view channel,
                                                    std::string_view event, std::string_view bytes,
                                                    std::vector<IngestError>* errors,
                                                    OnDurable on_durable = nullptr) = 0;
  // True when durability comes after Ingest returns, so an answer should wait for on_durable.
  virtual bool defers_durability() const = 0;

  // Routes again what was accepted and not finished before the last stop. Call once, after the
  // engine's sink has started and before new requests arrive; `stop` is asked as it goes, and
  // when it says yes the replay ends with Cancelled, to go on at the next start.
  virtual absl::Status Replay(const std::function<bool()>& stop = {}) = 0;
  // Background work (checkpoints, retention) from Start to Stop; Stop comes after delivery
  // stopped.
  virtual void Start() = 0;
  virtual void Stop() = 0;

  // A subscription about to change or go while requests it routed may be routed again (a
  // replay after a crash): KeepRoute before the change, SealRoute once it took effect (after
  // Engine::FlushIndex), DropRoute when it failed. See DeliveryLog.
  virtual absl::StatusOr<uint64_t> KeepRoute(const Subscription& before_change) = 0;
  virtual void SealRoute(uint64_t route) = 0;
  virtual void DropRoute(uint64_t route) = 0;

  virtual Stats stats() const = 0;
};

}  // namespace herald::store
