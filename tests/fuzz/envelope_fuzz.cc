// Fuzzes the data plane with arbitrary bytes: Engine::Ingest (single envelopes and NDJSON) over
// a few subscriptions, checking that bad input is counted, never fatal, and that the counters add
// up. Built as a libFuzzer target by the `fuzz` preset; elsewhere ctest replays the corpus.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "herald/engine.h"
#include "tests/fuzz/fuzz_engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  herald::Engine& engine = herald::fuzz::FuzzEngine();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<herald::IngestError> errors;
  const herald::IngestResult r = engine.Ingest(input, herald::InputFormat::kAuto, &errors);
  if (r.rejected != errors.size()) std::abort();
  for (const auto& e : errors) {
    if (e.message.empty() || e.offset > size) std::abort();
  }
  std::vector<herald::Notification> out;
  (void)engine.Poll("p", 1000, &out);
  for (const auto& n : out) {
    // Payloads are slices of the input, forwarded verbatim.
    if (n.payload().empty() || n.webhook_id().empty()) std::abort();
  }
  return 0;
}
