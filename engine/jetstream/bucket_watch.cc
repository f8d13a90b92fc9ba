#include "engine/jetstream/bucket_watch.h"

#include <algorithm>
#include <chrono>

#include "engine/common/strings.h"

namespace herald::jetstream {

BucketWatch::BucketWatch(NatsClient& client, kvStore* kv, std::string bucket,
                         std::function<void(kvEntry* e)> entry)
    : client_(client),
      kv_(kv),
      bucket_(std::move(bucket)),
      stream_(Cat("KV_", bucket_)),
      entry_(std::move(entry)) {
  thread_ = std::thread([this] { Run(); });
  checker_ = std::thread([this] { Check(); });
}

void BucketWatch::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (checker_.joinable()) checker_.join();
}

absl::Status BucketWatch::WaitForInitialValues(std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  MutexLock lock(initial_mu_);
  while (!initial_done_) {
    if (!initial_cv_.WaitUntil(initial_mu_, deadline) && !initial_done_) {
      return absl::UnavailableError(
          Cat("KV bucket ", bucket_, ": its initial values did not arrive in time"));
    }
  }
  return absl::OkStatus();
}

void BucketWatch::Log(std::string_view line) const {
  if (client_.options().log) client_.options().log(line);
}

uint64_t BucketWatch::lag() const {
  const uint64_t last = stream_last_.load(std::memory_order_relaxed);
  const uint64_t watched = watched_.load(std::memory_order_relaxed);
  return last > watched ? last - watched : 0;
}

void BucketWatch::Run() {
  kvWatcher* w = nullptr;
  int backoff_ms = 100;
  auto pause = [&] {
    for (int slept = 0; slept < backoff_ms && !stop_.load(); slept += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff_ms = std::min(backoff_ms * 2, 2000);
  };
  std::chrono::steady_clock::time_point rewatched_at{};  // set while a new watch catches up
  uint64_t starts_at = 0;  // the bucket's last revision when the watch was made
  while (!stop_.load()) {
    if (w == nullptr) {
      // Where the bucket is now: its initial values may end below it (the newest revisions can
      // be purged markers, which no watch delivers), and they bring the watch up to it anyway.
      jsStreamInfo* si = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      if (js_GetStreamInfo(&si, client_.js(), stream_.c_str(), nullptr, &code) == NATS_OK) {
        starts_at = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
      }
      kvWatchOptions o;
      kvWatchOptions_Init(&o);
      if (const natsStatus st = kvStore_WatchAll(&w, kv_, &o); st != NATS_OK) {
        w = nullptr;
        Log(Cat("watching KV bucket ", bucket_, ": ", ToStd(NatsStatus(st, "watch").message()),
                "; retrying"));
        pause();
        continue;
      }
      rewatch_.store(false);
    }
    if (rewatch_.exchange(false)) {
      rewatched_at = std::chrono::steady_clock::now();
      Log(Cat("the watch of KV bucket ", bucket_, " stalled at revision ", watched_.load(),
              " (the bucket is at ", stream_last_.load(), "); watching again"));
      kvWatcher_Destroy(w);
      w = nullptr;
      restarts_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    kvEntry* e = nullptr;
    const natsStatus st = kvWatcher_Next(&e, w, 200);
    if (st == NATS_TIMEOUT) continue;
    if (st != NATS_OK) {
      Log(Cat("KV bucket ", bucket_, " watch: ", ToStd(NatsStatus(st, "next").message()),
              "; watching again"));
      kvWatcher_Destroy(w);
      w = nullptr;
      restarts_.fetch_add(1, std::memory_order_relaxed);
      pause();
      continue;
    }
    backoff_ms = 100;
    if (e == nullptr) {  // the initial values are all in
      if (rewatched_at != std::chrono::steady_clock::time_point{}) {
        Log(Cat("the watch of KV bucket ", bucket_, " caught up in ",
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - rewatched_at)
                    .count(),
                " ms"));
        rewatched_at = {};
      }
      if (starts_at > watched_.load(std::memory_order_relaxed)) {
        watched_.store(starts_at, std::memory_order_relaxed);
      }
      MutexLock lock(initial_mu_);
      initial_done_ = true;
      initial_cv_.NotifyAll();
      continue;
    }
    const uint64_t revision = kvEntry_Revision(e);
    if (revision > watched_.load(std::memory_order_relaxed)) {
      watched_.store(revision, std::memory_order_relaxed);
    }
    entry_(e);
    kvEntry_Destroy(e);
  }
  if (w != nullptr) kvWatcher_Destroy(w);
}

void BucketWatch::Check() {
  const std::string& stream = stream_;
  jsOptions quick;  // a call stuck in an election gives way to the next check
  jsOptions_Init(&quick);
  quick.Wait = 1000;
  uint64_t behind_at = 0;  // what the watch had delivered at the last check, + 1, when behind
  while (!stop_.load()) {
    for (int slept = 0; slept < 250 && !stop_.load(); slept += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (stop_.load() || !client_.connected()) continue;
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, client_.js(), stream.c_str(), &quick, &code) != NATS_OK) continue;
    const uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    stream_last_.store(last, std::memory_order_relaxed);
    const uint64_t watched = watched_.load(std::memory_order_relaxed);
    if (last <= watched) {
      behind_at = 0;
    } else if (behind_at == watched + 1) {
      rewatch_.store(true);
      behind_at = 0;
    } else {
      behind_at = watched + 1;
    }
  }
}

}  // namespace herald::jetstream
