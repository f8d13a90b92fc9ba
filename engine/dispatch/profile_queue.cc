#include "engine/dispatch/profile_queue.h"

#include "absl/strings/str_cat.h"
#include "engine/common/strings.h"

namespace herald::dispatch {

ProfileQueue::ProfileQueue(std::string profile_id, size_t max_count, size_t max_bytes,
                           std::function<void(std::string_view)> log)
    : profile_id_(std::move(profile_id)),
      max_count_(static_cast<int64_t>(max_count)),
      max_bytes_(static_cast<int64_t>(max_bytes)),
      log_(std::move(log)) {}

bool ProfileQueue::TryEnqueue(Notification&& notification) {
  const int64_t size = notification.size_bytes();
  // Reserve first, so concurrent producers can never overshoot the bounds together.
  const int64_t count = count_.fetch_add(1, std::memory_order_seq_cst);
  const int64_t bytes = bytes_.fetch_add(size, std::memory_order_relaxed);
  if (count >= max_count_ || (bytes + size > max_bytes_ && count > 0)) {
    count_.fetch_sub(1, std::memory_order_relaxed);
    bytes_.fetch_sub(size, std::memory_order_relaxed);
    back_pressured_.fetch_add(1, std::memory_order_relaxed);
    if (!full_.exchange(true, std::memory_order_relaxed) && log_) {
      log_(Cat("profile ", profile_id_, ": queue full, applying back-pressure"));
    }
    return false;
  }
  if (fifo_.load(std::memory_order_acquire)) {
    MutexLock lock(ordered_mu_);
    ordered_.push_back(std::move(notification));
    ordered_size_.fetch_add(1, std::memory_order_release);
  } else if (!queue_.enqueue(std::move(notification))) {  // only when memory runs out
    count_.fetch_sub(1, std::memory_order_relaxed);
    bytes_.fetch_sub(size, std::memory_order_relaxed);
    back_pressured_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (listener_ && !scheduled_.load(std::memory_order_seq_cst) &&
      !scheduled_.exchange(true, std::memory_order_seq_cst)) {
    listener_->OnReady(this);
  }
  return true;
}

size_t ProfileQueue::DequeueBulk(Notification* out, size_t max) {
  size_t n = queue_.try_dequeue_bulk(out, max);
  // The lock only when the FIFO holds something (one missed now is taken by the next drain:
  // count_ still says it is there).
  if (n < max && ordered_size_.load(std::memory_order_acquire) > 0) {
    MutexLock lock(ordered_mu_);
    while (n < max && !ordered_.empty()) {
      out[n++] = std::move(ordered_.front());
      ordered_.pop_front();
      ordered_size_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  if (n == 0) return 0;
  int64_t bytes = 0;
  for (size_t i = 0; i < n; ++i) bytes += out[i].size_bytes();
  const int64_t before = count_.fetch_sub(static_cast<int64_t>(n), std::memory_order_seq_cst);
  bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  if (full_.load(std::memory_order_relaxed) && before - static_cast<int64_t>(n) <= max_count_ / 2) {
    if (full_.exchange(false, std::memory_order_relaxed) && log_) {
      log_(Cat("profile ", profile_id_, ": queue drained, back-pressure lifted"));
    }
  }
  return n;
}

bool ProfileQueue::Unschedule() {
  scheduled_.store(false, std::memory_order_seq_cst);
  if (count_.load(std::memory_order_seq_cst) <= 0) return false;
  // Work arrived (or is arriving): take the schedule back unless a producer already re-queued us.
  return !scheduled_.exchange(true, std::memory_order_seq_cst);
}

}  // namespace herald::dispatch
