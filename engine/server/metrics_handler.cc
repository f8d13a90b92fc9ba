// GET /metrics: the engine's, the deliverer's, the event log's and the server's counters in
// Prometheus' text format.
#include "engine/common/strings.h"
#include "engine/server/http_api.h"
#include "engine/server/prometheus.h"

namespace herald::server {
namespace {

void DeliveryMetrics(PrometheusWriter& w, const std::vector<ProfileDeliveryStats>& stats) {
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
    w.Family(f.name, f.type, f.help);
    for (const auto& p : stats) w.Sample(f.name, "profile", p.profile_id, p.*f.value);
  }
  w.Family("herald_webhook_disabled", "gauge", "1 when a 410 Gone disabled the profile.");
  for (const auto& p : stats) {
    w.Sample("herald_webhook_disabled", "profile", p.profile_id, p.disabled ? 1 : 0);
  }
  w.Family("herald_webhook_circuit_open", "gauge",
           "1 while the profile's circuit breaker is open.");
  for (const auto& p : stats) {
    w.Sample("herald_webhook_circuit_open", "profile", p.profile_id, p.circuit_open ? 1 : 0);
  }
  w.Family("herald_webhook_request_duration_seconds", "histogram",
           "Webhook request latency, per profile.");
  for (const auto& p : stats) {
    w.Histogram("herald_webhook_request_duration_seconds", "profile", p.profile_id,
                p.latency_buckets, p.latency_sum_seconds);
  }
}

void EventLogMetrics(PrometheusWriter& w, const store::EventLog::Stats& s) {
  w.Counter("herald_spool_records_total", "Ingest requests appended to the event spool.",
            s.appended);
  w.Counter("herald_spool_bytes_total", "Bytes appended to the event spool.", s.appended_bytes);
  w.Counter("herald_spool_append_errors_total",
            "Ingest requests refused (503) because the spool could not store them.",
            s.append_errors);
  w.Counter("herald_spool_fsyncs_total", "fdatasyncs of the spool (shared by group commit).",
            s.fsyncs);
  w.Counter("herald_spool_replayed_records_total", "Spool records re-routed at start.", s.replayed);
  w.Counter("herald_spool_cursor_writes_total", "Delivery cursor checkpoints written.",
            s.cursor_writes);
  w.Counter("herald_spool_cursor_errors_total", "Delivery cursor checkpoints that failed.",
            s.cursor_errors);
  w.Gauge("herald_spool_segments", "Spool segment files kept.", s.segments);
  w.Gauge("herald_spool_next_sequence", "The sequence number of the next spool record.",
          s.next_seq);
  w.Gauge("herald_spool_oldest_sequence", "The oldest spool record kept.", s.first_seq);
  w.Gauge("herald_spool_bytes", "Bytes of spool segments kept.", s.spool_bytes);
  w.Counter("herald_spool_retention_segments_total",
            "Spool segments dropped past retain_max_mb or retain_max_hours.", s.retention_segments);
  w.Counter("herald_spool_retention_dead_letters_total",
            "Notifications those segments still owed, kept as dead letters (reason retention).",
            s.retention_dead_letters);
  w.Gauge("herald_spool_waiting_for_room",
          "Records a full queue refused, waiting in the spool for a profile's queue to have room.",
          s.waiting_for_room);
  w.Gauge("herald_spool_slowest_cursor",
          "The oldest spool record some profile has not finished (retention keeps it).",
          s.slowest_cursor);
}

}  // namespace

void HttpApi::Metrics(Call& call) {
  const Counters c = engine_.counters();
  std::string out;
  PrometheusWriter w(out);
  w.Counter("herald_events_accepted_total", "Events parsed and routed.", c.accepted);
  w.Family("herald_events_rejected_total", "counter", "Events refused, by reason.");
  for (int i = 0; i < kRejectReasonCount; ++i) {
    w.Sample("herald_events_rejected_total", "reason",
             RejectReasonName(static_cast<RejectReason>(i)), c.rejected_by_reason[i]);
  }
  w.Counter("herald_events_matched_total", "Accepted events with at least one notification.",
            c.matched);
  w.Counter("herald_events_unmatched_total", "Accepted events that matched no subscription.",
            c.unmatched);
  w.Counter("herald_notifications_enqueued_total", "Notifications put on a profile queue.",
            c.enqueued);
  w.Counter("herald_notifications_back_pressured_total", "Notifications refused by a full queue.",
            c.back_pressured);
  w.Gauge("herald_subscriptions", "Subscriptions this instance routes by.",
          static_cast<uint64_t>(engine_.subscription_count()));
  w.Gauge("herald_payload_bytes",
          "Bytes of input buffers alive: being routed, or kept by queued and held notifications.",
          c.payload_bytes);
  const auto queues = engine_.queue_stats();
  w.Family("herald_queue_depth", "gauge", "Notifications waiting per profile.");
  for (const auto& q : queues) w.Sample("herald_queue_depth", "profile", q.profile_id, q.depth);
  w.Family("herald_queue_bytes", "gauge", "Payload bytes waiting per profile.");
  for (const auto& q : queues) w.Sample("herald_queue_bytes", "profile", q.profile_id, q.bytes);
  if (deliverer_) {
    DeliveryMetrics(w, deliverer_->stats());
    const DeadLetterStats d = deliverer_->dead_letter_stats();
    w.Gauge("herald_dead_letters", "Dead letters kept.", d.letters);
    w.Gauge("herald_dead_letter_bytes", "Bytes of the dead letters kept.", d.bytes);
    w.Counter("herald_dead_letters_dropped_total",
              "Dead letters removed by [dead_letters] max_mb or max_age_hours.", d.dropped);
  }
  if (options_.store_metrics) {
    options_.store_metrics(w);
  } else if (events_) {
    EventLogMetrics(w, events_->stats());
  }
  if (const LimitHits* hits = options_.limit_hits) {
    w.Family("herald_limit_hits_total", "counter", "Requests and connections refused by a limit.");
    const std::pair<const char*, const std::atomic<uint64_t>*> limits[] = {
        {"max_connections", &hits->connections},
        {"max_header_bytes", &hits->header_bytes},
        {"body_bytes", &hits->body_bytes},
        {"max_requests_per_second", &hits->request_rate},
        {"header_timeout", &hits->slow_headers},
        {"max_subscriptions_per_channel", &hits->subscriptions}};
    for (const auto& [name, value] : limits) {
      w.Sample("herald_limit_hits_total", "limit", name, value->load());
    }
  }
  w.Family("herald_http_responses_total", "counter", "HTTP responses by status class.");
  for (int cls = 2; cls <= 5; ++cls) {
    w.Sample("herald_http_responses_total", "code", Cat(cls, "xx"), responses_[cls].load());
  }
  w.Family("herald_http_request_duration_seconds", "histogram", "Time to answer an HTTP request.");
  w.Histogram("herald_http_request_duration_seconds", "", "", request_latency_.Buckets(),
              request_latency_.sum_seconds());
  w.Family("herald_routing_duration_seconds", "histogram",
           "Time to parse, match and enqueue one ingest request's events.");
  w.Histogram("herald_routing_duration_seconds", "", "", routing_latency_.Buckets(),
              routing_latency_.sum_seconds());
  call.response.status = 200;
  call.response.content_type = "text/plain; version=0.0.4";
  call.response.body = std::move(out);
}

}  // namespace herald::server
