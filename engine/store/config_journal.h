// The embedded config store (DESIGN §7): security settings, profiles and subscriptions persist
// in data_dir as an append-only journal of JSON records, each line prefixed by its CRC-32, fsynced
// before the change is acknowledged. At open, the snapshot and then the journal are replayed into
// the engine; a torn or corrupt record ends the replay there, is reported and cut off (what came
// before it is kept); then the state is compacted into a new snapshot (write-new, fsync, rename,
// fsync the directory) and the journal restarts empty.
//
// Files are created 0600: they hold webhook secrets. Thread-safe.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/common/append_file.h"
#include "herald/engine.h"

namespace herald::store {

class ConfigJournal {
 public:
  enum class Kind { kSecurity, kProfile, kSubscription };

  struct Stats {
    size_t replayed = 0;         // records applied at open
    size_t truncated_bytes = 0;  // bytes of a torn or corrupt tail cut off at open
  };

  // Creates `dir` if needed, loads its state into `engine`, compacts, and opens the journal.
  static absl::StatusOr<std::unique_ptr<ConfigJournal>> Open(
      const std::string& dir, Engine& engine, std::function<void(std::string_view)> log = {});
  ~ConfigJournal();

  // Durable once these return OK (the record is written and fsynced).
  absl::Status Put(const SecuritySetting& security);
  absl::Status Put(const NotificationProfile& profile);
  absl::Status Put(const Subscription& subscription);
  absl::Status Delete(Kind kind, std::string_view id);
  // Many subscriptions with one write and one fsync (bulk import).
  absl::Status PutMany(const std::vector<Subscription>& subscriptions);
  // An inline create — security setting, profile, subscription (each optional) — as one write:
  // all of it is durable, or none.
  absl::Status PutTogether(const SecuritySetting* security, const NotificationProfile* profile,
                           const Subscription* subscription);

  // Rewrites the snapshot from the engine's state and empties the journal.
  absl::Status Compact();

  const Stats& stats() const { return stats_; }

 private:
  ConfigJournal(std::string dir, Engine& engine, std::function<void(std::string_view)> log);
  absl::Status Replay(const std::string& path, bool truncate_tail);
  absl::Status Append(const std::string& record);
  absl::Status CompactLocked();

  const std::string dir_;
  Engine& engine_;
  std::function<void(std::string_view)> log_;
  std::mutex mu_;
  AppendFile file_;  // the journal
  Stats stats_;
};

}  // namespace herald::store
