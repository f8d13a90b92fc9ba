// Sink mode: dispatch threads drain profile queues that have work into the embedder's Sink, in
// batches. A queue is scheduled once when it goes from idle to busy, and a busy profile is drained
// by one thread at a time (per-profile order is kept). Scheduling never makes a system call on
// the router's path: an idle dispatch thread backs off (spin, yield, then sleeps of at most
// kMaxIdleSleep) instead of waiting to be woken, which bounds the added latency when idle.
// A profile whose sink reports no capacity is parked on the thread that held it and offered again
// every kParkedRetry; its notifications wait in its bounded queue meanwhile.
//
// Owns its threads; Stop() (or the destructor) drains nothing further and joins them.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "concurrentqueue/concurrentqueue.h"
#include "engine/dispatch/profile_queue.h"
#include "herald/sink.h"

namespace herald::dispatch {

class Dispatcher final : public ReadyListener {
 public:
  static constexpr size_t kBatch = 256;
  static constexpr std::chrono::microseconds kMaxIdleSleep{100};
  static constexpr std::chrono::microseconds kParkedRetry{1000};

  Dispatcher(Sink* sink, int threads);
  ~Dispatcher() override;

  void OnReady(ProfileQueue* queue) override { ready_.enqueue(queue); }
  void Stop();

 private:
  void Run();
  // Drains `queue` into the sink; false when the sink has no room and the queue stays scheduled.
  bool Drain(ProfileQueue* queue, std::vector<Notification>& batch);

  Sink* sink_;
  std::atomic<bool> stop_{false};
  moodycamel::ConcurrentQueue<ProfileQueue*> ready_;
  std::vector<std::thread> threads_;
};

}  // namespace herald::dispatch
