#include "engine/dispatch/dispatcher.h"

#include <chrono>
#include <span>

namespace herald::dispatch {

Dispatcher::Dispatcher(Sink* sink, int threads) : sink_(sink) {
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Run(); });
}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Stop() {
  stop_.store(true);
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Dispatcher::Run() {
  std::vector<Notification> batch(kBatch);
  while (!stop_.load(std::memory_order_relaxed)) {
    ProfileQueue* queue = nullptr;
    if (!ready_.wait_dequeue_timed(queue, std::chrono::milliseconds(50))) continue;
    do {
      size_t n;
      while ((n = queue->DequeueBulk(batch.data(), kBatch)) > 0) {
        sink_->Deliver(queue->profile_id(), std::span<Notification>(batch.data(), n));
        for (size_t i = 0; i < n; ++i) batch[i].Reset();
      }
    } while (queue->Unschedule());
  }
}

}  // namespace herald::dispatch
