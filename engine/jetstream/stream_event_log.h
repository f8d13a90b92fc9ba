// The EventLog on a JetStream stream (DESIGN §10), shared by every heraldd instance.
//
// - Ingest validates the request with the engine (routing nothing), publishes it to the stream
//   `<prefix>_events` (work-queue retention, file storage, the configured replicas) and returns
//   once JetStream acknowledged it: that ack is the 202's durability. `Nats-Msg-Id` is the
//   envelope's eventId when the request is one envelope with one, so a client's retry is
//   deduplicated; otherwise an id made for the request, which the publish's own retries keep.
//   NATS unreachable: Unavailable (503 with Retry-After), nothing accepted.
// - A shared durable pull consumer, `<prefix>_route`, hands each request to one instance, which
//   routes it with the stream sequence as its log position (so generated webhook ids are the same
//   on whichever instance routes it), publishes one notification per (event, profile) to the
//   deliveries stream (delivery_partitions.h), and acks the request once JetStream stored them
//   all. A publish that failed naks the request: it is routed again, and what was stored
//   before is deduplicated by its message id.
// - An instance that dies leaves its requests unacked: JetStream hands them to another after the
//   ack wait. A clean stop naks what it holds, so another instance takes it at once.
// - The stream and the consumer are created when missing; existing ones are used as they are,
//   and settings that differ from these are reported, never changed.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/common/mutex.h"
#include "engine/jetstream/delivery_partitions.h"
#include "engine/jetstream/nats_client.h"
#include "engine/store/event_log.h"
#include "herald/engine.h"

namespace herald::jetstream {

class StreamEventLog final : public store::EventLog {
 public:
  struct Options {
    int fetch_batch = 64;
    int64_t max_ack_pending = 20'000;  // requests handed out and not yet acked, all instances
    DeliveryPartitions::Options deliveries;
  };

  static absl::StatusOr<std::unique_ptr<StreamEventLog>> Open(NatsClient& client, Engine& engine,
                                                              Options options);
  ~StreamEventLog() override;

  absl::StatusOr<IngestResult> Ingest(IngestBuffer buffer, size_t size, InputFormat format,
                                      std::vector<IngestError>* errors,
                                      OnDurable on_durable = nullptr) override;
  absl::StatusOr<IngestResult> Ingest(std::string_view bytes, InputFormat format,
                                      std::vector<IngestError>* errors,
                                      OnDurable on_durable = nullptr) override;
  absl::StatusOr<IngestResult> IngestNative(std::string_view channel, std::string_view event,
                                            std::string_view bytes,
                                            std::vector<IngestError>* errors,
                                            OnDurable on_durable = nullptr) override;
  bool defers_durability() const override { return false; }

  // Nothing to replay: the consumers hand back what no instance settled.
  absl::Status Replay(const std::function<bool()>& stop = {}) override;
  void Start() override;
  void Stop() override;

  // Kept routes are the spool's: a request routed again here routes by the config in force.
  absl::StatusOr<uint64_t> KeepRoute(const Subscription&) override { return 0; }
  void SealRoute(uint64_t) override {}
  void DropRoute(uint64_t) override {}

  Stats stats() const override;

  // What /metrics shows of the stream on this instance.
  struct StreamStats {
    uint64_t published = 0, publish_errors = 0;  // ingest requests (the 202s, the 503s)
    uint64_t routed = 0, acked = 0;              // requests this instance took and acked
    uint64_t notifications = 0;                  // published to the deliveries stream
    uint64_t route_failures = 0;                 // requests naked: a notification was not stored
    uint64_t consumer_pending = 0;      // in the stream, not yet handed to any instance (lag)
    uint64_t consumer_ack_pending = 0;  // handed out and not yet acked, every instance
    DeliveryPartitions::Stats deliveries;
  };
  StreamStats stream_stats() const;
  const DeliveryPartitions& deliveries() const { return *deliveries_; }
  DeliveryPartitions& deliveries() { return *deliveries_; }

 private:
  StreamEventLog(NatsClient& client, Engine& engine, Options options);
  // Stores one request, counted; Send retries the publish with the same id.
  absl::Status Publish(std::string_view kind, std::string_view channel, std::string_view event,
                       std::string_view bytes, const std::string& msg_id);
  absl::Status Send(std::string_view kind, std::string_view channel, std::string_view event,
                    std::string_view bytes, const std::string& msg_id);
  absl::Status Bind();
  void Run();
  // Routes one fetched request and publishes its notifications (their acks still due).
  absl::Status Route(natsMsg* msg);
  static void PublishFailed(jsCtx* js, jsPubAckErr* err, void* self);

  NatsClient& client_;
  Engine& engine_;
  const Options options_;
  const std::string stream_, consumer_, subject_;
  const std::string instance_id_;  // makes request ids unique across instances and restarts
  std::atomic<uint64_t> next_request_{0};

  std::unique_ptr<DeliveryPartitions> deliveries_;
  natsSubscription* sub_ = nullptr;
  jsCtx* route_js_ = nullptr;            // the routing thread's publishes, failures counted
  std::vector<Notification> collected_;  // the routing thread's alone
  std::atomic<uint64_t> publish_failures_{0};
  std::atomic<uint64_t> appended_{0}, append_errors_{0}, appended_bytes_{0};
  std::atomic<uint64_t> routed_{0}, acked_{0}, notifications_{0}, route_failures_{0};
  std::atomic<uint64_t> consumer_pending_{0}, consumer_ack_pending_{0};  // read every 2 s

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace herald::jetstream
