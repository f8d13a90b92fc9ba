#include "engine/server/daemon.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "absl/strings/str_join.h"
#include "engine/common/strings.h"
#include "engine/jetstream/kv_config_store.h"
#include "engine/jetstream/kv_dead_letters.h"
#include "engine/jetstream/nats_client.h"
#include "engine/jetstream/stream_event_log.h"
#include "engine/server/http_api.h"
#include "engine/server/http_server.h"
#include "engine/store/config_journal.h"
#include "engine/store/config_records.h"
#include "engine/store/delivery_log.h"
#include "herald/webhook_deliverer.h"

namespace herald::server {

struct Daemon::Parts {
  DaemonConfig config;
  std::function<void(std::string_view)> out;
  // Declared in construction order, destroyed in reverse: the deliverer outlives the engine's
  // dispatch threads that feed it, the server goes before the API it calls.
  std::unique_ptr<jetstream::NatsClient> nats;  // --store jetstream: before what uses it
  std::unique_ptr<WebhookDeliverer> deliverer;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<store::ConfigStore> config_store;
  std::unique_ptr<store::EventLog> events;
  LimitHits limit_hits;
  std::unique_ptr<HttpApi> api;
  std::unique_ptr<HttpServer> server;
  bool listening = false;
  bool running = false;  // started, not stopped
  bool failed_start = false;
  size_t loaded = 0;  // config records loaded into the engine

  void Print(std::string_view line) const {
    if (out) out(line);
  }
};

namespace {

// The config store, loaded into the engine: the journal in data_dir, or (--store jetstream) the
// KV bucket every instance shares. Returns the revision loaded.
absl::StatusOr<uint64_t> OpenConfigStore(DaemonConfig& config, Engine& engine,
                                         jetstream::NatsClient* nats,
                                         std::unique_ptr<store::ConfigStore>* config_store,
                                         size_t* loaded) {
  if (nats != nullptr) {
    auto kv = jetstream::KvConfigStore::Open(*nats);
    if (!kv.ok()) return kv.status();
    *config_store = *std::move(kv);
  } else {
    auto journal = store::ConfigJournal::Open(config.data_dir, config.engine.log);
    if (!journal.ok()) return journal.status();
    *config_store = *std::move(journal);
  }
  // The revision first: what changes while the rest loads is applied again from the watch.
  const uint64_t revision = (*config_store)->revision();
  *loaded = store::LoadConfig(**config_store, engine, config.engine.log);
  engine.FlushIndex();
  return revision;
}

// The event spool in data_dir, or (--store jetstream) the stream every instance shares.
absl::Status OpenEventLog(DaemonConfig& config, store::Spool::Durability durability, Engine& engine,
                          WebhookDeliverer& deliverer, jetstream::NatsClient* nats,
                          std::unique_ptr<store::EventLog>* events) {
  if (nats != nullptr) {
    auto stream = jetstream::StreamEventLog::Open(
        *nats, engine,
        {.deliveries = {.max_held = std::max<size_t>(1, config.engine.queue_max_notifications)}});
    if (!stream.ok()) return stream.status();
    *events = *std::move(stream);
    return absl::OkStatus();
  }
  auto log = store::DeliveryLog::Open(
      {.data_dir = config.data_dir,
       .durability = durability,
       .segment_bytes = config.spool_segment_bytes,
       .cursor_interval = config.cursor_interval,
       .reoffer_queue_limit = config.engine.queue_max_notifications / 2,
       .retain_max_bytes = config.spool_retain_max_bytes,
       .retain_max_age = config.spool_retain_max_age,
       .bury =
           [&deliverer](std::string_view profile, std::span<Notification> notifications,
                        std::string_view reason) {
             return deliverer.BuryUndelivered(profile, notifications, reason);
           },
       .log = config.engine.log},
      engine);
  if (!log.ok()) return log.status();
  *events = *std::move(log);
  return absl::OkStatus();
}

// The machine refused (a file, a port, a certificate): exit 1, not the configuration's 2.
absl::Status Refused(const absl::Status& s) {
  if (!absl::IsInvalidArgument(s)) return s;
  return absl::FailedPreconditionError(s.message());
}

// The configuration is wrong: exit 2.
absl::Status Misconfigured(const absl::Status& s) {
  return absl::InvalidArgumentError(s.message());
}

// --store jetstream: the connection, the config watch and the stream, on this instance.
void JetStreamMetrics(PrometheusWriter& w, const jetstream::NatsClient& nats,
                      const jetstream::KvConfigStore& config,
                      const jetstream::StreamEventLog& events) {
  w.Gauge("herald_nats_connected", "1 while connected to NATS.", nats.connected() ? 1 : 0);
  w.Counter("herald_nats_reconnects_total", "Reconnections to NATS after a lost connection.",
            nats.reconnects());
  w.Gauge("herald_config_watch_lag", "KV revisions of the config not yet seen by this instance.",
          config.lag());
  w.Counter("herald_config_watch_restarts_total",
            "Times the config watch was made again (it stalled or failed).",
            config.watch_restarts());
  const auto s = events.stream_stats();
  w.Counter("herald_stream_published_total", "Ingest requests stored in the events stream.",
            s.published);
  w.Counter("herald_stream_publish_errors_total",
            "Ingest requests refused (503) because the stream could not store them.",
            s.publish_errors);
  w.Counter("herald_stream_routed_total", "Requests this instance took from the stream and routed.",
            s.routed);
  w.Counter("herald_stream_acked_total",
            "Requests this instance routed, their notifications stored, and acknowledged.",
            s.acked);
  w.Counter("herald_stream_route_failures_total",
            "Requests handed back to be routed again: a notification was not stored.",
            s.route_failures);
  w.Counter("herald_deliveries_published_total",
            "Notifications this instance published to the deliveries stream.", s.notifications);
  w.Gauge("herald_stream_consumer_lag",
          "Requests in the stream not yet handed to any instance (read every 2 s).",
          s.consumer_pending);
  w.Gauge("herald_stream_consumer_ack_pending",
          "Requests handed out and not yet acknowledged, on every instance (read every 2 s).",
          s.consumer_ack_pending);
  const auto& d = s.deliveries;
  w.Gauge("herald_partitions_owned", "Delivery partitions this instance holds the lease of.",
          d.owned);
  w.Gauge("herald_members_live", "heraldd instances this one sees alive, itself included.",
          d.live_members);
  w.Counter("herald_partition_lease_changes_total",
            "Partition leases this instance took, released or lost.", d.lease_changes);
  w.Counter("herald_deliveries_fetched_total",
            "Notifications this instance took from its partitions.", d.fetched);
  w.Counter("herald_deliveries_acked_total",
            "Notifications settled here (delivered or a dead letter) and acknowledged.", d.acked);
  w.Counter("herald_deliveries_retries_total",
            "Notifications handed back to the deliveries stream to be attempted again later.",
            d.retries);
  w.Counter("herald_deliveries_dropped_total",
            "Notifications acknowledged undelivered: their profile no longer exists.", d.dropped);
  w.Gauge("herald_stream_pending_acks", "Notifications this instance holds until they are settled.",
          d.held);
  w.Gauge("herald_stream_waiting_for_room",
          "Held notifications a full queue refused, offered again as it drains.",
          d.waiting_for_room);
}

// The same, for /v1/stats (and heraldctl status).
void JetStreamStats(JsonWriter& w, const jetstream::NatsClient& nats,
                    const jetstream::KvConfigStore& config,
                    const jetstream::StreamEventLog& events) {
  const auto s = events.stream_stats();
  const auto& d = s.deliveries;
  w.Field("connected", nats.connected())
      .Field("reconnects", nats.reconnects())
      .Field("configWatchLag", config.lag())
      .Field("published", s.published)
      .Field("publishErrors", s.publish_errors)
      .Field("routed", s.routed)
      .Field("routeFailures", s.route_failures)
      .Field("notificationsPublished", s.notifications)
      .Field("consumerLag", s.consumer_pending)
      .Field("consumerAckPending", s.consumer_ack_pending)
      .Field("instance", events.deliveries().instance())
      .Field("liveMembers", d.live_members)
      .Field("partitions", static_cast<int64_t>(nats.options().partitions))
      .Field("partitionsOwned", d.owned)
      .Field("leaseChanges", d.lease_changes)
      .Field("fetched", d.fetched)
      .Field("acked", d.acked)
      .Field("pendingAcks", d.held)
      .Field("waitingForRoom", d.waiting_for_room)
      .Field("retries", d.retries)
      .Field("dropped", d.dropped);
}

}  // namespace

Daemon::Daemon(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Daemon::~Daemon() { Stop(); }

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(DaemonConfig config,
                                                       std::function<void(std::string_view)> out) {
  auto p = std::make_unique<Parts>();
  p->out = std::move(out);
  // Undelivered notifications stay in the event log, which replays them after a restart.
  config.delivery.log_replays_unsettled = true;
  // --store jetstream: retries wait in the deliveries stream (NakWithDelay), not in memory
  // here. The deliverer comes first, the stream once connected.
  auto partitions = std::make_shared<std::atomic<jetstream::DeliveryPartitions*>>(nullptr);
  if (config.store == "jetstream") {
    config.delivery.retry_through_log = [partitions](std::span<Notification* const> n,
                                                     std::chrono::milliseconds delay) {
      jetstream::DeliveryPartitions* d = partitions->load();
      return d != nullptr && d->RetryLater(n, delay);
    };
  }
  const auto durability = store::ParseDurability(config.durability);
  if (!durability.ok()) return Misconfigured(durability.status());
  if (config.store == "jetstream") {
    config.jetstream.log = config.engine.log;
    auto nats = jetstream::NatsClient::Connect(config.jetstream);
    // Unreachable NATS is the deployment's to fix, as a bad setting is: exit 2.
    if (!nats.ok()) return Misconfigured(nats.status());
    p->nats = *std::move(nats);
    // Dead letters in a bucket every instance shares, bounded as the file would be.
    auto dead_letters = jetstream::KvDeadLetters::Open(
        *p->nats, {.max_bytes = config.delivery.dead_letters_max_bytes,
                   .max_age = config.delivery.dead_letters_max_age});
    if (!dead_letters.ok()) return Refused(dead_letters.status());
    config.delivery.dead_letters = *std::move(dead_letters);
    if (std::error_code ec; std::filesystem::exists(config.data_dir + "/dead-letters.log", ec)) {
      p->Print(Cat("heraldd: ", config.data_dir,
                   "/dead-letters.log holds dead letters of the embedded store; with --store "
                   "jetstream they are not listed or replayed (start heraldd without it to "
                   "replay them)"));
    }
  }
  // Before the engine, so it outlives the engine's dispatch threads that feed it.
  auto deliverer = WebhookDeliverer::Create(config.delivery);
  config.delivery.dead_letters.reset();  // the deliverer's now, and it goes before the client
  if (!deliverer.ok()) return Refused(deliverer.status());
  p->deliverer = *std::move(deliverer);
  config.engine.sink = p->deliverer.get();
  auto engine = Engine::Create(config.engine);
  if (!engine.ok()) return Misconfigured(engine.status());
  p->engine = *std::move(engine);
  size_t loaded = 0;
  auto loaded_revision =
      OpenConfigStore(config, *p->engine, p->nats.get(), &p->config_store, &loaded);
  if (!loaded_revision.ok()) return Refused(loaded_revision.status());
  if (auto s =
          OpenEventLog(config, *durability, *p->engine, *p->deliverer, p->nats.get(), &p->events);
      !s.ok()) {
    return Refused(s);
  }
  p->loaded = loaded;
  if (p->nats) {
    partitions->store(&static_cast<jetstream::StreamEventLog*>(p->events.get())->deliveries());
  }
  p->deliverer->Start(*p->engine);
  p->running = true;  // from here on Stop has work to do
  std::function<void(PrometheusWriter&)> store_metrics;
  std::function<void(JsonWriter&)> store_stats;
  if (p->nats) {
    const auto* nats = p->nats.get();
    const auto* kv = static_cast<const jetstream::KvConfigStore*>(p->config_store.get());
    const auto* events = static_cast<const jetstream::StreamEventLog*>(p->events.get());
    store_metrics = [=](PrometheusWriter& w) { JetStreamMetrics(w, *nats, *kv, *events); };
    store_stats = [=](JsonWriter& w) { JetStreamStats(w, *nats, *kv, *events); };
  }
  p->api = std::make_unique<HttpApi>(*p->engine,
                                     HttpApi::Options{
                                         .api_key = config.api_key,
                                         .ingest_key = config.ingest_key,
                                         .max_event_bytes = config.engine.max_event_bytes,
                                         .max_batch_bytes = config.max_batch_bytes,
                                         .allow_private_targets = config.allow_private_targets,
                                         .limit_hits = &p->limit_hits,
                                         .name_lookup = config.name_lookup,
                                         .store_metrics = std::move(store_metrics),
                                         .store_stats = std::move(store_stats),
                                     },
                                     p->deliverer.get(), p->config_store.get(), p->events.get());
  if (p->config_store->shared()) {
    // Every other instance's change, from the revision loaded on, applied here as it comes.
    auto* kv = static_cast<jetstream::KvConfigStore*>(p->config_store.get());
    auto log = config.engine.log;
    if (auto s = kv->Watch(
            *loaded_revision,
            [api = p->api.get(), kv, log](const store::ConfigEntry& change) {
              api->management().ApplyWatched(
                  change, [kv](const store::ConfigEntry& c) { return kv->NeedsApplying(c); }, log);
            });
        !s.ok()) {
      return Refused(s);
    }
  }
  const int threads = config.threads > 0
                          ? config.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  Engine* engine_ptr = p->engine.get();
  HttpApi* api = p->api.get();
  p->server = std::make_unique<HttpServer>(
      HttpServer::Options{
          .host = config.listen_host,
          .port = config.listen_port,
          .threads = threads,
          .max_body_bytes = std::max<size_t>(config.engine.max_event_bytes, 512u << 20),
          .new_ingest_buffer = [engine_ptr](size_t n) { return engine_ptr->NewIngestBuffer(n); },
          .max_connections = config.max_connections,
          .max_header_bytes = config.max_header_bytes,
          .header_timeout = config.header_timeout,
          .body_timeout = config.body_timeout,
          .max_requests_per_second = config.max_requests_per_second,
          .hits = &p->limit_hits},
      [api](HttpRequest& req, HttpResponse& res) { api->Handle(req, res); },
      [api](HttpRequest& req, HttpResponse& res, BodyPlan* plan) {
        return api->CheckHeaders(req, res, plan);
      });
  p->config = std::move(config);
  return std::unique_ptr<Daemon>(new Daemon(std::move(p)));
}

absl::Status Daemon::Start(const std::function<bool()>& stop) {
  Parts& p = *parts_;
  // Listening before the replay: /healthz answers and /readyz says "not yet"; everything else
  // waits for the replay (503 with Retry-After).
  if (auto s = p.server->Start(); !s.ok()) {
    p.failed_start = true;
    Stop();
    return s;
  }
  p.listening = true;
  p.Print(Cat("heraldd listening on http://", p.config.listen_host, ":", p.server->port()));
  if (p.config.api_key.empty()) {
    p.Print(
        "heraldd: no --api-key set: listening on loopback only, open to every local user; set "
        "--api-key to listen elsewhere");
  }
  if (p.nats) {
    p.Print(Cat("heraldd: config in JetStream KV bucket ", p.nats->Name("config"), " at ",
                absl::StrJoin(p.config.jetstream.urls, ","), " (", p.loaded,
                " config records loaded, ", p.engine->subscription_count(),
                " subscriptions); shared with every instance"));
  } else {
    p.Print(Cat("heraldd: state in ", p.config.data_dir, " (", p.loaded, " config records loaded, ",
                p.engine->subscription_count(), " subscriptions)"));
  }
  // What the last run accepted but had not delivered, before anything new is accepted.
  if (auto s = p.events->Replay(stop); !s.ok()) {
    p.failed_start = true;
    Stop();
    return absl::Status(s.code(), Cat("replaying the spool: ", ToStd(s.message())));
  }
  p.events->Start();
  p.api->set_ready(true);
  if (p.nats) {
    p.Print(Cat("heraldd: events on JetStream stream ", p.nats->Name("events"), " (replicas ",
                p.config.jetstream.replicas, "), routed through consumer ", p.nats->Name("route"),
                ", delivered from ", p.config.jetstream.partitions, " partitions of ",
                p.nats->Name("deliveries"), ", dead letters in KV bucket ",
                p.nats->Name("dead_letters"), "; ready"));
  } else {
    p.Print(Cat("heraldd: event spool in ", p.config.data_dir, "/spool, durability ",
                p.config.durability, " (", p.events->stats().replayed,
                " records replayed); ready"));
  }
  return absl::OkStatus();
}

void Daemon::Stop() {
  Parts& p = *parts_;
  if (!p.running) return;
  p.running = false;
  p.api->Stop();  // before the server: the writes it holds are answered while it still runs
  if (p.listening) p.server->Stop();
  // A start that failed drops what is held at once: the event log has it for the next start.
  p.deliverer->Stop(p.failed_start ? std::chrono::milliseconds(0) : p.config.shutdown_grace);
  p.events->Stop();  // the last cursors, after delivery stopped
  if (auto s = p.config_store->Close(); !s.ok() && p.config.engine.log) {
    p.config.engine.log(Cat("closing the config store: ", ToStd(s.message())));
  }
}

uint16_t Daemon::port() const { return parts_->server->port(); }

Engine& Daemon::engine() { return *parts_->engine; }

}  // namespace herald::server
