// What an embedder receives: notifications, by polling a profile's queue or through a Sink.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace herald {

namespace internal {
struct PayloadBlock;
struct IngestBufferAccess;
struct RouteHandle;
void Unref(PayloadBlock* block);
void Unref(const RouteHandle* subscription);
std::string_view SubscriptionIdOf(const RouteHandle* subscription);
std::string_view ProfileIdOf(const RouteHandle* subscription);
std::string_view ChannelOf(const RouteHandle* subscription);
uint64_t SequenceOf(const PayloadBlock* block);
int64_t IngestedNanosOf(const PayloadBlock* block);
void Settle(const RouteHandle* subscription, const PayloadBlock* block);
}  // namespace internal

// One event for one profile. Holds a reference to the event's payload bytes (shared, never
// copied, by every notification of the event) and to the subscription that won the match.
// Move-only. A Notification must not outlive the Engine that made it.
class Notification {
 public:
  Notification() = default;
  Notification(Notification&& other) noexcept { MoveFrom(other); }
  Notification& operator=(Notification&& other) noexcept {
    if (this != &other) {
      Reset();
      MoveFrom(other);
    }
    return *this;
  }
  Notification(const Notification&) = delete;
  Notification& operator=(const Notification&) = delete;
  ~Notification() { Reset(); }

  bool empty() const { return block_ == nullptr; }
  // The event's payload, verbatim.
  std::string_view payload() const;
  // The event's eventId, or an id generated at ingest; stable for this notification's lifetime.
  std::string_view webhook_id() const;
  std::string_view subscription_id() const { return internal::SubscriptionIdOf(subscription_); }
  std::string_view profile_id() const { return internal::ProfileIdOf(subscription_); }
  std::string_view channel() const { return internal::ChannelOf(subscription_); }
  std::string_view event() const { return event_; }
  // The envelope's `key` (empty when it had none): what a profile with per-key ordering orders.
  std::string_view key() const;
  // Bytes this notification accounts for in its queue's byte bound.
  uint32_t size_bytes() const { return payload_len_; }
  // The log position its input was ingested with (see Engine::Ingest), or 0.
  uint64_t sequence() const { return block_ ? internal::SequenceOf(block_) : 0; }
  // Delivery attempts made before it came here: by another instance, which handed it back to
  // retry (distributed mode, Engine::Enqueue); 0 otherwise.
  int prior_attempts() const { return prior_attempts_; }
  // When its input reached the engine (Engine::Ingest), on the steady clock.
  std::chrono::steady_clock::time_point ingested_at() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(block_ ? internal::IngestedNanosOf(block_) : 0));
  }

  // Done: delivered, or kept where it cannot be lost (a dead letter). With a sequence, the
  // engine's delivery progress for the profile moves past it (Engine::DeliveryProgress); a
  // notification released without Settle stays outstanding, so a log replays it after a
  // restart. Releases the notification.
  void Settle() {
    if (block_ && subscription_) internal::Settle(subscription_, block_);
    Reset();
  }

  void Reset() {
    if (block_) internal::Unref(block_);
    if (subscription_) internal::Unref(subscription_);
    block_ = nullptr;
    subscription_ = nullptr;
  }

 private:
  friend class NotificationBuilder;
  void MoveFrom(Notification& other) {
    block_ = other.block_;
    subscription_ = other.subscription_;
    event_ = other.event_;
    payload_offset_ = other.payload_offset_;
    payload_len_ = other.payload_len_;
    id_offset_ = other.id_offset_;
    id_len_ = other.id_len_;
    key_offset_ = other.key_offset_;
    key_len_ = other.key_len_;
    prior_attempts_ = other.prior_attempts_;
    for (int i = 0; i < kGeneratedIdLen; ++i) generated_id_[i] = other.generated_id_[i];
    other.block_ = nullptr;
    other.subscription_ = nullptr;
  }

  static constexpr int kGeneratedIdLen = 20;  // "evt-" + 16 hex digits

  internal::PayloadBlock* block_ = nullptr;
  const internal::RouteHandle* subscription_ = nullptr;
  std::string_view event_;  // points into the catalog, which the engine keeps alive
  uint32_t payload_offset_ = 0;
  uint32_t payload_len_ = 0;
  uint32_t id_offset_ = 0;  // eventId inside the block, when id_len_ > 0
  uint16_t id_len_ = 0;     // 0: generated_id_ holds the id
  uint8_t key_len_ = 0;     // keys are at most 255 bytes
  uint16_t prior_attempts_ = 0;
  uint32_t key_offset_ = 0;  // the key inside the block, when key_len_ > 0
  char generated_id_[kGeneratedIdLen] = {};
};

// Receives notifications from the engine's dispatch threads, in batches per profile.
// Called from one dispatch thread at a time per profile; different profiles may be delivered
// concurrently. The sink takes ownership of the notifications it is handed (move them out).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Deliver(std::string_view profile_id, std::span<Notification> batch) = 0;

  // How many more notifications the sink takes for the profile now. 0 parks the profile: its
  // notifications stay in the engine's bounded queue, so ingest sees back-pressure instead of the
  // sink buffering without bound, and the dispatcher asks again about a millisecond later.
  virtual size_t Capacity(std::string_view /*profile_id*/) { return SIZE_MAX; }
};

}  // namespace herald
