#include "engine/server/daemon.h"

#include <algorithm>
#include <thread>

#include "engine/common/strings.h"
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

// The embedded stores in data_dir: the config journal, loaded into the engine, and the spool.
absl::Status OpenLocalStores(DaemonConfig& config, store::Spool::Durability durability,
                             Engine& engine, WebhookDeliverer& deliverer,
                             std::unique_ptr<store::ConfigStore>* config_store,
                             std::unique_ptr<store::EventLog>* events, size_t* loaded) {
  auto journal = store::ConfigJournal::Open(config.data_dir, config.engine.log);
  if (!journal.ok()) return journal.status();
  *loaded = store::LoadConfig(**journal, engine, config.engine.log);
  engine.FlushIndex();
  *config_store = *std::move(journal);
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

}  // namespace

Daemon::Daemon(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Daemon::~Daemon() { Stop(); }

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(DaemonConfig config,
                                                       std::function<void(std::string_view)> out) {
  auto p = std::make_unique<Parts>();
  p->out = std::move(out);
  // Undelivered notifications stay in the event log, which replays them after a restart.
  config.delivery.log_replays_unsettled = true;
  const auto durability = store::ParseDurability(config.durability);
  if (!durability.ok()) return Misconfigured(durability.status());
  // Before the engine, so it outlives the engine's dispatch threads that feed it.
  auto deliverer = WebhookDeliverer::Create(config.delivery);
  if (!deliverer.ok()) return Refused(deliverer.status());
  p->deliverer = *std::move(deliverer);
  config.engine.sink = p->deliverer.get();
  auto engine = Engine::Create(config.engine);
  if (!engine.ok()) return Misconfigured(engine.status());
  p->engine = *std::move(engine);
  size_t loaded = 0;
  if (auto s = OpenLocalStores(config, *durability, *p->engine, *p->deliverer, &p->config_store,
                               &p->events, &loaded);
      !s.ok()) {
    return Refused(s);
  }
  p->loaded = loaded;
  p->deliverer->Start(*p->engine);
  p->running = true;  // from here on Stop has work to do
  p->api = std::make_unique<HttpApi>(*p->engine,
                                     HttpApi::Options{
                                         .api_key = config.api_key,
                                         .ingest_key = config.ingest_key,
                                         .max_event_bytes = config.engine.max_event_bytes,
                                         .max_batch_bytes = config.max_batch_bytes,
                                         .allow_private_targets = config.allow_private_targets,
                                         .limit_hits = &p->limit_hits,
                                         .name_lookup = config.name_lookup,
                                     },
                                     p->deliverer.get(), p->config_store.get(), p->events.get());
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
  p.Print(Cat("heraldd: state in ", p.config.data_dir, " (", p.loaded, " config records loaded, ",
              p.engine->subscription_count(), " subscriptions)"));
  // What the last run accepted but had not delivered, before anything new is accepted.
  if (auto s = p.events->Replay(stop); !s.ok()) {
    p.failed_start = true;
    Stop();
    return absl::Status(s.code(), Cat("replaying the spool: ", ToStd(s.message())));
  }
  p.events->Start();
  p.api->set_ready(true);
  p.Print(Cat("heraldd: event spool in ", p.config.data_dir, "/spool, durability ",
              p.config.durability, " (", p.events->stats().replayed, " records replayed); ready"));
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
