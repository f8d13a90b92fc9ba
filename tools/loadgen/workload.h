// The load generators' workload, shared by herald-loadgen and the nats-server peer: which
// subscriptions exist, and realistic events for them — delivery reports, inbound messages and
// email events, 200 B to 2 KB — each stamped with its send time ("lgts", steady-clock ns).
#pragma once

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace herald::loadgen {

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// --- the workload --------------------------------------------------------------------------

struct Kind {
  const char* channel;
  const char* event;
  int shape;  // 0 delivery report, 1 inbound message, 2 email user event
};
constexpr Kind kKinds[] = {
    {"SMS", "DELIVERY", 0},        {"SMS", "INBOUND_MESSAGE", 1},
    {"WHATSAPP", "DELIVERY", 0},   {"WHATSAPP", "INBOUND_MESSAGE", 1},
    {"EMAIL", "OPEN", 2},          {"EMAIL", "CLICK", 2},
    {"EMAIL", "DELIVERY", 0},      {"VIBER", "DELIVERY", 0},
    {"RCS", "INBOUND_MESSAGE", 1}, {"MMS", "DELIVERY", 0},
};

// Subscription j: kind j % kinds, application "app-j", profile j % P. An event for app-j matches
// exactly that subscription, so every accepted event is one webhook notification.
inline const Kind& KindOf(size_t j) { return kKinds[j % std::size(kKinds)]; }

inline std::string Subscription(size_t j, size_t profiles) {
  const Kind& k = KindOf(j);
  char line[320];
  std::snprintf(line, sizeof line,
                R"({"channel":"%s","subscriptionId":"lg-s%zu","events":["%s"],)"
                R"("criteria":[{"applicationId":"app-%zu"}],"profile":{"profileId":"lg-p%zu"}})",
                k.channel, j, k.event, j, j % profiles);
  return line;
}

// One envelope, 200 B .. 2 KB, its payload stamped with the send time ("lgts", ns).
inline void AppendEvent(std::string& out, size_t j, uint64_t seq, std::mt19937_64& rng) {
  const Kind& k = KindOf(j);
  static const std::string kText(2048, 'x');
  const size_t pad = rng() % 1500;  // spreads sizes over 200 B .. 2 KB
  char head[256];
  std::snprintf(head, sizeof head,
                R"({"channel":"%s","event":"%s","eventId":"lg-%)" PRIu64
                R"(","applicationId":"app-%zu","payload":)",
                k.channel, k.event, seq, j);
  out += head;
  char body[1024];
  const long long ts = NowNs();
  switch (k.shape) {
    case 0:
      std::snprintf(
          body, sizeof body,
          R"({"results":[{"bulkId":"b-%)" PRIu64 R"(","messageId":"m-%)" PRIu64
          R"(","to":"4479%08u","sender":"InfoSMS","sentAt":"2026-11-25T12:00:00.000+0000",)"
          R"("doneAt":"2026-11-25T12:00:01.000+0000","messageCount":1,)"
          R"("price":{"pricePerMessage":0.01,"currency":"EUR"},)"
          R"("status":{"groupId":3,"groupName":"DELIVERED","id":5,"name":"DELIVERED_TO_HANDSET"},)"
          R"("error":{"groupId":0,"groupName":"OK","id":0,"name":"NO_ERROR","permanent":false},)"
          R"("platform":{"applicationId":"app-%zu"},"lgts":%lld,"callbackData":")",
          seq / 100, seq, static_cast<unsigned>(rng() % 100000000), j, ts);
      out += body;
      out.append(kText, 0, pad);
      out += R"("}]})";
      break;
    case 1:
      std::snprintf(
          body, sizeof body,
          R"({"results":[{"messageId":"mo-%)" PRIu64
          R"(","from":"38591%07u","to":"InfoSMS","receivedAt":"2026-11-25T12:00:00.000+0000",)"
          R"("smsCount":1,"price":{"pricePerMessage":0,"currency":"EUR"},)"
          R"("applicationId":"app-%zu","lgts":%lld,"text":")",
          seq, static_cast<unsigned>(rng() % 10000000), j, ts);
      out += body;
      out.append(kText, 0, pad);
      out += R"("}],"messageCount":1,"pendingMessageCount":0})";
      break;
    default:
      std::snprintf(
          body, sizeof body,
          R"({"notificationType":"OPENED","eventId":"ev-%)" PRIu64
          R"(","domain":"example.com","recipient":"john.doe@example.com",)"
          R"("sendDateTime":1704106800000,"messageId":"em-%)" PRIu64
          R"(","applicationId":"app-%zu","lgts":%lld,"recipientInfo":{"deviceType":"Phone","os":")",
          seq, seq, j, ts);
      out += body;
      out.append(kText, 0, pad);
      out += R"("}})";
      break;
  }
  out += "}";
}

// The payload alone (for peers that carry the routing keys elsewhere, e.g. in a subject).
inline std::string Payload(size_t j, uint64_t seq, std::mt19937_64& rng) {
  std::string envelope;
  AppendEvent(envelope, j, seq, rng);
  const size_t at = envelope.find("\"payload\":") + 10;
  return envelope.substr(at, envelope.size() - at - 1);
}

// Writes "quantile,latency_us" for 1000 quantiles of sorted nanosecond latencies, then the max.
inline void WriteQuantiles(const std::string& path, const std::vector<int64_t>& sorted_ns) {
  if (sorted_ns.empty()) return;
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return;
  std::fprintf(f, "quantile,latency_us\n");
  for (int i = 0; i < 1000; ++i) {
    const size_t at = std::min(sorted_ns.size() - 1, sorted_ns.size() * i / 1000);
    std::fprintf(f, "%.3f,%.1f\n", i / 1000.0, static_cast<double>(sorted_ns[at]) / 1000.0);
  }
  std::fprintf(f, "1.000,%.1f\n", static_cast<double>(sorted_ns.back()) / 1000.0);
  std::fclose(f);
}

}  // namespace herald::loadgen
