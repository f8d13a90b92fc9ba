// heraldd's settings: built-in defaults, then the TOML file of --config, then flags. Every flag is
// also a key of the file (`-` → `_`); engine settings live in its [engine] table. A bad flag,
// key or value is an error that names it (the daemon exits with code 2).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/deliver/resolver.h"
#include "engine/jetstream/nats_client.h"
#include "herald/engine.h"
#include "herald/webhook_deliverer.h"

namespace herald::server {

struct DaemonConfig {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::string data_dir = "data";
  std::string api_key;
  std::string ingest_key;
  int threads = 0;  // 0 = one per core
  std::string durability = "batch";
  // "local": config and events in data_dir; "jetstream": the config on NATS JetStream KV,
  // shared by every instance ([jetstream]: urls, replicas, prefix, credentials, TLS).
  std::string store = "local";
  jetstream::NatsOptions jetstream;
  bool allow_private_targets = false;
  bool help = false;
  std::string catalog = "configs/catalog.json";
  EngineOptions engine;  // fanout, limits (catalog is set from `catalog`)
  // [delivery]: workers, CA file, retry schedule, breaker (data_dir and allow_private_targets are
  // set from the top-level keys).
  DelivererOptions delivery;
  // [limits]: protections against hostile or runaway clients.
  size_t max_connections = 10'000;
  size_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds header_timeout{30'000};
  std::chrono::milliseconds body_timeout{300'000};
  uint32_t max_requests_per_second = 50'000;  // per connection; 0 = unlimited
  size_t max_batch_bytes = 64u << 20;         // one NDJSON ingest request
  // On SIGTERM, how long held notifications get to be delivered; the spool replays the rest
  // after the restart.
  std::chrono::milliseconds shutdown_grace{5000};
  // [spool]: the event spool's segment size and how often delivery cursors are checkpointed.
  size_t spool_segment_bytes = 64u << 20;
  std::chrono::milliseconds cursor_interval{200};
  uint64_t spool_retain_max_bytes = 10240ull << 20;
  std::chrono::hours spool_retain_max_age{72};
  // Name lookups of the write-time SSRF guard (blocking); the system's (getaddrinfo) when empty.
  // For embedders and tests; no flag sets it.
  deliver::Resolver::LookupFn name_lookup;
};

absl::StatusOr<DaemonConfig> ParseDaemonConfig(int argc, const char* const* argv);
// Applies the settings of a TOML document (the --config file's format); `origin` names it in
// errors.
absl::Status ApplyConfigText(DaemonConfig& config, std::string_view toml_text,
                             std::string_view origin);
std::string DaemonUsage();

}  // namespace herald::server
