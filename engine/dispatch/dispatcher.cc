#include "engine/dispatch/dispatcher.h"

#include <chrono>
#include <span>

namespace herald::dispatch {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

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
  int idle_rounds = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    ProfileQueue* queue = nullptr;
    if (!ready_.try_dequeue(queue)) {
      ++idle_rounds;
      if (idle_rounds < 64) {
        CpuRelax();
      } else if (idle_rounds < 128) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(kMaxIdleSleep);
      }
      continue;
    }
    idle_rounds = 0;
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
