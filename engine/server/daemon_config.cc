#include "engine/server/daemon_config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <charconv>

#include "absl/strings/str_split.h"
#include "engine/common/http_syntax.h"
#include "engine/common/strings.h"

namespace herald::server {
namespace {

// The largest request body the spool stores as one record (its limit is 1 GiB, with room for
// the record's header and the 4 KiB a single event gets over max_event_bytes).
constexpr int64_t kMaxSpooledBody = (1LL << 30) - (1 << 16);

absl::Status Bad(std::string_view key, std::string_view what) {
  return absl::InvalidArgumentError(Cat(key, ": ", what));
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::Status SetListen(DaemonConfig& c, std::string_view key, std::string_view v) {
  const size_t colon = v.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return Bad(key, "must be HOST:PORT");
  int port = -1;
  const auto port_text = v.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return Bad(key, "port must be 0..65535");
  }
  std::string host(v.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  c.listen_host = host;
  c.listen_port = static_cast<uint16_t>(port);
  return absl::OkStatus();
}

absl::Status SetInt(std::string_view key, std::string_view text, int64_t min, int64_t max,
                    int64_t* out) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return Bad(key, Cat("must be an integer between ", min, " and ", max));
  }
  *out = v;
  return absl::OkStatus();
}

// Applies one setting given as text (a flag value, or a TOML value rendered as text).
absl::Status Apply(DaemonConfig& c, std::string_view key, std::string_view value) {
  int64_t n = 0;
  if (key == "listen") return SetListen(c, key, value);
  if (key == "data_dir") {
    if (value.empty()) return Bad(key, "must not be empty");
    c.data_dir = std::string(value);
  } else if (key == "api_key") {
    c.api_key = std::string(value);
  } else if (key == "ingest_key") {
    c.ingest_key = std::string(value);
  } else if (key == "threads") {
    if (auto s = SetInt(key, value, 0, 256, &n); !s.ok()) return s;
    c.threads = static_cast<int>(n);
  } else if (key == "durability") {
    if (value != "none" && value != "batch" && value != "always") {
      return Bad(key, "must be none, batch or always");
    }
    c.durability = std::string(value);
  } else if (key == "store") {
    if (value != "local" && value != "jetstream") return Bad(key, "must be local or jetstream");
    c.store = std::string(value);
  } else if (key == "jetstream.urls") {
    // A TOML array of strings, or one string, rendered as "a,b,c".
    c.jetstream.urls.clear();
    for (absl::string_view url :
         absl::StrSplit(absl::string_view(value.data(), value.size()), ',')) {
      if (url.empty()) return Bad(key, "must be URLs separated by commas, none empty");
      c.jetstream.urls.emplace_back(url);
    }
  } else if (key == "jetstream.replicas") {
    if (auto s = SetInt(key, value, 1, 5, &n); !s.ok()) return s;
    c.jetstream.replicas = static_cast<int>(n);
  } else if (key == "jetstream.prefix") {
    // Stream, consumer and bucket names: letters, digits, '-' and '_'.
    if (value.empty() ||
        value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789-_") != std::string_view::npos) {
      return Bad(key, "must be letters, digits, '-' and '_'");
    }
    c.jetstream.prefix = std::string(value);
  } else if (key == "jetstream.user") {
    c.jetstream.user = std::string(value);
  } else if (key == "jetstream.password") {
    c.jetstream.password = std::string(value);
  } else if (key == "jetstream.credentials") {
    c.jetstream.credentials_file = std::string(value);
  } else if (key == "jetstream.tls_ca") {
    c.jetstream.tls_ca_file = std::string(value);
  } else if (key == "jetstream.tls_cert") {
    c.jetstream.tls_cert_file = std::string(value);
  } else if (key == "jetstream.tls_key") {
    c.jetstream.tls_key_file = std::string(value);
  } else if (key == "jetstream.connect_wait_ms") {
    if (auto s = SetInt(key, value, 0, 3'600'000, &n); !s.ok()) return s;
    c.jetstream.connect_wait = std::chrono::milliseconds(n);
  } else if (key == "jetstream.partitions") {
    if (auto s = SetInt(key, value, 1, 1024, &n); !s.ok()) return s;
    c.jetstream.partitions = static_cast<int>(n);
  } else if (key == "jetstream.ack_wait_ms") {
    if (auto s = SetInt(key, value, 500, 3'600'000, &n); !s.ok()) return s;
    c.jetstream.ack_wait = std::chrono::milliseconds(n);
  } else if (key == "allow_private_targets") {
    if (value != "true" && value != "false") return Bad(key, "must be true or false");
    c.allow_private_targets = value == "true";
  } else if (key == "engine.catalog") {
    c.catalog = std::string(value);
  } else if (key == "engine.fanout") {
    if (value != "group" && value != "all") return Bad(key, "must be group or all");
    c.engine.fanout = value == "all" ? Fanout::kAll : Fanout::kGroupWinner;
  } else if (key == "engine.max_event_bytes") {
    if (auto s = SetInt(key, value, 64, kMaxSpooledBody, &n); !s.ok()) return s;
    c.engine.max_event_bytes = static_cast<size_t>(n);
  } else if (key == "engine.max_payload_depth") {
    if (auto s = SetInt(key, value, 1, 1024, &n); !s.ok()) return s;
    c.engine.max_payload_depth = static_cast<int>(n);
  } else if (key == "engine.queue_max_notifications") {
    if (auto s = SetInt(key, value, 1, 1LL << 32, &n); !s.ok()) return s;
    c.engine.queue_max_notifications = static_cast<size_t>(n);
  } else if (key == "engine.queue_max_bytes") {
    if (auto s = SetInt(key, value, 1024, 1LL << 40, &n); !s.ok()) return s;
    c.engine.queue_max_bytes = static_cast<size_t>(n);
  } else if (key == "limits.max_connections") {
    if (auto s = SetInt(key, value, 1, 1'000'000, &n); !s.ok()) return s;
    c.max_connections = static_cast<size_t>(n);
  } else if (key == "limits.max_header_bytes") {
    if (auto s = SetInt(key, value, 1024, 1 << 20, &n); !s.ok()) return s;
    c.max_header_bytes = static_cast<size_t>(n);
  } else if (key == "limits.header_timeout_ms") {
    if (auto s = SetInt(key, value, 100, 3'600'000, &n); !s.ok()) return s;
    c.header_timeout = std::chrono::milliseconds(n);
  } else if (key == "limits.body_timeout_ms") {
    if (auto s = SetInt(key, value, 100, 86'400'000, &n); !s.ok()) return s;
    c.body_timeout = std::chrono::milliseconds(n);
  } else if (key == "limits.max_requests_per_second") {
    if (auto s = SetInt(key, value, 0, 100'000'000, &n); !s.ok()) return s;
    c.max_requests_per_second = static_cast<uint32_t>(n);
  } else if (key == "limits.max_batch_bytes") {
    // Every request is one spool record, and records are at most 1 GiB.
    if (auto s = SetInt(key, value, 1024, kMaxSpooledBody, &n); !s.ok()) return s;
    c.max_batch_bytes = static_cast<size_t>(n);
  } else if (key == "limits.max_subscriptions_per_channel") {
    if (auto s = SetInt(key, value, 1, 1LL << 40, &n); !s.ok()) return s;
    c.engine.max_subscriptions_per_channel = static_cast<size_t>(n);
  } else if (key == "delivery.threads") {
    if (auto s = SetInt(key, value, 1, 256, &n); !s.ok()) return s;
    c.delivery.threads = static_cast<int>(n);
  } else if (key == "delivery.ca_file") {
    c.delivery.ca_file = std::string(value);
  } else if (key == "delivery.origin") {
    if (!IsHeaderValue(value)) return absl::InvalidArgumentError(Cat(key, ": not a header value"));
    c.delivery.origin = std::string(value);
  } else if (key == "delivery.retry_delays_ms") {
    // A TOML array of integers, rendered as "a,b,c".
    c.delivery.retry.delays_ms.clear();
    for (std::string_view rest = value; !rest.empty();) {
      const size_t comma = rest.find(',');
      if (auto s = SetInt(key, rest.substr(0, comma), 0, 86'400'000, &n); !s.ok()) return s;
      c.delivery.retry.delays_ms.push_back(n);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  } else if (key == "delivery.max_attempts") {
    if (auto s = SetInt(key, value, 1, 100, &n); !s.ok()) return s;
    c.delivery.retry.max_attempts = static_cast<int>(n);
  } else if (key == "delivery.jitter_percent") {
    if (auto s = SetInt(key, value, 0, 100, &n); !s.ok()) return s;
    c.delivery.jitter = static_cast<double>(n) / 100;
  } else if (key == "delivery.breaker_failures") {
    if (auto s = SetInt(key, value, 1, 1'000'000, &n); !s.ok()) return s;
    c.delivery.breaker_failures = static_cast<int>(n);
  } else if (key == "delivery.breaker_open_ms") {
    if (auto s = SetInt(key, value, 1, 3'600'000, &n); !s.ok()) return s;
    c.delivery.breaker_open = std::chrono::milliseconds(n);
  } else if (key == "delivery.breaker_open_max_ms") {
    if (auto s = SetInt(key, value, 1, 86'400'000, &n); !s.ok()) return s;
    c.delivery.breaker_open_max = std::chrono::milliseconds(n);
  } else if (key == "delivery.max_held_per_profile") {
    if (auto s = SetInt(key, value, 1, 1LL << 32, &n); !s.ok()) return s;
    c.delivery.max_held_per_profile = static_cast<size_t>(n);
  } else if (key == "delivery.log_entries") {
    if (auto s = SetInt(key, value, 0, 1'000'000, &n); !s.ok()) return s;
    c.delivery.delivery_log_entries = static_cast<size_t>(n);
  } else if (key == "delivery.log_body_mb") {
    if (auto s = SetInt(key, value, 0, 4096, &n); !s.ok()) return s;
    c.delivery.delivery_log_body_bytes = static_cast<size_t>(n) << 20;
  } else if (key == "spool.segment_mb") {
    if (auto s = SetInt(key, value, 1, 4096, &n); !s.ok()) return s;
    c.spool_segment_bytes = static_cast<size_t>(n) << 20;
  } else if (key == "spool.retain_max_mb") {
    if (auto s = SetInt(key, value, 1, 1LL << 30, &n); !s.ok()) return s;
    c.spool_retain_max_bytes = static_cast<uint64_t>(n) << 20;
  } else if (key == "spool.retain_max_hours") {
    if (auto s = SetInt(key, value, 1, 24 * 365 * 10, &n); !s.ok()) return s;
    c.spool_retain_max_age = std::chrono::hours(n);
  } else if (key == "dead_letters.max_mb") {
    if (auto s = SetInt(key, value, 0, 1LL << 30, &n); !s.ok()) return s;
    c.delivery.dead_letters_max_bytes = static_cast<uint64_t>(n) << 20;
  } else if (key == "dead_letters.max_age_hours") {
    if (auto s = SetInt(key, value, 0, 24 * 365 * 10, &n); !s.ok()) return s;
    c.delivery.dead_letters_max_age = std::chrono::hours(n);
  } else if (key == "spool.cursor_interval_ms") {
    if (auto s = SetInt(key, value, 10, 60'000, &n); !s.ok()) return s;
    c.cursor_interval = std::chrono::milliseconds(n);
  } else if (key == "delivery.shutdown_grace_ms") {
    if (auto s = SetInt(key, value, 0, 3'600'000, &n); !s.ok()) return s;
    c.shutdown_grace = std::chrono::milliseconds(n);
  } else {
    return absl::InvalidArgumentError(Cat("unknown setting \"", key, "\""));
  }
  return absl::OkStatus();
}

absl::Status LoadTable(DaemonConfig& c, const toml::table& table, std::string_view path) {
  auto text = [](const toml::node& node, std::string* out) {
    if (node.is_string())
      *out = *node.value<std::string>();
    else if (node.is_boolean())
      *out = *node.value<bool>() ? "true" : "false";
    else if (node.is_integer())
      *out = std::to_string(*node.value<int64_t>());
    else if (const toml::array* array = node.as_array()) {
      out->clear();
      for (const auto& item : *array) {
        if (item.is_integer()) {
          *out += Cat(out->empty() ? "" : ",", *item.value<int64_t>());
        } else if (item.is_string()) {
          *out += Cat(out->empty() ? "" : ",", *item.value<std::string>());
        } else {
          return false;
        }
      }
    } else {
      return false;
    }
    return true;
  };
  for (auto& [k, v] : table) {
    const std::string key(k.str());
    if (key == "engine" || key == "delivery" || key == "limits" || key == "spool" ||
        key == "dead_letters" || key == "jetstream") {
      const toml::table* section = v.as_table();
      if (!section) return absl::InvalidArgumentError(Cat(path, ": ", key, ": must be a table"));
      for (auto& [ek, ev] : *section) {
        std::string value;
        const std::string full = Cat(key, ".", std::string(ek.str()));
        if (!text(ev, &value))
          return absl::InvalidArgumentError(Cat(path, ": ", full, ": bad value"));
        if (auto s = Apply(c, full, value); !s.ok()) {
          return absl::InvalidArgumentError(Cat(path, ": ", ToStd(s.message())));
        }
      }
      continue;
    }
    std::string value;
    if (!text(v, &value)) return absl::InvalidArgumentError(Cat(path, ": ", key, ": bad value"));
    if (auto s = Apply(c, key, value); !s.ok()) {
      return absl::InvalidArgumentError(Cat(path, ": ", ToStd(s.message())));
    }
  }
  return absl::OkStatus();
}

absl::Status LoadFile(DaemonConfig& c, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(
        Cat(path, ": ", std::string(e.description()), " (line ", e.source().begin.line, ")"));
  }
  return LoadTable(c, table, path);
}

}  // namespace

absl::Status ApplyConfigText(DaemonConfig& config, std::string_view toml_text,
                             std::string_view origin) {
  toml::table table;
  try {
    table = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(
        Cat(origin, ": ", std::string(e.description()), " (line ", e.source().begin.line, ")"));
  }
  return LoadTable(config, table, origin);
}

std::string DaemonUsage() {
  return "usage: heraldd [flags]\n"
         "  --config FILE             TOML settings (keys as below, '-' -> '_'; [engine] and\n"
         "                            [delivery], [limits], [spool] and [dead_letters] tables, "
         "see\n"
         "                            configs/herald.toml)\n"
         "  --listen HOST:PORT        address to serve (default 127.0.0.1:8080; port 0 = any)\n"
         "  --data-dir DIR            state directory (default data)\n"
         "  --api-key KEY             management key (and ingest key unless --ingest-key)\n"
         "  --ingest-key KEY          key for POST /v1/events\n"
         "  --threads N               io threads (0 = one per core)\n"
         "  --durability MODE         when a 202 is on disk: none (written to the OS), batch\n"
         "                            (fsynced within 5 ms, the default) or always (fsynced "
         "first)\n"
         "  --allow-private-targets   let webhooks target loopback and private addresses\n"
         "  --store local|jetstream   where the config lives: data_dir (the default) or NATS\n"
         "                            JetStream KV, shared by every instance ([jetstream] table)\n"
         "  --nats-url URL[,URL...]   NATS servers (default nats://127.0.0.1:4222)\n"
         "  --jetstream-replicas N    replicas of herald's streams and buckets (default 1)\n"
         "  --jetstream-prefix NAME   names herald's streams and buckets (default herald)\n"
         "  --jetstream-partitions N  delivery partitions, the same on every instance (64)\n"
         "  --nats-user U, --nats-password P, --nats-credentials FILE   NATS authentication\n"
         "  --nats-tls-ca FILE, --nats-tls-cert FILE, --nats-tls-key FILE   TLS to NATS\n"
         "  --nats-connect-wait-ms N  how long start-up retries NATS before exit 2 (30000)\n"
         "  --help                    this text\n";
}

absl::StatusOr<DaemonConfig> ParseDaemonConfig(int argc, const char* const* argv) {
  DaemonConfig c;
  // The config file first, wherever --config appears, so flags override it.
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    std::string path;
    if (a == "--config") {
      if (i + 1 >= argc) return absl::InvalidArgumentError("--config: needs a value");
      path = argv[i + 1];
    } else if (a.starts_with("--config=")) {
      path = std::string(a.substr(9));
    } else {
      continue;
    }
    if (auto s = LoadFile(c, path); !s.ok()) return s;
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      c.help = true;
      continue;
    }
    if (!a.starts_with("--"))
      return absl::InvalidArgumentError(Cat("unexpected argument \"", a, "\""));
    std::string name(a.substr(2));
    std::string value;
    const bool inline_value = name.find('=') != std::string::npos;
    if (inline_value) {
      value = name.substr(name.find('=') + 1);
      name = name.substr(0, name.find('='));
    }
    if (name == "allow-private-targets" && !inline_value) {
      value = "true";
    } else if (!inline_value) {
      if (i + 1 >= argc) return absl::InvalidArgumentError(Cat("--", name, ": needs a value"));
      value = argv[++i];
    }
    if (name == "config") continue;
    std::string key = name;
    std::replace(key.begin(), key.end(), '-', '_');
    static const char* kFlags[] = {"listen",  "data_dir",   "api_key", "ingest_key",
                                   "threads", "durability", "store",   "allow_private_targets"};
    // The NATS flags set keys of the [jetstream] table.
    static const std::pair<const char*, const char*> kJetStreamFlags[] = {
        {"nats_url", "jetstream.urls"},
        {"jetstream_replicas", "jetstream.replicas"},
        {"jetstream_prefix", "jetstream.prefix"},
        {"jetstream_partitions", "jetstream.partitions"},
        {"nats_user", "jetstream.user"},
        {"nats_password", "jetstream.password"},
        {"nats_credentials", "jetstream.credentials"},
        {"nats_tls_ca", "jetstream.tls_ca"},
        {"nats_tls_cert", "jetstream.tls_cert"},
        {"nats_tls_key", "jetstream.tls_key"},
        {"nats_connect_wait_ms", "jetstream.connect_wait_ms"}};
    std::string flag_key = key;
    for (const auto& [flag, table_key] : kJetStreamFlags) {
      if (key == flag) key = table_key;
    }
    if (key == flag_key &&
        std::find(std::begin(kFlags), std::end(kFlags), key) == std::end(kFlags)) {
      return absl::InvalidArgumentError(Cat("unknown flag --", name));
    }
    if (auto s = Apply(c, key, value); !s.ok()) {
      return absl::InvalidArgumentError(
          Cat("--", name, ": ", ToStd(s.message()).substr(key.size() + 2)));
    }
  }
  if (!c.help) {
    // Management is never open because only ingest was locked (DESIGN §5).
    if (!c.ingest_key.empty() && c.api_key.empty()) {
      return absl::InvalidArgumentError(
          "ingest_key is set without api_key: that would leave the management API open to "
          "anyone; set api_key too");
    }
    if (c.api_key.empty() && !IsLoopbackHost(c.listen_host)) {
      return absl::InvalidArgumentError(
          Cat("listen: without api_key heraldd listens on loopback only (127.0.0.1, ::1, "
              "localhost); set api_key to listen on ",
              c.listen_host));
    }
  }
  c.engine.catalog_path = c.catalog;
  c.delivery.data_dir = c.data_dir;
  c.delivery.allow_private_targets = c.allow_private_targets;
  return c;
}

}  // namespace herald::server
