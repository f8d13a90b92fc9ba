// Fuzzes what heraldd loads at start: the TOML config (first byte even) and the catalog JSON
// (odd). Bad input is an error that says where, never a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/server/daemon_config.h"
#include "herald/catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    herald::server::DaemonConfig config;
    const absl::Status s = herald::server::ApplyConfigText(config, text, "fuzz.toml");
    if (!s.ok() && s.message().find("fuzz.toml") == std::string_view::npos) std::abort();
  } else {
    auto catalog = herald::Catalog::Parse(text, "fuzz.json");
    if (!catalog.ok() && catalog.status().message().empty()) std::abort();
    if (catalog.ok() && (*catalog)->channels().empty()) std::abort();
  }
  return 0;
}
