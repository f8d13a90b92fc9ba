// An fdatasync stand-in (herald::SyncFn) that fails once, with EIO, when a test asks for it.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace herald::test_support {

inline std::atomic<bool> fail_next_sync{false};

inline int SyncThatFailsOnDemand(int fd) {
  if (fail_next_sync.exchange(false)) {
    errno = EIO;
    return -1;
  }
  return ::fdatasync(fd);
}

}  // namespace herald::test_support
