// Dead letters and disabled profiles, kept in data_dir/dead-letters.log: CRC-framed JSON records
// (add, remove, disable, enable), each written and fdatasynced before the call returns. The
// payloads stay on disk: memory holds an index (a letter's fields and where its record is), and
// listing or replaying reads the payloads back outside the lock, so burying workers never wait
// behind a listing. Writes are serialized, and the index lock is never held across a write or an
// fdatasync: listing, replaying and Contains() never wait for the disk. Opening reads the file,
// cuts a torn tail and appends after it; it rewrites the file only when most of it is removed
// letters, and a rewrite that fails (a full disk) is skipped, so heraldd starts anyway. Running,
// the file is rewritten once what it holds of removed letters passes both 64 MiB and the live
// letters' bytes: the store says so through `compaction_due`, and its owner calls CompactIfDue()
// on a thread where the rewrite blocks no one (writes wait for it; reads do not). Bounded by
// `max_bytes` and `max_age`: past either the oldest letters go, counted. Without a directory
// everything stays in memory. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/common/append_file.h"
#include "engine/common/mutex.h"
#include "herald/webhook_deliverer.h"

namespace herald::deliver {

// A dead letter as JSON: the API's shape ("id" a string), with the payload embedded as the JSON
// it is, or as a string (for the one-line records of the store).
std::string EncodeDeadLetter(const DeadLetter& letter, bool payload_as_json);
// What EncodeDeadLetter(…, payload_as_json=false) wrote; false when it is not that.
bool DecodeDeadLetter(std::string_view json, DeadLetter& letter);

// Where dead letters and disabled profiles are kept: data_dir's file (DeadLetterStore below), or
// a JetStream bucket every instance of a deployment shares (jetstream::KvDeadLetters). Ids are
// unique in the store and ascend with the time letters were added: lists are oldest first.
// Thread-safe.
class DeadLetters {
 public:
  struct Stats {
    uint64_t letters = 0;
    uint64_t bytes = 0;       // of the live letters' records
    uint64_t file_bytes = 0;  // of the file, removed letters included
    uint64_t dropped = 0;     // letters removed by max_bytes or max_age
  };
  virtual ~DeadLetters() = default;

  // Assigns ids and persists the letters. `replaces`, when given, runs parallel to `letters`:
  // replaces[i] is the replayed letter (0: none) that failed again as letters[i]; it leaves the
  // store with it, and so do the oldest letters the bounds no longer leave room for. A letter
  // whose replayed one was deleted meanwhile stays deleted: it is not written and keeps id 0.
  virtual absl::Status Add(std::vector<DeadLetter>& letters,
                           std::span<const uint64_t> replaces = {}) = 0;
  // A page of a profile's letters (every profile's when empty), oldest first. An error when the
  // payloads cannot be read back.
  virtual absl::StatusOr<DeadLetterPage> List(std::string_view profile_id, size_t page,
                                              size_t size) const = 0;
  // A replay of a profile's letters (those of `ids`, or all when empty), oldest first: copies of
  // those not being replayed already. They stay in the store (a crash loses none) until the
  // replay ends: Remove once delivered, Add(…, replaced) when they failed again, EndReplay when
  // it was abandoned (a stop).
  virtual absl::StatusOr<std::vector<DeadLetter>> BeginReplay(std::string_view profile_id,
                                                              const std::vector<uint64_t>& ids) = 0;
  virtual absl::Status Remove(const std::vector<uint64_t>& ids) = 0;
  virtual void EndReplay(const std::vector<uint64_t>& ids) = 0;
  // Whether letter `id` is still kept (a replayed one the user deleted meanwhile is not).
  virtual bool Contains(uint64_t id) const = 0;
  // Deletes a profile's letters (those of `ids`, or all when empty); returns how many went.
  virtual absl::StatusOr<size_t> Delete(std::string_view profile_id,
                                        const std::vector<uint64_t>& ids) = 0;
  // How many letters each profile has (those past max_age left out).
  virtual std::map<std::string, uint64_t> CountByProfile() const = 0;

  virtual absl::Status SetDisabled(std::string_view profile_id, bool disabled) = 0;
  virtual std::vector<std::string> disabled() const = 0;
  // Called (without the store's locks) when another instance disabled or enabled a profile; a
  // store no one else writes never calls it. Empty: no more calls, none running when it returns.
  virtual void OnDisabledElsewhere(const std::function<void(const std::string&, bool)>& /*fn*/) {}
  // Housekeeping the store asked for through its own means (a file rewrite); on a thread where
  // it blocks no one.
  virtual void CompactIfDue() {}
  virtual Stats stats() const = 0;
};

class DeadLetterStore final : public DeadLetters {
 public:
  struct Options {
    std::string dir;  // empty: in memory
    // Bytes of the live letters' records; past it the oldest go. 0: no bound.
    uint64_t max_bytes = 0;
    // Letters that failed longer ago than this go. 0: no bound.
    std::chrono::milliseconds max_age{0};
    std::function<void(std::string_view)> log;
    SyncFn sync = nullptr;            // fdatasync, or a test's stand-in
    std::function<int64_t()> now_ms;  // Unix time in ms; the system clock when empty
    // Running, the file is rewritten once it holds more than this (and more than the live
    // letters) of removed ones.
    uint64_t rewrite_after_bytes = 64ull << 20;
    // Called, with the store's locks held (post, do not call back), when a rewrite is due.
    std::function<void()> compaction_due;
  };

  static absl::StatusOr<std::unique_ptr<DeadLetterStore>> Open(Options options);
  static absl::StatusOr<std::unique_ptr<DeadLetterStore>> Open(
      const std::string& dir, std::function<void(std::string_view)> log = {},
      SyncFn sync = nullptr) {
    return Open(Options{.dir = dir, .log = std::move(log), .sync = sync});
  }
  ~DeadLetterStore() override;

  absl::Status Add(std::vector<DeadLetter>& letters,
                   std::span<const uint64_t> replaces = {}) override;
  absl::StatusOr<DeadLetterPage> List(std::string_view profile_id, size_t page,
                                      size_t size) const override;
  absl::StatusOr<std::vector<DeadLetter>> BeginReplay(std::string_view profile_id,
                                                      const std::vector<uint64_t>& ids) override;
  absl::Status Remove(const std::vector<uint64_t>& ids) override;
  void EndReplay(const std::vector<uint64_t>& ids) override;
  bool Contains(uint64_t id) const override;
  absl::StatusOr<size_t> Delete(std::string_view profile_id,
                                const std::vector<uint64_t>& ids) override;
  std::map<std::string, uint64_t> CountByProfile() const override;
  absl::Status SetDisabled(std::string_view profile_id, bool disabled) override;
  // Rewrites the file with the live records when removed ones outweigh them (see the top).
  void CompactIfDue() override;
  std::vector<std::string> disabled() const override;
  Stats stats() const override;

 private:
  // A letter as memory keeps it: its fields, and where its record is in the file (the payload is
  // read from there; in memory-only mode `letter.payload` holds it).
  struct Entry {
    DeadLetter letter;
    uint64_t offset = 0;
    uint32_t length = 0;  // of the framed record
  };
  struct ReadFd;

  explicit DeadLetterStore(Options options);
  absl::Status Append(const std::string& records) HERALD_REQUIRES(write_mu_);
  static std::string RemoveRecord(const std::vector<uint64_t>& ids);
  bool Apply(std::string_view record, uint64_t offset, uint32_t length) HERALD_REQUIRES(mu_);
  // The oldest letters past the bounds (with `adding` bytes about to come).
  std::vector<uint64_t> OverBounds(uint64_t adding, const std::vector<uint64_t>& leaving) const
      HERALD_REQUIRES(mu_);
  void Erase(uint64_t id) HERALD_REQUIRES(mu_);
  // Copies the payloads of `entries` from the file into their letters (outside mu_).
  static absl::Status LoadPayloads(const ReadFd* file, const std::string& path,
                                   std::vector<Entry>& entries);
  // Rewrites the file with the live records only.
  absl::Status Compact() HERALD_REQUIRES(write_mu_) HERALD_EXCLUDES(mu_);
  bool CompactionDue() const HERALD_REQUIRES(write_mu_, mu_);
  void CompactionMayBeDue() HERALD_REQUIRES(write_mu_, mu_);

  absl::Status OpenForAppend() HERALD_REQUIRES(write_mu_, mu_);
  int64_t Now() const;
  // Letters that failed before it are past max_age: not listed nor replayed, removed by the next
  // write (or open).
  int64_t OldestKept() const;

  const Options options_;
  const std::string path_;  // empty: in memory
  Mutex write_mu_;          // taken first: one write (or rewrite) at a time
  mutable Mutex mu_;        // the index: never held across I/O
  // Not open: in memory. Used under write_mu_; replaced under both.
  AppendFile file_ HERALD_GUARDED_BY(write_mu_);

  // The file for payload reads; kept by readers across rewrites.
  std::shared_ptr<ReadFd> read_ HERALD_GUARDED_BY(mu_);
  uint64_t next_id_ HERALD_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Entry> letters_ HERALD_GUARDED_BY(mu_);  // by id: oldest first
  std::set<uint64_t> replaying_ HERALD_GUARDED_BY(mu_);       // of letters_, those being replayed
  std::vector<std::string> disabled_ HERALD_GUARDED_BY(mu_);
  uint64_t live_bytes_ HERALD_GUARDED_BY(mu_) = 0;
  uint64_t file_bytes_ HERALD_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ HERALD_GUARDED_BY(mu_) = 0;
  // Rewrite once removed records pass it (and live).
  uint64_t compact_garbage_ HERALD_GUARDED_BY(mu_);
  int64_t last_drop_log_ms_ HERALD_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::deliver
