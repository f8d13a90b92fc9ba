// One connection to a NATS cluster with its JetStream context (DESIGN §10), shared by everything
// heraldd keeps on JetStream. It reconnects by itself for as long as it lives, and says so through
// `log`; start-up waits for a first connection for at most `connect_wait`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nats/nats.h"

namespace herald::jetstream {

struct NatsOptions {
  std::vector<std::string> urls{"nats://127.0.0.1:4222"};
  // Names every stream, consumer and bucket herald creates, so deployments can share a cluster.
  std::string prefix = "herald";
  int replicas = 1;  // of every stream and bucket
  std::string user, password;
  std::string credentials_file;  // a .creds file (JWT and NKey seed)
  // TLS to NATS: the CA that signs the servers' certificates, and a client certificate when the
  // servers ask for one. Either turns TLS on (tls:// URLs do too).
  std::string tls_ca_file, tls_cert_file, tls_key_file;
  std::chrono::milliseconds connect_wait{30'000};  // at start; then heraldd gives up (exit 2)
  std::chrono::milliseconds api_wait{5'000};       // every JetStream API call and publish
  // How long an instance has to settle a request or a notification it took before another
  // instance gets it (set when a consumer is created; an existing one keeps its own).
  std::chrono::milliseconds ack_wait{30'000};
  // Of the deliveries stream, each owned by one instance at a time; the same on every instance
  // of a deployment.
  int partitions = 64;
  std::function<void(std::string_view)> log;
};

// natsStatus as absl::Status: Unavailable for what a reconnect may fix, FailedPrecondition for a
// lost compare-and-set, Internal otherwise; `what` says what was being done.
absl::Status NatsStatus(natsStatus s, std::string_view what,
                        jsErrCode code = static_cast<jsErrCode>(0));

class NatsClient;

// Whether `id` can be a KV key token as it is (letters, digits, '-', '_', '=').
bool PlainKeyToken(std::string_view id);
// `id` as a KV key token: itself when plain, else `b64.<base64url(id)>`.
std::string KeyToken(std::string_view id);

// 16 random hex digits: what names an instance in request ids, leases and the members bucket.
std::string RandomId();

// natsSubscription_Fetch, safe from a cnats 3.4.1 bug: when the messages left over from an
// earlier fetch (arriving after it timed out) are more than half the batch, its loop never meets
// its end condition and writes past the array it allocated (heap corruption, seen at R3 under
// load). The batch asked for is at least twice what is pending.
natsStatus FetchBatch(natsMsgList* list, natsSubscription* sub, int batch, int64_t timeout_ms,
                      jsErrCode* code);

// What herald keeps on JetStream, made when missing. An existing one is used as it is: settings
// that differ are reported through the client's log, never changed (js_AddConsumer would update
// a consumer silently).
struct StreamSpec {
  std::string name, subjects, description;  // one subject filter
  bool work_queue = true;                   // else limits retention
  std::chrono::seconds duplicates{120};     // the Nats-Msg-Id window
};
absl::Status EnsureStream(NatsClient& client, const StreamSpec& spec);

struct ConsumerSpec {
  std::string stream, name, filter, description;  // a durable pull consumer, explicit acks
  std::chrono::milliseconds ack_wait{30'000};
  int64_t max_ack_pending = 10'000;
};
absl::Status EnsureConsumer(NatsClient& client, const ConsumerSpec& spec);

struct BucketSpec {
  std::string name, description;
  int64_t history = 1;
  std::chrono::milliseconds ttl{0};  // 0: keys never age out
};
// Binds `*kv` to the bucket.
absl::Status EnsureBucket(NatsClient& client, const BucketSpec& spec, kvStore** kv);

class NatsClient {
 public:
  // Connects, retrying every second (each failure logged) until `connect_wait` passes or `stop`
  // says yes; then Unavailable.
  static absl::StatusOr<std::unique_ptr<NatsClient>> Connect(
      NatsOptions options, const std::function<bool()>& stop = {});
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  natsConnection* connection() { return nc_; }
  jsCtx* js() { return js_; }
  const NatsOptions& options() const { return options_; }
  // `<prefix>_<suffix>`: the name of one of herald's streams, consumers or buckets.
  std::string Name(std::string_view suffix) const;

  bool connected() const { return shared_->connected.load(std::memory_order_relaxed); }
  uint64_t disconnects() const { return shared_->disconnects.load(std::memory_order_relaxed); }
  uint64_t reconnects() const { return shared_->reconnects.load(std::memory_order_relaxed); }

 private:
  // What the connection's callbacks use. They run on cnats's own thread, the last of them (the
  // closed callback, which frees this) after the client is gone.
  struct Shared {
    std::function<void(std::string_view)> log;
    std::atomic<bool> connected{false}, closing{false};
    std::atomic<uint64_t> disconnects{0}, reconnects{0};
    void Log(std::string_view line) const {
      if (log) log(line);
    }
  };
  explicit NatsClient(NatsOptions options);
  static void Disconnected(natsConnection* nc, void* shared);
  static void Reconnected(natsConnection* nc, void* shared);
  static void Closed(natsConnection* nc, void* shared);
  static void AsyncError(natsConnection* nc, natsSubscription* sub, natsStatus err, void* shared);

  const NatsOptions options_;
  Shared* shared_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace herald::jetstream
