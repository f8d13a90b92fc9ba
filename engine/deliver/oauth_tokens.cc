#include "engine/deliver/oauth_tokens.h"

#include <simdjson.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/common/http_syntax.h"
#include "engine/common/strings.h"
#include "engine/deliver/signing.h"
#include "engine/deliver/url.h"

namespace herald::deliver {

namespace asio = boost::asio;
using std::chrono::milliseconds;

asio::awaitable<absl::StatusOr<std::string>> OAuthTokens::Get(const SecuritySetting& security,
                                                              std::string_view stale) {
  const std::string fingerprint =
      Cat(security.token_url, "\n", security.client_id, "\n", security.client_secret, "\n",
          security.scope, "\n", security.grant_type, "\n", security.username, "\n",
          security.password, "\n", security.resource, "\n", security.refresh_token);
  Entry& entry = tokens_[security.auth_id];
  for (;;) {
    const bool current = entry.fingerprint == fingerprint && !entry.token.empty() &&
                         clock_.Now() < entry.expires && entry.token != stale;
    if (current) co_return entry.token;
    if (!entry.fetching) break;
    // Another request is fetching: wait for it (the timer is cancelled when it is done), and
    // share its failure rather than trying again at once.
    const uint64_t seen = entry.fetches;
    boost::system::error_code ec;
    co_await entry.fetched->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (entry.fetches != seen && !entry.error.ok()) co_return entry.error;
    stale = {};
  }
  entry.fetching = true;
  entry.fetched = std::make_unique<asio::steady_timer>(io_, Clock::time_point::max());
  absl::StatusOr<std::string> result = absl::UnavailableError("no token");
  auto url = ParseUrl(security.token_url);
  if (!url.ok()) {
    result = url.status();
  } else {
    const std::string form = TokenRequestForm(security);
    std::vector<std::pair<std::string, std::string>> headers = security.headers;
    headers.emplace_back("accept", "application/json");
    const ClientRequest request{
        .url = &*url,
        .content_type = "application/x-www-form-urlencoded",
        .headers = &headers,
        .body = form,
        .connect_timeout = milliseconds(NotificationProfile::kDefaultConnectTimeoutMs),
        .read_timeout = milliseconds(NotificationProfile::kDefaultReadTimeoutMs)};
    ClientResponse response = co_await client_.Send(request);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    std::string_view token;
    if (response.status == 0) {
      result =
          absl::UnavailableError(Cat("token request to ", url->host_header, ": ", response.error));
    } else if (response.status < 200 || response.status > 299) {
      result = absl::UnavailableError(
          Cat("token endpoint ", url->host_header, " answered HTTP ", response.status));
    } else if (parser.parse(response.body).get(root) != simdjson::SUCCESS ||
               root["access_token"].get_string().get(token) != simdjson::SUCCESS || token.empty()) {
      result = absl::UnavailableError(
          Cat("token endpoint ", url->host_header, " answered without an access_token"));
    } else if (!IsHeaderValue(token) || token.size() > kMaxTokenBytes) {
      result = absl::UnavailableError(
          Cat("token endpoint ", url->host_header, " answered an access_token that cannot be sent ",
              "in a header (a control character, or over ", kMaxTokenBytes, " bytes)"));
    } else {
      entry.token = std::string(token);
      entry.fingerprint = fingerprint;
      entry.expires = Clock::time_point::max();
      int64_t expires_in = 0;
      if (root["expires_in"].get_int64().get(expires_in) == simdjson::SUCCESS && expires_in > 0) {
        // At most a year (a larger value would overflow the clock), refreshed a little early so
        // a token does not expire on its way to the receiver.
        expires_in = std::min<int64_t>(expires_in, 365LL * 24 * 3600);
        const int64_t margin_ms = std::min<int64_t>(30'000, expires_in * 100);
        entry.expires = clock_.Now() + milliseconds(expires_in * 1000 - margin_ms);
      }
      result = entry.token;
    }
  }
  entry.fetching = false;
  entry.error = result.ok() ? absl::OkStatus() : result.status();
  ++entry.fetches;
  entry.fetched->cancel();
  co_return result;
}

}  // namespace herald::deliver
