// heraldd's HTTP API over a herald::Engine (DESIGN §4): event ingest, the Subscriptions
// management API in the platform's shapes, the catalog, health and Prometheus metrics.
// Stateless apart from counters; any io thread may call Handle().
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "engine/common/latency_histogram.h"
#include "engine/server/http_server.h"
#include "engine/server/target_lookups.h"
#include "engine/store/config_journal.h"
#include "engine/store/delivery_log.h"
#include "herald/engine.h"
#include "herald/webhook_deliverer.h"

namespace herald::server {

class Api {
 public:
  struct Options {
    std::string api_key;     // management (and ingest unless ingest_key is set); empty = open
    std::string ingest_key;  // ingest only
    size_t max_event_bytes = 1 << 20;
    size_t max_batch_bytes = 64u << 20;  // one NDJSON ingest request
    bool allow_private_targets = false;  // webhooks may target loopback and private addresses
    LimitHits* limit_hits = nullptr;     // the server's, exported as metrics; counts 403 limits
  };
  // `deliverer`, when given, is the engine's sink: its metrics are exported, its dead letters
  // served, and updating a profile it disabled enables it again.
  // `journal`, when given, makes every change durable before it is answered.
  // `events`, when given, spools every ingest request before it is routed and answered.
  Api(Engine& engine, Options options, WebhookDeliverer* deliverer = nullptr,
      store::ConfigJournal* journal = nullptr, store::DeliveryLog* events = nullptr);

  void Handle(HttpRequest& request, HttpResponse& response);
  // HttpServer's header check: refuses unauthorized requests before their body is read, and
  // bounds bodies per route (events: max_event_bytes, or the NDJSON batch limit; management:
  // 1 MiB; import: the server's limit).
  bool CheckHeaders(const HttpRequest& request, HttpResponse& response, BodyPlan* plan);
  void set_ready(bool ready) { ready_.store(ready); }

 private:
  // `looked_up`: the hosts the body names were looked up (see DeferForLookups).
  void HandleRequest(HttpRequest& request, HttpResponse& response, bool looked_up = false);
  // A management write naming hosts not looked up lately: answers once they are, running the
  // request again on the lookups' thread, and returns true.
  bool DeferForLookups(HttpRequest& request, HttpResponse& response);
  // `native` is the "/{channel}/{event}" after /v1/events, or empty for envelopes.
  void Ingest(HttpRequest& request, std::string_view native, HttpResponse& response);
  enum class Scope { kIngest, kManagement };
  // The key scopes: the management key may do everything, the ingest key only ingest. Answers
  // 401 (missing or wrong key) or 403 (the ingest key on the management API) itself.
  bool Authorize(const HttpRequest& request, Scope scope, HttpResponse& response) const;
  void Subscriptions(const HttpRequest& request, std::string_view rest, std::string_view query,
                     HttpResponse& response);
  void Profiles(const HttpRequest& request, std::string_view rest, std::string_view query,
                HttpResponse& response);
  void Security(const HttpRequest& request, std::string_view rest, std::string_view query,
                HttpResponse& response);
  void Import(const HttpRequest& request, HttpResponse& response);
  // Before a write: masked values sent back take the stored ones, then the model's validation
  // and the SSRF guard (the profile's notifyUrl, the setting's tokenUrl). Answers 400 with every
  // field's errors and returns false.
  bool CheckWrite(NotificationProfile* profile, SecuritySetting* security,
                  HttpResponse& response) const;
  void DeadLetters(const HttpRequest& request, std::string_view rest, std::string_view query,
                   HttpResponse& response);
  void Metrics(HttpResponse& response);
  // A profile as the API shows it, with the deliverer's `disabled` flag.
  std::string EncodeProfile(const NotificationProfile& profile) const;

  Engine& engine_;
  const Options options_;
  WebhookDeliverer* deliverer_;
  store::ConfigJournal* journal_;
  store::DeliveryLog* events_;
  std::string catalog_json_;
  std::atomic<bool> ready_{false};
  // Responses by status class: 2xx, 4xx, 5xx.
  std::array<std::atomic<uint64_t>, 6> responses_{};
  // Held across engine change → journal write → undo, so the journal records changes in the
  // order the engine applied them and an undo never races another request.
  std::mutex mutation_mu_;
  LatencyHistogram request_latency_;        // whole requests
  LatencyHistogram routing_latency_;        // Engine::Ingest / IngestNative calls
  std::unique_ptr<TargetLookups> lookups_;  // unless allow_private_targets
};

}  // namespace herald::server
