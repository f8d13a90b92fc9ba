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

class Api {
 public:
  struct Options {
    std::string api_key;     // management (and ingest unless ingest_key is set); empty = open
    std::string ingest_key;  // ingest only
  };
  // `sink`, when given, is the engine's sink; its counts are exported as metrics.
  // `journal`, when given, makes every change durable before it is answered.
  Api(Engine& engine, Options options, const CountingSink* sink = nullptr,
      store::ConfigJournal* journal = nullptr);

  void Handle(const HttpRequest& request, HttpResponse& response);
  void set_ready(bool ready) { ready_.store(ready); }

 private:
  // `native` is the "/{channel}/{event}" after /v1/events, or empty for envelopes.
  void Ingest(const HttpRequest& request, std::string_view native, HttpResponse& response);
  void Subscriptions(const HttpRequest& request, std::string_view rest, std::string_view query,
                     HttpResponse& response);
  void Profiles(const HttpRequest& request, std::string_view rest, std::string_view query,
                HttpResponse& response);
  void Security(const HttpRequest& request, std::string_view rest, std::string_view query,
                HttpResponse& response);
  void Metrics(HttpResponse& response);

  Engine& engine_;
  const Options options_;
  const CountingSink* sink_;
  store::ConfigJournal* journal_;
  std::string catalog_json_;
  std::atomic<bool> ready_{false};
  // Responses by status class: 2xx, 4xx, 5xx.
  std::array<std::atomic<uint64_t>, 6> responses_{};
};

}  // namespace herald::server
