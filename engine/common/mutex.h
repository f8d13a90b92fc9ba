// A std::mutex that clang's -Wthread-safety can reason about: members say which mutex guards them
// (HERALD_GUARDED_BY) and functions which they need held (HERALD_REQUIRES), and the compiler
// checks every access (tools/test.sh runs the check through clang-tidy). Plain std::mutex
// underneath, so ThreadSanitizer sees what it always saw; std::condition_variable_any waits on
// it directly.
#pragma once

#include <mutex>

#include "absl/base/thread_annotations.h"

#define HERALD_GUARDED_BY(x) ABSL_GUARDED_BY(x)
#define HERALD_PT_GUARDED_BY(x) ABSL_PT_GUARDED_BY(x)
#define HERALD_REQUIRES(...) ABSL_EXCLUSIVE_LOCKS_REQUIRED(__VA_ARGS__)
#define HERALD_EXCLUDES(...) ABSL_LOCKS_EXCLUDED(__VA_ARGS__)

namespace herald {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace herald
