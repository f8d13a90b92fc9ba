#include "engine/server/http_api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>

#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/server/examples.h"
#include "engine/server/http_reply.h"

namespace herald::server {
namespace {

constexpr size_t kManagementBody = 1 << 20;
constexpr size_t kSmallBody = 1 << 16;
constexpr size_t kIngestBody = 0;  // set per request from the content type (CheckHeaders)

// True when `header` is "App <key>". Compares SHA-256 digests in constant time, so neither the
// key's bytes nor its length leak through timing.
bool KeyMatches(std::string_view header, const std::string& key) {
  if (key.empty()) return false;
  const std::string expected = "App " + key;
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(header.data()), header.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

std::string CatalogJson(const herald::Catalog& catalog) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("channels").BeginArray();
  for (const auto& ch : catalog.channels()) {
    w.BeginObject().Field("channel", ch.channel).Field("name", ch.name).Field("nameJa", ch.name_ja);
    w.Strings("aliases", ch.aliases);
    w.Key("events").BeginArray();
    for (const auto& e : ch.events) {
      w.BeginObject()
          .Field("event", e.event)
          .Field("name", e.name)
          .Field("nameJa", e.name_ja)
          .EndObject();
    }
    w.EndArray().EndObject();
  }
  w.EndArray().EndObject();
  return out;
}

void NotReady(HttpResponse& r) {
  Error(r, 503, "SERVICE_UNAVAILABLE",
        "starting: replaying the event spool before accepting anything new");
  r.headers.emplace_back("Retry-After", "1");
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// Health, readiness and metrics answer while heraldd starts (the spool's replay); the rest,
// whatever it asks, waits.
bool AnswersStarting(std::string_view path) {
  return path == "/healthz" || path == "/readyz" || path == "/metrics";
}

std::string_view QueryOf(std::string_view target) {
  const size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

// Whether `path` matches `pattern` segment by segment, "{…}" matching any one non-empty segment;
// the matched segments are appended to `params`.
bool PathMatches(std::string_view pattern, std::string_view path,
                 std::vector<std::string>* params) {
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);  // "/profiles/" lists too
  params->clear();
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const std::string_view want = pattern.substr(0, pattern.find('/'));
    const std::string_view have = path.substr(0, path.find('/'));
    if (want.starts_with('{')) {
      if (have.empty()) return false;
      params->emplace_back(have);
    } else if (want != have) {
      return false;
    }
    pattern.remove_prefix(want.size());
    path.remove_prefix(have.size());
  }
  return true;
}

}  // namespace

const std::vector<HttpApi::Route>& HttpApi::Routes() {
  using H = HttpApi;
  constexpr Scope kOpen = Scope::kOpen, kIngest = Scope::kIngest, kMgmt = Scope::kManagement;
  static const std::vector<Route> kRoutes = {
      {"GET", "/healthz", kOpen, kSmallBody, false, &H::Healthz},
      {"GET", "/readyz", kOpen, kSmallBody, false, &H::Readyz},
      {"GET", "/metrics", kOpen, kSmallBody, false, &H::Metrics},
      {"GET", "/v1/catalog", kOpen, kSmallBody, false, &H::Catalog},
      {"GET", "/ui", kOpen, kSmallBody, false, &H::Ui},
      {"GET", "/ui/{file}", kOpen, kSmallBody, false, &H::Ui},
      {"GET", "/ui/{dir}/{file}", kOpen, kSmallBody, false, &H::Ui},
      {"GET", "/v1/catalog/{channel}/{event}/example", kOpen, kSmallBody, false,
       &H::CatalogExample},
      {"POST", "/v1/events", kIngest, kIngestBody, false, &H::IngestEnvelopes},
      {"POST", "/v1/events/{channel}/{event}", kIngest, kIngestBody, false, &H::IngestNative},
      {"GET", "/v1/dead-letters", kMgmt, kManagementBody, false, &H::ListDeadLetters},
      {"DELETE", "/v1/dead-letters", kMgmt, kManagementBody, false, &H::DeleteDeadLetters},
      {"POST", "/v1/dead-letters/replay", kMgmt, kManagementBody, false, &H::ReplayDeadLetters},
      {"GET", "/v1/stats", kMgmt, kSmallBody, false, &H::Stats},
      {"GET", "/v1/stats/stream", kMgmt, kSmallBody, false, &H::StatsStream},
      {"GET", "/v1/deliveries", kMgmt, kSmallBody, false, &H::Deliveries},
      {"GET", "/v1/deliveries/stream", kMgmt, kSmallBody, false, &H::DeliveriesStream},
      {"POST", "/v1/deliveries/{id}/resend", kMgmt, kSmallBody, false, &H::ResendDelivery},
      {"POST", "/v1/route/explain", kMgmt, kManagementBody, false, &H::ExplainRoute},
      {"POST", "/subscriptions/1/import", kMgmt, 0, true, &H::Import},
      {"GET", "/subscriptions/1/subscription/{channel}", kMgmt, kManagementBody, false,
       &H::ListSubscriptions},
      {"POST", "/subscriptions/1/subscription/{channel}", kMgmt, kManagementBody, true,
       &H::CreateSubscription},
      {"GET", "/subscriptions/1/subscription/{channel}/{id}", kMgmt, kManagementBody, false,
       &H::GetSubscription},
      {"PUT", "/subscriptions/1/subscription/{channel}/{id}", kMgmt, kManagementBody, true,
       &H::UpdateSubscription},
      {"DELETE", "/subscriptions/1/subscription/{channel}/{id}", kMgmt, kManagementBody, false,
       &H::DeleteSubscription},
      {"GET", "/subscriptions/1/profiles", kMgmt, kManagementBody, false, &H::ListProfiles},
      {"POST", "/subscriptions/1/profiles", kMgmt, kManagementBody, true, &H::CreateProfile},
      {"GET", "/subscriptions/1/profiles/{id}", kMgmt, kManagementBody, false, &H::GetProfile},
      {"PUT", "/subscriptions/1/profiles/{id}", kMgmt, kManagementBody, true, &H::UpdateProfile},
      {"DELETE", "/subscriptions/1/profiles/{id}", kMgmt, kManagementBody, false,
       &H::DeleteProfile},
      {"GET", "/subscriptions/1/security", kMgmt, kManagementBody, false, &H::ListSecurity},
      {"POST", "/subscriptions/1/security", kMgmt, kManagementBody, true, &H::CreateSecurity},
      {"GET", "/subscriptions/1/security/{id}", kMgmt, kManagementBody, false, &H::GetSecurity},
      {"PUT", "/subscriptions/1/security/{id}", kMgmt, kManagementBody, true, &H::UpdateSecurity},
      {"DELETE", "/subscriptions/1/security/{id}", kMgmt, kManagementBody, false,
       &H::DeleteSecurity},
      // "status" before "{id}": the literal wins.
      {"GET", "/subscriptions/1/certificates/status", kMgmt, kManagementBody, false,
       &H::ListCertificateStatuses},
      {"GET", "/subscriptions/1/certificates/status/{id}", kMgmt, kManagementBody, false,
       &H::GetCertificateStatus},
      {"POST", "/subscriptions/1/certificates/test/webhook", kMgmt, kManagementBody, false,
       &H::TestCertificateConnection},
      {"GET", "/subscriptions/1/certificates", kMgmt, kManagementBody, false, &H::ListCertificates},
      {"POST", "/subscriptions/1/certificates", kMgmt, kManagementBody, false,
       &H::CreateCertificate},
      {"GET", "/subscriptions/1/certificates/{id}", kMgmt, kManagementBody, false,
       &H::GetCertificate},
      {"DELETE", "/subscriptions/1/certificates/{id}", kMgmt, kManagementBody, false,
       &H::DeleteCertificate},
  };
  return kRoutes;
}

HttpApi::HttpApi(Engine& engine, Options options, WebhookDeliverer* deliverer,
                 store::ConfigStore* config, store::EventLog* events)
    : engine_(engine),
      options_(std::move(options)),
      deliverer_(deliverer),
      config_(config),
      events_(events),
      management_(engine, config, events, deliverer,
                  [this](NotificationProfile* p, SecuritySetting* s) { return CheckWrite(p, s); }),
      catalog_json_(CatalogJson(engine.catalog())),
      lookups_(
          options_.allow_private_targets
              ? nullptr
              : std::make_unique<TargetLookups>(std::chrono::seconds(1), options_.name_lookup)) {}

HttpApi::~HttpApi() = default;

void HttpApi::Stop() {
  set_ready(false);  // what waits for lookups is answered as not ready
  if (lookups_) lookups_->Stop();
}

bool HttpApi::Authorize(const HttpRequest& request, Scope scope, HttpResponse& response) const {
  if (scope == Scope::kOpen) return true;
  const bool management_open = options_.api_key.empty();
  const bool ingest_open = options_.ingest_key.empty() && management_open;
  const bool management = KeyMatches(request.authorization, options_.api_key);
  const bool ingest = KeyMatches(request.authorization, options_.ingest_key);
  if (scope == Scope::kIngest && (ingest_open || ingest || management)) return true;
  if (scope == Scope::kManagement && (management_open || management)) return true;
  if (scope == Scope::kManagement && ingest) {
    Error(response, 403, "FORBIDDEN", "the ingest key cannot use the management API");
  } else {
    Error(response, 401, "UNAUTHORIZED", "missing or wrong Authorization: App <key>");
  }
  return false;
}

bool HttpApi::Match(HttpRequest& request, HttpResponse& response) const {
  const std::string_view path = PathOf(request.target);
  const std::vector<Route>& routes = Routes();
  std::vector<std::string_view> allowed;
  const Route* path_route = nullptr;
  for (size_t i = 0; i < routes.size(); ++i) {
    if (!PathMatches(routes[i].pattern, path, &request.path_params)) continue;
    if (routes[i].method == request.method) {
      request.route = static_cast<int>(i);
      return true;
    }
    path_route = &routes[i];
    allowed.push_back(routes[i].method);
  }
  request.path_params.clear();
  if (path_route) {
    // A path says what it allows only to whoever may use it.
    if (!Authorize(request, path_route->scope, response)) return false;
    std::string methods;
    for (size_t i = 0; i < allowed.size(); ++i) {
      methods += Cat(i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ", allowed[i]);
    }
    Error(response, 405, "METHOD_NOT_ALLOWED", Cat("use ", methods));
    return false;
  }
  // Under a keyed prefix, an unknown path is news only to whoever holds the key.
  if (path.starts_with("/v1/events") && !Authorize(request, Scope::kIngest, response)) {
    return false;
  }
  if ((path.starts_with("/subscriptions/1/") || path.starts_with("/v1/dead-letters")) &&
      !Authorize(request, Scope::kManagement, response)) {
    return false;
  }
  Error(response, 404, "NOT_FOUND", Cat("no such resource: ", path));
  return false;
}

bool HttpApi::CheckHeaders(HttpRequest& request, HttpResponse& response, BodyPlan* plan) {
  request.route = -1;
  // Every refusal here is an answer too, and counted as one.
  if (!ready_.load(std::memory_order_acquire) && !AnswersStarting(PathOf(request.target))) {
    NotReady(response);
    Count(response);
    return false;
  }
  if (!Match(request, response) || !Authorize(request, Routes()[request.route].scope, response)) {
    Count(response);
    return false;
  }
  const Route& route = Routes()[request.route];
  if (route.scope == Scope::kIngest) {
    const bool ndjson = request.content_type.starts_with("application/x-ndjson");
    // One envelope gets a little room over max_event_bytes, so it is refused as oversize by the
    // engine (with its reason) rather than cut off here.
    plan->limit = ndjson ? options_.max_batch_bytes : options_.max_event_bytes + 4096;
    plan->into_ingest_buffer = true;  // parsed in place, payloads sliced from it
  } else if (route.body_limit != 0) {
    plan->limit = route.body_limit;
  }
  return true;
}

void HttpApi::Handle(HttpRequest& request, HttpResponse& response) {
  const auto start = std::chrono::steady_clock::now();
  Dispatch(request, response, /*looked_up=*/false);
  request_latency_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void HttpApi::Dispatch(HttpRequest& request, HttpResponse& response, bool looked_up) {
  if (!ready_.load(std::memory_order_acquire) && !AnswersStarting(PathOf(request.target))) {
    NotReady(response);
  } else if (request.route >= 0 ||
             // Without the header check (an embedder calling Handle alone) it is matched here.
             (Match(request, response) &&
              Authorize(request, Routes()[request.route].scope, response))) {
    const Route& route = Routes()[request.route];
    if (route.names_targets && !looked_up && DeferForLookups(request, response)) {
      // The SSRF guard's lookups happen off the io thread; the request runs again, and is
      // counted, once they are done.
      return;
    }
    const Query query = ParseQuery(QueryOf(request.target));
    Call call{request, response, request.path_params, query};
    (this->*route.handler)(call);
  }
  Count(response);
}

void HttpApi::Count(const HttpResponse& response) {
  if (response.status == 403 && options_.limit_hits &&
      response.body.find("LIMIT_EXCEEDED") != std::string::npos) {
    options_.limit_hits->subscriptions.fetch_add(1, std::memory_order_relaxed);
  }
  const int cls = std::clamp(response.status / 100, 0, 5);
  responses_[cls].fetch_add(1, std::memory_order_relaxed);
}

bool HttpApi::DeferForLookups(HttpRequest& request, HttpResponse& response) {
  if (!lookups_) return false;
  auto hosts = lookups_->Unknown(TargetLookups::UrlsIn(request.body));
  if (hosts.empty()) return false;
  auto held = std::make_shared<HttpRequest>(std::move(request));
  response.wait = [this, held, hosts = std::move(hosts)](HttpResponse::Resume resume) mutable {
    lookups_->LookUp(std::move(hosts), [this, held, resume = std::move(resume)] {
      HttpResponse answer;
      Dispatch(*held, answer, /*looked_up=*/true);
      resume(&answer);
    });
  };
  return true;
}

void HttpApi::Healthz(Call& call) { Json(call.response, 200, R"({"status":"ok"})"); }

void HttpApi::Readyz(Call& call) {
  if (!ready_.load()) return NotReady(call.response);
  Json(call.response, 200, R"({"status":"ready"})");
}

void HttpApi::Catalog(Call& call) { Json(call.response, 200, catalog_json_); }

void HttpApi::CatalogExample(Call& call) {
  const herald::Catalog& catalog = engine_.catalog();
  const int channel = catalog.FindChannel(call.params[0]);
  const int event = channel < 0 ? -1 : catalog.FindEvent(channel, call.params[1]);
  if (event < 0) {
    return Error(
        call.response, 404, "NOT_FOUND",
        Cat("no event ", call.params[1], " of channel ", call.params[0], " in the catalog"));
  }
  const auto& info = catalog.channels()[channel];
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  Json(call.response, 200, ExamplePayload(info.channel, info.events[event].event, now));
}

}  // namespace herald::server
