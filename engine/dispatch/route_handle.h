// What a Notification keeps of the subscription that routed it: the names it reports, its
// profile's queue (to settle against), and the reference count that keeps all that alive while
// the notification waits. The index's CompiledSubscription is one; dispatch needs nothing else of
// it, so dispatch does not depend on the index.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace herald::dispatch {
class ProfileQueue;
}

namespace herald::internal {

struct RouteHandle {
  RouteHandle() = default;
  RouteHandle(const RouteHandle&) = delete;
  RouteHandle& operator=(const RouteHandle&) = delete;
  virtual ~RouteHandle() = default;

  // Queued notifications count here from other threads; a line of its own keeps that traffic
  // off the fields a router reads while matching.
  alignas(64) mutable std::atomic<uint32_t> refs{1};
  std::string subscription_id;
  std::string profile_id;
  std::string channel_name;
  dispatch::ProfileQueue* queue = nullptr;  // queues live as long as the engine
  uint32_t queue_generation = 0;            // the queue's tracker generation when made
};

inline void Ref(const RouteHandle* h) { h->refs.fetch_add(1, std::memory_order_relaxed); }
// (Unref is declared in herald/sink.h.)

}  // namespace herald::internal
