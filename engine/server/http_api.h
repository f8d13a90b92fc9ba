// heraldd's HTTP API over a herald::Engine (DESIGN §4): event ingest, the Subscriptions management
// API in the platform's shapes, dead letters, the catalog, health and Prometheus metrics.
//
// A route table — method, path pattern, key scope, body limit, handler — is matched once, by the
// header check, before a body is read: an unauthorized or unknown request costs no body, and the
// match travels with the request to its handler. Handlers per area decode, call the
// ManagementService (every config change) or the EventLog (ingest), and encode:
// ingest_handlers.cc, management_handlers.cc, dead_letter_handlers.cc, metrics_handler.cc.
// Stateless apart from counters; any io thread may call Handle().
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/json_writer.h"
#include "engine/common/latency_histogram.h"
#include "engine/server/http_server.h"
#include "engine/server/management_service.h"
#include "engine/server/prometheus.h"
#include "engine/server/query.h"
#include "engine/server/target_lookups.h"
#include "engine/store/config_store.h"
#include "engine/store/event_log.h"
#include "herald/engine.h"
#include "herald/webhook_deliverer.h"

namespace herald::server {

// "endpointValidation":{"state","reason","allowedRatePerMinute"} of a CLOUDEVENTS profile, for
// GET …/profiles/{id} and /v1/stats (operations_handlers.cc).
void EncodeValidation(JsonWriter& w, const ProfileDeliveryStats& s);

class HttpApi {
 public:
  struct Options {
    std::string api_key;     // management (and ingest unless ingest_key is set); empty = open
    std::string ingest_key;  // ingest only
    size_t max_event_bytes = 1 << 20;
    size_t max_batch_bytes = 64u << 20;  // one NDJSON ingest request
    bool allow_private_targets = false;  // webhooks may target loopback and private addresses
    LimitHits* limit_hits = nullptr;     // the server's, exported as metrics; counts 403 limits
    // The write-time SSRF guard's name lookups (blocking); the system's when empty.
    deliver::Resolver::LookupFn name_lookup;
    // When set, /metrics shows what it writes instead of the event spool's (--store jetstream).
    std::function<void(PrometheusWriter&)> store_metrics;
    // When set, /v1/stats has a "jetstream" object with what it writes (its fields), and no
    // spool gauges.
    std::function<void(JsonWriter&)> store_stats;
  };
  // `deliverer`, when given, is the engine's sink: its metrics are exported, its dead letters
  // served, and updating a profile it disabled enables it again.
  // `config`, when given, makes every change durable before it is answered.
  // `events`, when given, makes every ingest request durable before it is routed and answered.
  HttpApi(Engine& engine, Options options, WebhookDeliverer* deliverer = nullptr,
          store::ConfigStore* config = nullptr, store::EventLog* events = nullptr);
  ~HttpApi();

  void Handle(HttpRequest& request, HttpResponse& response);
  // HttpServer's header check: matches the route, refuses unauthorized requests before their
  // body is read, and bounds bodies per route (events: max_event_bytes, or the NDJSON batch
  // limit; management: 1 MiB; import: the server's limit).
  bool CheckHeaders(HttpRequest& request, HttpResponse& response, BodyPlan* plan);
  void set_ready(bool ready) { ready_.store(ready); }
  // Every config change goes through it (with a shared store, other instances' too).
  ManagementService& management() { return management_; }
  // Stops answering as ready and answers the writes waiting for target lookups (503), after at
  // most the lookup in flight. Call it before stopping the HttpServer: from then on no answer
  // comes from a thread of the API's own.
  void Stop();

 private:
  enum class Scope { kOpen, kIngest, kManagement };
  // What a handler gets: the request, the path's {parameters} in order, and its query.
  struct Call {
    HttpRequest& request;
    HttpResponse& response;
    const std::vector<std::string>& params;
    const Query& query;
  };
  struct Route {
    std::string_view method;
    std::string_view pattern;  // segments, "{name}" matching any one
    Scope scope;
    size_t body_limit;   // bytes; 0 keeps the server's
    bool names_targets;  // a write whose hosts the SSRF guard looks up first
    void (HttpApi::*handler)(Call& call);
  };
  static const std::vector<Route>& Routes();
  // Matches request.target to request.route and request.path_params; answers 404 or 405 and
  // returns false when nothing matches.
  bool Match(HttpRequest& request, HttpResponse& response) const;
  // The key scopes: the management key may do everything, the ingest key only ingest. Answers
  // 401 (missing or wrong key) or 403 (the ingest key on the management API) itself.
  bool Authorize(const HttpRequest& request, Scope scope, HttpResponse& response) const;
  // `looked_up`: the hosts the body names were looked up (see DeferForLookups).
  void Dispatch(HttpRequest& request, HttpResponse& response, bool looked_up);
  // A management write naming hosts not looked up lately: answers once they are, running the
  // request again on the lookups' thread, and returns true.
  bool DeferForLookups(HttpRequest& request, HttpResponse& response);
  // Counts an answer in the metrics (status class, limits hit).
  void Count(const HttpResponse& response);

  void Healthz(Call& call);
  void Readyz(Call& call);
  void Catalog(Call& call);
  // The dashboard's files (ui_handlers.cc).
  void Ui(Call& call);
  // An example payload of the event (examples.h), under its canonical names.
  void CatalogExample(Call& call);
  void Metrics(Call& call);
  // ingest_handlers.cc
  void IngestEnvelopes(Call& call);
  void IngestNative(Call& call);
  void Ingest(Call& call, std::string_view channel, std::string_view event);
  // management_handlers.cc
  void CreateSubscription(Call& call);
  void ListSubscriptions(Call& call);
  void GetSubscription(Call& call);
  void UpdateSubscription(Call& call);
  void DeleteSubscription(Call& call);
  void CreateProfile(Call& call);
  void ListProfiles(Call& call);
  void GetProfile(Call& call);
  void UpdateProfile(Call& call);
  void DeleteProfile(Call& call);
  void CreateSecurity(Call& call);
  void ListSecurity(Call& call);
  void GetSecurity(Call& call);
  void UpdateSecurity(Call& call);
  void DeleteSecurity(Call& call);
  void Import(Call& call);
  // certificate_handlers.cc
  void CreateCertificate(Call& call);
  void ListCertificates(Call& call);
  void GetCertificate(Call& call);
  void DeleteCertificate(Call& call);
  void ListCertificateStatuses(Call& call);
  void GetCertificateStatus(Call& call);
  void TestCertificateConnection(Call& call);
  template <typename Encode>
  void AnswerPage(Call& call, Encode encode);
  // The path's channel in its canonical name, or "" after answering 404.
  std::string Channel(Call& call) const;
  // Before a write, under the ManagementService's lock: masked values sent back take the stored
  // ones, then the model's validation and the SSRF guard (the profile's notifyUrl, the setting's
  // tokenUrl). Returns every field's errors.
  ValidationErrors CheckWrite(NotificationProfile* profile, SecuritySetting* security) const;
  // A profile as the API shows it, with the deliverer's `disabled` flag.
  std::string EncodeProfile(const NotificationProfile& profile) const;
  // dead_letter_handlers.cc
  void ListDeadLetters(Call& call);
  void DeleteDeadLetters(Call& call);
  void ReplayDeadLetters(Call& call);
  // operations_handlers.cc
  std::string StatsJson() const;
  void Stats(Call& call);
  void StatsStream(Call& call);
  // ?profileId&status&event&limit&after; InvalidArgument naming the bad field.
  absl::StatusOr<DeliveryQuery> ParseDeliveryQuery(const Query& query) const;
  void Deliveries(Call& call);
  void DeliveriesStream(Call& call);
  void ResendDelivery(Call& call);
  void ExplainRoute(Call& call);

  // management_handlers.cc: conditional writes. A GET's ETag is the stored entry's revision;
  // If-Match sends it back. False (answered 412) when If-Match is not one of ours.
  void SetETag(Call& call, store::ConfigKind kind, const std::string& id) const;
  bool IfMatch(Call& call, uint64_t* revision) const;

  Engine& engine_;
  const Options options_;
  WebhookDeliverer* deliverer_;
  store::ConfigStore* config_;
  store::EventLog* events_;
  ManagementService management_;
  std::string catalog_json_;
  std::atomic<bool> ready_{false};
  // Responses by status class: 2xx, 4xx, 5xx.
  std::array<std::atomic<uint64_t>, 6> responses_{};
  LatencyHistogram request_latency_;        // whole requests
  LatencyHistogram routing_latency_;        // Engine::Ingest / IngestNative calls
  std::unique_ptr<TargetLookups> lookups_;  // unless allow_private_targets
};

}  // namespace herald::server
