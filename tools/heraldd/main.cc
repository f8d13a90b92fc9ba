// heraldd: flags, signals and wiring; everything else is library code in engine/server/.
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <thread>

#include "engine/server/api.h"
#include "engine/server/daemon_config.h"
#include "engine/server/http_server.h"
#include "engine/store/delivery_log.h"
#include "herald/webhook_deliverer.h"

int main(int argc, char** argv) {
  auto config = herald::server::ParseDaemonConfig(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "heraldd: %s\n%s", std::string(config.status().message()).c_str(),
                 herald::server::DaemonUsage().c_str());
    return 2;
  }
  if (config->help) {
    std::fputs(herald::server::DaemonUsage().c_str(), stdout);
    return 0;
  }
  // A closed stdout or peer must not kill the daemon: writes report the error instead. Nor may
  // a file size limit: the spool's write fails and ingest answers 503.
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGXFSZ, SIG_IGN);
  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  config->engine.log = [](std::string_view line) {
    std::fprintf(stderr, "heraldd: %.*s\n", static_cast<int>(line.size()), line.data());
  };
  config->delivery.log = config->engine.log;
  // Undelivered notifications stay in the spool, which replays them after a restart.
  config->delivery.log_replays_unsettled = true;
  const auto durability = herald::store::ParseDurability(config->durability);
  if (!durability.ok()) {
    std::fprintf(stderr, "heraldd: %s\n", std::string(durability.status().message()).c_str());
    return 2;
  }
  // Before the engine, so it outlives the engine's dispatch threads that feed it.
  auto deliverer = herald::WebhookDeliverer::Create(config->delivery);
  if (!deliverer.ok()) {
    std::fprintf(stderr, "heraldd: %s\n", std::string(deliverer.status().message()).c_str());
    return 1;
  }
  config->engine.sink = deliverer->get();
  auto engine = herald::Engine::Create(config->engine);
  if (!engine.ok()) {
    std::fprintf(stderr, "heraldd: %s\n", std::string(engine.status().message()).c_str());
    return 2;
  }
  auto journal = herald::store::ConfigJournal::Open(config->data_dir, **engine, config->engine.log);
  if (!journal.ok()) {
    std::fprintf(stderr, "heraldd: %s\n", std::string(journal.status().message()).c_str());
    return 1;
  }
  (*engine)->FlushIndex();
  auto events = herald::store::DeliveryLog::Open(
      {.data_dir = config->data_dir,
       .durability = *durability,
       .segment_bytes = config->spool_segment_bytes,
       .cursor_interval = config->cursor_interval,
       .reoffer_queue_limit = config->engine.queue_max_notifications / 2,
       .retain_max_bytes = config->spool_retain_max_bytes,
       .retain_max_age = config->spool_retain_max_age,
       .bury =
           [&deliverer](std::string_view profile, std::span<herald::Notification> notifications,
                        std::string_view reason) {
             return (*deliverer)->BuryUndelivered(profile, notifications, reason);
           },
       .log = config->engine.log},
      **engine);
  if (!events.ok()) {
    std::fprintf(stderr, "heraldd: %s\n", std::string(events.status().message()).c_str());
    return 1;
  }
  (*deliverer)->Start(**engine);
  // The stop signals are taken by a thread of their own, so a SIGTERM is heard during the
  // replay too.
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  std::atomic<int> stop_signal{0};
  std::thread signals([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::lock_guard lock(stop_mu);
    stop_signal = signal;
    stop_cv.notify_all();
  });
  signals.detach();
  herald::server::LimitHits limit_hits;
  herald::server::Api api(**engine,
                          {.api_key = config->api_key,
                           .ingest_key = config->ingest_key,
                           .max_event_bytes = config->engine.max_event_bytes,
                           .max_batch_bytes = config->max_batch_bytes,
                           .allow_private_targets = config->allow_private_targets,
                           .limit_hits = &limit_hits},
                          deliverer->get(), journal->get(), events->get());
  const int threads = config->threads > 0
                          ? config->threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  herald::server::HttpServer server(
      {.host = config->listen_host,
       .port = config->listen_port,
       .threads = threads,
       .max_body_bytes = std::max<size_t>(config->engine.max_event_bytes, 512u << 20),
       .new_ingest_buffer = [&engine](size_t n) { return (*engine)->NewIngestBuffer(n); },
       .max_connections = config->max_connections,
       .max_header_bytes = config->max_header_bytes,
       .header_timeout = config->header_timeout,
       .body_timeout = config->body_timeout,
       .max_requests_per_second = config->max_requests_per_second,
       .hits = &limit_hits},
      [&api](herald::server::HttpRequest& req, herald::server::HttpResponse& res) {
        api.Handle(req, res);
      },
      [&api](const herald::server::HttpRequest& req, herald::server::HttpResponse& res,
             herald::server::BodyPlan* plan) { return api.CheckHeaders(req, res, plan); });
  // Listening before the replay: /healthz answers and /readyz says "not yet"; everything else
  // waits for the replay (503 with Retry-After).
  if (auto s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "heraldd: %s\n", std::string(s.message()).c_str());
    (*deliverer)->Stop(std::chrono::milliseconds(0));  // while the engine it reads still exists
    (*events)->Stop();
    return 1;
  }
  std::printf("heraldd listening on http://%s:%u\n", config->listen_host.c_str(), server.port());
  if (config->api_key.empty()) {
    std::printf(
        "heraldd: no --api-key set: listening on loopback only, open to every local user; set "
        "--api-key to listen elsewhere\n");
  }
  std::printf("heraldd: state in %s (%zu records replayed, %zu subscriptions)\n",
              config->data_dir.c_str(), (*journal)->stats().replayed,
              (*engine)->subscription_count());
  std::fflush(stdout);
  // What the last run accepted but had not delivered, before anything new is accepted.
  if (auto s = (*events)->Replay([&] { return stop_signal.load() != 0; }); !s.ok()) {
    const bool stopped = absl::IsCancelled(s);
    std::fprintf(stderr, "heraldd: replaying the spool: %s\n", std::string(s.message()).c_str());
    server.Stop();
    (*deliverer)->Stop(std::chrono::milliseconds(0));
    (*events)->Stop();
    if (stopped) std::printf("heraldd: stopped\n");
    return stopped ? 0 : 1;
  }
  (*events)->Start();
  api.set_ready(true);
  std::printf("heraldd: event spool in %s/spool, durability %s (%llu records replayed); ready\n",
              config->data_dir.c_str(), config->durability.c_str(),
              static_cast<unsigned long long>((*events)->stats().replayed));
  std::fflush(stdout);

  {
    std::unique_lock lock(stop_mu);
    stop_cv.wait(lock, [&] { return stop_signal.load() != 0; });
  }
  const int signal = stop_signal.load();
  std::printf("heraldd: %s received, stopping\n", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  api.set_ready(false);
  server.Stop();
  (*deliverer)->Stop(config->shutdown_grace);
  (*events)->Stop();  // the last cursors, after delivery stopped
  if (auto s = (*journal)->Compact(); !s.ok()) {
    std::fprintf(stderr, "heraldd: compacting the store: %s\n", std::string(s.message()).c_str());
  }
  std::printf("heraldd: stopped\n");
  return 0;
}
