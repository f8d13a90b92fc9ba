// Spool append throughput per durability setting: records of ~1 KB, one per Append (as single
// events arrive) and 100 per Append (an NDJSON batch), in a temporary directory on the data disk.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/store/spool.h"

namespace {

void BM_SpoolAppend(benchmark::State& state) {
  const auto durability = static_cast<herald::store::Spool::Durability>(state.range(0));
  const size_t batch = static_cast<size_t>(state.range(1));
  char tmpl[] = "/tmp/herald-spool-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    auto spool = herald::store::Spool::Open({.dir = dir, .durability = durability});
    if (!spool.ok()) {
      state.SkipWithError("cannot open the spool");
      return;
    }
    const std::string record(1000, 'x');
    const std::vector<std::string_view> records(batch, record);
    for (auto _ : state) {
      auto seq = (*spool)->Append(records);
      benchmark::DoNotOptimize(seq);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * record.size()));
  }
  std::filesystem::remove_all(dir);
}
// durability: 0 none, 1 batch, 2 always; records per append: 1, 100
BENCHMARK(BM_SpoolAppend)
    ->ArgsProduct({{0, 1, 2}, {1, 100}})
    ->ArgNames({"durability", "batch"})
    ->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
