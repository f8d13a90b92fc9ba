// An append-only file with herald's one failure rule for durable files (DESIGN §7): a write that
// fails is cut back to where it started, so a torn record never hides the ones after it; and
// after a failed fdatasync the file takes no more writes until the process restarts, because
// Linux reports a lost writeback only once and a later fdatasync that "succeeds" proves nothing
// (the fsyncgate lesson). The spool's segments, the dead letters and the config journal write
// through it.
// Not thread-safe: its owner serializes calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace herald {

// fdatasync(2), or a test's stand-in that fails on purpose.
using SyncFn = int (*)(int fd);

class AppendFile {
 public:
  AppendFile() = default;
  AppendFile(AppendFile&& other) noexcept;
  AppendFile& operator=(AppendFile&& other) noexcept;
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  ~AppendFile();

  // Opens (creates, mode 0600) `path` for appending; `truncate` empties it first.
  static absl::StatusOr<AppendFile> Open(const std::string& path, bool truncate = false,
                                         SyncFn sync = nullptr);

  // Appends `data`, then with `sync` makes it durable. An error takes the write back (as far as
  // the file system lets it), and after a failed fdatasync every later call returns that
  // failure.
  absl::Status Append(std::string_view data, bool sync = true);
  absl::Status Sync();

  // For an fdatasync made outside the owner's lock (the spool's group commit, while appends go
  // on): a second descriptor of the file, which the caller closes, and the way back for its
  // failure, after which the file takes no more writes.
  int DupForSync() const;
  void SyncFailed(const absl::Status& error);

  bool is_open() const { return fd_ >= 0; }
  uint64_t size() const { return static_cast<uint64_t>(size_); }  // bytes written so far
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
  off_t size_ = 0;
  SyncFn sync_ = nullptr;
  absl::Status failure_;  // set for good by a failed fdatasync or an undoable write
};

}  // namespace herald
