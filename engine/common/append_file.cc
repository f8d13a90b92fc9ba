#include "engine/common/append_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "engine/common/framed_records.h"
#include "engine/common/strings.h"

namespace herald {

AppendFile::AppendFile(AppendFile&& other) noexcept { *this = std::move(other); }

AppendFile& AppendFile::operator=(AppendFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    size_ = other.size_;
    sync_ = other.sync_;
    failure_ = std::move(other.failure_);
  }
  return *this;
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<AppendFile> AppendFile::Open(const std::string& path, bool truncate, SyncFn sync) {
  AppendFile file;
  file.path_ = path;
  file.sync_ = sync ? sync : &::fdatasync;
  file.fd_ = ::open(path.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);
  if (file.fd_ < 0) return ErrnoError("open", path);
  const off_t end = ::lseek(file.fd_, 0, SEEK_END);
  if (end < 0) return ErrnoError("lseek", path);
  file.size_ = end;
  return file;
}

absl::Status AppendFile::Append(std::string_view data, bool sync) {
  if (!failure_.ok()) return failure_;
  if (fd_ < 0) return absl::FailedPreconditionError(Cat(path_, ": not open"));
  if (auto s = WriteAll(fd_, data, path_); !s.ok()) {
    // Cut back a partial write; if that fails too, nothing more may be written after it.
    if (::ftruncate(fd_, size_) != 0) {
      failure_ = absl::UnavailableError(Cat(path_, ": a failed write could not be undone (",
                                            ToStd(s.message()), "); restart heraldd"));
    }
    return s;
  }
  const off_t before = size_;
  size_ += static_cast<off_t>(data.size());
  if (!sync) return absl::OkStatus();
  if (auto s = Sync(); !s.ok()) {
    // Not durable: take it back as far as we can, so a write answered with an error is less
    // likely to come back after a restart (the file takes nothing more anyway).
    if (::ftruncate(fd_, before) == 0) size_ = before;
    return s;
  }
  return absl::OkStatus();
}

absl::Status AppendFile::Sync() {
  if (!failure_.ok()) return failure_;
  if (sync_(fd_) != 0) {
    SyncFailed(ErrnoError("fdatasync", path_));
    return failure_;
  }
  return absl::OkStatus();
}

int AppendFile::DupForSync() const { return fd_ < 0 ? -1 : ::dup(fd_); }

void AppendFile::SyncFailed(const absl::Status& error) {
  if (!failure_.ok()) return;
  failure_ = absl::UnavailableError(
      Cat(ToStd(error.message()), "; this file takes no more writes until heraldd restarts"));
}

}  // namespace herald
