#include "engine/index/index_manager.h"

#include "engine/common/strings.h"

namespace herald::index {

IndexManager::IndexManager(std::shared_ptr<const Catalog> catalog, Options options)
    : catalog_(std::move(catalog)), options_(std::move(options)) {
  base_ = Snapshot::Build({}, *catalog_, 0);
  auto state = std::make_shared<IndexState>();
  state->base = base_;
  state_ = std::move(state);
  publisher_ = std::thread([this] { PublisherLoop(); });
  builder_ = std::thread([this] { BuilderLoop(); });
}

IndexManager::~IndexManager() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  changed_.NotifyAll();
  publisher_.join();
  builder_.join();
}

uint64_t IndexManager::Commit(SubRef before, SubRef after) {
  uint64_t seq;
  {
    MutexLock lock(mu_);
    seq = next_seq_++;
    if (before) live_.erase(before->uid);
    if (after) live_[after->uid] = after;
    tail_.push_back({seq, std::move(before), std::move(after)});
    dirty_ = true;
    last_change_ = std::chrono::steady_clock::now();
  }
  changed_.NotifyAll();
  return seq;
}

uint64_t IndexManager::last_committed() const {
  MutexLock lock(mu_);
  return next_seq_ - 1;
}

void IndexManager::WaitPublished(uint64_t seq) {
  MutexLock lock(mu_);
  while (published_seq_ < seq && !stop_) changed_.Wait(mu_);
}

void IndexManager::PublishLocked() {
  const size_t fold_at = std::max(options_.fold_min_changes, base_->subscription_count() / 16);
  if (tail_.size() >= fold_at && !building_) {
    build_requested_ = true;
    changed_.NotifyAll();
  }
  if (tail_.size() > options_.max_overlay_changes) return;  // the builder will publish
  std::vector<Overlay::Change> changes(tail_.begin(), tail_.end());
  auto state = std::make_shared<IndexState>();
  state->base = base_;
  state->overlay = changes.empty() ? nullptr : Overlay::Build(changes, *catalog_);
  state->version = next_seq_ - 1;
  {
    MutexLock state_lock(state_mu_);
    state_ = std::move(state);
  }
  published_seq_ = next_seq_ - 1;
  published_.fetch_add(1, std::memory_order_acq_rel);
  dirty_ = false;
  changed_.NotifyAll();
}

void IndexManager::PublisherLoop() {
  for (;;) {
    {
      MutexLock lock(mu_);
      const auto deadline = std::chrono::steady_clock::now() + options_.idle_fold_after;
      while (!stop_ && !dirty_ && changed_.WaitUntil(mu_, deadline)) {
      }
      if (stop_) return;
      if (!dirty_) {
        // Quiet for a while: fold whatever overlay remains so lookups go back to one probe set.
        if (!tail_.empty() && !building_ &&
            std::chrono::steady_clock::now() - last_change_ >= options_.idle_fold_after) {
          build_requested_ = true;
          changed_.NotifyAll();
        }
        continue;
      }
    }
    // Let a burst of changes gather, then publish them together.
    std::this_thread::sleep_for(options_.publish_interval);
    MutexLock lock(mu_);
    if (stop_) return;
    PublishLocked();
  }
}

void IndexManager::BuilderLoop() {
  for (;;) {
    std::vector<SubRef> subscriptions;
    uint64_t version;
    {
      MutexLock lock(mu_);
      while (!stop_ && !build_requested_) changed_.Wait(mu_);
      if (stop_) return;
      build_requested_ = false;
      building_ = true;
      version = next_seq_ - 1;
      subscriptions.reserve(live_.size());
      for (const auto& [uid, sub] : live_) subscriptions.push_back(sub);
    }
    const auto start = std::chrono::steady_clock::now();
    auto snapshot = Snapshot::Build(std::move(subscriptions), *catalog_, version);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    builds_.fetch_add(1, std::memory_order_relaxed);
    if (options_.log) {
      options_.log(Cat("index: built snapshot of ", snapshot->subscription_count(),
                       " subscriptions (", snapshot->key_count(), " keys) in ",
                       std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(),
                       " ms"));
    }
    MutexLock lock(mu_);
    base_ = std::move(snapshot);
    while (!tail_.empty() && tail_.front().seq <= version) tail_.pop_front();
    building_ = false;
    PublishLocked();
  }
}

}  // namespace herald::index
