// Fuzzes the data plane with arbitrary bytes: Engine::Ingest (single envelopes and NDJSON) over
// a few subscriptions, checking that bad input is counted, never fatal, and that the counters add
// up. Built as a libFuzzer target by the `fuzz` preset; elsewhere ctest replays the corpus.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "herald/engine.h"

namespace {

herald::Engine& TheEngine() {
  static herald::Engine* engine = [] {
    herald::EngineOptions options;
    options.catalog_path = "configs/catalog.json";
    options.max_event_bytes = 4096;
    options.max_payload_depth = 16;
    options.queue_max_notifications = 64;
    auto e = herald::Engine::Create(options);
    if (!e.ok()) std::abort();
    herald::NotificationProfile p;
    p.profile_id = "p";
    p.webhook.notify_url = "https://example.com/hook";
    if (!(*e)->CreateProfile(p).ok()) std::abort();
    herald::Subscription s;
    s.subscription_id = "s";
    s.channel = "SMS";
    s.profile_id = "p";
    if (!(*e)->CreateSubscription(s).ok()) std::abort();
    s.subscription_id = "t";
    s.channel = "EMAIL";
    s.events = {"OPEN"};
    s.criteria = {herald::Criterion{"a1", std::nullopt}};
    s.group = "g";
    if (!(*e)->CreateSubscription(s).ok()) std::abort();
    (*e)->FlushIndex();
    return e->release();
  }();
  return *engine;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  herald::Engine& engine = TheEngine();
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
