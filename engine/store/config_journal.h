// The embedded ConfigStore (DESIGN §7): the config persists in data_dir as an append-only
// journal of CRC-framed lines, one per committed change (so a change of several entries is
// durable whole or not at all), fdatasynced before the change is acknowledged:
//   {"v":1,"changes":[{"rev":N,"created":C,"kind":"profile","id":"…","value":"<record>"}, …]}
// with "deleted":true instead of a value for a delete; values are storage records
// (engine/store/config_records.h). At open, the snapshot and then the journal are read; a torn or
// corrupt line ends the journal there, is reported and cut off (what came before it is kept);
// then the state is compacted into a new snapshot (write-new, fsync, rename, fsync the directory)
// and the journal restarts empty.
//
// Files written by releases before versioned records (lines {"op","kind","value"} holding the
// management API's JSON) are read and migrated: the compaction at open rewrites them as
// versioned records.
//
// Files are created 0600: they hold webhook secrets. Thread-safe; watchers are called with the
// journal's lock held, so they must not call back into it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/common/append_file.h"
#include "engine/common/mutex.h"
#include "engine/store/config_store.h"

namespace herald::store {

class ConfigJournal final : public ConfigStore {
 public:
  struct Stats {
    size_t replayed = 0;         // lines read at open
    size_t migrated = 0;         // of those, lines in the format before versioned records
    size_t truncated_bytes = 0;  // bytes of a torn or corrupt tail cut off at open
  };

  // Creates `dir` if needed, reads its state, compacts, and opens the journal.
  static absl::StatusOr<std::unique_ptr<ConfigJournal>> Open(
      const std::string& dir, std::function<void(std::string_view)> log = {},
      SyncFn sync = nullptr);
  ~ConfigJournal() override;

  absl::StatusOr<uint64_t> Commit(std::span<const ConfigWrite> writes) override;
  std::vector<ConfigEntry> List() const override;
  std::optional<ConfigEntry> Get(ConfigKind kind, std::string_view id) const override;
  absl::Status Watch(uint64_t from_revision, Watcher fn) override;
  uint64_t revision() const override;

  // Rewrites the snapshot from the state and empties the journal.
  absl::Status Compact();
  absl::Status Close() override { return Compact(); }

  const Stats& stats() const { return stats_; }

 private:
  ConfigJournal(std::string dir, std::function<void(std::string_view)> log, SyncFn sync);
  absl::Status Replay(const std::string& path, bool truncate_tail) HERALD_REQUIRES(mu_);
  bool ReadLine(std::string_view line) HERALD_REQUIRES(mu_);  // false: not a record
  void Apply(const ConfigEntry& change) HERALD_REQUIRES(mu_);
  absl::Status CompactLocked() HERALD_REQUIRES(mu_);

  using Key = std::pair<ConfigKind, std::string>;
  const std::string dir_;
  const std::function<void(std::string_view)> log_;
  const SyncFn sync_;
  mutable Mutex mu_;
  AppendFile file_ HERALD_GUARDED_BY(mu_);  // the journal
  // Deletes are kept as tombstones until the next open.
  std::map<Key, ConfigEntry> entries_ HERALD_GUARDED_BY(mu_);
  uint64_t revision_ HERALD_GUARDED_BY(mu_) = 0;
  // The revision at open: the changes before it are not known one by one.
  uint64_t opened_at_ HERALD_GUARDED_BY(mu_) = 0;
  std::vector<Watcher> watchers_ HERALD_GUARDED_BY(mu_);
  Stats stats_;  // written by Open alone
};

}  // namespace herald::store
