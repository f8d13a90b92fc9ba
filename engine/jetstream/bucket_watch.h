// Follows every key of a KV bucket from start to stop, on a thread of its own: each entry, in
// revision order, goes to `entry`, the bucket's initial values first. A watch that stays behind the
// bucket is made again (cnats can stall one for 20 s after a node loss: reference/jetstream.md §4),
// and so is one that fails; what it missed comes with the new watch's initial values. Not made
// again at each reconnect: destroying a watcher while cnats resets it is unsafe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "engine/common/mutex.h"
#include "engine/jetstream/nats_client.h"

namespace herald::jetstream {

class BucketWatch {
 public:
  // Starts watching; `kv` is the bound bucket and must outlive the watch. `e` is destroyed after
  // the call.
  BucketWatch(NatsClient& client, kvStore* kv, std::string bucket,
              std::function<void(kvEntry* e)> entry);
  ~BucketWatch() { Stop(); }
  BucketWatch(const BucketWatch&) = delete;
  BucketWatch& operator=(const BucketWatch&) = delete;

  // Returns once the first watch delivered the bucket's initial values; Unavailable when that
  // takes longer than `wait`.
  absl::Status WaitForInitialValues(std::chrono::milliseconds wait);
  // `entry` is not called after it returns.
  void Stop();
  // How far behind the bucket the watch is (its last revision − the highest one delivered; 0
  // when caught up or not known).
  uint64_t lag() const;
  uint64_t restarts() const { return restarts_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // Every 250 ms: how far the bucket is ahead. A watch that stays behind without moving across
  // two checks stalled. Its own thread, since the stream info call can block for seconds during
  // an election.
  void Check();
  void Log(std::string_view line) const;

  NatsClient& client_;
  kvStore* const kv_;
  const std::string bucket_;
  const std::string stream_;  // the bucket's
  const std::function<void(kvEntry* e)> entry_;
  Mutex initial_mu_;
  CondVar initial_cv_;
  bool initial_done_ HERALD_GUARDED_BY(initial_mu_) = false;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> watched_{0};      // the highest revision delivered
  std::atomic<uint64_t> stream_last_{0};  // the bucket's last revision, checked every 250 ms
  std::atomic<bool> rewatch_{false};      // the checker found the watch stalled
  std::atomic<uint64_t> restarts_{0};
  std::thread thread_;   // Run
  std::thread checker_;  // Check
};

}  // namespace herald::jetstream
