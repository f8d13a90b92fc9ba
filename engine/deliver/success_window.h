// Requests and successes over a sliding window (the operations API's successRate5m): counts in
// slots of `slot_ms`, summed over the slots the window covers. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

namespace herald::deliver {

class SuccessWindow {
 public:
  static constexpr int kSlots = 30;
  static constexpr int64_t kSlotMs = 10'000;  // 30 × 10 s = 5 min

  void Record(int64_t now_ms, bool succeeded) {
    Slot& s = slots_[Index(now_ms)];
    if (s.number != now_ms / kSlotMs) s = {now_ms / kSlotMs, 0, 0};
    ++s.requests;
    if (succeeded) ++s.succeeded;
  }
  // {requests, succeeded} over the window ending now.
  std::pair<uint64_t, uint64_t> Sum(int64_t now_ms) const {
    const int64_t current = now_ms / kSlotMs;
    uint64_t requests = 0, succeeded = 0;
    for (const Slot& s : slots_) {
      if (s.number > current - kSlots && s.number <= current) {
        requests += s.requests;
        succeeded += s.succeeded;
      }
    }
    return {requests, succeeded};
  }

 private:
  struct Slot {
    int64_t number = -1;
    uint64_t requests = 0;
    uint64_t succeeded = 0;
  };
  static size_t Index(int64_t now_ms) { return static_cast<size_t>((now_ms / kSlotMs) % kSlots); }
  std::array<Slot, kSlots> slots_{};
};

}  // namespace herald::deliver
