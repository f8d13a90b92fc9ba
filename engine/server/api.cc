#include "engine/server/api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>

#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/deliver/dead_letters.h"
#include "engine/model/json_codec.h"

namespace herald::server {
namespace {

std::string ErrorBody(std::string_view message_id, std::string_view text,
                      const ValidationErrors& errors = {}) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("requestError").BeginObject().Key("serviceException").BeginObject();
  w.Field("messageId", message_id).Field("text", text);
  if (!errors.empty()) {
    w.Key("validationErrors").BeginObject();
    for (const auto& [field, messages] : errors) w.Strings(field, messages);
    w.EndObject();
  }
  w.EndObject().EndObject().EndObject();
  return out;
}

void Error(HttpResponse& r, int status, std::string_view message_id, std::string_view text,
           const ValidationErrors& errors = {}) {
  r.status = status;
  r.content_type = "application/json";
  r.body = ErrorBody(message_id, text, errors);
}

void FromStatus(HttpResponse& r, const absl::Status& s) {
  const std::string text(ToStd(s.message()));
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return Error(r, 400, "BAD_REQUEST", text, ValidationErrorsOf(s));
    case absl::StatusCode::kNotFound:
      return Error(r, 404, "NOT_FOUND", text);
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return Error(r, 409, "CONFLICT", text);
    case absl::StatusCode::kResourceExhausted:
      return Error(r, 403, "LIMIT_EXCEEDED", text);
    default:
      return Error(r, 500, "INTERNAL_SERVER_ERROR", text);
  }
}

// The store refused the change (disk full, unwritable data_dir): the caller has undone it.
void NotPersisted(HttpResponse& r, const absl::Status& s) {
  Error(r, 503, "SERVICE_UNAVAILABLE",
        Cat("the change could not be persisted and was undone: ", ToStd(s.message())));
  r.headers.emplace_back("Retry-After", "5");
}

// An ingest answer that waits for its record's fdatasync (durability "always") without holding the
// io thread: whichever comes second — the fdatasync or the server asking — sends it.
class DurableAnswer {
 public:
  store::DeliveryLog::OnDurable OnDurable(std::shared_ptr<DurableAnswer> self) {
    return [self](absl::Status s) {
      HttpResponse::Resume resume;
      {
        std::lock_guard lock(self->mu_);
        self->done_ = true;
        self->status_ = std::move(s);
        resume = std::move(self->resume_);
      }
      if (resume) Send(resume, self->status_);
    };
  }
  std::function<void(HttpResponse::Resume)> Wait(std::shared_ptr<DurableAnswer> self) {
    return [self](HttpResponse::Resume resume) {
      {
        std::lock_guard lock(self->mu_);
        if (!self->done_) {
          self->resume_ = std::move(resume);
          return;
        }
      }
      Send(resume, self->status_);
    };
  }

 private:
  static void Send(const HttpResponse::Resume& resume, const absl::Status& s) {
    if (s.ok()) return resume(nullptr);
    HttpResponse failed;
    Error(failed, 503, "SERVICE_UNAVAILABLE",
          Cat("the events were written but could not be made durable (", ToStd(s.message()),
              "); send them again"));
    failed.headers.emplace_back("Retry-After", "5");
    resume(&failed);
  }

  std::mutex mu_;
  bool done_ = false;
  absl::Status status_;
  HttpResponse::Resume resume_;
};

// Health, readiness and metrics answer while heraldd starts (the spool's replay); the rest waits.
bool IsHealthTarget(std::string_view target) {
  return target == "/healthz" || target == "/readyz" || target == "/metrics";
}

void NotReady(HttpResponse& r) {
  Error(r, 503, "SERVICE_UNAVAILABLE",
        "starting: replaying the event spool before accepting anything new");
  r.headers.emplace_back("Retry-After", "1");
}

void Json(HttpResponse& r, int status, std::string body) {
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

std::multimap<std::string, std::string> ParseQuery(std::string_view q) {
  std::multimap<std::string, std::string> out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    const size_t eq = part.find('=');
    out.emplace(PercentDecode(part.substr(0, eq)),
                eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1)));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

// page (>= 0) and size (1..100, default 20); false after answering 400.
bool Paging(const std::multimap<std::string, std::string>& q, HttpResponse& r, size_t* page,
            size_t* size) {
  *page = 0;
  *size = 20;
  auto read = [&](const char* key, size_t* out, long min, long max) {
    auto it = q.find(key);
    if (it == q.end()) return true;
    char* end = nullptr;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || v < min || v > max) {
      Error(r, 400, "BAD_REQUEST", "invalid paging",
            {{key, {Cat("must be an integer between ", min, " and ", max)}}});
      return false;
    }
    *out = static_cast<size_t>(v);
    return true;
  };
  return read("page", page, 0, 1'000'000'000) && read("size", size, 1, 100);
}

template <typename T, typename F>
std::string Page(const std::vector<T>& items, size_t page, size_t size, F&& encode) {
  std::string out = R"({"results":[)";
  const size_t begin = std::min(items.size(), page * size);
  const size_t end = std::min(items.size(), begin + size);
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) out.push_back(',');
    out += encode(items[i]);
  }
  const size_t total_pages = (items.size() + size - 1) / size;
  out += Cat(R"(],"paging":{"page":)", page, R"(,"size":)", size, R"(,"totalPages":)", total_pages,
             R"(,"totalResults":)", items.size(), "}}");
  return out;
}

std::string IdBody(std::string_view key, std::string_view id) {
  std::string out;
  JsonWriter(out).BeginObject().Field(key, id).EndObject();
  return out;
}

std::string ProfileIds(std::string_view profile_id, std::string_view auth_id) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("profileId", profile_id).Key("security").BeginObject();
  if (!auth_id.empty()) w.Field("authId", auth_id);
  w.EndObject().EndObject();
  return out;
}

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

std::string CatalogJson(const Catalog& catalog) {
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

void RenderDeliveryMetrics(std::string& out, const std::vector<ProfileDeliveryStats>& stats) {
  struct Field {
    const char* name;
    const char* type;
    const char* help;
    uint64_t ProfileDeliveryStats::*value;
  };
  static constexpr Field kFields[] = {
      {"herald_webhook_delivered_total", "counter",
       "Notifications a receiver accepted (2xx), per profile.", &ProfileDeliveryStats::delivered},
      {"herald_webhook_failed_total", "counter", "Failed delivery attempts, per notification.",
       &ProfileDeliveryStats::failed},
      {"herald_webhook_retried_total", "counter", "Notifications scheduled for another attempt.",
       &ProfileDeliveryStats::retried},
      {"herald_webhook_dead_lettered_total", "counter",
       "Notifications kept as dead letters (exhausted, refused or disabled).",
       &ProfileDeliveryStats::dead_lettered},
      {"herald_webhook_requests_total", "counter", "Webhook requests made.",
       &ProfileDeliveryStats::requests},
      {"herald_webhook_in_flight", "gauge", "Webhook requests in flight.",
       &ProfileDeliveryStats::in_flight},
      {"herald_webhook_held", "gauge",
       "Notifications held by the deliverer (waiting, in flight or awaiting a retry).",
       &ProfileDeliveryStats::held},
  };
  for (const Field& f : kFields) {
    out += Cat("# HELP ", f.name, " ", f.help, "\n# TYPE ", f.name, " ", f.type, "\n");
    for (const auto& p : stats) {
      out += Cat(f.name, "{profile=\"", p.profile_id, "\"} ", p.*f.value, "\n");
    }
  }
  out +=
      "# HELP herald_webhook_disabled 1 when a 410 Gone disabled the profile.\n"
      "# TYPE herald_webhook_disabled gauge\n";
  for (const auto& p : stats) {
    out +=
        Cat("herald_webhook_disabled{profile=\"", p.profile_id, "\"} ", p.disabled ? 1 : 0, "\n");
  }
  out +=
      "# HELP herald_webhook_circuit_open 1 while the profile's circuit breaker is open.\n"
      "# TYPE herald_webhook_circuit_open gauge\n";
  for (const auto& p : stats) {
    out += Cat("herald_webhook_circuit_open{profile=\"", p.profile_id, "\"} ",
               p.circuit_open ? 1 : 0, "\n");
  }
  RenderHistogramHeader(out, "herald_webhook_request_duration_seconds",
                        "Webhook request latency, per profile.");
  for (const auto& p : stats) {
    RenderHistogram(out, "herald_webhook_request_duration_seconds",
                    Cat("profile=\"", p.profile_id, "\""), p.latency_buckets,
                    p.latency_sum_seconds);
  }
}

}  // namespace

Api::Api(Engine& engine, Options options, WebhookDeliverer* deliverer,
         store::ConfigJournal* journal, store::DeliveryLog* events)
    : engine_(engine),
      options_(std::move(options)),
      deliverer_(deliverer),
      journal_(journal),
      events_(events),
      catalog_json_(CatalogJson(engine.catalog())),
      lookups_(options_.allow_private_targets ? nullptr : std::make_unique<TargetLookups>()) {}

bool Api::Authorize(const HttpRequest& request, Scope scope, HttpResponse& response) const {
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

bool Api::CheckHeaders(const HttpRequest& request, HttpResponse& response, BodyPlan* plan) {
  size_t* body_limit = &plan->limit;
  const std::string_view target =
      std::string_view(request.target).substr(0, request.target.find('?'));
  if (!ready_.load(std::memory_order_acquire) && !IsHealthTarget(target)) {
    NotReady(response);
    return false;
  }
  if (target.starts_with("/v1/events")) {
    if (!Authorize(request, Scope::kIngest, response)) return false;
    const bool ndjson = request.content_type.starts_with("application/x-ndjson");
    // One envelope gets a little room over max_event_bytes, so it is refused as oversize by the
    // engine (with its reason) rather than cut off here.
    *body_limit = ndjson ? options_.max_batch_bytes : options_.max_event_bytes + 4096;
    plan->into_ingest_buffer = true;  // parsed in place, payloads sliced from it
  } else if (target.starts_with("/subscriptions/1/") || target.starts_with("/v1/dead-letters")) {
    if (!Authorize(request, Scope::kManagement, response)) return false;
    if (target != "/subscriptions/1/import") *body_limit = 1 << 20;
  } else {
    *body_limit = 1 << 16;
  }
  return true;
}

void Api::Handle(HttpRequest& request, HttpResponse& response) {
  const auto start = std::chrono::steady_clock::now();
  HandleRequest(request, response);
  request_latency_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

bool Api::DeferForLookups(HttpRequest& request, HttpResponse& response) {
  if (!lookups_) return false;
  auto hosts = lookups_->Unknown(TargetLookups::UrlsIn(request.body));
  if (hosts.empty()) return false;
  auto held = std::make_shared<HttpRequest>(std::move(request));
  response.wait = [this, held, hosts = std::move(hosts)](HttpResponse::Resume resume) mutable {
    lookups_->LookUp(std::move(hosts), [this, held, resume = std::move(resume)] {
      HttpResponse answer;
      HandleRequest(*held, answer, /*looked_up=*/true);
      resume(&answer);
    });
  };
  return true;
}

void Api::HandleRequest(HttpRequest& request, HttpResponse& response, bool looked_up) {
  std::string_view target = request.target;
  std::string_view query;
  if (const size_t q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  const std::string& method = request.method;
  auto is = [&](std::string_view m, std::string_view path) {
    return method == m && target == path;
  };

  if (!ready_.load(std::memory_order_acquire) && !IsHealthTarget(target)) {
    NotReady(response);
  } else if (is("GET", "/healthz")) {
    Json(response, 200, R"({"status":"ok"})");
  } else if (is("GET", "/readyz")) {
    if (ready_.load()) {
      Json(response, 200, R"({"status":"ready"})");
    } else {
      NotReady(response);
    }
  } else if (is("GET", "/metrics")) {
    Metrics(response);
  } else if (target == "/v1/events" || target.starts_with("/v1/events/")) {
    if (method != "POST") {
      Error(response, 405, "METHOD_NOT_ALLOWED", "use POST");
    } else if (Authorize(request, Scope::kIngest, response)) {
      Ingest(request, target.substr(10), response);
    }
  } else if (target == "/v1/dead-letters" || target.starts_with("/v1/dead-letters/")) {
    if (Authorize(request, Scope::kManagement, response)) {
      DeadLetters(request, target.substr(16), query, response);
    }
  } else if (is("GET", "/v1/catalog")) {
    Json(response, 200, catalog_json_);
  } else if (target.starts_with("/subscriptions/1/")) {
    const bool authorized = Authorize(request, Scope::kManagement, response);
    // The SSRF guard's lookups happen before the management lock is taken, off the io thread;
    // the request runs again, and is counted, once they are done.
    if (authorized && method != "GET" && !looked_up && DeferForLookups(request, response)) return;
    std::unique_lock<std::mutex> mutation;
    if (authorized && method != "GET") mutation = std::unique_lock(mutation_mu_);
    if (!authorized) {
      // answered: 401 or 403
    } else if (target == "/subscriptions/1/import") {
      if (method != "POST") return Error(response, 405, "METHOD_NOT_ALLOWED", "use POST");
      Import(request, response);
    } else if (target.starts_with("/subscriptions/1/subscription/")) {
      Subscriptions(request, target.substr(30), query, response);
    } else if (target == "/subscriptions/1/profiles" ||
               target.starts_with("/subscriptions/1/profiles/")) {
      Profiles(request, target.substr(25), query, response);
    } else if (target == "/subscriptions/1/security" ||
               target.starts_with("/subscriptions/1/security/")) {
      Security(request, target.substr(25), query, response);
    } else {
      Error(response, 404, "NOT_FOUND", Cat("no such resource: ", target));
    }
  } else {
    Error(response, 404, "NOT_FOUND", Cat("no such resource: ", target));
  }
  if (response.status == 403 && options_.limit_hits &&
      response.body.find("LIMIT_EXCEEDED") != std::string::npos) {
    options_.limit_hits->subscriptions.fetch_add(1, std::memory_order_relaxed);
  }
  const int cls = std::clamp(response.status / 100, 0, 5);
  responses_[cls].fetch_add(1, std::memory_order_relaxed);
}

void Api::Ingest(HttpRequest& request, std::string_view native, HttpResponse& response) {
  // The body arrives in an ingest buffer (see CheckHeaders) or, from other callers, as a string.
  const std::string_view input =
      request.ingest_body ? std::string_view(request.ingest_body.data(), request.ingest_size)
                          : std::string_view(request.body);
  const std::string_view type =
      std::string_view(request.content_type).substr(0, request.content_type.find(';'));
  InputFormat format;
  if (type == "application/x-ndjson") {
    format = InputFormat::kNdjson;
  } else if (type == "application/json" || type.empty()) {
    format = InputFormat::kSingle;
  } else {
    return Error(response, 415, "UNSUPPORTED_MEDIA_TYPE",
                 "use Content-Type: application/json (one event) or application/x-ndjson");
  }
  std::vector<IngestError> errors;
  absl::StatusOr<IngestResult> routed;
  std::shared_ptr<DurableAnswer> durable;
  store::DeliveryLog::OnDurable on_durable;
  if (events_ && events_->durability() == store::Spool::Durability::kAlways) {
    durable = std::make_shared<DurableAnswer>();
    on_durable = durable->OnDurable(durable);
  }
  if (!native.empty()) {
    // /v1/events/{channel}/{event}: the channel's own payload.
    const size_t slash = native.find('/', 1);
    const std::string channel(
        native.substr(1, slash == std::string_view::npos ? native.npos : slash - 1));
    const std::string event(slash == std::string_view::npos ? "" : native.substr(slash + 1));
    const int ch = engine_.catalog().FindChannel(channel);
    if (ch < 0 || engine_.catalog().FindEvent(ch, event) < 0) {
      return Error(response, 404, "NOT_FOUND",
                   Cat("unknown channel or event: ", channel, "/", event));
    }
    if (format != InputFormat::kSingle) {
      return Error(response, 415, "UNSUPPORTED_MEDIA_TYPE", "native payloads are application/json");
    }
    const auto start = std::chrono::steady_clock::now();
    routed = events_ ? events_->IngestNative(channel, event, input, &errors, std::move(on_durable))
                     : engine_.IngestNative(channel, event, input, &errors);
    routing_latency_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (routed.ok() && routed->accepted == 0 && routed->rejected == 1 && !errors.empty()) {
      return Error(
          response, errors[0].reason == RejectReason::kOversize ? 413 : 400,
          errors[0].reason == RejectReason::kOversize ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST",
          errors[0].message);
    }
  } else {
    const auto start = std::chrono::steady_clock::now();
    if (events_) {
      routed = request.ingest_body
                   ? events_->Ingest(std::move(request.ingest_body), request.ingest_size, format,
                                     &errors, std::move(on_durable))
                   : events_->Ingest(input, format, &errors, std::move(on_durable));
    } else {
      routed = request.ingest_body ? engine_.Ingest(std::move(request.ingest_body),
                                                    request.ingest_size, format, &errors)
                                   : engine_.Ingest(input, format, &errors);
    }
    routing_latency_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (!routed.ok()) {
    // The spool refused it (disk full, I/O error): nothing was accepted; the client retries.
    response.headers.emplace_back("Retry-After", "5");
    return Error(response, 503, "SERVICE_UNAVAILABLE", ToStd(routed.status().message()));
  }
  const IngestResult& r = *routed;
  if (native.empty() && format == InputFormat::kSingle && r.rejected == 1 && !errors.empty()) {
    if (errors[0].reason == RejectReason::kOversize) {
      return Error(response, 413, "PAYLOAD_TOO_LARGE", errors[0].message);
    }
    return Error(response, 400, "BAD_REQUEST", errors[0].message);
  }
  if (r.back_pressured > 0) {
    response.headers.emplace_back("Retry-After", "1");
    return Error(response, 503, "SERVICE_UNAVAILABLE",
                 Cat(r.back_pressured, " notification(s) refused: subscriber queues are full"));
  }
  std::string body =
      Cat(R"({"accepted":)", r.accepted, R"(,"rejected":)", r.rejected, R"(,"errors":[)");
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i) body.push_back(',');
    body += Cat(R"({"line":)", errors[i].line, R"(,"error":)");
    AppendJsonString(body, errors[i].message);
    body.push_back('}');
  }
  body += "]}";
  Json(response, 202, std::move(body));
  if (durable) response.wait = durable->Wait(durable);  // 202 once the fdatasync is done
}

void Api::Subscriptions(const HttpRequest& request, std::string_view rest, std::string_view query,
                        HttpResponse& response) {
  const size_t slash = rest.find('/');
  const std::string channel(rest.substr(0, slash));
  const std::string id = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
  const int ch = engine_.catalog().FindChannel(channel);
  if (ch < 0) return Error(response, 404, "NOT_FOUND", Cat("unknown channel ", channel));
  const std::string canonical = engine_.catalog().channels()[ch].channel;
  const std::string& method = request.method;
  if (id.empty() && method == "POST") {
    auto req = model::DecodeSubscription(request.body, channel);
    if (!req.ok()) return FromStatus(response, req.status());
    if (!CheckWrite(req->inline_profile ? &*req->inline_profile : nullptr,
                    req->inline_security ? &*req->inline_security : nullptr, response)) {
      return;
    }
    // Inline definitions are created first and removed again if a later step fails.
    bool created_security = false, created_profile = false;
    if (req->inline_security) {
      if (auto s = engine_.CreateSecurity(*req->inline_security); !s.ok())
        return FromStatus(response, s);
      created_security = true;
    }
    if (req->inline_profile) {
      if (auto s = engine_.CreateProfile(*req->inline_profile); !s.ok()) {
        if (created_security) (void)engine_.DeleteSecurity(req->inline_security->auth_id);
        return FromStatus(response, s);
      }
      created_profile = true;
    }
    auto undo = [&] {
      if (created_profile) (void)engine_.DeleteProfile(req->inline_profile->profile_id);
      if (created_security) (void)engine_.DeleteSecurity(req->inline_security->auth_id);
    };
    if (auto s = engine_.CreateSubscription(req->subscription); !s.ok()) {
      undo();
      return FromStatus(response, s);
    }
    if (journal_) {
      const absl::Status st = journal_->PutTogether(
          created_security ? &*req->inline_security : nullptr,
          created_profile ? &*req->inline_profile : nullptr, &req->subscription);
      if (!st.ok()) {
        (void)engine_.DeleteSubscription(req->subscription.subscription_id);
        undo();
        return NotPersisted(response, st);
      }
    }
    auto profile = engine_.GetProfile(req->subscription.profile_id);
    std::string body = R"({"subscriptionId":)";
    AppendJsonString(body, req->subscription.subscription_id);
    body += R"(,"profile":)" +
            ProfileIds(req->subscription.profile_id, profile.ok() ? profile->auth_id : "");
    body += "}";
    return Json(response, 201, std::move(body));
  }
  if (id.empty() && method == "GET") {
    auto q = ParseQuery(query);
    size_t page, size;
    if (!Paging(q, response, &page, &size)) return;
    std::vector<Subscription> all = engine_.ListSubscriptions(canonical);
    auto values = [&](const char* key) {
      std::vector<std::string> v;
      for (auto [it, end] = q.equal_range(key); it != end; ++it) v.push_back(it->second);
      return v;
    };
    const auto apps = values("applicationId"), entities = values("entityId"),
               resources = values("resource"), users = values("user");
    std::vector<Subscription> kept;
    for (auto& s : all) {
      auto crit_has = [&](const std::vector<std::string>& want, bool app) {
        if (want.empty()) return true;
        return std::any_of(s.criteria.begin(), s.criteria.end(), [&](const Criterion& c) {
          const auto& v = app ? c.application_id : c.entity_id;
          return v && std::find(want.begin(), want.end(), *v) != want.end();
        });
      };
      auto list_has = [](const std::vector<std::string>& want,
                         const std::vector<std::string>& have) {
        if (want.empty()) return true;
        return std::any_of(have.begin(), have.end(), [&](const std::string& h) {
          return std::find(want.begin(), want.end(), h) != want.end();
        });
      };
      if (crit_has(apps, true) && crit_has(entities, false) && list_has(resources, s.resources) &&
          list_has(users, s.users)) {
        kept.push_back(std::move(s));
      }
    }
    return Json(response, 200, Page(kept, page, size, [&](const Subscription& s) {
                  auto p = engine_.GetProfile(s.profile_id);
                  return model::EncodeSubscription(s, p.ok() ? &*p : nullptr);
                }));
  }
  if (id.empty()) return Error(response, 405, "METHOD_NOT_ALLOWED", "use GET or POST");
  auto existing = engine_.GetSubscription(id);
  if (!existing.ok() || existing->channel != canonical) {
    return Error(response, 404, "NOT_FOUND", Cat("subscription ", id, " not found in ", canonical));
  }
  if (method == "GET") {
    auto p = engine_.GetProfile(existing->profile_id);
    return Json(response, 200, model::EncodeSubscription(*existing, p.ok() ? &*p : nullptr));
  }
  // What the profile had not settled when the change came still goes to it after a crash.
  struct KeptRoute {
    store::DeliveryLog* log;
    uint64_t id = 0;
    bool sealed = false;
    ~KeptRoute() {
      if (log && !sealed) log->DropRoute(id);
    }
    void Seal() {
      if (log) log->SealRoute(id);
      sealed = true;
    }
  } kept{events_};
  const auto keep_route = [&]() -> absl::Status {
    if (!events_) return absl::OkStatus();
    auto route = events_->KeepRoute(*existing);
    if (!route.ok()) return route.status();
    kept.id = *route;
    return absl::OkStatus();
  };
  const auto seal_route = [&] {
    engine_.FlushIndex();  // records logged from now on route the new way
    kept.Seal();
  };
  if (method == "PUT") {
    auto req = model::DecodeSubscription(request.body, channel);
    if (!req.ok()) return FromStatus(response, req.status());
    req->subscription.subscription_id = id;
    if (auto st = keep_route(); !st.ok()) return NotPersisted(response, st);
    if (auto s = engine_.UpdateSubscription(req->subscription); !s.ok())
      return FromStatus(response, s);
    if (journal_) {
      if (auto st = journal_->Put(req->subscription); !st.ok()) {
        (void)engine_.UpdateSubscription(*existing);
        return NotPersisted(response, st);
      }
    }
    seal_route();
    auto profile = engine_.GetProfile(req->subscription.profile_id);
    std::string body = R"({"subscriptionId":)";
    AppendJsonString(body, id);
    body += R"(,"profile":)" +
            ProfileIds(req->subscription.profile_id, profile.ok() ? profile->auth_id : "") + "}";
    return Json(response, 200, std::move(body));
  }
  if (method == "DELETE") {
    if (auto st = keep_route(); !st.ok()) return NotPersisted(response, st);
    if (auto s = engine_.DeleteSubscription(id); !s.ok()) return FromStatus(response, s);
    if (journal_) {
      if (auto st = journal_->Delete(store::ConfigJournal::Kind::kSubscription, id); !st.ok()) {
        (void)engine_.CreateSubscription(*existing);
        return NotPersisted(response, st);
      }
    }
    seal_route();
    return Json(response, 200, IdBody("subscriptionId", id));
  }
  Error(response, 405, "METHOD_NOT_ALLOWED", "use GET, PUT or DELETE");
}

void Api::Profiles(const HttpRequest& request, std::string_view rest, std::string_view query,
                   HttpResponse& response) {
  const std::string id = rest.size() > 1 ? std::string(rest.substr(1)) : "";
  const std::string& method = request.method;
  if (id.empty() && method == "POST") {
    auto req = model::DecodeProfile(request.body);
    if (!req.ok()) return FromStatus(response, req.status());
    if (!CheckWrite(&req->profile, req->inline_security ? &*req->inline_security : nullptr,
                    response)) {
      return;
    }
    if (req->inline_security) {
      if (auto s = engine_.CreateSecurity(*req->inline_security); !s.ok())
        return FromStatus(response, s);
    }
    if (auto s = engine_.CreateProfile(req->profile); !s.ok()) {
      if (req->inline_security) (void)engine_.DeleteSecurity(req->inline_security->auth_id);
      return FromStatus(response, s);
    }
    if (journal_) {
      const absl::Status st = journal_->PutTogether(
          req->inline_security ? &*req->inline_security : nullptr, &req->profile, nullptr);
      if (!st.ok()) {
        (void)engine_.DeleteProfile(req->profile.profile_id);
        if (req->inline_security) (void)engine_.DeleteSecurity(req->inline_security->auth_id);
        return NotPersisted(response, st);
      }
    }
    return Json(response, 201, ProfileIds(req->profile.profile_id, req->profile.auth_id));
  }
  if (id.empty() && method == "GET") {
    size_t page, size;
    if (!Paging(ParseQuery(query), response, &page, &size)) return;
    return Json(response, 200,
                Page(engine_.ListProfiles(), page, size,
                     [this](const NotificationProfile& p) { return EncodeProfile(p); }));
  }
  if (id.empty()) return Error(response, 405, "METHOD_NOT_ALLOWED", "use GET or POST");
  if (method == "GET") {
    auto p = engine_.GetProfile(id);
    if (!p.ok()) return FromStatus(response, p.status());
    return Json(response, 200, EncodeProfile(*p));
  }
  if (method == "PUT") {
    auto req = model::DecodeProfile(request.body);
    if (!req.ok()) return FromStatus(response, req.status());
    req->profile.profile_id = id;
    if (!CheckWrite(&req->profile, nullptr, response)) return;
    auto before = engine_.GetProfile(id);
    if (auto s = engine_.UpdateProfile(req->profile); !s.ok()) return FromStatus(response, s);
    if (journal_) {
      if (auto st = journal_->Put(req->profile); !st.ok()) {
        if (before.ok()) (void)engine_.UpdateProfile(*before);
        return NotPersisted(response, st);
      }
    }
    // An update is how an operator says a disabled (410 Gone) receiver is back.
    if (deliverer_ && deliverer_->disabled(id)) {
      if (auto st = deliverer_->Enable(id); !st.ok()) return NotPersisted(response, st);
    }
    return Json(response, 200, ProfileIds(id, req->profile.auth_id));
  }
  if (method == "DELETE") {
    auto before = engine_.GetProfile(id);
    if (auto s = engine_.DeleteProfile(id); !s.ok()) return FromStatus(response, s);
    if (journal_) {
      if (auto st = journal_->Delete(store::ConfigJournal::Kind::kProfile, id); !st.ok()) {
        if (before.ok()) (void)engine_.CreateProfile(*before);
        return NotPersisted(response, st);
      }
    }
    return Json(response, 200, IdBody("profileId", id));
  }
  Error(response, 405, "METHOD_NOT_ALLOWED", "use GET, PUT or DELETE");
}

void Api::Security(const HttpRequest& request, std::string_view rest, std::string_view query,
                   HttpResponse& response) {
  const std::string id = rest.size() > 1 ? std::string(rest.substr(1)) : "";
  const std::string& method = request.method;
  if (id.empty() && method == "POST") {
    auto s = model::DecodeSecurity(request.body);
    if (!s.ok()) return FromStatus(response, s.status());
    if (!CheckWrite(nullptr, &*s, response)) return;
    if (auto st = engine_.CreateSecurity(*s); !st.ok()) return FromStatus(response, st);
    if (journal_) {
      if (auto st = journal_->Put(*s); !st.ok()) {
        (void)engine_.DeleteSecurity(s->auth_id);
        return NotPersisted(response, st);
      }
    }
    return Json(response, 201, IdBody("authId", s->auth_id));
  }
  if (id.empty() && method == "GET") {
    size_t page, size;
    if (!Paging(ParseQuery(query), response, &page, &size)) return;
    return Json(response, 200,
                Page(engine_.ListSecurity(), page, size,
                     [](const SecuritySetting& s) { return model::EncodeSecurity(s); }));
  }
  if (id.empty()) return Error(response, 405, "METHOD_NOT_ALLOWED", "use GET or POST");
  if (method == "GET") {
    auto s = engine_.GetSecurity(id);
    if (!s.ok()) return FromStatus(response, s.status());
    return Json(response, 200, model::EncodeSecurity(*s));
  }
  if (method == "PUT") {
    auto s = model::DecodeSecurity(request.body);
    if (!s.ok()) return FromStatus(response, s.status());
    s->auth_id = id;
    if (!CheckWrite(nullptr, &*s, response)) return;
    auto before = engine_.GetSecurity(id);
    if (auto st = engine_.UpdateSecurity(*s); !st.ok()) return FromStatus(response, st);
    if (journal_) {
      if (auto st = journal_->Put(*s); !st.ok()) {
        if (before.ok()) (void)engine_.UpdateSecurity(*before);
        return NotPersisted(response, st);
      }
    }
    return Json(response, 200, IdBody("authId", id));
  }
  if (method == "DELETE") {
    auto before = engine_.GetSecurity(id);
    if (auto st = engine_.DeleteSecurity(id); !st.ok()) return FromStatus(response, st);
    if (journal_) {
      if (auto st = journal_->Delete(store::ConfigJournal::Kind::kSecurity, id); !st.ok()) {
        if (before.ok()) (void)engine_.CreateSecurity(*before);
        return NotPersisted(response, st);
      }
    }
    return Json(response, 200, IdBody("authId", id));
  }
  Error(response, 405, "METHOD_NOT_ALLOWED", "use GET, PUT or DELETE");
}

// Bulk import: NDJSON, one subscription per line, each carrying its "channel" and a reference to
// an existing profile. Good lines are created (and persisted with one fsync); bad lines are
// reported by number. Answers {"imported","failed","errors":[{"line","error"}]}.
void Api::Import(const HttpRequest& request, HttpResponse& response) {
  std::vector<Subscription> created;
  std::string errors;
  size_t failed = 0, line = 0;
  auto fail = [&](size_t at, std::string_view message) {
    if (failed < 1000) {  // enough to act on, without an unbounded answer
      if (!errors.empty()) errors.push_back(',');
      errors += Cat(R"({"line":)", at, R"(,"error":)");
      AppendJsonString(errors, message);
      errors.push_back('}');
    }
    ++failed;
  };
  std::string_view body = request.body;
  simdjson::dom::parser parser;
  while (!body.empty()) {
    ++line;
    const size_t nl = body.find('\n');
    std::string_view text = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
    simdjson::dom::element root;
    if (auto e = parser.parse(text.data(), text.size()).get(root)) {
      fail(line, Cat("malformed JSON: ", simdjson::error_message(e)));
      continue;
    }
    auto req = model::DecodeSubscription(root);
    if (!req.ok()) {
      fail(line, ToStd(req.status().message()));
      continue;
    }
    if (req->inline_profile || req->inline_security) {
      fail(line, "import takes a profile reference ({\"profileId\"}); create profiles first");
      continue;
    }
    if (auto s = engine_.CreateSubscription(req->subscription); !s.ok()) {
      fail(line, ToStd(s.message()));
      continue;
    }
    created.push_back(std::move(req->subscription));
  }
  if (journal_ && !created.empty()) {
    if (auto st = journal_->PutMany(created); !st.ok()) {
      for (const auto& s : created) (void)engine_.DeleteSubscription(s.subscription_id);
      return NotPersisted(response, st);
    }
  }
  Json(response, 200,
       Cat(R"({"imported":)", created.size(), R"(,"failed":)", failed, R"(,"errors":[)", errors,
           "]}"));
}

bool Api::CheckWrite(NotificationProfile* profile, SecuritySetting* security,
                     HttpResponse& response) const {
  // Masked values sent back (a GET → PUT round trip) keep what is stored; reported with the
  // model's own errors, so a request learns all of them at once (a malformed URL is the
  // model's to report).
  ValidationErrors errors;
  auto merge = [&](const ValidationErrors& more) {
    for (auto& [field, messages] : more) {
      auto& all = errors[field];
      all.insert(all.end(), messages.begin(), messages.end());
    }
  };
  if (profile) {
    auto stored = engine_.GetProfile(profile->profile_id);
    merge(ValidationErrorsOf(
        model::RestoreMaskedHeaders(*profile, stored.ok() ? &*stored : nullptr)));
  }
  if (security) {
    auto stored = engine_.GetSecurity(security->auth_id);
    merge(ValidationErrorsOf(
        model::RestoreMaskedSecrets(*security, stored.ok() ? &*stored : nullptr)));
  }
  if (profile) merge(Validate(*profile));
  if (security) merge(Validate(*security));
  // The SSRF guard, on addresses looked up before the request got here (DeferForLookups).
  if (lookups_ && profile && !errors.contains("webhook.notifyUrl")) {
    const absl::Status s = lookups_->Check(profile->webhook.notify_url);
    if (!s.ok()) errors["webhook.notifyUrl"].push_back(std::string(ToStd(s.message())));
  }
  if (lookups_ && security && security->type == SecurityType::kOAuth &&
      !errors.contains("credentials.tokenUrl")) {
    const absl::Status s = lookups_->Check(security->token_url);
    if (!s.ok()) errors["credentials.tokenUrl"].push_back(std::string(ToStd(s.message())));
  }
  if (errors.empty()) return true;
  Error(response, 400, "BAD_REQUEST", Cat(errors.begin()->first, ": ", errors.begin()->second[0]),
        errors);
  return false;
}

std::string Api::EncodeProfile(const NotificationProfile& profile) const {
  std::string json = model::EncodeProfile(profile);
  if (deliverer_ && !json.empty() && json.back() == '}') {
    json.pop_back();
    json +=
        Cat(R"(,"disabled":)", deliverer_->disabled(profile.profile_id) ? "true" : "false", "}");
  }
  return json;
}

void Api::DeadLetters(const HttpRequest& request, std::string_view rest, std::string_view query,
                      HttpResponse& response) {
  if (!deliverer_) return Error(response, 404, "NOT_FOUND", "webhook delivery is not enabled");
  if ((rest.empty() || rest == "/") && request.method == "DELETE") {
    // ?profileId=p1 deletes all of p1's letters; &id=3 (repeatable) only those.
    const auto q = ParseQuery(query);
    const auto it = q.find("profileId");
    if (it == q.end() || it->second.empty()) {
      return Error(response, 400, "BAD_REQUEST", "profileId is required",
                   {{"profileId", {"must be a profile id"}}});
    }
    std::vector<uint64_t> ids;
    for (auto [id, end] = q.equal_range("id"); id != end; ++id) {
      const std::string& text = id->second;
      uint64_t v = 0;
      const auto [at, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || at != text.data() + text.size() || text.empty()) {
        return Error(response, 400, "BAD_REQUEST", "id must be a dead-letter id",
                     {{"id", {"must be a dead-letter id"}}});
      }
      ids.push_back(v);
    }
    auto deleted = deliverer_->DeleteDeadLetters(it->second, ids);
    if (!deleted.ok())
      return Error(response, 503, "SERVICE_UNAVAILABLE", ToStd(deleted.status().message()));
    return Json(response, 200, Cat(R"({"deleted":)", *deleted, "}"));
  }
  if (rest.empty() || rest == "/") {
    if (request.method != "GET") {
      return Error(response, 405, "METHOD_NOT_ALLOWED", "use GET or DELETE");
    }
    const auto q = ParseQuery(query);
    size_t page, size;
    if (!Paging(q, response, &page, &size)) return;
    const auto it = q.find("profileId");
    const std::string profile = it == q.end() ? "" : it->second;
    const auto letters = deliverer_->ListDeadLetters(profile, page, size);
    if (!letters.ok())
      return Error(response, 503, "SERVICE_UNAVAILABLE", ToStd(letters.status().message()));
    std::string out = R"({"results":[)";
    for (size_t i = 0; i < letters->results.size(); ++i) {
      if (i) out += ',';
      out += deliver::EncodeDeadLetter(letters->results[i], /*payload_as_json=*/true);
    }
    out += Cat(R"(],"paging":{"page":)", page, R"(,"size":)", size, R"(,"totalPages":)",
               (letters->total + size - 1) / size, R"(,"totalResults":)", letters->total, "}}");
    return Json(response, 200, std::move(out));
  }
  if (rest != "/replay") return Error(response, 404, "NOT_FOUND", "no such resource");
  if (request.method != "POST") return Error(response, 405, "METHOD_NOT_ALLOWED", "use POST");
  // {"profileId":"p1","ids":["3","4"]}; without ids, all of the profile's dead letters.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view profile;
  if (parser.parse(request.body).get(root) != simdjson::SUCCESS) {
    return Error(response, 400, "BAD_REQUEST", "the body is not JSON");
  }
  if (root["profileId"].get_string().get(profile) != simdjson::SUCCESS || profile.empty()) {
    return Error(response, 400, "BAD_REQUEST", "profileId is required",
                 {{"profileId", {"must be a profile id"}}});
  }
  std::vector<uint64_t> ids;
  simdjson::dom::element ids_json;
  if (root["ids"].get(ids_json) == simdjson::SUCCESS) {
    simdjson::dom::array array;
    if (ids_json.get_array().get(array) != simdjson::SUCCESS) {
      return Error(response, 400, "BAD_REQUEST", "ids must be a list of dead-letter ids",
                   {{"ids", {"must be a list of dead-letter ids"}}});
    }
    bool ok = true;
    for (auto id : array) {
      std::string_view text;
      uint64_t v = 0;
      if (id.get_uint64().get(v) == simdjson::SUCCESS) {
        ids.push_back(v);
      } else if (id.get_string().get(text) == simdjson::SUCCESS && !text.empty() &&
                 text.size() < 20 && text.find_first_not_of("0123456789") == text.npos) {
        ids.push_back(std::stoull(std::string(text)));
      } else {
        ok = false;
      }
    }
    if (!ok) {
      return Error(response, 400, "BAD_REQUEST", "ids must be a list of dead-letter ids",
                   {{"ids", {"must be a list of dead-letter ids"}}});
    }
  }
  auto replayed = deliverer_->Replay(profile, ids);
  if (!replayed.ok()) return FromStatus(response, replayed.status());
  Json(response, 200, Cat(R"({"replayed":)", *replayed, "}"));
}

void Api::Metrics(HttpResponse& response) {
  const Counters c = engine_.counters();
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += Cat("# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n", name, " ", v, "\n");
  };
  counter("herald_events_accepted_total", "Events parsed and routed.", c.accepted);
  out +=
      "# HELP herald_events_rejected_total Events refused, by reason.\n"
      "# TYPE herald_events_rejected_total counter\n";
  for (int i = 0; i < kRejectReasonCount; ++i) {
    out +=
        Cat("herald_events_rejected_total{reason=\"",
            RejectReasonName(static_cast<RejectReason>(i)), "\"} ", c.rejected_by_reason[i], "\n");
  }
  counter("herald_events_matched_total", "Accepted events with at least one notification.",
          c.matched);
  counter("herald_events_unmatched_total", "Accepted events that matched no subscription.",
          c.unmatched);
  counter("herald_notifications_enqueued_total", "Notifications put on a profile queue.",
          c.enqueued);
  counter("herald_notifications_back_pressured_total", "Notifications refused by a full queue.",
          c.back_pressured);
  out += Cat(
      "# HELP herald_payload_bytes Bytes of input buffers alive: being routed, or kept by queued "
      "and held notifications.\n# TYPE herald_payload_bytes gauge\nherald_payload_bytes ",
      c.payload_bytes, "\n");
  out +=
      "# HELP herald_queue_depth Notifications waiting per profile.\n# TYPE herald_queue_depth "
      "gauge\n";
  const auto stats = engine_.queue_stats();
  for (const auto& q : stats)
    out += Cat("herald_queue_depth{profile=\"", q.profile_id, "\"} ", q.depth, "\n");
  out +=
      "# HELP herald_queue_bytes Payload bytes waiting per profile.\n# TYPE herald_queue_bytes "
      "gauge\n";
  for (const auto& q : stats)
    out += Cat("herald_queue_bytes{profile=\"", q.profile_id, "\"} ", q.bytes, "\n");
  if (deliverer_) {
    RenderDeliveryMetrics(out, deliverer_->stats());
    const DeadLetterStats d = deliverer_->dead_letter_stats();
    out += Cat(
        "# HELP herald_dead_letters Dead letters kept.\n# TYPE herald_dead_letters gauge\n"
        "herald_dead_letters ",
        d.letters,
        "\n# HELP herald_dead_letter_bytes Bytes of the dead letters kept.\n"
        "# TYPE herald_dead_letter_bytes gauge\nherald_dead_letter_bytes ",
        d.bytes,
        "\n# HELP herald_dead_letters_dropped_total Dead letters removed by [dead_letters] max_mb "
        "or max_age_hours.\n# TYPE herald_dead_letters_dropped_total counter\n"
        "herald_dead_letters_dropped_total ",
        d.dropped, "\n");
  }
  if (events_) {
    const store::DeliveryLog::Stats s = events_->stats();
    counter("herald_spool_records_total", "Ingest requests appended to the event spool.",
            s.appended);
    counter("herald_spool_bytes_total", "Bytes appended to the event spool.", s.appended_bytes);
    counter("herald_spool_append_errors_total",
            "Ingest requests refused (503) because the spool could not store them.",
            s.append_errors);
    counter("herald_spool_fsyncs_total", "fdatasyncs of the spool (shared by group commit).",
            s.fsyncs);
    counter("herald_spool_replayed_records_total", "Spool records re-routed at start.", s.replayed);
    counter("herald_spool_cursor_writes_total", "Delivery cursor checkpoints written.",
            s.cursor_writes);
    counter("herald_spool_cursor_errors_total", "Delivery cursor checkpoints that failed.",
            s.cursor_errors);
    auto gauge = [&](const char* name, const char* help, uint64_t v) {
      out += Cat("# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n", name, " ", v, "\n");
    };
    gauge("herald_spool_segments", "Spool segment files kept.", s.segments);
    gauge("herald_spool_next_sequence", "The sequence number of the next spool record.",
          s.next_seq);
    gauge("herald_spool_oldest_sequence", "The oldest spool record kept.", s.first_seq);
    gauge("herald_spool_bytes", "Bytes of spool segments kept.", s.spool_bytes);
    counter("herald_spool_retention_segments_total",
            "Spool segments dropped past retain_max_mb or retain_max_hours.", s.retention_segments);
    counter("herald_spool_retention_dead_letters_total",
            "Notifications those segments still owed, kept as dead letters (reason retention).",
            s.retention_dead_letters);
    gauge("herald_spool_waiting_for_room",
          "Records a full queue refused, waiting in the spool for a profile's queue to have room.",
          s.waiting_for_room);
    gauge("herald_spool_slowest_cursor",
          "The oldest spool record some profile has not finished (retention keeps it).",
          s.slowest_cursor);
  }
  if (const LimitHits* hits = options_.limit_hits) {
    out +=
        "# HELP herald_limit_hits_total Requests and connections refused by a limit.\n"
        "# TYPE herald_limit_hits_total counter\n";
    const std::pair<const char*, const std::atomic<uint64_t>*> limits[] = {
        {"max_connections", &hits->connections},
        {"max_header_bytes", &hits->header_bytes},
        {"body_bytes", &hits->body_bytes},
        {"max_requests_per_second", &hits->request_rate},
        {"header_timeout", &hits->slow_headers},
        {"max_subscriptions_per_channel", &hits->subscriptions}};
    for (const auto& [name, value] : limits) {
      out += Cat("herald_limit_hits_total{limit=\"", name, "\"} ", value->load(), "\n");
    }
  }
  out +=
      "# HELP herald_http_responses_total HTTP responses by status class.\n"
      "# TYPE herald_http_responses_total counter\n";
  for (int cls = 2; cls <= 5; ++cls) {
    out += Cat("herald_http_responses_total{code=\"", cls, "xx\"} ", responses_[cls].load(), "\n");
  }
  RenderHistogramHeader(out, "herald_http_request_duration_seconds",
                        "Time to answer an HTTP request.");
  RenderHistogram(out, "herald_http_request_duration_seconds", "", request_latency_.Buckets(),
                  request_latency_.sum_seconds());
  RenderHistogramHeader(out, "herald_routing_duration_seconds",
                        "Time to parse, match and enqueue one ingest request's events.");
  RenderHistogram(out, "herald_routing_duration_seconds", "", routing_latency_.Buckets(),
                  routing_latency_.sum_seconds());
  response.status = 200;
  response.content_type = "text/plain; version=0.0.4";
  response.body = std::move(out);
}

}  // namespace herald::server
