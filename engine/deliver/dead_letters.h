// Dead letters and disabled profiles, kept in data_dir/dead-letters.log: CRC-framed JSON records
// (add, remove, disable, enable), each written and fdatasynced before the call returns, replayed
// at open (a torn tail is cut off and reported) and compacted to the live set. Without a
// directory everything stays in memory. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "herald/webhook_deliverer.h"

namespace herald::deliver {

// A dead letter as JSON: the API's shape ("id" a string), with the payload embedded as the JSON
// it is, or as a string (for the one-line records of the store).
std::string EncodeDeadLetter(const DeadLetter& letter, bool payload_as_json);

class DeadLetterStore {
 public:
  static absl::StatusOr<std::unique_ptr<DeadLetterStore>> Open(
      const std::string& dir, std::function<void(std::string_view)> log = {});
  ~DeadLetterStore();

  // Assigns ids and persists the letters, all or none.
  absl::Status Add(std::vector<DeadLetter>& letters);
  DeadLetterPage List(std::string_view profile_id, size_t page, size_t size) const;
  // Removes and returns a profile's letters (those of `ids`, or all when empty), oldest first.
  absl::StatusOr<std::vector<DeadLetter>> Take(std::string_view profile_id,
                                               const std::vector<uint64_t>& ids);

  absl::Status SetDisabled(std::string_view profile_id, bool disabled);
  std::vector<std::string> disabled() const;

 private:
  explicit DeadLetterStore(std::string path) : path_(std::move(path)) {}
  absl::Status Append(const std::string& records);
  bool Apply(std::string_view record);

  const std::string path_;  // empty: in memory
  mutable std::mutex mu_;
  int fd_ = -1;
  uint64_t next_id_ = 1;
  std::map<uint64_t, DeadLetter> letters_;  // by id: oldest first
  std::vector<std::string> disabled_;
};

}  // namespace herald::deliver
