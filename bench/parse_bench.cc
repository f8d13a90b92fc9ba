// Parse only: the simdjson On-Demand envelope parser on delivery-report-sized events (~550 B),
// the floor that the whole pipeline is compared against (DESIGN §8: pipeline ≤ 3× parse).
#include <benchmark/benchmark.h>

#include "bench/workload.h"
#include "engine/parse/envelope_parser.h"

namespace herald::bench {
namespace {

void BM_ParseEnvelope(benchmark::State& state) {
  auto catalog = *Catalog::Load("configs/catalog.json");
  Workload w = MakeWorkload(*catalog, 1000, 10, 4096);
  // Each event in its own padded buffer, as the engine holds them.
  std::vector<std::vector<char>> buffers;
  size_t bytes = 0;
  for (const auto& e : w.events) {
    std::vector<char> b(e.size() + kInputPadding);
    std::copy(e.begin(), e.end(), b.begin());
    buffers.push_back(std::move(b));
    bytes += e.size();
  }
  parse::EnvelopeParser parser;
  parse::EventView view;
  size_t i = 0;
  for (auto _ : state) {
    auto& b = buffers[i++ & 4095];
    auto outcome = parser.Parse(b.data(), b.size() - kInputPadding, b.size(), &view);
    benchmark::DoNotOptimize(outcome);
    benchmark::DoNotOptimize(view.payload.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (bytes / buffers.size())));
}
BENCHMARK(BM_ParseEnvelope);

}  // namespace
}  // namespace herald::bench

BENCHMARK_MAIN();
