// Fuzzes native payload ingest (POST /v1/events/{channel}/{event}): the first byte picks the
// channel and event from the shipped catalog, the rest is the body whose results[] items are
// routed on their own, routing keys read at the catalog's pointers. Never fatal; counters add up.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "herald/engine.h"

namespace {

struct Fixture {
  std::unique_ptr<herald::Engine> engine;
  std::vector<std::pair<std::string, std::string>> pairs;
};

Fixture& TheFixture() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    auto e = herald::Engine::Create({.catalog_path = "configs/catalog.json",
                                     .max_event_bytes = 4096,
                                     .max_payload_depth = 16,
                                     .queue_max_notifications = 64});
    if (!e.ok()) std::abort();
    f->engine = std::move(*e);
    if (!f->engine->CreateProfile({.profile_id = "p", .webhook = {.notify_url = "https://x.test/"}})
             .ok()) {
      std::abort();
    }
    int n = 0;
    for (const auto& channel : f->engine->catalog().channels()) {
      for (const auto& event : channel.events) f->pairs.emplace_back(channel.channel, event.event);
      (void)f->engine->CreateSubscription({.subscription_id = "s" + std::to_string(n++),
                                           .channel = channel.channel,
                                           .criteria = {{.application_id = "a1"}},
                                           .profile_id = "p"});
    }
    f->pairs.emplace_back("NOPE", "DELIVERY");  // an unknown channel too
    f->engine->FlushIndex();
    return f;
  }();
  return *fixture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& f = TheFixture();
  const auto& [channel, event] = f.pairs[data[0] % f.pairs.size()];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<herald::IngestError> errors;
  const herald::IngestResult r = f.engine->IngestNative(channel, event, body, &errors);
  if (r.rejected != errors.size()) std::abort();
  if (r.matched > r.accepted || r.notifications > r.accepted) std::abort();
  for (const auto& e : errors) {
    if (e.message.empty()) std::abort();
  }
  std::vector<herald::Notification> out;
  (void)f.engine->Poll("p", 1000, &out);
  for (const auto& n : out) {
    if (n.payload().empty() || n.channel() != channel) std::abort();
  }
  return 0;
}
