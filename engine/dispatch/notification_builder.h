// Builds Notifications on the router's hot path: two reference-count increments, no allocation.
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/dispatch/route_handle.h"
#include "engine/ingest/block_pool.h"
#include "herald/sink.h"

namespace herald {

class NotificationBuilder {
 public:
  // `payload`, `event_id` and `key` must lie inside `block`; an empty `event_id` means "use
  // `generated_id`", a number unique within the engine.
  static Notification Make(internal::PayloadBlock* block, const internal::RouteHandle* subscription,
                           std::string_view event, std::string_view payload,
                           std::string_view event_id, uint64_t generated_id,
                           std::string_view key = {}) {
    Notification n;
    internal::Ref(block);
    internal::Ref(subscription);
    n.block_ = block;
    n.subscription_ = subscription;
    n.event_ = event;
    n.payload_offset_ = static_cast<uint32_t>(payload.data() - block->data());
    n.payload_len_ = static_cast<uint32_t>(payload.size());
    if (!key.empty()) {
      n.key_offset_ = static_cast<uint32_t>(key.data() - block->data());
      n.key_len_ = static_cast<uint8_t>(key.size());
    }
    if (!event_id.empty()) {
      n.id_offset_ = static_cast<uint32_t>(event_id.data() - block->data());
      n.id_len_ = static_cast<uint16_t>(event_id.size());
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      n.generated_id_[0] = 'e';
      n.generated_id_[1] = 'v';
      n.generated_id_[2] = 't';
      n.generated_id_[3] = '-';
      for (int i = 0; i < 16; ++i)
        n.generated_id_[4 + i] = kHex[(generated_id >> (60 - 4 * i)) & 15];
    }
    return n;
  }
  static void SetPriorAttempts(Notification& n, uint16_t attempts) { n.prior_attempts_ = attempts; }
};

}  // namespace herald
