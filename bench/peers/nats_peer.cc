// herald-nats-peer: the same routing work as herald-loadgen, through nats-server core pub/sub.
// Subscription j of the workload becomes a NATS subscription to the subject that carries its
// routing keys, "ev.<channel>.<event>.<applicationId>", held by the subscriber of its profile
// (one connection per profile). Each event's payload is published to its subject; subscribers
// count deliveries and measure publish→delivery latency from the timestamp in the payload.
//
//   herald-nats-peer --url nats://127.0.0.1:4222 --subscriptions 10000 --profiles 20
//                    --events 200000 --json
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tools/loadgen/workload.h"

namespace {

using herald::loadgen::NowNs;

struct Profile {
  natsConnection* connection = nullptr;
  std::vector<natsSubscription*> subscriptions;
};

std::atomic<uint64_t> g_delivered{0};
std::atomic<int64_t> g_last_ns{0};
std::mutex g_mu;
std::vector<int64_t> g_latencies;

void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void*) {
  const int64_t now = NowNs();
  const std::string_view data(natsMsg_GetData(msg),
                              static_cast<size_t>(natsMsg_GetDataLength(msg)));
  const size_t at = data.find("\"lgts\":");
  if (at != std::string_view::npos) {
    int64_t ts = 0;
    std::from_chars(data.data() + at + 7, data.data() + data.size(), ts);
    std::lock_guard lock(g_mu);
    g_latencies.push_back(now - ts);
  }
  g_delivered.fetch_add(1);
  g_last_ns.store(now);
  natsMsg_Destroy(msg);
}

bool Check(natsStatus s, const char* what) {
  if (s == NATS_OK) return true;
  std::fprintf(stderr, "herald-nats-peer: %s: %s\n", what, natsStatus_GetText(s));
  return false;
}

std::string SubjectOf(size_t j) {
  const auto& k = herald::loadgen::KindOf(j);
  return std::string("ev.") + k.channel + "." + k.event + ".app-" + std::to_string(j);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = "nats://127.0.0.1:4222";
  size_t subscriptions = 1000, profiles = 10, events = 100'000;
  uint64_t seed = 42;
  int publishers = 4;  // as herald-loadgen's client connections
  bool json = false;
  std::string latency_out;
  std::string compare;  // a herald-loadgen --json summary of the same workload
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (i + 1 < argc && a == "--url") {
      url = argv[++i];
    } else if (i + 1 < argc && a == "--subscriptions") {
      subscriptions = std::strtoull(argv[++i], nullptr, 10);
    } else if (i + 1 < argc && a == "--profiles") {
      profiles = std::strtoull(argv[++i], nullptr, 10);
    } else if (i + 1 < argc && a == "--events") {
      events = std::strtoull(argv[++i], nullptr, 10);
    } else if (i + 1 < argc && a == "--compare") {
      compare = argv[++i];
    } else if (i + 1 < argc && a == "--latency-out") {
      latency_out = argv[++i];
    } else if (i + 1 < argc && a == "--publishers") {
      publishers = std::max(1, std::atoi(argv[++i]));
    } else if (i + 1 < argc && a == "--seed") {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: herald-nats-peer [--url URL] [--subscriptions N] [--profiles P] "
                   "[--events E] [--publishers N] [--seed S] [--json] [--latency-out FILE] "
                   "[--compare HERALD_JSON]\n");
      return 2;
    }
  }
  if (subscriptions == 0 || profiles == 0) return 2;
  // libnats gives every async subscription its own delivery thread by default: thousands of
  // threads on two cores. A small shared pool is how it is meant to run at this scale.
  natsOptions* options = nullptr;
  if (!Check(natsOptions_Create(&options), "options") ||
      !Check(natsOptions_SetURL(options, url.c_str()), "url") ||
      !Check(natsOptions_UseGlobalMessageDelivery(options, true), "global delivery") ||
      !Check(nats_SetMessageDeliveryPoolSize(2), "delivery pool")) {
    return 1;
  }
  std::vector<Profile> subscribers(profiles);
  for (auto& p : subscribers) {
    if (!Check(natsConnection_Connect(&p.connection, options), "connect")) return 1;
  }
  for (size_t j = 0; j < subscriptions; ++j) {
    Profile& p = subscribers[j % profiles];
    natsSubscription* sub = nullptr;
    if (!Check(
            natsConnection_Subscribe(&sub, p.connection, SubjectOf(j).c_str(), OnMessage, nullptr),
            "subscribe")) {
      return 1;
    }
    natsSubscription_SetPendingLimits(sub, -1, -1);  // never drop on the client side
    p.subscriptions.push_back(sub);
  }
  for (auto& p : subscribers) {
    if (!Check(natsConnection_Flush(p.connection), "flush subscriptions")) return 1;
  }
  std::vector<natsConnection*> publisher_connections(publishers);
  for (auto& c : publisher_connections) {
    if (!Check(natsConnection_Connect(&c, options), "connect publisher")) return 1;
  }
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  const int64_t start = NowNs();
  std::vector<std::thread> threads;
  for (int t = 0; t < publishers; ++t) {
    threads.emplace_back([&, t] {
      natsConnection* publisher = publisher_connections[t];
      std::mt19937_64 rng(seed * 1000 + t);
      for (uint64_t n = 0;; ++n) {
        const uint64_t seq = next.fetch_add(1);
        if (seq >= events) break;
        const size_t j = rng() % subscriptions;
        const std::string payload = herald::loadgen::Payload(j, seq, rng);
        const std::string subject = SubjectOf(j);
        if (!Check(natsConnection_Publish(publisher, subject.c_str(), payload.data(),
                                          static_cast<int>(payload.size())),
                   "publish")) {
          failed = true;
          return;
        }
        // A round trip now and then: publishing never runs unboundedly ahead of the server.
        if (n % 5000 == 4999) natsConnection_Flush(publisher);
      }
      natsConnection_Flush(publisher);
    });
  }
  for (auto& t : threads) t.join();
  if (failed) return 1;
  const int64_t sent_ns = NowNs();
  const int64_t deadline = sent_ns + 30'000'000'000LL;
  while (g_delivered.load() < events && NowNs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const uint64_t delivered = g_delivered.load();
  const double send_s = static_cast<double>(sent_ns - start) / 1e9;
  const double deliver_s = std::max(1e-9, static_cast<double>(g_last_ns.load() - start) / 1e9);
  std::vector<int64_t> lat;
  {
    std::lock_guard lock(g_mu);
    lat = g_latencies;
  }
  std::sort(lat.begin(), lat.end());
  if (!latency_out.empty()) herald::loadgen::WriteQuantiles(latency_out, lat);
  auto pct = [&](double q) {
    return lat.empty() ? 0.0
                       : static_cast<double>(
                             lat[std::min(lat.size() - 1, static_cast<size_t>(q * lat.size()))]) /
                             1000.0;
  };
  const uint64_t lost = events > delivered ? events - delivered : 0;
  if (json) {
    std::printf(R"({"peer":"nats-server","events":%zu,"subscriptions":%zu,"profiles":%zu,)"
                R"("delivered":%)" PRIu64
                R"(,"events_per_second":%.0f,"deliveries_per_second":%.0f,)"
                R"("latency_us":{"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,"max":%.1f},)"
                R"("errors":%)" PRIu64 "}\n",
                events, subscriptions, profiles, delivered, static_cast<double>(events) / send_s,
                static_cast<double>(delivered) / deliver_s, pct(0.5), pct(0.9), pct(0.99),
                pct(0.999), lat.empty() ? 0.0 : static_cast<double>(lat.back()) / 1000.0, lost);
  } else {
    std::printf("nats-server: published %zu in %.2f s; delivered %" PRIu64
                " (%.0f/s); latency us p50 %.1f p99 %.1f; lost %" PRIu64 "\n",
                events, send_s, delivered, static_cast<double>(delivered) / deliver_s, pct(0.5),
                pct(0.99), lost);
  }
  if (!compare.empty()) {
    // herald/nats-server for delivered events per second, from herald-loadgen's summary.
    std::FILE* f = std::fopen(compare.c_str(), "r");
    std::string text;
    char buf[4096];
    for (size_t n; f && (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    if (f) std::fclose(f);
    const size_t at = text.find("\"deliveries_per_second\":");
    if (at == std::string::npos) {
      std::fprintf(stderr, "herald-nats-peer: %s has no deliveries_per_second\n", compare.c_str());
      return 1;
    }
    const double herald = std::strtod(text.c_str() + at + 24, nullptr);
    const double nats = static_cast<double>(delivered) / deliver_s;
    std::fprintf(stderr, "herald/nats-server delivered events per second: %.0f / %.0f = %.2f\n",
                 herald, nats, herald / nats);
  }
  for (auto& p : subscribers) {
    for (auto* s : p.subscriptions) natsSubscription_Destroy(s);
    natsConnection_Destroy(p.connection);
  }
  for (auto* c : publisher_connections) natsConnection_Destroy(c);
  natsOptions_Destroy(options);
  nats_Close();
  return lost == 0 ? 0 : 1;
}
