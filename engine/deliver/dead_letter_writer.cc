#include "engine/deliver/dead_letter_writer.h"

#include <utility>

namespace herald::deliver {

DeadLetterWriter::DeadLetterWriter(DeadLetters& store)
    : store_(store), thread_([this] { Run(); }) {}

DeadLetterWriter::~DeadLetterWriter() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  changed_.NotifyAll();
  thread_.join();
}

void DeadLetterWriter::Push(Job job) {
  {
    MutexLock lock(mu_);
    queue_.push_back(std::move(job));
    ++pushed_;
  }
  changed_.NotifyAll();
}

void DeadLetterWriter::Add(std::vector<DeadLetter> letters, std::vector<uint64_t> replaces,
                           AddDone done) {
  Push({.kind = Job::Kind::kAdd,
        .letters = std::move(letters),
        .ids = std::move(replaces),
        .add_done = std::move(done)});
}

void DeadLetterWriter::Remove(std::vector<uint64_t> ids, Done done) {
  Push({.kind = Job::Kind::kRemove, .ids = std::move(ids), .done = std::move(done)});
}

void DeadLetterWriter::SetDisabled(std::string profile_id, bool disabled, Done done) {
  Push({.kind = Job::Kind::kSetDisabled,
        .profile_id = std::move(profile_id),
        .disabled = disabled,
        .done = std::move(done)});
}

void DeadLetterWriter::CompactIfDue() { Push({.kind = Job::Kind::kCompact}); }

void DeadLetterWriter::Flush() {
  MutexLock lock(mu_);
  const uint64_t target = pushed_;
  while (finished_ < target) changed_.Wait(mu_);
}

void DeadLetterWriter::AddAll(std::vector<Job>& jobs, size_t first, size_t last) {
  std::vector<DeadLetter> letters;
  std::vector<uint64_t> replaces;
  for (size_t j = first; j < last; ++j) {
    Job& job = jobs[j];
    job.ids.resize(job.letters.size());  // none given: none replaced
    for (size_t i = 0; i < job.letters.size(); ++i) {
      letters.push_back(std::move(job.letters[i]));
      replaces.push_back(job.ids[i]);
    }
  }
  const absl::Status s = store_.Add(letters, replaces);
  size_t at = 0;
  for (size_t j = first; j < last; ++j) {
    size_t stored = 0;
    for (size_t i = 0; i < jobs[j].ids.size(); ++i, ++at) stored += letters[at].id != 0;
    if (jobs[j].add_done) jobs[j].add_done(s, stored);
  }
}

void DeadLetterWriter::Run() {
  for (;;) {
    std::vector<Job> jobs;
    {
      MutexLock lock(mu_);
      while (!stop_ && queue_.empty()) changed_.Wait(mu_);
      if (queue_.empty()) return;  // stopping, and nothing is left
      jobs.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    for (size_t j = 0; j < jobs.size();) {
      Job& job = jobs[j];
      switch (job.kind) {
        case Job::Kind::kAdd: {
          size_t end = j + 1;
          while (end < jobs.size() && jobs[end].kind == Job::Kind::kAdd) ++end;
          AddAll(jobs, j, end);
          j = end;
          continue;
        }
        case Job::Kind::kRemove: {
          const absl::Status s = store_.Remove(job.ids);
          if (job.done) job.done(s);
          break;
        }
        case Job::Kind::kSetDisabled: {
          const absl::Status s = store_.SetDisabled(job.profile_id, job.disabled);
          if (job.done) job.done(s);
          break;
        }
        case Job::Kind::kCompact:
          store_.CompactIfDue();
          break;
      }
      ++j;
    }
    MutexLock lock(mu_);
    finished_ += jobs.size();
    changed_.NotifyAll();
  }
}

}  // namespace herald::deliver
