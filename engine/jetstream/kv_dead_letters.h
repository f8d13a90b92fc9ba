// Dead letters and disabled profiles on a JetStream KV bucket, `<prefix>_dead_letters`, shared
// by every heraldd instance of a deployment (DESIGN §10): the dead-letter API lists, replays and
// deletes the same letters on every instance, and a profile a 410 disabled stays disabled on
// whichever instance takes its partition.
//
// - A letter is key `l.<hash of its profile, subscription, webhook id, failure time, attempts>`,
//   its value the letter's fields (EncodeDeadLetter's JSON), a newline and the payload verbatim;
//   its id is the revision that put it. The bucket has one sequence for every key, so ids are the
//   same everywhere and ascend with time. Removing a letter writes a delete marker (history 1: its
//   bytes go at once). Markers stay: purging them (kvStore_PurgeDeletes) can wipe a key written
//   again meanwhile, and an instance away while one is purged would never learn of the delete.
// - A disabled profile is key `d.<profile id>` (`d.b64.<base64url>` when the id has characters a
//   key cannot hold); enabling it deletes the key.
// - Memory holds every letter's fields but its payload, which List and BeginReplay read back from
//   the bucket. Every instance follows the bucket (a BucketWatch); its own writes apply at once,
//   with the revision JetStream gave them, so a listing right after a write sees it.
// - Bounds as the file store's: a write that adds letters removes the oldest past max_bytes or
//   max_age, and so does the hourly pass. The bucket's own TTL is not used: keys that age out
//   tell no watcher (reference/jetstream.md §6).
// - Replays run on the instance asked. A letter is replayed once at a time per instance: two
//   replays of the same letters through two instances at once deliver them twice.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "engine/common/mutex.h"
#include "engine/deliver/dead_letters.h"
#include "engine/jetstream/bucket_watch.h"
#include "engine/jetstream/nats_client.h"

namespace herald::jetstream {

class KvDeadLetters final : public deliver::DeadLetters {
 public:
  struct Options {
    uint64_t max_bytes = 0;                // of the live letters' values; 0: no bound
    std::chrono::milliseconds max_age{0};  // 0: no bound
    std::function<int64_t()> now_ms;       // Unix time in ms; the system clock when empty
  };
  // Creates the bucket when missing, then waits for its initial values.
  static absl::StatusOr<std::shared_ptr<KvDeadLetters>> Open(NatsClient& client, Options options);
  ~KvDeadLetters() override;

  absl::Status Add(std::vector<DeadLetter>& letters,
                   std::span<const uint64_t> replaces = {}) override;
  absl::StatusOr<DeadLetterPage> List(std::string_view profile_id, size_t page,
                                      size_t size) const override;
  absl::StatusOr<std::vector<DeadLetter>> BeginReplay(std::string_view profile_id,
                                                      const std::vector<uint64_t>& ids) override;
  absl::Status Remove(const std::vector<uint64_t>& ids) override;
  void EndReplay(const std::vector<uint64_t>& ids) override;
  bool Contains(uint64_t id) const override;
  absl::StatusOr<size_t> Delete(std::string_view profile_id,
                                const std::vector<uint64_t>& ids) override;
  std::map<std::string, uint64_t> CountByProfile() const override;
  absl::Status SetDisabled(std::string_view profile_id, bool disabled) override;
  std::vector<std::string> disabled() const override;
  void OnDisabledElsewhere(const std::function<void(const std::string&, bool)>& fn) override;
  Stats stats() const override;

  const std::string& bucket() const { return bucket_; }
  uint64_t watch_restarts() const { return watch_ != nullptr ? watch_->restarts() : 0; }

 private:
  struct Entry {
    DeadLetter letter;  // without its payload
    std::string key;
    uint64_t bytes = 0;  // of its value
  };
  KvDeadLetters(NatsClient& client, Options options);
  int64_t Now() const;
  int64_t OldestKept() const;
  // A key's change, from the watch or from a write here: applied when newer than what is known.
  // Returns the profile whose disabled state it changed, when it did.
  std::optional<std::pair<std::string, bool>> Apply(std::string_view key, uint64_t revision,
                                                    bool put, std::string_view value)
      HERALD_REQUIRES(mu_);
  // A change this store wrote, with the revision JetStream gave it.
  void ApplyOwn(std::string_view key, uint64_t revision, bool put, std::string_view value)
      HERALD_REQUIRES(mu_);
  void TakeEntry(kvEntry* e);
  // Writes a delete marker on `key`; its revision.
  absl::StatusOr<uint64_t> DeleteKey(const std::string& key);
  // Deletes the letters of `ids` that are still kept; how many went.
  absl::StatusOr<size_t> DeleteLetters(const std::vector<uint64_t>& ids) HERALD_REQUIRES(write_mu_);
  // The oldest letters past the bounds.
  std::vector<uint64_t> OverBounds() const HERALD_REQUIRES(mu_);
  // Reads back the payloads of `entries`; those gone meanwhile are left out.
  absl::Status LoadPayloads(std::vector<Entry>& entries) const;
  void Housekeeping();  // hourly: the bounds

  NatsClient& client_;
  const Options options_;
  const std::string bucket_;
  kvStore* kv_ = nullptr;

  Mutex write_mu_;    // taken first: one change at a time, so the bounds hold
  mutable Mutex mu_;  // the index: never held across a NATS call
  std::map<uint64_t, Entry> letters_ HERALD_GUARDED_BY(mu_);  // by id: oldest first
  // Every key's latest revision known, delete markers included until the watch passes them.
  absl::flat_hash_map<std::string, uint64_t> revisions_ HERALD_GUARDED_BY(mu_);
  std::deque<std::pair<uint64_t, std::string>> tombstones_ HERALD_GUARDED_BY(mu_);
  uint64_t watched_ HERALD_GUARDED_BY(mu_) = 0;  // the highest revision the watch delivered
  std::map<std::string, std::string, std::less<>> disabled_ HERALD_GUARDED_BY(mu_);  // key -> id
  std::set<uint64_t> replaying_ HERALD_GUARDED_BY(mu_);
  // Disabled-profile keys SetDisabled is writing: the watch does not report them as news.
  absl::flat_hash_set<std::string> writing_ HERALD_GUARDED_BY(mu_);
  uint64_t live_bytes_ HERALD_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ HERALD_GUARDED_BY(mu_) = 0;

  Mutex callback_mu_;  // held while the callback runs, so clearing it waits for the call
  std::function<void(const std::string&, bool)> disabled_elsewhere_ HERALD_GUARDED_BY(callback_mu_);

  std::atomic<bool> stop_{false};
  std::thread housekeeping_;
  std::unique_ptr<BucketWatch> watch_;  // last: stopped first
};

}  // namespace herald::jetstream
