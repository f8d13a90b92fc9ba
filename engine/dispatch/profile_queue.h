// One bounded queue per notification profile (subscriber), not per subscription: a moodycamel
// queue costs ~1.5 KB, and the profile is the unit of delivery. Bounded by count and by bytes;
// a full queue refuses the notification — the router counts it as back-pressure and reports it to
// the caller — never drops silently. The slow-consumer signal fires once per transition.
//
// Any number of router threads enqueue; consumers (Poll or a dispatch thread) dequeue in bulk.
// The moodycamel queue is FIFO per producer thread only; a profile with per-key ordering needs
// one order for all of them (what one client sent after another's 202 must come out after it),
// so its notifications go through a locked FIFO instead.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "concurrentqueue/concurrentqueue.h"
#include "engine/common/mutex.h"
#include "engine/dispatch/sequence_tracker.h"
#include "herald/sink.h"

namespace herald::dispatch {

class ProfileQueue;

// Told when a queue goes from idle to holding work (sink mode).
class ReadyListener {
 public:
  virtual ~ReadyListener() = default;
  virtual void OnReady(ProfileQueue* queue) = 0;
};

class ProfileQueue {
 public:
  ProfileQueue(std::string profile_id, size_t max_count, size_t max_bytes,
               std::function<void(std::string_view)> log = {});

  const std::string& profile_id() const { return profile_id_; }

  // False when the queue is full (the notification is dropped by the caller's choice, and counted).
  bool TryEnqueue(Notification&& notification);
  // Moves up to `max` notifications into `out`.
  size_t DequeueBulk(Notification* out, size_t max);

  void set_listener(ReadyListener* listener) { listener_ = listener; }
  // One order for every producer (the profile orders by key). What was queued before a switch
  // to it comes out first.
  void set_fifo(bool fifo) { fifo_.store(fifo, std::memory_order_release); }
  bool fifo() const { return fifo_.load(std::memory_order_acquire); }
  // Dispatch protocol: after draining, Unschedule() returns true when more work arrived meanwhile
  // and the caller must keep draining.
  bool Unschedule();

  uint64_t depth() const {
    const int64_t c = count_.load(std::memory_order_relaxed);
    return c > 0 ? static_cast<uint64_t>(c) : 0;
  }
  uint64_t bytes() const {
    const int64_t b = bytes_.load(std::memory_order_relaxed);
    return b > 0 ? static_cast<uint64_t>(b) : 0;
  }
  uint64_t back_pressured() const { return back_pressured_.load(std::memory_order_relaxed); }

  // Delivery progress against a durable log (notifications made from inputs with a sequence).
  SequenceTracker& tracker() { return tracker_; }
  const SequenceTracker& tracker() const { return tracker_; }
  // Replay after a restart (Engine::SetReplayPlan): whether the input at `seq` still owes this
  // profile its notifications. Set before the replay, never while inputs are routed.
  bool ReplayWants(uint64_t seq) const {
    if (seq >= replay_upto_) return true;
    if (seq < replay_floor_) return false;
    return std::binary_search(replay_only_.begin(), replay_only_.end(), seq);
  }
  void SetReplayPlan(uint64_t floor, uint64_t upto, std::vector<uint64_t> only) {
    replay_floor_ = floor;
    replay_upto_ = std::max(floor, upto);
    replay_only_ = std::move(only);
  }

 private:
  const std::string profile_id_;
  const int64_t max_count_;
  const int64_t max_bytes_;
  std::function<void(std::string_view)> log_;
  ReadyListener* listener_ = nullptr;
  moodycamel::ConcurrentQueue<Notification> queue_;
  std::atomic<bool> fifo_{false};
  Mutex ordered_mu_;
  std::deque<Notification> ordered_ HERALD_GUARDED_BY(ordered_mu_);
  std::atomic<size_t> ordered_size_{0};
  alignas(64) std::atomic<int64_t> count_{0};
  std::atomic<int64_t> bytes_{0};
  alignas(64) std::atomic<bool> scheduled_{false};
  std::atomic<bool> full_{false};
  alignas(64) std::atomic<uint64_t> back_pressured_{0};
  uint64_t replay_floor_ = 0;
  uint64_t replay_upto_ = 0;
  std::vector<uint64_t> replay_only_;  // ascending
  SequenceTracker tracker_;
};

}  // namespace herald::dispatch
