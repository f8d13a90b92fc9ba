// Line-framed, CRC-checked records: "<crc32 as 8 hex digits> <record>\n", the format of every
// append-only file herald keeps in data_dir. A record must not contain a newline (JSON written by
// herald never does: strings are escaped). Reading stops at the first torn or corrupt record, so
// a crash in the middle of an append loses only that record.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace herald {

std::string FrameRecord(std::string_view record);
// The record of one framed line as FrameRecord wrote it (newline included), or nullopt when the
// line is torn or its CRC does not match.
std::optional<std::string_view> UnframeRecord(std::string_view line);

struct ReadRecordsResult {
  size_t records = 0;     // good records passed to the callback
  size_t good_bytes = 0;  // length of the good prefix of the file
  size_t bad_bytes = 0;   // bytes from the first torn or corrupt record to the end
  size_t bad_line = 0;    // its line number (1-based), when bad_bytes > 0
};

// Calls `on_record` for each good record of `path`, in order, until the first bad one; a missing
// file has no records. `on_record` returning false marks that record bad (e.g. it does not parse).
absl::StatusOr<ReadRecordsResult> ReadRecords(
    const std::string& path, const std::function<bool(std::string_view)>& on_record);

// write(2) all of `data`, retrying short writes and EINTR.
absl::Status WriteAll(int fd, std::string_view data, const std::string& path);
// Replaces dir/name with `contents` so that a crash leaves the old file or the new, never a mix:
// write a temporary (mode 0600: these files hold secrets), fsync, rename, fsync the directory.
absl::Status WriteFileAtomically(const std::string& dir, const std::string& name,
                                 std::string_view contents);
// fsync a directory, so a created or renamed file in it survives a crash.
absl::Status SyncDir(const std::string& dir);
// An Unavailable error naming the call, the path and errno.
absl::Status ErrnoError(std::string_view what, const std::string& path);

}  // namespace herald
