// The ConfigStore on a JetStream KV bucket (DESIGN §10), `<prefix>_config`, shared by every
// heraldd instance of a deployment.
//
// - Keys are `cert.<id>`, `sec.<id>`, `prof.<id>` and `sub.<id>`; an id with characters a key
//   cannot hold is stored as `<kind>.b64.<base64url(id)>`.
// - Revisions are the bucket's: one sequence for every key, so "changes after N" means the same
//   on every instance. A write with an expected revision is a compare-and-set on it (0: create,
//   the key must not exist); a lost race is FailedPrecondition.
// - Values are `<created>\n<storage record>`: the revision that created the entry (0 on its
//   creation: its own), so List keeps creation order, a matching tie-break, on every instance.
// - A change of several writes is written in order; when one fails, the ones before it are
//   undone (compare-and-set on what they wrote). A crash in between leaves the first ones, which
//   reference nothing missing (a profile before the subscription that uses it).
// - One watcher follows the bucket from start to stop and keeps the latest entry of every key,
//   tombstones included (a BucketWatch); Open returns once it holds the bucket's initial values.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "engine/common/mutex.h"
#include "engine/jetstream/bucket_watch.h"
#include "engine/jetstream/nats_client.h"
#include "engine/store/config_store.h"

namespace herald::jetstream {

class KvConfigStore final : public store::ConfigStore {
 public:
  // Creates the bucket when missing (an existing one whose settings differ is used as it is,
  // and reported through the client's log), then waits for its initial values.
  static absl::StatusOr<std::unique_ptr<KvConfigStore>> Open(NatsClient& client);
  ~KvConfigStore() override;

  absl::StatusOr<uint64_t> Commit(std::span<const store::ConfigWrite> writes) override;
  std::vector<store::ConfigEntry> List() const override;
  std::optional<store::ConfigEntry> Get(store::ConfigKind kind, std::string_view id) const override;
  // Changes this store did not write itself: other instances' (its own are applied by the
  // writer). `fn` is called from the watcher's thread, one change at a time, in revision order.
  absl::Status Watch(uint64_t from_revision, Watcher fn) override;
  uint64_t revision() const override;
  bool shared() const override { return true; }
  // Stops the watch: no watcher is called after it returns.
  absl::Status Close() override;

  // Whether a change `fn` was called with still needs applying: no newer revision of its key is
  // known and this store did not write it. Asked under the applier's lock, so a change racing a
  // local write of the same key never overwrites it.
  bool NeedsApplying(const store::ConfigEntry& change) const;

  // The bucket's name, and how far behind it the watcher is (its last sequence − the highest
  // revision applied; 0 when caught up or not known).
  const std::string& bucket() const { return bucket_; }
  uint64_t lag() const;
  uint64_t watch_restarts() const { return watch_ != nullptr ? watch_->restarts() : 0; }

 private:
  KvConfigStore(NatsClient& client, std::string bucket)
      : client_(client), bucket_(std::move(bucket)) {}
  // Writes one change; `*revision` is what it wrote.
  absl::Status WriteOne(const store::ConfigWrite& w, uint64_t* revision);
  // Puts back what a failed Commit wrote before it failed.
  void Undo(const store::ConfigWrite& w, uint64_t written,
            const std::optional<store::ConfigEntry>& before);
  // From the watcher: keeps `entry` if it is newer than what is held, then tells the watchers.
  void Take(store::ConfigEntry entry);
  void TakeEntry(kvEntry* e);  // from the watch

  NatsClient& client_;
  const std::string bucket_;
  kvStore* kv_ = nullptr;

  Mutex commit_mu_;  // one Commit at a time; the watcher waits for the one in flight
  mutable Mutex mu_;
  using Key = std::pair<store::ConfigKind, std::string>;
  absl::flat_hash_map<Key, store::ConfigEntry> entries_ HERALD_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> own_ HERALD_GUARDED_BY(mu_);  // revisions Commit wrote
  uint64_t revision_ HERALD_GUARDED_BY(mu_) = 0;

  Mutex watch_mu_;  // held while telling watchers, so a new one misses nothing
  std::vector<Watcher> watchers_ HERALD_GUARDED_BY(watch_mu_);

  std::unique_ptr<BucketWatch> watch_;  // last: stopped first
};

}  // namespace herald::jetstream
