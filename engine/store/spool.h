// The event spool (DESIGN §7): an append-only log of accepted events in data_dir/spool, in
// segments of about Options::segment_bytes. Each record is framed as
//   [u32 length][u32 CRC-32 of seq and payload][u64 seq][payload]
// and numbered by a sequence that starts at 1 and continues across restarts. Durability per the
// daemon's setting:
//   kNone   — written to the OS before Append returns (survives a process crash);
//   kBatch  — the same, and fdatasynced by a background flusher every batch_interval;
//   kAlways — fdatasynced before Append returns; concurrent appenders share one fdatasync
//             (group commit).
// Open recovers: it scans the segments, cuts a torn or corrupt tail at the last good record and
// reports it, never skipping a good record. Thread-safe.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/common/append_file.h"
#include "engine/common/mutex.h"

namespace herald::store {

class Spool {
 public:
  enum class Durability { kNone, kBatch, kAlways };

  struct Options {
    std::string dir;  // the spool's own directory, e.g. data_dir + "/spool"
    Durability durability = Durability::kBatch;
    size_t segment_bytes = 64u << 20;
    std::chrono::milliseconds batch_interval{5};
    std::function<void(std::string_view)> log;
    SyncFn sync = nullptr;  // fdatasync, or a test's stand-in
  };

  struct Recovery {
    uint64_t first_seq = 0;  // oldest record kept
    uint64_t next_seq = 0;   // the next Append's first sequence number
    size_t segments = 0;
    size_t truncated_bytes = 0;  // cut from a torn or corrupt tail
  };

  static absl::StatusOr<std::unique_ptr<Spool>> Open(Options options);
  ~Spool();

  // Appends the records in order; returns the first one's sequence number. When it returns OK the
  // records are as durable as the setting promises; on an error none of them were accepted.
  absl::StatusOr<uint64_t> Append(std::span<const std::string_view> records);
  // Appends one record whose payload is `parts` concatenated; returns its sequence number.
  absl::StatusOr<uint64_t> AppendParts(std::span<const std::string_view> parts);
  // The same without waiting for the disk: returns once the record is written, and calls
  // `on_durable` when it is as durable as the setting promises — at once for none and batch; for
  // always, from the flusher thread after the fdatasync that covers it, which every record
  // written meanwhile shares (group commit across any number of callers). On an error,
  // `on_durable` is not called.
  absl::StatusOr<uint64_t> AppendParts(std::span<const std::string_view> parts,
                                       std::function<void(absl::Status)> on_durable);
  // Makes every record written so far durable, and returns once every callback waiting for
  // that has run.
  void Flush();

  // Calls fn(seq, payload) for every record with seq >= from, in order, until it returns false.
  absl::Status Read(uint64_t from, const std::function<bool(uint64_t, std::string_view)>& fn) const;

  // Removes whole segments whose records all come before `before` (every consumer is past them).
  absl::Status Retain(uint64_t before);

  struct SegmentInfo {
    uint64_t first_seq = 0;
    uint64_t end_seq = 0;  // the next segment's first (next_seq() for the newest)
    uint64_t bytes = 0;
    std::filesystem::file_time_type modified;  // its newest record's write
  };
  // The segments kept, oldest first.
  std::vector<SegmentInfo> SegmentList() const;

  uint64_t next_seq() const;
  // Every record below it is on disk (fdatasynced); next_seq() under durability none.
  uint64_t durable_seq() const;
  uint64_t first_seq() const;  // the oldest record kept (next_seq() when there is none)
  size_t segments() const;
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }  // fdatasyncs made
  const Recovery& recovery() const { return recovery_; }

 private:
  explicit Spool(Options options) : options_(std::move(options)) {
    if (!options_.sync) options_.sync = &::fdatasync;
  }
  absl::Status Recover() HERALD_REQUIRES(mu_);
  absl::Status OpenSegment(uint64_t first_seq) HERALD_REQUIRES(mu_);
  // Appends `count` records that `frame` frames from sequence number `first` on.
  absl::StatusOr<uint64_t> Write(size_t count,
                                 const std::function<void(std::string&, uint64_t first)>& frame);
  // The write alone, with mu_ held.
  absl::StatusOr<uint64_t> WriteLocked(
      size_t count, const std::function<void(std::string&, uint64_t first)>& frame)
      HERALD_REQUIRES(mu_);
  absl::Status SyncUpTo(uint64_t seq);
  absl::Status SyncFailed() const;
  void Flusher();

  Options options_;  // fixed after the constructor
  Recovery recovery_;
  mutable Mutex mu_;                                                 // appends, segment list
  std::map<uint64_t, std::string> segments_ HERALD_GUARDED_BY(mu_);  // first seq -> path
  AppendFile file_ HERALD_GUARDED_BY(mu_);                           // the newest segment
  uint64_t next_seq_ HERALD_GUARDED_BY(mu_) = 0;
  std::string frames_ HERALD_GUARDED_BY(mu_);  // the records being written, framed

  Mutex sync_mu_;  // one fdatasync at a time; waiters find their records synced
  std::atomic<uint64_t> synced_seq_{0};  // every record below it is on disk
  std::atomic<uint64_t> written_seq_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<bool> sync_failed_{false};  // an fdatasync failed: refuse appends from then on

  Mutex flusher_mu_;
  CondVar flusher_cv_;
  bool stop_ HERALD_GUARDED_BY(flusher_mu_) = false;
  // kAlways: callbacks of AppendParts waiting for their record's fdatasync.
  std::vector<std::function<void(absl::Status)>> waiters_ HERALD_GUARDED_BY(flusher_mu_);
  // Batches of waiters being synced and answered right now.
  int syncing_waiters_ HERALD_GUARDED_BY(flusher_mu_) = 0;
  CondVar waiters_done_cv_;
  std::thread flusher_;
  // Syncs and runs the waiters it covers (unlocks flusher_mu_ while syncing).
  void SyncWaiters() HERALD_REQUIRES(flusher_mu_);
};

}  // namespace herald::store
