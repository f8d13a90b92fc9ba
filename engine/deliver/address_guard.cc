#include "engine/deliver/address_guard.h"

// clang-format off
#include <utility>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
// clang-format on
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "engine/common/strings.h"
#include "engine/deliver/url.h"
#include "herald/webhook_deliverer.h"

namespace herald::deliver {
namespace {

bool IsPublicV4(const boost::asio::ip::address_v4& a) {
  const uint32_t v = a.to_uint();
  auto in = [v](uint32_t net, int bits) { return (v >> (32 - bits)) == (net >> (32 - bits)); };
  return !(in(0x00000000, 8) ||   // 0.0.0.0/8 "this network"
           in(0x0A000000, 8) ||   // 10/8
           in(0x64400000, 10) ||  // 100.64/10 carrier-grade NAT
           in(0x7F000000, 8) ||   // 127/8 loopback
           in(0xA9FE0000, 16) ||  // 169.254/16 link-local, cloud metadata
           in(0xAC100000, 12) ||  // 172.16/12
           in(0xC0000000, 24) ||  // 192.0.0/24 protocol assignments
           in(0xC0A80000, 16) ||  // 192.168/16
           in(0xC6120000, 15) ||  // 198.18/15 benchmarking
           in(0xE0000000, 4) ||   // 224/4 multicast
           in(0xF0000000, 4));    // 240/4 reserved, broadcast
}

}  // namespace

bool IsPublicAddress(const boost::asio::ip::address& address) {
  if (address.is_v4()) return IsPublicV4(address.to_v4());
  const auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return IsPublicV4(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6));
  }
  const auto bytes = v6.to_bytes();
  auto embedded_v4 = [&](size_t at) {
    return boost::asio::ip::address_v4(boost::asio::ip::address_v4::bytes_type{
        bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]});
  };
  auto prefix = [&](std::initializer_list<unsigned char> head) {
    return std::equal(head.begin(), head.end(), bytes.begin());
  };
  // Forms that carry an IPv4 address to a translator or relay: they reach what it reaches.
  if (prefix({0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0})) {
    return IsPublicV4(embedded_v4(12));  // 64:ff9b::/96, NAT64 well-known prefix
  }
  if (prefix({0x00, 0x64, 0xff, 0x9b, 0x00, 0x01})) return false;  // 64:ff9b:1::/48, local NAT64
  if (prefix({0x20, 0x02})) return IsPublicV4(embedded_v4(2));     // 2002::/16, 6to4
  if (prefix({0x20, 0x01, 0x00, 0x00})) return false;              // 2001::/32, Teredo
  if (prefix({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) && !v6.is_loopback() && !v6.is_unspecified()) {
    return IsPublicV4(embedded_v4(12));  // ::a.b.c.d, IPv4-compatible (deprecated)
  }
  const bool unique_local = (bytes[0] & 0xFE) == 0xFC;  // fc00::/7
  return !(v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || v6.is_multicast() ||
           v6.is_site_local() || unique_local);
}

absl::Status CheckTargetAddresses(std::string_view host,
                                  std::span<const boost::asio::ip::address> addresses) {
  for (const auto& address : addresses) {
    if (!IsPublicAddress(address)) {
      return absl::InvalidArgumentError(
          Cat(host, " is, or resolves to, ", address.to_string(),
              ": a loopback, private, link-local or multicast address (allow_private_targets is "
              "off)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace herald::deliver

namespace herald {

absl::Status CheckWebhookTarget(std::string_view url, bool allow_private) {
  auto parsed = deliver::ParseUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (allow_private) return absl::OkStatus();
  namespace asio = boost::asio;
  boost::system::error_code ec;
  std::vector<asio::ip::address> addresses;
  const auto literal = asio::ip::make_address(parsed->host, ec);
  if (!ec) {
    addresses.push_back(literal);
  } else {
    // Looked up on a thread of its own and waited for a second at most: a resolver that never
    // answers must not hold the management API, nor the io thread it answers on. A name unknown
    // now is accepted; the deliverer checks each connection's addresses anyway.
    struct Lookup {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      std::vector<asio::ip::address> addresses;
    };
    auto lookup = std::make_shared<Lookup>();
    try {
      std::thread([lookup, host = parsed->host] {
        asio::io_context io;
        asio::ip::tcp::resolver resolver(io);
        boost::system::error_code error;
        const auto results = resolver.resolve(host, "", error);
        std::lock_guard lock(lookup->mu);
        if (!error) {
          for (const auto& entry : results) lookup->addresses.push_back(entry.endpoint().address());
        }
        lookup->done = true;
        lookup->cv.notify_all();
      }).detach();
    } catch (const std::system_error&) {
      return absl::OkStatus();  // no thread to look it up: unchecked now, checked at connect
    }
    std::unique_lock lock(lookup->mu);
    if (!lookup->cv.wait_for(lock, std::chrono::seconds(1), [&] { return lookup->done; })) {
      return absl::OkStatus();
    }
    addresses = lookup->addresses;
  }
  return deliver::CheckTargetAddresses(parsed->host, addresses);
}

}  // namespace herald
