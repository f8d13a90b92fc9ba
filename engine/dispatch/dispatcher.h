// Sink mode: dispatch threads drain profile queues that have work into the embedder's Sink, in
// batches. A queue is scheduled once when it goes from idle to busy, so an idle engine costs
// nothing and a busy profile is drained by one thread at a time (per-profile order is kept).
//
// Owns its threads; Stop() (or the destructor) drains nothing further and joins them.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#include "concurrentqueue/blockingconcurrentqueue.h"
#include "engine/dispatch/profile_queue.h"
#include "herald/sink.h"

namespace herald::dispatch {

class Dispatcher final : public ReadyListener {
 public:
  static constexpr size_t kBatch = 256;

  Dispatcher(Sink* sink, int threads);
  ~Dispatcher() override;

  void OnReady(ProfileQueue* queue) override { ready_.enqueue(queue); }
  void Stop();

 private:
  void Run();

  Sink* sink_;
  std::atomic<bool> stop_{false};
  moodycamel::BlockingConcurrentQueue<ProfileQueue*> ready_;
  std::vector<std::thread> threads_;
};

}  // namespace herald::dispatch
