// heraldd's HTTP API over a herald::Engine (DESIGN §4): event ingest, the Subscriptions
// management API in the platform's shapes, the catalog, health and Prometheus metrics.
// Stateless apart from counters; any io thread may call Handle().
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "engine/server/http_server.h"
#include "engine/store/config_journal.h"
#include "herald/engine.h"

namespace herald::server {

// Serves every profile until webhook delivery lands: takes notifications off the queues and
// counts them per profile (herald_notifications_delivered_total).
class CountingSink final : public Sink {
 public:
  void Deliver(std::string_view profile_id, std::span<Notification> batch) override {
    std::lock_guard lock(mu_);
    counts_[std::string(profile_id)] += batch.size();
  }
  std::map<std::string, uint64_t> counts() const {
    std::lock_guard lock(mu_);
    return counts_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> counts_;
};

// A Prometheus histogram with fixed buckets, lock-free to observe.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
  void Observe(double seconds) {
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  }
  void Render(std::string& out, std::string_view name, std::string_view help) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

class Api {
 public:
  struct Options {
    std::string api_key;     // management (and ingest unless ingest_key is set); empty = open
    std::string ingest_key;  // ingest only
    size_t max_event_bytes = 1 << 20;
    size_t max_batch_bytes = 64u << 20;  // one NDJSON ingest request
  };
  // `sink`, when given, is the engine's sink; its counts are exported as metrics.
  // `journal`, when given, makes every change durable before it is answered.
  Api(Engine& engine, Options options, const CountingSink* sink = nullptr,
      store::ConfigJournal* journal = nullptr);

  void Handle(HttpRequest& request, HttpResponse& response);
  // HttpServer's header check: refuses unauthorized requests before their body is read, and
  // bounds bodies per route (events: max_event_bytes, or the NDJSON batch limit; management:
  // 1 MiB; import: the server's limit).
  bool CheckHeaders(const HttpRequest& request, HttpResponse& response, BodyPlan* plan);
  void set_ready(bool ready) { ready_.store(ready); }

 private:
  // `native` is the "/{channel}/{event}" after /v1/events, or empty for envelopes.
  void HandleRequest(HttpRequest& request, HttpResponse& response);
  void Ingest(HttpRequest& request, std::string_view native, HttpResponse& response);
  bool IngestAllowed(const std::string& authorization) const;
  void Subscriptions(const HttpRequest& request, std::string_view rest, std::string_view query,
                     HttpResponse& response);
  void Profiles(const HttpRequest& request, std::string_view rest, std::string_view query,
                HttpResponse& response);
  void Security(const HttpRequest& request, std::string_view rest, std::string_view query,
                HttpResponse& response);
  void Import(const HttpRequest& request, HttpResponse& response);
  void Metrics(HttpResponse& response);

  Engine& engine_;
  const Options options_;
  const CountingSink* sink_;
  store::ConfigJournal* journal_;
  std::string catalog_json_;
  std::atomic<bool> ready_{false};
  // Responses by status class: 2xx, 4xx, 5xx.
  std::array<std::atomic<uint64_t>, 6> responses_{};
  // Held across engine change → journal write → undo, so the journal records changes in the
  // order the engine applied them and an undo never races another request.
  std::mutex mutation_mu_;
  LatencyHistogram request_latency_;  // whole requests
  LatencyHistogram routing_latency_;  // Engine::Ingest / IngestNative calls
};

}  // namespace herald::server
