#include "engine/dispatch/sequence_tracker.h"

#include <algorithm>

namespace herald::dispatch {

std::vector<SequenceTracker::Entry>::iterator SequenceTracker::Find(uint64_t seq) {
  return std::lower_bound(entries_.begin() + static_cast<ptrdiff_t>(head_), entries_.end(), seq,
                          [](const Entry& e, uint64_t s) { return e.seq < s; });
}

void SequenceTracker::Add(uint64_t seq, uint32_t generation) {
  MutexLock lock(mu_);
  if (generation != generation_) return;
  ++outstanding_;
  // Positions arrive almost in order (routers run concurrently), so this is nearly always the
  // tail.
  if (head_ == entries_.size() || entries_.back().seq < seq) {
    entries_.push_back({seq, 1});
    return;
  }
  if (entries_.back().seq == seq) {
    ++entries_.back().count;
    return;
  }
  auto it = Find(seq);
  if (it != entries_.end() && it->seq == seq) {
    ++it->count;
  } else {
    entries_.insert(it, {seq, 1});
  }
}

void SequenceTracker::Settle(uint64_t seq, uint32_t generation) {
  MutexLock lock(mu_);
  if (generation != generation_) return;
  auto it = Find(seq);
  if (it == entries_.end() || it->seq != seq || it->count == 0) return;
  --it->count;
  --outstanding_;
  while (head_ < entries_.size() && entries_[head_].count == 0) ++head_;
  if (head_ == entries_.size()) {
    entries_.clear();  // keeps the capacity
    head_ = 0;
  } else if (head_ >= 1024 && head_ * 2 >= entries_.size()) {
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

uint64_t SequenceTracker::Oldest() const {
  MutexLock lock(mu_);
  return head_ < entries_.size() ? entries_[head_].seq : kNone;
}

bool SequenceTracker::List(std::vector<uint64_t>* out, size_t max) const {
  MutexLock lock(mu_);
  size_t listed = 0;
  for (size_t i = head_; i < entries_.size(); ++i) {
    if (entries_[i].count == 0) continue;
    if (listed++ == max) return false;
    out->push_back(entries_[i].seq);
  }
  return true;
}

uint64_t SequenceTracker::outstanding() const {
  MutexLock lock(mu_);
  return outstanding_;
}

void SequenceTracker::Forget(uint64_t before) {
  MutexLock lock(mu_);
  while (head_ < entries_.size() && entries_[head_].seq < before) {
    outstanding_ -= entries_[head_].count;
    ++head_;
  }
  while (head_ < entries_.size() && entries_[head_].count == 0) ++head_;
}

void SequenceTracker::Reset() {
  MutexLock lock(mu_);
  entries_.clear();
  head_ = 0;
  outstanding_ = 0;
  ++generation_;
}

uint32_t SequenceTracker::generation() const {
  MutexLock lock(mu_);
  return generation_;
}

}  // namespace herald::dispatch
