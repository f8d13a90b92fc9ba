#include "engine/deliver/url.h"

#include <charconv>

#include "absl/strings/ascii.h"
#include "engine/common/strings.h"

namespace herald::deliver {

absl::StatusOr<Url> ParseUrl(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(Cat("bad URL ", text, ": ", why));
  };
  Url url;
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return bad("no scheme");
  const std::string scheme = absl::AsciiStrToLower(ToAbsl(text.substr(0, scheme_end)));
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return bad("the scheme must be http or https");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return bad("credentials in the URL are not supported; use a security setting");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed [ in the host");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 host");
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) return bad("no host");
  url.port = url.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return bad("bad port");
    }
    url.port = static_cast<uint16_t>(port);
  }
  const size_t fragment = rest.find('#');
  url.target = std::string(rest.substr(0, fragment));
  if (url.target.empty() || url.target.front() != '/') url.target.insert(0, "/");
  const bool v6 = url.host.find(':') != std::string::npos;
  const std::string host = v6 ? Cat("[", url.host, "]") : url.host;
  const bool default_port = url.port == (url.tls ? 443 : 80);
  url.host_header = default_port ? host : Cat(host, ":", url.port);
  url.origin = Cat(scheme, "://", host, ":", url.port);
  return url;
}

}  // namespace herald::deliver
