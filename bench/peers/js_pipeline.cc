// herald-js-pipeline: the bare two-hop JetStream pipeline that distributed heraldd is measured
// against (DESIGN §8, §10), with heraldd's message shapes and batch sizes and nothing else:
//   publish → fetch → publish → fetch → ack.
// A publisher stores requests of --batch workload events each (NDJSON, deduplicated by id) in a
// work-queue stream; a router fetches them --fetch at a time, publishes one message per event to
// a second stream (asynchronously, deduplicated by id, one wait per fetched batch) and acks the
// requests; a deliverer fetches those --fetch at a time and acks them. It reports events per
// second from the first publish to the last ack, and publish → last-hop latency.
//
//   herald-js-pipeline --url nats://127.0.0.1:4222 --events 50000 --batch 100 --replicas 1 --json
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tools/loadgen/workload.h"

namespace {

using herald::loadgen::NowNs;

struct Options {
  std::string url = "nats://127.0.0.1:4222";
  size_t events = 50'000;
  size_t batch = 100;  // events per request of the first hop
  int fetch = 64;      // what heraldd fetches at a time, on both hops
  int replicas = 1;
  std::string prefix = "pipe";
  bool json = false;
};

[[noreturn]] void Die(const char* what, natsStatus s) {
  std::fprintf(stderr, "herald-js-pipeline: %s: %s (%s)\n", what, natsStatus_GetText(s),
               nats_GetLastError(nullptr));
  std::exit(1);
}

void Check(natsStatus s, const char* what) {
  if (s != NATS_OK) Die(what, s);
}

void MakeStream(jsCtx* js, const std::string& name, const std::string& subject, int replicas) {
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const char* subjects[] = {subject.c_str()};
  sc.Name = name.c_str();
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_WorkQueuePolicy;
  sc.Storage = js_FileStorage;
  sc.Replicas = replicas;
  jsStreamInfo* si = nullptr;
  js_DeleteStream(js, name.c_str(), nullptr, nullptr);  // a fresh one each run
  Check(js_AddStream(&si, js, &sc, nullptr, nullptr), "creating a stream");
  jsStreamInfo_Destroy(si);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  const std::string durable = name + "_c";
  cc.Durable = durable.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.MaxAckPending = 20'000;
  jsConsumerInfo* ci = nullptr;
  Check(js_AddConsumer(&ci, js, name.c_str(), &cc, nullptr, nullptr), "creating a consumer");
  jsConsumerInfo_Destroy(ci);
}

natsSubscription* Bind(jsCtx* js, const std::string& stream, const std::string& subject) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  const std::string durable = stream + "_c";
  so.Stream = stream.c_str();
  so.Consumer = durable.c_str();
  natsSubscription* sub = nullptr;
  Check(js_PullSubscribe(&sub, js, subject.c_str(), durable.c_str(), nullptr, &so, nullptr),
        "binding a consumer");
  return sub;
}

// natsSubscription_Fetch with a batch at least twice what is pending: cnats 3.4.1 writes past
// its array when leftovers of an earlier fetch outnumber half the batch (see
// engine/jetstream/nats_client.h).
natsStatus FetchBatch(natsMsgList* list, natsSubscription* sub, int batch, int64_t timeout_ms) {
  int pending = 0;
  if (natsSubscription_GetPending(sub, &pending, nullptr) != NATS_OK) pending = 0;
  return natsSubscription_Fetch(list, sub, std::max(batch, 2 * pending + 2), timeout_ms, nullptr);
}

// The send time stamped in a workload event ("lgts":<ns>).
int64_t StampOf(const char* data, int len) {
  static const char kKey[] = "\"lgts\":";
  const char* at = static_cast<const char*>(memmem(data, static_cast<size_t>(len), kKey, 7));
  return at ? std::strtoll(at + 7, nullptr, 10) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr,
                   "usage: herald-js-pipeline [--url U] [--events N] [--batch B] "
                   "[--fetch F] [--replicas R] [--prefix P] [--json]\n");
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--url")
      o.url = v;
    else if (a == "--events")
      o.events = std::strtoull(v.c_str(), nullptr, 10);
    else if (a == "--batch")
      o.batch = std::max<size_t>(1, std::strtoull(v.c_str(), nullptr, 10));
    else if (a == "--fetch")
      o.fetch = std::max(1, std::atoi(v.c_str()));
    else if (a == "--replicas")
      o.replicas = std::atoi(v.c_str());
    else if (a == "--prefix")
      o.prefix = v;
    else {
      std::fprintf(stderr, "herald-js-pipeline: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  natsOptions* opts = nullptr;
  Check(natsOptions_Create(&opts), "options");
  Check(natsOptions_SetURL(opts, o.url.c_str()), "the URL");
  natsConnection* nc = nullptr;
  Check(natsConnection_Connect(&nc, opts), "connecting");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 4096;
  jsCtx* js = nullptr;
  Check(natsConnection_JetStream(&js, nc, &jo), "JetStream");
  const std::string first = o.prefix + "_events", second = o.prefix + "_deliveries";
  const std::string first_subject = o.prefix + ".events", second_subject = o.prefix + ".dlv.>";
  MakeStream(js, first, first_subject, o.replicas);
  MakeStream(js, second, second_subject, o.replicas);

  const size_t requests = (o.events + o.batch - 1) / o.batch;
  std::atomic<uint64_t> delivered{0};
  std::vector<int64_t> latencies;
  latencies.reserve(o.events);
  const int64_t start = NowNs();

  // Hop 1 → 2: fetch requests, publish one message per event, ack the requests.
  std::thread router([&] {
    jsCtx* rjs = nullptr;
    Check(natsConnection_JetStream(&rjs, nc, &jo), "JetStream");
    natsSubscription* sub = Bind(rjs, first, first_subject);
    size_t routed = 0;
    while (routed < requests) {
      natsMsgList list{};
      if (FetchBatch(&list, sub, o.fetch, 1000) != NATS_OK) continue;
      for (int m = 0; m < list.Count; ++m) {
        const char* data = natsMsg_GetData(list.Msgs[m]);
        const int len = natsMsg_GetDataLength(list.Msgs[m]);
        int line = 0;
        for (int from = 0; from < len;) {
          const char* nl = static_cast<const char*>(std::memchr(data + from, '\n', len - from));
          const int end = nl ? static_cast<int>(nl - data) : len;
          if (end > from) {
            const std::string id = "r" + std::to_string(routed) + "." + std::to_string(line++);
            natsMsg* out = nullptr;
            const std::string subject = o.prefix + ".dlv." + std::to_string(line % 64) + ".p";
            natsMsg_Create(&out, subject.c_str(), nullptr, data + from, end - from);
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MsgId = id.c_str();
            Check(js_PublishMsgAsync(rjs, &out, &po), "publishing to the second stream");
          }
          from = end + 1;
        }
        ++routed;
      }
      Check(js_PublishAsyncComplete(rjs, nullptr), "waiting for the second stream");
      for (int m = 0; m < list.Count; ++m) natsMsg_Ack(list.Msgs[m], nullptr);
      natsMsgList_Destroy(&list);
    }
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(rjs);
  });
  // The last hop: fetch and ack.
  std::thread deliverer([&] {
    jsCtx* djs = nullptr;
    Check(natsConnection_JetStream(&djs, nc, &jo), "JetStream");
    natsSubscription* sub = Bind(djs, second, second_subject);
    while (delivered.load() < o.events) {
      natsMsgList list{};
      if (FetchBatch(&list, sub, o.fetch, 1000) != NATS_OK) continue;
      const int64_t now = NowNs();
      for (int m = 0; m < list.Count; ++m) {
        const int64_t sent =
            StampOf(natsMsg_GetData(list.Msgs[m]), natsMsg_GetDataLength(list.Msgs[m]));
        if (sent > 0) latencies.push_back(now - sent);
        natsMsg_Ack(list.Msgs[m], nullptr);
      }
      delivered.fetch_add(static_cast<uint64_t>(list.Count));
      natsMsgList_Destroy(&list);
    }
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(djs);
  });
  // The publisher: requests of `batch` events, deduplicated by id, acked before the next (as
  // heraldd answers a request only once JetStream stored it).
  std::mt19937_64 rng(42);
  std::string body;
  for (size_t r = 0, seq = 0; r < requests; ++r) {
    body.clear();
    for (size_t k = 0; k < o.batch && seq < o.events; ++k, ++seq) {
      herald::loadgen::AppendEvent(body, seq % 1000, seq, rng);
      body += '\n';
    }
    const std::string id = "req-" + std::to_string(r);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.c_str();
    jsPubAck* ack = nullptr;
    Check(js_Publish(&ack, js, first_subject.c_str(), body.data(), static_cast<int>(body.size()),
                     &po, nullptr),
          "publishing a request");
    jsPubAck_Destroy(ack);
  }
  router.join();
  deliverer.join();
  const double seconds = static_cast<double>(NowNs() - start) / 1e9;
  std::sort(latencies.begin(), latencies.end());
  auto q = [&](double f) {
    return latencies.empty()
               ? 0.0
               : static_cast<double>(latencies[std::min(
                     latencies.size() - 1, static_cast<size_t>(f * latencies.size()))]) /
                     1000.0;
  };
  const double eps = static_cast<double>(delivered.load()) / seconds;
  if (o.json) {
    std::printf(R"({"events":%zu,"batch":%zu,"fetch":%d,"replicas":%d,"events_per_second":%.0f,)"
                R"("latency_us":{"p50":%.1f,"p99":%.1f}})"
                "\n",
                o.events, o.batch, o.fetch, o.replicas, eps, q(0.5), q(0.99));
  } else {
    std::printf(
        "%zu events through two hops in %.2f s: %.0f events/s; latency p50 %.1f us, "
        "p99 %.1f us\n",
        o.events, seconds, eps, q(0.5), q(0.99));
  }
  js_DeleteStream(js, first.c_str(), nullptr, nullptr);
  js_DeleteStream(js, second.c_str(), nullptr, nullptr);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(opts);
  return 0;
}
