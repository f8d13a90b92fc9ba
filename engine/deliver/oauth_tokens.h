// OAuth 2.0 access tokens for one worker's profiles (DESIGN §5): fetched from a setting's
// tokenUrl when needed, shared by every request that waits meanwhile (a failure too, rather than
// trying again at once), kept until `expires_in` less a margin on the injected clock (at most a
// year), or until a receiver refuses it. A token that cannot be sent in a header is refused.
// Not thread-safe: it lives on its worker's io_context.
#pragma once

// clang-format off
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
// clang-format on
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/deliver/clock.h"
#include "engine/deliver/http_client.h"
#include "herald/subscription.h"

namespace herald::deliver {

// An access token longer than this would crowd the 8 KiB of request headers (DESIGN §5).
inline constexpr size_t kMaxTokenBytes = 4096;

class OAuthTokens {
 public:
  OAuthTokens(boost::asio::io_context& io, HttpClient& client, const Clock& clock = Clock::System())
      : io_(io), client_(client), clock_(clock) {}

  // A token for `security`. `stale`: one the receiver refused, to be replaced (the caller keeps
  // it alive).
  boost::asio::awaitable<absl::StatusOr<std::string>> Get(const SecuritySetting& security,
                                                          std::string_view stale);

 private:
  struct Entry {
    std::string fingerprint;  // of the setting the token was fetched with
    std::string token;
    Clock::time_point expires = Clock::time_point::max();
    bool fetching = false;
    std::unique_ptr<boost::asio::steady_timer> fetched;  // waiters wait on it; cancelled when done
    uint64_t fetches = 0;                                // completed fetches
    absl::Status error;                                  // of the last fetch
  };

  boost::asio::io_context& io_;
  HttpClient& client_;
  const Clock& clock_;
  // Node-stable: a fetch holds a reference to its entry across co_await.
  absl::node_hash_map<std::string, Entry> tokens_;
};

}  // namespace herald::deliver
