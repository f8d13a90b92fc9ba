// The deliveries stream and its owners (DESIGN §10): what the routing step made, one message per
// (event, profile), delivered by the one instance that owns the profile's partition.
//
// - The stream `<prefix>_deliveries` (work queue) holds each notification on
//   `<prefix>.dlv.<partition>.<profileId>`, partition = a stable hash of the profile id mod the
//   partition count, with `Nats-Msg-Id` `<webhook id>.<profileId>`: a request routed twice (its
//   instance died before acking it) or a client's retry is stored once.
// - Each partition has a durable pull consumer, `<prefix>_dlv_<p>`, and a lease, the key
//   `lease.<p>` in the TTL bucket `<prefix>_leases`: made with Create (the key must be free),
//   renewed every `renew_every` with a compare-and-set on its revision. A renewal that fails
//   means the lease is lost: that partition is fetched no more.
// - Every instance writes `m.<instance>` in the TTL bucket `<prefix>_members` and watches it,
//   so it knows how many are alive and takes ceil(partitions / live) of them, releasing what it
//   holds beyond that. A dead instance's leases age out after the TTL and the others take them.
// - The owner queues each notification on its profile's queue in this process's engine, so
//   batching, windows, rate limits, the breaker and per-key ordering run on one instance per
//   profile, and acks it once settled (delivered or a dead letter), telling JetStream it is in
//   progress meanwhile. What a full queue refuses waits here, in order, and is offered again.
// - A clean stop naks what is unsettled and releases the leases, so another instance takes them
//   at once. An instance that dies leaves its notifications unacked: the next owner gets them
//   after the ack wait (at least once; receivers dedupe on webhook-id).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/common/mutex.h"
#include "engine/jetstream/nats_client.h"
#include "herald/engine.h"

namespace herald::jetstream {

class DeliveryPartitions {
 public:
  struct Options {
    std::chrono::milliseconds lease_ttl{10'000};
    std::chrono::milliseconds renew_every{3'000};
    int fetch_batch = 64;
    // Notifications of one partition taken and not yet settled: its fetching stops beyond, so
    // a profile that cannot deliver holds up its partition, never the others.
    size_t max_held = 10'000;
  };

  // Creates the stream and the buckets when missing; a partition's consumer is made by its first
  // owner.
  static absl::StatusOr<std::unique_ptr<DeliveryPartitions>> Open(NatsClient& client,
                                                                  Engine& engine, Options options);
  ~DeliveryPartitions();

  void Start();
  // Naks what is unsettled and releases the leases.
  void Stop();

  // DelivererOptions::retry_through_log: naks the notifications with `delay`, so the partition's
  // owner then (this instance, or the next) gets them again, their attempts counted by
  // JetStream's delivery count. False, touching nothing, unless this instance holds them all.
  bool RetryLater(std::span<Notification* const> notifications, std::chrono::milliseconds delay);

  // The message that carries `n` to its profile's owner, and its Nats-Msg-Id.
  absl::StatusOr<natsMsg*> Message(const Notification& n, std::string* msg_id) const;
  // Where the notifications of `profile_id` go.
  std::string Subject(std::string_view profile_id) const;
  int PartitionOf(std::string_view profile_id) const;
  const std::string& stream() const { return stream_; }
  const std::string& instance() const { return instance_; }

  struct Stats {
    uint64_t owned = 0;          // partitions this instance owns now
    uint64_t live_members = 0;   // instances it sees alive, itself included
    uint64_t lease_changes = 0;  // leases taken, released or lost
    uint64_t fetched = 0, acked = 0;
    uint64_t held = 0;              // taken and not yet settled
    uint64_t waiting_for_room = 0;  // held ones a full queue refused
    uint64_t dropped = 0;           // acked undelivered: their profile is gone here
    uint64_t retries = 0;           // naked with a delay, to be attempted again
  };
  Stats stats() const;

 private:
  struct Partition;
  struct Held;
  DeliveryPartitions(NatsClient& client, Engine& engine, Options options);
  absl::Status Bind();
  void Leases();  // the lease thread
  void Fetch(int p);
  void Settle(bool final_pass);
  // Queues `h` (false: a full queue refused it); acks and drops what cannot be delivered here.
  bool Offer(Held& h) HERALD_REQUIRES(mu_);
  void Release(int p, std::chrono::steady_clock::time_point now);

  NatsClient& client_;
  Engine& engine_;
  const Options options_;
  const std::string stream_, instance_;
  kvStore* leases_ = nullptr;
  kvStore* members_ = nullptr;
  std::vector<std::unique_ptr<Partition>> parts_;

  mutable Mutex mu_;
  std::deque<std::unique_ptr<Held>> held_ HERALD_GUARDED_BY(mu_);       // in fetch order
  absl::flat_hash_map<uint64_t, Held*> by_seq_ HERALD_GUARDED_BY(mu_);  // of held_
  // Profiles with a refused notification held: their later ones wait behind it.
  absl::flat_hash_map<std::string, size_t> waiting_ HERALD_GUARDED_BY(mu_);

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> owned_{0}, live_{1}, lease_changes_{0};
  std::atomic<uint64_t> fetched_{0}, acked_{0}, held_count_{0}, waiting_count_{0}, dropped_{0};
  std::atomic<uint64_t> retries_{0};
  std::thread lease_thread_, settle_thread_;
};

}  // namespace herald::jetstream
