// Webhook and token URLs: http or https, a host (name, IPv4 or [IPv6]), an optional port and a
// target. No userinfo: credentials belong in a security setting, where they are masked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace herald::deliver {

struct Url {
  bool tls = false;
  std::string host;         // without brackets
  uint16_t port = 0;        // explicit or the scheme's default
  std::string target;       // path and query, at least "/"
  std::string host_header;  // host, bracketed for IPv6, with the port when not the default
  std::string origin;       // "scheme://host:port": the connection pool's key
};

absl::StatusOr<Url> ParseUrl(std::string_view url);

}  // namespace herald::deliver
