// Fuzzes NDJSON ingest through the zero-copy path (IngestBuffer, as heraldd reads bodies): every
// non-blank line is accepted or reported by its number, never fatal; payloads are slices of the
// input. Built as a libFuzzer target by the `fuzz` preset; elsewhere ctest replays the corpus.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "herald/engine.h"

namespace {

herald::Engine& TheEngine() {
  static herald::Engine* engine = [] {
    auto e = herald::Engine::Create({.catalog_path = "configs/catalog.json",
                                     .max_event_bytes = 4096,
                                     .max_payload_depth = 16,
                                     .queue_max_notifications = 64});
    if (!e.ok()) std::abort();
    if (!(*e)->CreateProfile({.profile_id = "p", .webhook = {.notify_url = "https://x.test/"}})
             .ok() ||
        !(*e)->CreateSubscription({.subscription_id = "s", .channel = "SMS", .profile_id = "p"})
             .ok()) {
      std::abort();
    }
    (*e)->FlushIndex();
    return e->release();
  }();
  return *engine;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  herald::Engine& engine = TheEngine();
  herald::IngestBuffer buffer = engine.NewIngestBuffer(size);
  if (!buffer || buffer.capacity() < size) std::abort();
  if (size > 0) std::memcpy(buffer.data(), data, size);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t lines = 0;
  for (size_t pos = 0; pos < input.size();) {
    size_t nl = input.find('\n', pos);
    if (nl == std::string_view::npos) nl = input.size();
    std::string_view line = input.substr(pos, nl - pos);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) ++lines;
    pos = nl + 1;
  }
  std::vector<herald::IngestError> errors;
  const herald::IngestResult r =
      engine.Ingest(std::move(buffer), size, herald::InputFormat::kNdjson, &errors);
  if (r.rejected != errors.size()) std::abort();
  if (r.accepted + r.rejected != lines) std::abort();
  size_t last_line = 0;
  for (const auto& e : errors) {
    if (e.message.empty() || e.line == 0 || e.line <= last_line) std::abort();
    last_line = e.line;
  }
  std::vector<herald::Notification> out;
  (void)engine.Poll("p", 1000, &out);
  for (const auto& n : out) {
    const auto p = n.payload();
    if (p.empty() || input.find(p) == std::string_view::npos) std::abort();
  }
  return 0;
}
