// The SSRF guard's address test: webhook and token targets must be public addresses unless the
// operator allows private ones (tests, internal receivers). Checked on the resolved addresses at
// connect time, so a name that later resolves to a private address (DNS rebinding) is refused.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <span>
#include <string_view>

#include "absl/status/status.h"

namespace herald::deliver {

// False for loopback, private (RFC 1918, fc00::/7), carrier-grade NAT, link-local (which holds
// the cloud metadata address 169.254.169.254), multicast, unspecified and broadcast addresses,
// and IPv4-mapped IPv6 forms of them.
bool IsPublicAddress(const boost::asio::ip::address& address);

// The guard's verdict on `host`, a name or a literal, given what it resolves to: an error naming
// the first address that is not public.
absl::Status CheckTargetAddresses(std::string_view host,
                                  std::span<const boost::asio::ip::address> addresses);

}  // namespace herald::deliver
