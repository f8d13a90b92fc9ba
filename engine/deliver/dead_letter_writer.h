// Writes to the dead-letter store for the delivery workers, on a thread of its own: a burial's
// fdatasync, and the store's occasional rewrite, must not hold back the other profiles of the
// worker that buries. Jobs run in the order they came; burials queued together are written in one
// Add (one fdatasync for all of them). Each job's `done` runs on the writer's thread.
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "engine/common/mutex.h"
#include "engine/deliver/dead_letters.h"

namespace herald::deliver {

class DeadLetterWriter {
 public:
  // `stored`: how many of the letters were written (those replacing a letter deleted meanwhile
  // are not); 0 on an error.
  using AddDone = std::function<void(const absl::Status& status, size_t stored)>;
  using Done = std::function<void(const absl::Status& status)>;

  explicit DeadLetterWriter(DeadLetters& store);
  ~DeadLetterWriter();  // runs what is queued, then stops
  DeadLetterWriter(const DeadLetterWriter&) = delete;
  DeadLetterWriter& operator=(const DeadLetterWriter&) = delete;

  // DeadLetters::Add, later; `replaces` as there.
  void Add(std::vector<DeadLetter> letters, std::vector<uint64_t> replaces, AddDone done);
  void Remove(std::vector<uint64_t> ids, Done done);
  void SetDisabled(std::string profile_id, bool disabled, Done done);
  void CompactIfDue();
  // Returns once every job queued before it has run, its `done` included.
  void Flush();

 private:
  struct Job {
    enum class Kind { kAdd, kRemove, kSetDisabled, kCompact } kind;
    std::vector<DeadLetter> letters;
    std::vector<uint64_t> ids;  // kAdd: parallel to letters (replaces); kRemove: to remove
    std::string profile_id;
    bool disabled = false;
    AddDone add_done;
    Done done;
  };
  void Push(Job job);
  void Run();
  // Runs jobs[first, last), all burials, in one Add.
  void AddAll(std::vector<Job>& jobs, size_t first, size_t last);

  DeadLetters& store_;
  Mutex mu_;
  CondVar changed_;
  std::deque<Job> queue_ HERALD_GUARDED_BY(mu_);
  uint64_t pushed_ HERALD_GUARDED_BY(mu_) = 0;
  uint64_t finished_ HERALD_GUARDED_BY(mu_) = 0;
  bool stop_ HERALD_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace herald::deliver
