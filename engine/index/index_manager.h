// Keeps the published IndexState current. Control-plane writes Commit() changes (cheap: a log
// append); a publisher thread turns the changes since the base snapshot into a small overlay and
// publishes base + overlay atomically within `publish_interval`; a builder thread folds the
// overlay into a new snapshot when it grows, or after the index has been quiet for a while.
// Routers call Load() (or the cached Pin) per batch and never take a lock the writers hold long.
//
// Threads: any thread may Commit()/Load()/WaitPublished(); two internal threads.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "engine/common/mutex.h"
#include "engine/index/snapshot.h"

namespace herald::index {

class IndexManager {
 public:
  struct Options {
    std::chrono::milliseconds publish_interval{5};
    // Fold when the overlay holds this many changes (or base_size / 16, whichever is larger).
    size_t fold_min_changes = 1024;
    // Beyond this many pending changes, overlays are not built (bulk loads): the next snapshot
    // publishes them all at once.
    size_t max_overlay_changes = 65536;
    // Fold a non-empty overlay after this long without changes.
    std::chrono::milliseconds idle_fold_after{1000};
    std::function<void(std::string_view)> log;
  };

  IndexManager(std::shared_ptr<const Catalog> catalog, Options options);
  ~IndexManager();

  // Records one change; `before` empty = create, `after` empty = delete. Returns its sequence.
  uint64_t Commit(SubRef before, SubRef after);

  // Routers call this only when published_version() moved, so the lock is rarely taken.
  std::shared_ptr<const IndexState> Load() const {
    MutexLock lock(state_mu_);
    return state_;
  }
  // Changes whenever a new state is published; routers compare it to skip Load().
  uint64_t published_version() const { return published_.load(std::memory_order_acquire); }

  // Blocks until every change with sequence <= seq is visible.
  void WaitPublished(uint64_t seq);
  uint64_t last_committed() const;

  uint64_t snapshot_builds() const { return builds_.load(std::memory_order_relaxed); }

 private:
  void PublisherLoop();
  void BuilderLoop();
  void PublishLocked() HERALD_REQUIRES(mu_);

  const std::shared_ptr<const Catalog> catalog_;
  const Options options_;

  // herald::Mutex (std::mutex) rather than absl::Mutex: Debian's Abseil is not built with
  // ThreadSanitizer, which then cannot see absl::Mutex's ordering; pthread-based locks it sees.
  mutable Mutex mu_;
  CondVar changed_;  // dirty_, build_requested_, published_seq_ or stop_ moved
  absl::flat_hash_map<uint64_t, SubRef> live_ HERALD_GUARDED_BY(mu_);  // by uid
  std::deque<Overlay::Change> tail_ HERALD_GUARDED_BY(mu_);            // seq > base_->version()
  std::shared_ptr<const Snapshot> base_ HERALD_GUARDED_BY(mu_);
  uint64_t next_seq_ HERALD_GUARDED_BY(mu_) = 1;
  uint64_t published_seq_ HERALD_GUARDED_BY(mu_) = 0;
  bool dirty_ HERALD_GUARDED_BY(mu_) = false;  // something to publish
  bool build_requested_ HERALD_GUARDED_BY(mu_) = false;
  bool building_ HERALD_GUARDED_BY(mu_) = false;
  bool stop_ HERALD_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point last_change_ HERALD_GUARDED_BY(mu_);

  // A plain mutex rather than std::atomic<std::shared_ptr>, whose libstdc++ lock ThreadSanitizer
  // does not understand.
  mutable Mutex state_mu_;
  std::shared_ptr<const IndexState> state_ HERALD_GUARDED_BY(state_mu_);
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> builds_{0};
  std::thread publisher_;
  std::thread builder_;
};

}  // namespace herald::index
