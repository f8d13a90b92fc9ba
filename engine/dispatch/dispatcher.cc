#include "engine/dispatch/dispatcher.h"

#include <algorithm>
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

bool Dispatcher::Drain(ProfileQueue* queue, std::vector<Notification>& batch) {
  do {
    for (;;) {
      const size_t room = std::min(sink_->Capacity(queue->profile_id()), kBatch);
      if (room == 0) return false;
      const size_t n = queue->DequeueBulk(batch.data(), room);
      if (n == 0) break;
      sink_->Deliver(queue->profile_id(), std::span<Notification>(batch.data(), n));
      for (size_t i = 0; i < n; ++i) batch[i].Reset();
    }
  } while (queue->Unschedule());
  return true;
}

void Dispatcher::Run() {
  std::vector<Notification> batch(kBatch);
  std::vector<ProfileQueue*> parked;
  auto next_parked_retry = std::chrono::steady_clock::now();
  int idle_rounds = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    if (!parked.empty() && std::chrono::steady_clock::now() >= next_parked_retry) {
      std::erase_if(parked, [&](ProfileQueue* q) { return Drain(q, batch); });
      next_parked_retry = std::chrono::steady_clock::now() + kParkedRetry;
    }
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
    if (!Drain(queue, batch)) parked.push_back(queue);
  }
}

}  // namespace herald::dispatch
