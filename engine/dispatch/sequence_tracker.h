// Delivery progress of one profile against a durable log in front of the engine: the notifications
// still outstanding (queued, in delivery, awaiting a retry), counted by the log position
// (sequence) of the input they came from. They complete out of order (windows, retries), so the
// tracker keeps a count per position and reports the oldest one still held: everything before it
// is done for this profile, and a restart need not send it again.
//
// A generation guards against stale completions: deleting a profile resets its tracker, and
// notifications made before then no longer count. Thread-safe; no allocation in steady state.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "engine/common/mutex.h"

namespace herald::dispatch {

class SequenceTracker {
 public:
  static constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();

  void Add(uint64_t seq, uint32_t generation);
  // Ignores a position it does not hold (a stale generation, or already settled).
  void Settle(uint64_t seq, uint32_t generation);
  // The oldest position with a notification outstanding; kNone when there is none.
  uint64_t Oldest() const;
  uint64_t outstanding() const;
  // Appends the distinct positions outstanding, ascending, up to `max` of them; false when there
  // were more.
  bool List(std::vector<uint64_t>* out, size_t max) const;
  // Forgets the positions before `before` (their records left the log: retention); settling
  // one of them later is ignored.
  void Forget(uint64_t before);
  // Forgets everything; notifications of earlier generations no longer count.
  void Reset();
  uint32_t generation() const;

 private:
  struct Entry {
    uint64_t seq;
    uint32_t count;
  };
  std::vector<Entry>::iterator Find(uint64_t seq) HERALD_REQUIRES(mu_);

  mutable Mutex mu_;
  // Ascending by seq from head_; entries before head_ are spent. Settled entries behind the
  // oldest held one stay (count 0) until the head passes them.
  std::vector<Entry> entries_ HERALD_GUARDED_BY(mu_);
  size_t head_ HERALD_GUARDED_BY(mu_) = 0;
  uint64_t outstanding_ HERALD_GUARDED_BY(mu_) = 0;
  uint32_t generation_ HERALD_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::dispatch
