// Dead letters and disabled profiles, kept in data_dir/dead-letters.log: CRC-framed JSON records
// (add, remove, disable, enable), each written and fdatasynced before the call returns, replayed
// at open (a torn tail is cut off and reported) and compacted to the live set. Without a
// directory everything stays in memory. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/common/append_file.h"
#include "herald/webhook_deliverer.h"

namespace herald::deliver {

// A dead letter as JSON: the API's shape ("id" a string), with the payload embedded as the JSON
// it is, or as a string (for the one-line records of the store).
std::string EncodeDeadLetter(const DeadLetter& letter, bool payload_as_json);

class DeadLetterStore {
 public:
  // `sync`: fdatasync, or a test's stand-in.
  static absl::StatusOr<std::unique_ptr<DeadLetterStore>> Open(
      const std::string& dir, std::function<void(std::string_view)> log = {},
      SyncFn sync = nullptr);
  ~DeadLetterStore();

  // Assigns ids and persists the letters, all or none; the letters of `replaced` (replayed ones
  // that failed again) leave the store in the same write.
  absl::Status Add(std::vector<DeadLetter>& letters, const std::vector<uint64_t>& replaced = {});
  DeadLetterPage List(std::string_view profile_id, size_t page, size_t size) const;
  // A replay of a profile's letters (those of `ids`, or all when empty), oldest first: copies of
  // those not being replayed already. They stay in the store (a crash loses none) until the
  // replay ends: Remove once delivered, Add(…, replaced) when they failed again, EndReplay when
  // it was abandoned (a stop).
  std::vector<DeadLetter> BeginReplay(std::string_view profile_id,
                                      const std::vector<uint64_t>& ids);
  absl::Status Remove(const std::vector<uint64_t>& ids);
  void EndReplay(const std::vector<uint64_t>& ids);

  absl::Status SetDisabled(std::string_view profile_id, bool disabled);
  std::vector<std::string> disabled() const;

 private:
  explicit DeadLetterStore(std::string path) : path_(std::move(path)) {}
  absl::Status Append(const std::string& records);
  static std::string RemoveRecord(const std::vector<uint64_t>& ids);
  bool Apply(std::string_view record);

  const std::string path_;  // empty: in memory
  mutable std::mutex mu_;
  AppendFile file_;  // not open: in memory
  uint64_t next_id_ = 1;
  std::map<uint64_t, DeadLetter> letters_;  // by id: oldest first
  std::set<uint64_t> replaying_;            // of letters_, those a replay is delivering
  std::vector<std::string> disabled_;
};

}  // namespace herald::deliver
