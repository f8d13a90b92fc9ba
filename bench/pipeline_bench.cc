// The whole in-process pipeline through the public API — copy into a pooled buffer, parse,
// resolve the pair, match, enqueue — at 10k, 100k and 1M subscriptions, one event per call and
// NDJSON batches. The benchmark thread is the router; a dispatch thread (the other core) drains
// the queues into a sink that drops the notifications, as a running system's consumers would.
// Compare with parse_bench's BM_ParseEnvelope on the same events (DESIGN §8: pipeline ≤ 3× parse, ≥
// 3 M events/s per core at 100k subscriptions, ≥ 1.5 M at 1M).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "bench/workload.h"
#include "engine/parse/envelope_parser.h"
#include "herald/engine.h"

namespace herald::bench {
namespace {

constexpr size_t kProfiles = 1000;
constexpr size_t kEvents = 8192;

// Counts and drops what it is given, settling it as a deliverer does once a receiver took it.
class DroppingSink : public Sink {
 public:
  void Deliver(std::string_view, std::span<Notification> batch) override {
    for (auto& n : batch) n.Settle();
    delivered.fetch_add(batch.size(), std::memory_order_relaxed);
  }
  std::atomic<uint64_t> delivered{0};
};

struct Setup {
  DroppingSink sink;
  std::unique_ptr<Engine> engine;
  Workload workload;
};

Setup& Get(size_t n) {
  static std::map<size_t, std::unique_ptr<Setup>> cache;
  auto& slot = cache[n];
  if (slot) return *slot;
  slot = std::make_unique<Setup>();
  Setup& s = *slot;
  s.engine = *Engine::Create({.catalog_path = "configs/catalog.json",
                              .queue_max_notifications = 1 << 20,
                              .sink = &s.sink});
  s.workload = MakeWorkload(s.engine->catalog(), n, kProfiles, kEvents);
  for (size_t p = 0; p < kProfiles; ++p) {
    NotificationProfile profile;
    profile.profile_id = "profile-" + std::to_string(p);
    profile.webhook.notify_url = "https://example.com/" + profile.profile_id;
    if (!s.engine->CreateProfile(profile).ok()) std::abort();
  }
  for (const auto& sub : s.workload.subscriptions) {
    if (!s.engine->CreateSubscription(sub).ok()) std::abort();
  }
  s.engine->FlushIndex();
  return s;
}

void BM_PipelineSingle(benchmark::State& state) {
  Setup& s = Get(static_cast<size_t>(state.range(0)));
  const Counters before = s.engine->counters();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        s.engine->Ingest(s.workload.events[i++ & (kEvents - 1)], InputFormat::kSingle));
  }
  const Counters after = s.engine->counters();
  const double n = static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.counters["matched_share"] = static_cast<double>(after.matched - before.matched) / n;
  state.counters["notifications_per_event"] =
      static_cast<double>(after.enqueued - before.enqueued) / n;
  state.counters["back_pressured"] =
      static_cast<double>(after.back_pressured - before.back_pressured);
}
BENCHMARK(BM_PipelineSingle)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->MinTime(2.0);

// The same with spool sequences, as heraldd ingests: each notification is tracked per profile
// until the sink settles it. The difference to BM_PipelineSingle/100000 is the tracking's cost.
void BM_PipelineSingleLogged(benchmark::State& state) {
  Setup& s = Get(static_cast<size_t>(state.range(0)));
  static uint64_t seq = 0;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.engine->Ingest(s.workload.events[i++ & (kEvents - 1)],
                                              InputFormat::kSingle, nullptr, ++seq));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PipelineSingleLogged)->Arg(100'000)->MinTime(2.0);

void BM_PipelineNdjson64(benchmark::State& state) {
  Setup& s = Get(static_cast<size_t>(state.range(0)));
  std::vector<std::string> batches;
  for (size_t b = 0; b < kEvents / 64; ++b) {
    std::string batch;
    for (size_t j = 0; j < 64; ++j) batch += s.workload.events[b * 64 + j] + "\n";
    batches.push_back(std::move(batch));
  }
  const Counters before = s.engine->counters();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.engine->Ingest(batches[i++ % batches.size()], InputFormat::kNdjson));
  }
  const Counters after = s.engine->counters();
  state.SetItemsProcessed(state.iterations() * 64);
  state.counters["back_pressured"] =
      static_cast<double>(after.back_pressured - before.back_pressured);
}
BENCHMARK(BM_PipelineNdjson64)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->MinTime(2.0);

// Ingest → enqueue latency of single events, per call (steady_clock around each Ingest), at 100k
// subscriptions; percentiles over the calls of the run (DESIGN §8: p50 ≤ 0.5 µs, p99 ≤ 2 µs,
// p99.9 ≤ 10 µs). The clock reads add ~40 ns to every sample.
void BM_IngestLatency(benchmark::State& state) {
  Setup& s = Get(static_cast<size_t>(state.range(0)));
  std::vector<int64_t> samples;
  samples.reserve(1 << 22);
  size_t i = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(
        s.engine->Ingest(s.workload.events[i++ & (kEvents - 1)], InputFormat::kSingle));
    const auto end = std::chrono::steady_clock::now();
    if (samples.size() < samples.capacity()) {
      samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
    }
  }
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double p) {
    return static_cast<double>(
               samples[static_cast<size_t>(p * static_cast<double>(samples.size() - 1))]) /
           1000.0;
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["p999_us"] = pct(0.999);
  state.counters["max_us"] = pct(1.0);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IngestLatency)->Arg(100'000)->MinTime(2.0);

}  // namespace
}  // namespace herald::bench

BENCHMARK_MAIN();
