// Fuzzes NDJSON ingest through the zero-copy path (IngestBuffer, as heraldd reads bodies): every
// non-blank line is accepted or reported by its number, never fatal; payloads are slices of the
// input. Built as a libFuzzer target by the `fuzz` preset; elsewhere ctest replays the corpus.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "herald/engine.h"
#include "tests/fuzz/fuzz_engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  herald::Engine& engine = herald::fuzz::FuzzEngine();
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
