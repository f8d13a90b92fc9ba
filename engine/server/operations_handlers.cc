// The operations API (DESIGN §9): /v1/stats (and /stream), /v1/deliveries (and /stream, resend)
// and /v1/route/explain. Times are Unix milliseconds; a value not known yet is null.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>

#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/server/http_api.h"
#include "engine/server/http_reply.h"

namespace herald::server {
namespace {

constexpr std::string_view kSuccessRateCounts =
    "webhook requests of the last 5 minutes answered 2xx, of all made then: first attempts and "
    "retries, replayed dead letters and resends left out";
constexpr size_t kStreamBurst = 50;  // attempts a deliveries stream sends per tick at most

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Quantiles(JsonWriter& w, std::string_view key,
               const std::vector<std::pair<double, uint64_t>>& buckets) {
  w.Key(key).BeginObject();
  w.Field("count", buckets.empty() ? uint64_t{0} : buckets.back().second);
  for (const auto& [name, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}}) {
    w.Field(name, Quantile(buckets, q) * 1000);
  }
  w.EndObject();
}

void OptionalTime(JsonWriter& w, std::string_view key, int64_t ms) {
  w.Key(key);
  if (ms > 0) {
    w.Int(ms);
  } else {
    w.Null();
  }
}

}  // namespace

void EncodeValidation(JsonWriter& w, const ProfileDeliveryStats& s) {
  w.Key("endpointValidation").BeginObject().Field("state", s.validation);
  if (!s.validation_error.empty()) w.Field("reason", s.validation_error);
  if (s.allowed_rate_per_minute > 0) w.Field("allowedRatePerMinute", s.allowed_rate_per_minute);
  w.EndObject();
}

namespace {

std::string_view StateOf(const ProfileDeliveryStats* s) {
  if (s == nullptr) return "healthy";
  if (s->disabled) return "disabled";
  if (s->validation == "refused") return "refused";
  if (s->validation == "pending") return "validating";
  if (s->circuit_open) return "circuit-open";
  if (s->failing) return "failing";
  return "healthy";
}

void EncodeExcerpt(JsonWriter& w, const DeliveryAttempt::Excerpt& e) {
  w.Key("headers").BeginObject();
  for (const auto& [name, value] : e.headers) w.Field(name, value);
  w.EndObject();
  w.Field("body", e.body).Field("bodyBytes", uint64_t{e.body_bytes});
  w.Field("truncated", e.body.size() < e.body_bytes);
}

void EncodeAttempt(JsonWriter& w, const DeliveryAttempt& a) {
  w.BeginObject()
      .Field("id", Cat(a.id))
      .Field("at", a.at_ms)
      .Field("profileId", a.profile_id)
      .Field("webhookId", a.webhook_id)
      .Field("channel", a.channel)
      .Field("event", a.event)
      .Field("notifications", uint64_t{a.notifications});
  w.Key("status");
  if (a.status > 0) {
    w.Int(a.status);
  } else {
    w.Null();
  }
  w.Key("error");
  if (a.error.empty()) {
    w.Null();
  } else {
    w.String(a.error);
  }
  w.Field("latencyMs", a.latency_ms)
      .Field("attempt", a.attempt)
      .Field("maxAttempts", a.max_attempts)
      .Field("outcome", a.outcome);
  OptionalTime(w, "nextRetryAt", a.next_retry_at_ms);
  w.Field("replay", a.replay).Field("resendable", a.resendable);
  w.Key("request").BeginObject().Field("method", a.method).Field("url", a.url);
  EncodeExcerpt(w, a.request);
  w.EndObject();
  w.Key("response").BeginObject();
  w.Key("status");
  if (a.status > 0) {
    w.Int(a.status);
  } else {
    w.Null();
  }
  EncodeExcerpt(w, a.response);
  w.EndObject();
  w.EndObject();
}

bool ParseUint(std::string_view text, uint64_t* v) {
  const auto [at, ec] = std::from_chars(text.data(), text.data() + text.size(), *v);
  return !text.empty() && ec == std::errc() && at == text.data() + text.size();
}

}  // namespace

std::string HttpApi::StatsJson() const {
  const Counters c = engine_.counters();
  const auto queues = engine_.queue_stats();
  std::vector<ProfileDeliveryStats> delivery;
  std::map<std::string, uint64_t> letters;
  DeadLetterStats dead;
  if (deliverer_) {
    delivery = deliverer_->stats();
    letters = deliverer_->dead_letter_counts();
    dead = deliverer_->dead_letter_stats();
  }
  std::map<std::string_view, const ProfileDeliveryStats*> by_profile;
  ProfileDeliveryStats total;
  std::vector<std::pair<double, uint64_t>> requests;
  for (const auto& s : delivery) {
    by_profile[s.profile_id] = &s;
    total.delivered += s.delivered;
    total.failed += s.failed;
    total.retried += s.retried;
    total.dead_lettered += s.dead_lettered;
    total.requests += s.requests;
    total.in_flight += s.in_flight;
    total.held += s.held;
    AddBuckets(requests, s.latency_buckets);
  }
  std::map<std::string_view, uint64_t> depth;
  uint64_t queued = 0;
  for (const auto& q : queues) {
    depth[q.profile_id] = q.depth;
    queued += q.depth;
  }

  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("at", NowMs());
  w.Key("counters").BeginObject();
  w.Field("accepted", c.accepted).Field("rejected", c.rejected);
  w.Key("rejectedByReason").BeginObject();
  for (int i = 0; i < kRejectReasonCount; ++i) {
    if (c.rejected_by_reason[i] > 0) {
      w.Field(RejectReasonName(static_cast<RejectReason>(i)), c.rejected_by_reason[i]);
    }
  }
  w.EndObject();
  w.Field("matched", c.matched)
      .Field("unmatched", c.unmatched)
      .Field("enqueued", c.enqueued)
      .Field("backPressured", c.back_pressured)
      .Field("delivered", total.delivered)
      .Field("failed", total.failed)
      .Field("retried", total.retried)
      .Field("deadLettered", total.dead_lettered)
      .Field("requests", total.requests)
      .EndObject();
  w.Key("gauges").BeginObject();
  w.Field("queued", queued)
      .Field("held", total.held)
      .Field("inFlight", total.in_flight)
      .Field("payloadBytes", c.payload_bytes)
      .Field("deadLetters", dead.letters)
      .Field("deadLetterBytes", dead.bytes);
  if (events_ && !options_.store_stats) {
    const auto s = events_->stats();
    w.Field("spoolBytes", s.spool_bytes);
    // Records some profile has not finished yet.
    w.Field("spoolLag", s.next_seq > s.slowest_cursor ? s.next_seq - s.slowest_cursor : 0);
  }
  w.EndObject();
  if (options_.store_stats) {
    w.Key("jetstream").BeginObject();
    options_.store_stats(w);
    w.EndObject();
  }
  w.Key("latency").BeginObject();
  Quantiles(w, "ingestToEnqueueMs", routing_latency_.Buckets());
  if (deliverer_) {
    Quantiles(w, "ingestTo2xxMs", deliverer_->end_to_end_latency());
    Quantiles(w, "webhookRequestMs", requests);
  }
  w.EndObject();
  w.Field("successRateCounts", kSuccessRateCounts);
  w.Key("profiles").BeginArray();
  for (const auto& profile : engine_.ListProfiles()) {
    const std::string& id = profile.profile_id;
    auto it = by_profile.find(id);
    const ProfileDeliveryStats* s = it == by_profile.end() ? nullptr : it->second;
    w.BeginObject().Field("profileId", id).Field("state", StateOf(s));
    w.Key("successRate5m");
    if (s && s->recent_requests > 0) {
      w.Double(static_cast<double>(s->recent_succeeded) / static_cast<double>(s->recent_requests));
    } else {
      w.Null();
    }
    w.Field("requests5m", s ? s->recent_requests : 0);
    w.Field("p99Ms", s ? Quantile(s->latency_buckets, 0.99) * 1000 : 0.0);
    w.Field("queue", depth[id] + (s ? s->held : 0));
    w.Field("inFlight", s ? s->in_flight : 0);
    w.Field("deadLetters", letters[id]);
    w.Field("delivered", s ? s->delivered : 0);
    w.Field("failed", s ? s->failed : 0);
    w.Key("lastError");
    if (s && s->last_error_at_ms > 0) {
      w.BeginObject().Field("at", s->last_error_at_ms).Field("message", s->last_error).EndObject();
    } else {
      w.Null();
    }
    OptionalTime(w, "lastSuccessAt", s ? s->last_success_at_ms : 0);
    if (s && !s->validation.empty()) EncodeValidation(w, *s);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return out;
}

void HttpApi::Stats(Call& call) { Json(call.response, 200, StatsJson()); }

void HttpApi::StatsStream(Call& call) {
  call.response.content_type = "application/x-ndjson";
  call.response.stream = [this](std::string* chunk) {
    *chunk = StatsJson();
    chunk->push_back('\n');
    return true;
  };
}

absl::StatusOr<DeliveryQuery> HttpApi::ParseDeliveryQuery(const Query& query) const {
  DeliveryQuery q{.profile_id = Value(query, "profileId"),
                  .status = Value(query, "status"),
                  .event = Value(query, "event")};
  const bool class_ok = q.status.size() == 3 && q.status[0] >= '1' && q.status[0] <= '5' &&
                        q.status.substr(1) == "xx";
  if (!q.status.empty() && q.status != "error" && !class_ok) {
    return ValidationError({{"status", {"must be 2xx, 4xx, 5xx (any Nxx) or error"}}});
  }
  if (const std::string limit = Value(query, "limit"); !limit.empty()) {
    uint64_t n = 0;
    if (!ParseUint(limit, &n) || n < 1 || n > 1000) {
      return ValidationError({{"limit", {"must be an integer from 1 to 1000"}}});
    }
    q.limit = n;
  }
  if (const std::string after = Value(query, "after"); !after.empty()) {
    if (!ParseUint(after, &q.after)) {
      return ValidationError({{"after", {"must be a delivery id"}}});
    }
  }
  return q;
}

void HttpApi::Deliveries(Call& call) {
  if (!deliverer_) return Error(call.response, 404, "NOT_FOUND", "webhook delivery is not enabled");
  auto query = ParseDeliveryQuery(call.query);
  if (!query.ok()) return FromStatus(call.response, query.status());
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("results").BeginArray();
  for (const auto& a : deliverer_->Deliveries(*query)) EncodeAttempt(w, a);
  w.EndArray().EndObject();
  Json(call.response, 200, std::move(out));
}

void HttpApi::DeliveriesStream(Call& call) {
  if (!deliverer_) return Error(call.response, 404, "NOT_FOUND", "webhook delivery is not enabled");
  auto query = ParseDeliveryQuery(call.query);
  if (!query.ok()) return FromStatus(call.response, query.status());
  // From what comes next; under load a sample of kStreamBurst per tick, and a line saying how
  // many were left out.
  query->after = query->after > 0 ? query->after : deliverer_->last_delivery_id();
  query->limit = 1000;
  call.response.content_type = "application/x-ndjson";
  call.response.stream_interval = std::chrono::milliseconds(250);
  call.response.stream = [this, q = *query](std::string* chunk) mutable {
    uint64_t last = 0;
    auto attempts = deliverer_->Deliveries(q, &last);  // newest first, and the latest id with them
    std::reverse(attempts.begin(), attempts.end());
    uint64_t dropped = 0;
    // Attempts that left the ring before this tick saw them (unfiltered streams can tell).
    const bool unfiltered = q.profile_id.empty() && q.status.empty() && q.event.empty();
    if (unfiltered && !attempts.empty() && attempts.front().id > q.after + 1) {
      dropped += attempts.front().id - q.after - 1;
    }
    JsonWriter w(*chunk);
    const size_t n = attempts.size();
    const size_t step = n > kStreamBurst ? (n + kStreamBurst - 1) / kStreamBurst : 1;
    for (size_t i = 0; i < n; ++i) {
      if (i % step != 0) {
        ++dropped;
        continue;
      }
      EncodeAttempt(w, attempts[i]);
      chunk->push_back('\n');
    }
    if (dropped > 0) {
      JsonWriter(*chunk).BeginObject().Field("dropped", dropped).EndObject();
      chunk->push_back('\n');
    }
    q.after = std::max(q.after, last);
    return true;
  };
}

void HttpApi::ResendDelivery(Call& call) {
  if (!deliverer_) return Error(call.response, 404, "NOT_FOUND", "webhook delivery is not enabled");
  uint64_t id = 0;
  if (!ParseUint(call.params[0], &id)) {
    return Error(call.response, 404, "NOT_FOUND", Cat("no delivery ", call.params[0]));
  }
  auto letter = deliverer_->Resend(id);
  if (!letter.ok()) return FromStatus(call.response, letter.status());
  std::string out;
  JsonWriter(out)
      .BeginObject()
      .Field("resent", Cat(id))
      .Field("deadLetterId", Cat(*letter))
      .EndObject();
  Json(call.response, 202, std::move(out));
}

void HttpApi::ExplainRoute(Call& call) {
  auto explained = engine_.Explain(call.request.body);
  if (!explained.ok()) {
    return Error(call.response, 400, "BAD_REQUEST", ToStd(explained.status().message()));
  }
  std::map<std::string_view, const ProfileDeliveryStats*> by_profile;
  std::vector<ProfileDeliveryStats> delivery;
  if (deliverer_) delivery = deliverer_->stats();
  for (const auto& s : delivery) by_profile[s.profile_id] = &s;
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("channel", explained->channel).Field("event", explained->event);
  w.Key("matches").BeginArray();
  for (const auto& m : explained->matches) {
    w.BeginObject()
        .Field("subscriptionId", m.subscription_id)
        .Field("group", m.group)
        .Field("specificity", m.specificity)
        .Field("winner", m.winner)
        .Field("profileId", m.profile_id)
        .EndObject();
  }
  w.EndArray().Key("profiles").BeginArray();
  for (const auto& id : explained->profiles) {
    auto it = by_profile.find(id);
    w.BeginObject()
        .Field("profileId", id)
        .Field("state", StateOf(it == by_profile.end() ? nullptr : it->second))
        .EndObject();
  }
  w.EndArray().EndObject();
  Json(call.response, 200, std::move(out));
}

}  // namespace herald::server
