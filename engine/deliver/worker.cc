#include "engine/deliver/worker.h"

// clang-format off
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
// clang-format on
#include <algorithm>
#include <charconv>
#include <climits>

#include "absl/container/flat_hash_set.h"
#include "engine/common/strings.h"
#include "engine/deliver/signing.h"

namespace herald::deliver {
namespace {
using SteadyClock = std::chrono::steady_clock;
}  // namespace

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerHost& host,
                                                       const DelivererOptions& options,
                                                       const Clock& clock) {
  auto worker = std::make_unique<Worker>(host, options.jitter, clock);
  auto client =
      HttpClient::Create(worker->io_, {.ca_file = options.ca_file,
                                       .allow_private_targets = options.allow_private_targets,
                                       .resolver = &host.resolver()});
  if (!client.ok()) return client.status();
  worker->client_ = std::move(*client);
  worker->tokens_ = std::make_unique<OAuthTokens>(worker->io_, *worker->client_, clock);
  return worker;
}

bool Worker::RefreshConfig(ProfileState& p) {
  Engine* engine = host_.engine();
  const uint64_t version = engine->profile_version();
  if (p.config && version == p.config_version) return true;
  auto profile = engine->GetProfile(p.id);
  if (!profile.ok()) {
    p.config.reset();
    return false;
  }
  auto config = std::make_shared<ProfileConfig>();
  config->profile = std::move(*profile);
  if (!config->profile.auth_id.empty()) {
    auto security = engine->GetSecurity(config->profile.auth_id);
    if (security.ok()) config->security = std::move(*security);
  }
  config->url = ParseUrl(config->profile.webhook.notify_url);
  config->retry = config->profile.retry ? *config->profile.retry : host_.options().retry;
  // Validated at write time; a pattern RE2 still refuses (an old journal) checks nothing.
  auto compile = [](const std::string& pattern) -> std::unique_ptr<const RE2> {
    if (pattern.empty()) return nullptr;
    auto re = std::make_unique<const RE2>(pattern, RE2::Quiet);
    return re->ok() ? std::move(re) : nullptr;
  };
  const NotificationProfile& settings = config->profile;
  if (!settings.client_certificate_id.empty()) {
    auto certificate = engine->GetCertificate(settings.client_certificate_id);
    config->tls = certificate.ok()
                      ? client_->Tls(&*certificate, settings.enabled_ssl_protocols)
                      : absl::StatusOr<std::shared_ptr<const TlsSettings>>(certificate.status());
  } else if (!settings.enabled_ssl_protocols.empty()) {
    config->tls = client_->Tls(nullptr, settings.enabled_ssl_protocols);
  }
  config->cloudevents = settings.payload_format == "CLOUDEVENTS";
  config->ordered = settings.ordering == "KEY";
  config->status_re = compile(config->profile.response_regex);
  config->body_re = compile(config->profile.response_body_regex);
  if (!p.config || p.config->profile.rate_limit != config->profile.rate_limit) {
    p.bucket.Reset(config->profile.rate_limit);
  }
  p.config = std::move(config);
  p.config_version = version;
  return true;
}

void Worker::TestConnection(std::string url, ClientCertificate certificate, milliseconds timeout,
                            std::function<void(absl::Status)> done) {
  auto once = std::make_shared<Once>();
  once->fn = std::move(done);
  asio::co_spawn(io_, Probe(std::move(url), std::move(certificate), timeout, std::move(once)),
                 asio::detached);
}

asio::awaitable<void> Worker::Probe(std::string url, ClientCertificate certificate,
                                    milliseconds timeout, std::shared_ptr<Once> done) {
  auto parsed = ParseUrl(url);
  if (!parsed.ok()) {
    (*done)(parsed.status());
    co_return;
  }
  if (!parsed->tls) {
    (*done)(absl::FailedPreconditionError(
        "the webhook URL is not https: a certificate is presented only over TLS"));
    co_return;
  }
  auto tls = client_->Tls(&certificate, {});
  if (!tls.ok()) {
    (*done)(tls.status());
    co_return;
  }
  // A request without a body, so that a server that checks the certificate after the handshake
  // (nginx answers 400 then) says so too.
  const ClientRequest request{.url = &*parsed,
                              .tls = tls->get(),
                              .options = true,
                              .connect_timeout = timeout,
                              .read_timeout = timeout};
  const ClientResponse response = co_await client_->Send(request);
  if (response.status == 0) {
    (*done)(absl::UnavailableError(response.error));
  } else if (response.status == 400 || response.status == 495 || response.status == 496) {
    (*done)(absl::UnavailableError(Cat("the receiver refused the request with HTTP ",
                                       response.status, ": ", Excerpt(response.body, 200))));
  } else {
    (*done)(absl::OkStatus());
  }
}

namespace {

// Why a request failed, for the log: the transport's error, or the status with the start of the
// body (printable ASCII only: it goes into a log line).
std::string FailureReason(const ClientResponse& response) {
  if (response.status == 0) return response.error;
  std::string excerpt;
  for (const char c : std::string_view(response.body).substr(0, 200)) {
    excerpt += (c >= 0x20 && c < 0x7f) ? c : ' ';
  }
  while (!excerpt.empty() && excerpt.back() == ' ') excerpt.pop_back();
  if (excerpt.empty()) return Cat("HTTP ", response.status);
  return Cat("HTTP ", response.status, ": ", excerpt, response.body.size() > 200 ? "..." : "");
}

}  // namespace

std::unique_ptr<Batch> Worker::FormOrdered(ProfileState& p, size_t max_items) {
  // A key with a request in flight, or awaiting its retry, waits for it.
  absl::flat_hash_set<std::string_view> busy;
  auto hold = [&](const Batch& b) {
    for (const Item& item : b.items) {
      if (!item.key().empty()) busy.insert(item.key());
    }
  };
  for (const Batch* b : p.sending) hold(*b);
  for (const auto& [at, b] : p.retries) hold(*b);
  for (const auto& b : p.due) hold(*b);
  // The first waiting item of each free key (and those without a key), in order.
  std::deque<Item> picked, passed;
  std::vector<size_t> picked_at, passed_at;
  for (size_t i = 0; !p.ready.empty() && picked.size() < max_items; ++i) {
    Item item = std::move(p.ready.front());
    p.ready.pop_front();
    const std::string_view key = item.key();
    if (key.empty() || busy.insert(key).second) {
      picked.push_back(std::move(item));
      picked_at.push_back(i);
    } else {
      passed.push_back(std::move(item));
      passed_at.push_back(i);
    }
  }
  std::unique_ptr<Batch> batch;
  if (!picked.empty()) batch = batches_.Form(picked, max_items);
  // What Form left (it takes a prefix: a {"results":[…]} payload counts its items) and what was
  // passed over go back in front, in the order they came.
  std::vector<Item> back;
  const size_t used = picked_at.size() - picked.size();
  size_t a = 0, b = 0;
  while (a < picked.size() || b < passed.size()) {
    const bool from_picked =
        b == passed.size() || (a < picked.size() && picked_at[used + a] < passed_at[b]);
    back.push_back(std::move(from_picked ? picked[a++] : passed[b++]));
  }
  for (auto it = back.rbegin(); it != back.rend(); ++it) p.ready.push_front(std::move(*it));
  return batch;
}

void Worker::ForgetValidation(ProfileState& p) {
  using V = ProfileState::Validation;
  if (p.validation == V::kNone || p.validating) return;
  p.validation = V::kNone;
  p.validated_for = {};
  p.allowed_rate.reset();
  p.validate_backoff = milliseconds(0);
  p.validate_attempts = 0;
  p.validate_at = {};
  p.validation_stat.store(V::kNone);
  MutexLock lock(p.stats_mu);
  p.validation_error.clear();
  p.allowed_rate_per_minute = 0;
}

bool Worker::Validated(ProfileState& p) {
  using V = ProfileState::Validation;
  const ProfileConfig& config = *p.config;
  // A changed profile (a fixed receiver, another URL) is asked again.
  if (p.validation != V::kNone && !p.validating &&
      (p.revalidate.exchange(false) || !(p.validated_for == config.profile))) {
    p.validation = V::kNone;
    p.validate_backoff = milliseconds(0);
    p.validate_attempts = 0;
    p.validate_at = {};
  }
  switch (p.validation) {
    case V::kAllowed:
      return true;
    case V::kRefused:
      DeadLetterAll(p, p.refused_status, Cat("endpoint validation refused: ", p.refusal));
      return false;
    case V::kNone:
    case V::kPending:
      break;
  }
  if (p.validating) return false;
  if (clock_.Now() < p.validate_at) {
    ArmGate(p, p.validate_at);
    return false;
  }
  p.validation = V::kPending;
  p.validation_stat.store(V::kPending);
  p.validating = true;
  p.validated_for = config.profile;
  asio::co_spawn(io_, Validate(&p, p.config), asio::detached);
  return false;
}

asio::awaitable<void> Worker::Validate(ProfileState* p,
                                       std::shared_ptr<const ProfileConfig> config) {
  ClientResponse response;
  try {
    if (!config->url.ok()) {
      response.error = std::string(ToStd(config->url.status().message()));
      response.refused = true;
    } else if (!config->tls.ok()) {
      // This profile's own settings: asking again cannot help until they change.
      response.error = Cat("TLS: ", ToStd(config->tls.status().message()));
      response.refused = true;
    } else {
      std::vector<std::pair<std::string, std::string>> headers = config->profile.headers;
      headers.emplace_back("webhook-request-origin", host_.options().origin);
      if (config->profile.rate_limit) {
        headers.emplace_back("webhook-request-rate",
                             std::to_string(*config->profile.rate_limit * 60));
      }
      const ClientRequest request{
          .url = &*config->url,
          .tls = config->tls->get(),
          .options = true,
          .headers = &headers,
          .connect_timeout = milliseconds(config->profile.connect_timeout_ms),
          .read_timeout = milliseconds(config->profile.read_timeout_ms)};
      response = co_await client_->Send(request);
    }
  } catch (const std::exception& e) {
    response = {};
    response.error = Cat("internal error while validating: ", e.what());
  }
  OnValidated(*p, *config, response);
}

void Worker::OnValidated(ProfileState& p, const ProfileConfig& config,
                         const ClientResponse& response) {
  using V = ProfileState::Validation;
  p.validating = false;
  auto log = [&](std::string_view line) {
    if (host_.options().log) host_.options().log(Cat("delivery: profile ", p.id, ": ", line));
  };
  auto header = [&](std::string_view name) -> std::optional<std::string_view> {
    for (const auto& [k, v] : response.headers) {
      if (k == name) return std::string_view(v);
    }
    return std::nullopt;
  };
  const int status = response.status;
  std::string refusal;
  std::optional<double> rate;
  int64_t per_minute = 0;
  const bool unanswered =
      (status == 0 && !response.refused) || status == 408 || status == 429 || status >= 500;
  if (unanswered) {
    // Not reached, or not able to answer now: not a refusal; asked again, less and less often.
    // What waits meanwhile gets the deliveries' rule: after the retry policy's maxAttempts
    // unanswered requests, dead letters (replayable), and the asking goes on.
    p.validation = V::kPending;
    p.validate_backoff =
        std::clamp(p.validate_backoff * 2, milliseconds(1000), milliseconds(60000));
    p.validate_at = clock_.Now() + p.validate_backoff;
    const std::string why = Cat("endpoint validation: no answer yet (", FailureReason(response),
                                "); asking again in ", p.validate_backoff.count(), " ms");
    {
      MutexLock lock(p.stats_mu);
      p.validation_error = why;
    }
    log(why);
    if (++p.validate_attempts >= config.retry.max_attempts) {
      p.validate_attempts = 0;
      DeadLetterAll(p, status, why);
    }
    ArmGate(p, p.validate_at);
    return;
  }
  const auto allowed_origin = header("webhook-allowed-origin");
  const std::string& origin = host_.options().origin;
  if (status == 0) {
    refusal = FailureReason(response);  // refused here: a private address, a TLS setting
  } else if (status != 200) {
    refusal = Cat("the receiver answered the OPTIONS request with ", FailureReason(response));
  } else if (!allowed_origin) {
    refusal = "the receiver's 200 has no WebHook-Allowed-Origin header";
  } else if (*allowed_origin != origin && *allowed_origin != "*") {
    refusal = Cat("WebHook-Allowed-Origin is \"", *allowed_origin, "\", not \"", origin, "\"");
  } else if (const auto allowed_rate = header("webhook-allowed-rate");
             allowed_rate && *allowed_rate != "*") {
    int64_t n = 0;
    const auto [end, ec] =
        std::from_chars(allowed_rate->data(), allowed_rate->data() + allowed_rate->size(), n);
    if (ec != std::errc() || end != allowed_rate->data() + allowed_rate->size() || n <= 0) {
      refusal = Cat("WebHook-Allowed-Rate \"", *allowed_rate,
                    "\" is neither * nor a number of requests per minute");
    } else {
      per_minute = n;
      rate = static_cast<double>(n) / 60;
    }
  }
  {
    MutexLock lock(p.stats_mu);
    p.validation_error = refusal;
    p.allowed_rate_per_minute = per_minute;
  }
  p.validate_attempts = 0;
  if (refusal.empty()) {
    p.validation = V::kAllowed;
    p.allowed_rate = rate;
    if (rate) p.bucket.Reset(1);
    log(per_minute
            ? Cat("endpoint validation: allowed, at most ", per_minute, " requests per minute")
            : std::string("endpoint validation: allowed"));
  } else {
    p.validation = V::kRefused;
    p.refused_status = status;
    p.refusal = refusal;
    log(Cat("endpoint validation refused, nothing is sent until the profile is updated: ",
            refusal));
  }
  p.validation_stat.store(p.validation);
  Pump(p);
}

void Worker::Pump(ProfileState& p) {
  {
    MutexLock lock(p.inbox_mu);
    for (auto& item : p.inbox) p.ready.push_back(std::move(item));
    p.inbox.clear();
    p.pump_posted = false;
  }
  if (!p.unwritten.empty()) Bury(p, std::exchange(p.unwritten, {}));
  if (!RefreshConfig(p)) {
    ForgetValidation(p);  // a profile created again with this id is asked afresh
    DeadLetterAll(p, 0, Cat("profile ", p.id, " no longer exists"));
    return;
  }
  if (p.disabled.load()) {
    DeadLetterAll(p, 410, "profile disabled: its receiver answered 410 Gone");
    return;
  }
  if (!p.config->cloudevents) {
    ForgetValidation(p);
  } else if (!Validated(p)) {
    return;
  }
  const auto now = clock_.Now();
  while (!p.retries.empty() && p.retries.begin()->first <= now) {
    p.awaiting_retry.fetch_sub(p.retries.begin()->second->items.size(), std::memory_order_relaxed);
    p.due.push_back(std::move(p.retries.begin()->second));
    p.retries.erase(p.retries.begin());
  }
  ArmRetryTimer(p);
  const ProfileConfig& config = *p.config;
  while (!p.due.empty() || !p.ready.empty()) {
    const CircuitBreaker::State breaker = p.breaker.Admit();
    if (breaker == CircuitBreaker::State::kOpen) {
      ArmGate(p, p.breaker.open_until());
      return;
    }
    const bool probe = breaker == CircuitBreaker::State::kHalfOpen;  // one request
    const uint32_t window = probe ? 1 : static_cast<uint32_t>(config.profile.window_size);
    if (p.in_flight >= window) return;
    // Adaptive batching: with a request already in flight, a partial batch waits for it to
    // finish (or for a full batch) instead of going out thin. An idle profile sends at once, so
    // a lone notification never waits; under load batches fill and the window opens up.
    if (p.due.empty() && p.in_flight > 0 &&
        p.ready.size() < static_cast<size_t>(config.profile.max_bucket_size)) {
      return;
    }
    // rateLimit, and what the receiver allowed in endpoint validation: the lower.
    std::optional<double> rate;
    if (config.profile.rate_limit) rate = *config.profile.rate_limit;
    if (config.cloudevents && p.allowed_rate) rate = std::min(rate.value_or(1e9), *p.allowed_rate);
    const size_t max_items = static_cast<size_t>(config.profile.max_bucket_size);
    std::unique_ptr<Batch> batch;
    if (p.due.empty() && config.ordered) {
      batch = FormOrdered(p, max_items);
      if (!batch) return;  // each key waiting has a request out: its end pumps again
    }
    if (rate) {
      if (const auto at = p.bucket.Take(*rate)) {
        if (batch) {
          for (auto it = batch->items.rbegin(); it != batch->items.rend(); ++it) {
            p.ready.push_front(std::move(*it));  // first again, as they were
          }
        }
        ArmGate(p, *at);
        return;
      }
    }
    if (batch) {
      // Formed above.
    } else if (!p.due.empty()) {
      batch = std::move(p.due.front());
      p.due.pop_front();
    } else {
      batch = batches_.Form(p.ready, max_items);
    }
    if (batch->attempts == 0 && config.cloudevents && !batch->cloudevents) {
      // Built once: a retry sends the same body.
      batch->body = CloudEventsBody(*batch, clock_.UnixMillis());
      batch->cloudevents = true;
    }
    if (batch->attempts == 0) {
      // Handed back by a log that retried them (distributed mode): their attempts count on,
      // the fewest of them, so no item of a mixed batch is given up before its time.
      int prior = INT_MAX;
      for (const Item& item : batch->items) {
        prior = std::min(prior, item.letter ? 0 : item.notification.prior_attempts());
      }
      batch->attempts = prior == INT_MAX ? 0 : prior;
    }
    batch->probe = probe;
    ++p.in_flight;
    p.in_flight_stat.store(p.in_flight, std::memory_order_relaxed);
    // Registered now, not when the coroutine starts (co_spawn only posts its first step), so a
    // Stop() in between still finds it.
    p.sending.insert(batch.get());
    asio::co_spawn(io_, Send(&p, std::move(batch), p.config), asio::detached);
  }
}

asio::awaitable<void> Worker::Send(ProfileState* p, std::unique_ptr<Batch> batch,
                                   std::shared_ptr<const ProfileConfig> config) {
  ++batch->attempts;
  const auto start = SteadyClock::now();
  ClientResponse response;
  const bool recorded = host_.deliveries().enabled();
  std::vector<std::pair<std::string, std::string>> sent;
  // Whatever goes wrong in an attempt ends it as a failed attempt with its reason: the batch is
  // settled, retried or buried by OnResult, never left dangling in `sending`.
  try {
    response = co_await Attempt(*batch, *config, recorded ? &sent : nullptr);
  } catch (const std::exception& e) {
    response = {};
    response.error = Cat("internal error while sending: ", e.what());
    if (host_.options().log) {
      host_.options().log(
          Cat("delivery: profile ", p->id, ": request ", batch->id, " failed: ", response.error));
    }
  }
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  p->latency.Observe(seconds);
  p->requests.fetch_add(1, std::memory_order_relaxed);
  p->sending.erase(batch.get());
  DeliveryAttempt record;
  if (recorded) {
    record.latency_ms = seconds * 1000;
    record.url = RedactUrl(config->profile.webhook.notify_url);
    record.request.headers = std::move(sent);
    const std::string_view body = batch->request_body();
    record.request.body = Excerpt(body, kRequestExcerptBytes);
    record.request.body_bytes = body.size();
    record.response.body = Excerpt(response.body, kResponseExcerptBytes);
    record.response.body_bytes = response.body.size();
  }
  OnResult(*p, std::move(batch), *config, response, std::move(record));
}

asio::awaitable<ClientResponse> Worker::Attempt(
    const Batch& batch, const ProfileConfig& config,
    std::vector<std::pair<std::string, std::string>>* sent) {
  ClientResponse response;
  if (!config.url.ok()) {
    response.error = std::string(ToStd(config.url.status().message()));
    response.refused = true;
  } else if (!config.tls.ok()) {
    response.error = Cat("TLS: ", ToStd(config.tls.status().message()));
  } else {
    const NotificationProfile& profile = config.profile;
    const std::string_view body = batch.request_body();
    const bool oauth = config.security && config.security->type == SecurityType::kOAuth;
    std::string token;
    for (int round = 0; round < 2; ++round) {
      std::vector<std::pair<std::string, std::string>> headers = profile.headers;
      const int64_t timestamp = clock_.UnixMillis() / 1000;
      headers.emplace_back("webhook-id", batch.id);
      headers.emplace_back("webhook-timestamp", std::to_string(timestamp));
      headers.emplace_back("x-herald-subscription", batch.subscriptions);
      headers.emplace_back("x-herald-channel", batch.channels);
      headers.emplace_back("x-herald-event", batch.events);
      if (config.cloudevents) headers.emplace_back("origin", host_.options().origin);
      if (config.security) {
        const SecuritySetting& security = *config.security;
        if (security.type == SecurityType::kHmac || security.type == SecurityType::kEd25519) {
          headers.emplace_back("webhook-signature", WebhookSignatures(security, batch.id, timestamp,
                                                                      body, clock_.UnixMillis()));
        } else if (security.type == SecurityType::kBasic) {
          headers.emplace_back("authorization",
                               BasicAuthorization(security.username, security.password));
        } else if (oauth) {
          const std::string_view stale = round == 0 ? std::string_view() : token;
          auto fetched = co_await tokens_->Get(security, stale);
          if (!fetched.ok()) {
            response = {};
            response.error = std::string(ToStd(fetched.status().message()));
            break;
          }
          token = std::move(*fetched);
          headers.emplace_back("authorization", Cat("Bearer ", token));
        }
      }
      if (sent) {
        sent->clear();
        for (const auto& [name, value] : headers) {
          // The signature proves, and reveals nothing: it stays, for debugging receivers.
          const bool hide = IsCredentialHeader(name) && name != "webhook-signature";
          sent->emplace_back(name, hide ? std::string("[redacted]") : value);
        }
      }
      // Named, not a temporary: GCC 12 destroys temporaries of a co_await expression twice.
      const ClientRequest request{
          .url = &*config.url,
          .tls = config.tls->get(),
          .content_type = batch.cloudevents ? CloudEventsContentType(batch)
                          : profile.webhook.content_type.empty()
                              ? std::string_view("application/json")
                              : std::string_view(profile.webhook.content_type),
          .headers = &headers,
          .body = body,
          .connect_timeout = milliseconds(profile.connect_timeout_ms),
          .read_timeout = milliseconds(profile.read_timeout_ms)};
      response = co_await client_->Send(request);
      // A 401 with OAuth: the token may have been revoked; fetch a new one, once.
      if (!(oauth && response.status == 401)) break;
    }
  }
  co_return response;
}

void Worker::BreakerFailure(ProfileState& p, bool probe) {
  if (!p.breaker.Failed(probe)) return;
  p.circuit_open.store(true);
  if (host_.options().log) {
    host_.options().log(
        Cat("delivery: profile ", p.id, ": circuit open after ", p.breaker.consecutive_failures(),
            " consecutive failures; next probe in ", p.breaker.open_for().count(), " ms"));
  }
}

void Worker::NoteFailure(ProfileState& p, int status, std::string_view reason) {
  ++p.failed_requests;
  if (p.failing && p.failing_status == status) return;
  const bool changed = p.failing;
  p.failing = true;
  p.failing_stat.store(true, std::memory_order_relaxed);
  p.failing_status = status;
  if (!host_.options().log) return;
  host_.options().log(
      Cat("delivery: profile ", p.id, changed ? ": now failing: " : ": failing: ", reason));
}

void Worker::NoteSuccess(ProfileState& p) {
  if (!p.failing) return;
  if (host_.options().log) {
    host_.options().log(Cat("delivery: profile ", p.id, ": delivering again after ",
                            p.failed_requests, " failed request(s)"));
  }
  p.failing = false;
  p.failing_stat.store(false, std::memory_order_relaxed);
  p.failed_requests = 0;
}

void Worker::OnResult(ProfileState& p, std::unique_ptr<Batch> batch, const ProfileConfig& config,
                      const ClientResponse& response, DeliveryAttempt record) {
  --p.in_flight;
  p.in_flight_stat.store(p.in_flight, std::memory_order_relaxed);
  const size_t n = batch->items.size();
  const int status = response.status;
  // A 2xx the profile's response checks refuse is a failed attempt, retried like a 5xx.
  std::string mismatch;
  if (status >= 200 && status <= 299) {
    const std::string status_line = Cat(status, " ", response.reason);
    if (config.status_re && !RE2::PartialMatch(status_line, *config.status_re)) {
      mismatch = Cat("HTTP ", status_line, ": the status line does not match responseRegex ",
                     config.profile.response_regex);
    } else if (config.body_re && !RE2::PartialMatch(response.body, *config.body_re)) {
      mismatch = Cat("HTTP ", status, ": the body does not match responseBodyRegex ",
                     config.profile.response_body_regex);
    }
  }
  const bool succeeded = status >= 200 && status <= 299 && mismatch.empty();
  const bool replay = std::any_of(batch->items.begin(), batch->items.end(),
                                  [](const Item& item) { return item.letter != nullptr; });
  const int64_t now_ms = clock_.UnixMillis();
  const std::string reason =
      succeeded ? std::string() : (mismatch.empty() ? FailureReason(response) : mismatch);
  {
    MutexLock lock(p.stats_mu);
    if (!replay) p.recent.Record(now_ms, succeeded);
    if (succeeded) {
      p.last_success_at_ms = now_ms;
    } else {
      p.last_error = reason;
      p.last_error_at_ms = now_ms;
    }
  }
  // The ring's record, completed with `outcome` (and the retry's time) before the batch moves on.
  const bool recorded = host_.deliveries().enabled();
  auto keep_record = [&](std::string_view outcome, int64_t next_retry_at_ms) {
    if (!recorded) return;
    record.at_ms = now_ms;
    record.profile_id = p.id;
    record.webhook_id = batch->id;
    record.channel = batch->channels;
    record.event = batch->events;
    record.notifications = n;
    record.status = status;
    record.error = reason;
    record.attempt = batch->attempts;
    record.max_attempts = config.retry.max_attempts;
    record.outcome = std::string(outcome);
    record.next_retry_at_ms = next_retry_at_ms;
    record.replay = replay;
    host_.deliveries().Add(std::move(record), batch->request_body());
  };
  if (succeeded) {
    NoteSuccess(p);
    keep_record("delivered", 0);
    // held first: whoever sees the outcome counter move also sees held (and failed) settled.
    // A replayed dead letter leaves the store now that it is delivered.
    const auto now = SteadyClock::now();
    std::vector<uint64_t> replayed;
    for (auto& item : batch->items) {
      if (item.letter) {
        replayed.push_back(item.letter->id);
      } else {
        host_.end_to_end().Observe(
            std::chrono::duration<double>(now - item.notification.ingested_at()).count());
        item.notification.Settle();
      }
    }
    auto count = [&p, n] {
      p.held.fetch_sub(n, std::memory_order_relaxed);
      p.delivered.fetch_add(n, std::memory_order_release);
    };
    if (replayed.empty()) {
      count();
    } else {
      // Counted once the letters are out of the store: whoever sees them delivered does not
      // list them any more.
      const size_t letters = replayed.size();
      host_.writer().Remove(std::move(replayed), [this, &p, letters, count](const absl::Status& s) {
        if (!s.ok() && host_.options().log) {
          host_.options().log(Cat("delivery: profile ", p.id, ": removing ", letters,
                                  " delivered dead letter(s) from the store: ", ToStd(s.message()),
                                  "; a later replay sends them again"));
        }
        Completed(count);
      });
    }
    if (p.breaker.Succeeded()) {
      p.circuit_open.store(false);
      if (host_.options().log) {
        host_.options().log(Cat("delivery: profile ", p.id, ": circuit closed"));
      }
    }
    batch.reset();
    Pump(p);
    return;
  }
  p.failed.fetch_add(n, std::memory_order_relaxed);
  NoteFailure(p, status, reason);
  batch->last_status = status;
  batch->last_error = !mismatch.empty() ? mismatch
                      : status == 0     ? response.error
                                        : Cat("HTTP ", status);
  const bool transport = status == 0 && !response.refused;
  if (transport || status == 408 || status >= 500) BreakerFailure(p, batch->probe);
  // A refused 2xx still shows the receiver up: an open circuit closes.
  if (!mismatch.empty() && p.breaker.Succeeded()) p.circuit_open.store(false);
  if (status == 410) {
    p.disabled.store(true);
    host_.writer().SetDisabled(p.id, true, [this, id = p.id](const absl::Status& s) {
      if (s.ok() || !host_.options().log) return;
      host_.options().log(
          Cat("delivery: recording that profile ", id, " is disabled: ", ToStd(s.message())));
    });
    if (host_.options().log) {
      host_.options().log(Cat("delivery: profile ", p.id,
                              " disabled: its receiver answered 410 Gone; update the "
                              "profile to enable it again"));
    }
  }
  const bool retryable =
      transport || status == 408 || status == 429 || status >= 500 || !mismatch.empty();
  if (retryable && batch->attempts < config.retry.max_attempts) {
    const auto delay = retry_schedule_.Delay(config.retry, batch->attempts, response.retry_after);
    keep_record("retrying",
                now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
    p.retried.fetch_add(n, std::memory_order_relaxed);
    if (RetryThroughLog(p, *batch, delay)) {
      batch.reset();
    } else {
      p.awaiting_retry.fetch_add(n, std::memory_order_relaxed);
      p.retries.emplace(clock_.Now() + delay, std::move(batch));
    }
  } else {
    keep_record("dead-lettered", 0);
    std::vector<Burial> burials;
    for (auto& item : batch->items) {
      burials.push_back(BurialOf(p, item, batch->attempts, batch->last_status, batch->last_error));
    }
    Bury(p, std::move(burials));
  }
  Pump(p);
}

bool Worker::RetryThroughLog(ProfileState& p, Batch& batch, milliseconds delay) {
  const auto& retry = host_.options().retry_through_log;
  // An ordered profile's retry stays here: its key is busy until the retry is done.
  if (!retry || p.config->ordered) return false;
  std::vector<Notification*> notifications;
  for (Item& item : batch.items) {
    if (item.letter || item.notification.sequence() == 0) return false;
    notifications.push_back(&item.notification);
  }
  if (!retry(notifications, delay)) return false;
  for (Notification* n : notifications) n->Settle();  // the log holds them now
  p.held.fetch_sub(batch.items.size(), std::memory_order_relaxed);
  return true;
}

DeadLetter Worker::LetterOf(const ProfileState& p, const Item& item, int attempts, int status,
                            std::string_view error) const {
  return {.profile_id = p.id,
          .subscription_id = std::string(item.subscription_id()),
          .channel = std::string(item.channel()),
          .event = std::string(item.event()),
          .webhook_id = std::string(item.webhook_id()),
          .payload = std::string(item.payload()),
          .attempts = attempts,
          .last_status = status,
          .last_error = std::string(error),
          .failed_at_ms = clock_.UnixMillis()};
}

Burial Worker::BurialOf(const ProfileState& p, Item& item, int attempts, int status,
                        std::string_view error) const {
  return {.letter = LetterOf(p, item, attempts, status, error),
          .source = std::move(item.notification),
          .replaces = item.letter ? item.letter->id : 0};
}

void Worker::Bury(ProfileState& p, std::vector<Burial> burials) {
  if (burials.empty()) return;
  std::vector<DeadLetter> letters;
  std::vector<uint64_t> replaces;
  for (const auto& b : burials) {
    letters.push_back(b.letter);
    replaces.push_back(b.replaces);
  }
  auto held = std::make_shared<std::vector<Burial>>(std::move(burials));
  host_.writer().Add(
      std::move(letters), std::move(replaces),
      [this, &p, held](const absl::Status& s, size_t stored) {
        Completed([this, &p, held, s, stored] { Buried(p, std::move(*held), s, stored); });
      });
}

void Worker::Buried(ProfileState& p, std::vector<Burial> burials, const absl::Status& status,
                    size_t stored) {
  const size_t n = burials.size();
  if (!status.ok()) {
    // Not on disk yet: keep them (still held) and write again shortly — never send again.
    if (host_.options().log) {
      host_.options().log(Cat("delivery: profile ", p.id, ": writing ", n,
                              " dead letter(s): ", ToStd(status.message()), "; will retry"));
    }
    for (auto& b : burials) p.unwritten.push_back(std::move(b));
    ArmGate(p, clock_.Now() + std::chrono::seconds(1));
    return;
  }
  // Stored, or (replayed letters the user deleted meanwhile) gone for good.
  for (auto& b : burials) b.source.Settle();
  p.held.fetch_sub(n, std::memory_order_relaxed);
  p.dead_lettered.fetch_add(stored, std::memory_order_release);
}

void Worker::Completed(std::function<void()> fn) {
  bool post = false;
  {
    MutexLock lock(completed_mu_);
    completed_.push_back(std::move(fn));
    post = !std::exchange(collect_posted_, true);
  }
  if (post) asio::post(io_, [this] { Collect(); });
}

void Worker::Collect() {
  std::vector<std::function<void()>> completed;
  {
    MutexLock lock(completed_mu_);
    completed.swap(completed_);
    collect_posted_ = false;
  }
  for (auto& fn : completed) fn();
}

void Worker::ReleaseReplays(ProfileState& p) {
  std::vector<uint64_t> ids;
  auto release = [&](std::vector<Item>& items) {
    std::erase_if(items, [&](const Item& item) {
      if (item.letter) ids.push_back(item.letter->id);
      return item.letter != nullptr;
    });
  };
  for (auto& b : p.due) release(b->items);
  for (auto& [at, b] : p.retries) release(b->items);
  std::erase_if(p.ready, [&](const Item& item) {
    if (item.letter) ids.push_back(item.letter->id);
    return item.letter != nullptr;
  });
  // Letters that failed again but whose replacement the store refused: the original is there.
  std::erase_if(p.unwritten, [&](const Burial& b) {
    if (b.replaces != 0 && b.source.empty()) ids.push_back(b.replaces);
    return b.replaces != 0 && b.source.empty();
  });
  for (const Batch* b : p.sending) {
    for (const Item& item : b->items) {
      if (item.letter) ids.push_back(item.letter->id);
    }
  }
  host_.dead_letters().EndReplay(ids);
}

void Worker::LeaveToLog(ProfileState& p) {
  size_t left = 0;
  for (auto& b : p.due) left += b->items.size();
  for (auto& [at, b] : p.retries) left += b->items.size();
  left += p.ready.size();
  p.due.clear();
  p.retries.clear();
  p.ready.clear();
  // Dead letters the store refused come from the spool: it replays their notifications.
  left += p.unwritten.size();
  p.unwritten.clear();
  if (left > 0 && host_.options().log) {
    host_.options().log(Cat("delivery: profile ", p.id, ": ", left,
                            " undelivered notification(s) left to the spool's replay"));
  }
}

void Worker::DeadLetterAll(ProfileState& p, int status, std::string_view error) {
  std::vector<Burial> burials;
  for (auto& b : p.due) {
    for (auto& item : b->items) burials.push_back(BurialOf(p, item, b->attempts, status, error));
  }
  p.due.clear();
  for (auto& [at, b] : p.retries) {
    for (auto& item : b->items) burials.push_back(BurialOf(p, item, b->attempts, status, error));
  }
  p.retries.clear();
  p.awaiting_retry.store(0, std::memory_order_relaxed);
  for (auto& item : p.ready) burials.push_back(BurialOf(p, item, 0, status, error));
  p.ready.clear();
  Bury(p, std::move(burials));
}

void Worker::ArmRetryTimer(ProfileState& p) {
  if (p.retries.empty()) return;
  const auto at = p.retries.begin()->first;
  if (at >= p.retry_timer_at) return;
  p.retry_timer_at = at;
  p.retry_timer->Set(at, [this, &p] {
    p.retry_timer_at = Clock::time_point::max();
    Pump(p);
  });
}

void Worker::ArmGate(ProfileState& p, Clock::time_point at) {
  if (at >= p.gate_timer_at) return;
  p.gate_timer_at = at;
  p.gate_timer->Set(at, [this, &p] {
    p.gate_timer_at = Clock::time_point::max();
    Pump(p);
  });
}

void Worker::Drain(const std::vector<ProfileState*>& profiles) {
  for (ProfileState* p : profiles) {
    {
      MutexLock lock(p->inbox_mu);
      for (auto& item : p->inbox) p->ready.push_back(std::move(item));
      p->inbox.clear();
    }
    // Replayed dead letters are still in the store: a later replay sends them.
    ReleaseReplays(*p);
    // Requests still in flight are abandoned: their notifications become dead letters too
    // (the receiver may have them already; replay may then duplicate, never lose). With a log
    // that replays unsettled notifications, they are left to it.
    const bool leave = host_.options().log_replays_unsettled;
    std::vector<Burial> burials;
    for (const Batch* b : p->sending) {
      for (const auto& item : b->items) {
        if (!leave && !item.letter) {
          burials.push_back({.letter = LetterOf(*p, item, b->attempts, 0, kStoppedError)});
        }
      }
    }
    p->sending.clear();
    Bury(*p, std::move(burials));
    // Burials settle before what is left is counted: those the store refused are among it.
    host_.writer().Flush();
    Collect();
    if (leave) {
      LeaveToLog(*p);
    } else {
      DeadLetterAll(*p, 0, kStoppedError);
      host_.writer().Flush();
      Collect();
    }
    if (!p->unwritten.empty() && host_.options().log) {
      host_.options().log(Cat("delivery: profile ", p->id, ": ", p->unwritten.size(),
                              " undelivered notification(s) LOST: the dead-letter store "
                              "refused them"));
    }
    p->retry_timer->Cancel();
    p->gate_timer->Cancel();
  }
  client_->CloseIdle();
  work_.reset();
  io_.stop();
}

}  // namespace herald::deliver
