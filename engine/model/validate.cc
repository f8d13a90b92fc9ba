// Validation of the management-plane model against every constraint of DESIGN §2 and the
// platform's OpenAPI document. Each function collects all problems, not just the first, so a user
// fixes a request in one round trip.
#include <re2/re2.h>

#include <algorithm>
#include <array>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/common/http_syntax.h"
#include "engine/common/strings.h"
#include "engine/model/ed25519_keys.h"
#include "herald/subscription.h"

namespace herald {
namespace {

constexpr size_t kMaxString = 255;
constexpr size_t kMaxItems = 255;
// A profile's own headers, each line counted as sent ("name: value\r\n"); the rest of the 8 KiB
// is herald's.
constexpr size_t kMaxHeaderBytes = 4608;

void Add(ValidationErrors& errors, const std::string& field, std::string message) {
  errors[field].push_back(std::move(message));
}

void CheckId(ValidationErrors& errors, const std::string& field, std::string_view id) {
  if (id.empty()) {
    Add(errors, field, "must not be empty");
  } else if (!IsValidId(id)) {
    Add(errors, field,
        "must be 1..255 characters of letters, digits, '-' and '_' (it is used in URL paths)");
  }
}

void CheckLength(ValidationErrors& errors, const std::string& field, std::string_view s, size_t min,
                 size_t max) {
  if (s.size() < min || s.size() > max) {
    Add(errors, field, Cat("size must be between ", min, " and ", max));
  }
}

void CheckRange(ValidationErrors& errors, const std::string& field, int64_t v, int64_t min,
                int64_t max) {
  if (v < min || v > max) {
    Add(errors, field, Cat("must be between ", min, " and ", max));
  }
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// http(s)://host[:port][/path...] with a non-empty host and a port in 1..65535.
bool IsHttpUrl(std::string_view url) {
  std::string_view rest;
  if (StartsWithNoCase(url, "http://")) {
    rest = url.substr(7);
  } else if (StartsWithNoCase(url, "https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  const size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) return false;  // no credentials in URLs
  std::string_view host = authority, port;
  bool has_port = false;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return false;
      port = after.substr(1);
      has_port = true;
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    has_port = true;
  }
  if (host.empty() || host == "[]") return false;
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  if (has_port) {
    int p = 0;
    if (!absl::SimpleAtoi(ToAbsl(port), &p) || p < 1 || p > 65535) return false;
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

void CheckHeaders(ValidationErrors& errors, const std::string& field,
                  const std::vector<std::pair<std::string, std::string>>& headers) {
  size_t total = 0;
  for (const auto& [name, value] : headers) {
    if (name.size() > kMaxString || !IsHeaderName(name)) {
      Add(errors, field, Cat("invalid header name \"", name, "\""));
    } else if (IsReservedHeader(name)) {
      Add(errors, field,
          Cat("header \"", name,
              "\" is written by herald itself and cannot be set (webhook.contentType sets the "
              "content type)"));
    }
    if (!IsHeaderValue(value)) {
      Add(errors, field, Cat("header \"", name, "\" has a control character (CR, LF, NUL, …)"));
    }
    if (value.size() > 4096) Add(errors, field, Cat("header \"", name, "\" is too long"));
    total += name.size() + value.size() + 4;
  }
  if (total > kMaxHeaderBytes) {
    Add(errors, field, Cat("headers take ", total, " bytes; at most ", kMaxHeaderBytes));
  }
}

}  // namespace

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxString) return false;
  for (char c : id) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

std::string_view SecurityTypeName(SecurityType type) {
  switch (type) {
    case SecurityType::kBasic:
      return "BASIC";
    case SecurityType::kHmac:
      return "HMAC";
    case SecurityType::kOAuth:
      return "OAUTH";
    case SecurityType::kCustom:
      return "CUSTOM";
    case SecurityType::kEd25519:
      return "ED25519";
  }
  return "CUSTOM";
}

std::optional<SecurityType> ParseSecurityType(std::string_view name) {
  for (auto t : {SecurityType::kBasic, SecurityType::kHmac, SecurityType::kOAuth,
                 SecurityType::kCustom, SecurityType::kEd25519}) {
    if (SecurityTypeName(t) == name) return t;
  }
  return std::nullopt;
}

std::string_view HmacAlgorithmName(HmacAlgorithm algorithm) {
  static constexpr std::array<std::string_view, 6> kNames = {
      "HMAC_MD5", "HMAC_SHA_1", "HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"};
  return kNames[static_cast<size_t>(algorithm)];
}

std::optional<HmacAlgorithm> ParseHmacAlgorithm(std::string_view name) {
  for (int i = 0; i < 6; ++i) {
    if (HmacAlgorithmName(static_cast<HmacAlgorithm>(i)) == name) {
      return static_cast<HmacAlgorithm>(i);
    }
  }
  return std::nullopt;
}

ValidationErrors Validate(const Subscription& s, const Catalog& catalog) {
  ValidationErrors errors;
  CheckId(errors, "subscriptionId", s.subscription_id);
  if (s.name) CheckLength(errors, "name", *s.name, 1, kMaxString);
  const int channel = catalog.FindChannel(s.channel);
  if (channel < 0) Add(errors, "channel", Cat("unknown channel \"", s.channel, "\""));
  if (s.events.size() > kMaxItems) Add(errors, "events", "at most 255 events");
  if (channel >= 0) {
    for (const auto& e : s.events) {
      if (catalog.FindEvent(channel, e) < 0) {
        Add(errors, "events",
            Cat("event \"", e, "\" does not exist for channel ",
                catalog.channels()[channel].channel));
      }
    }
  }
  for (const auto& [event, format] : s.event_formats) {
    if (std::find(s.events.begin(), s.events.end(), event) == s.events.end()) {
      Add(errors, "events", Cat("format given for \"", event, "\" which is not in events"));
    }
    CheckLength(errors, "events", format, 1, kMaxString);
  }
  if (s.criteria.size() > kMaxItems) Add(errors, "criteria", "at most 255 criteria");
  for (size_t i = 0; i < s.criteria.size(); ++i) {
    const auto& c = s.criteria[i];
    const bool has_app = c.application_id && !c.application_id->empty();
    const bool has_entity = c.entity_id && !c.entity_id->empty();
    const std::string field = Cat("criteria[", i, "]");
    if (!has_app && !has_entity) {
      Add(errors, field, "applicationId and entityId must not both be empty");
    }
    if (c.application_id) {
      CheckLength(errors, field + ".applicationId", *c.application_id, 0, kMaxString);
    }
    if (c.entity_id) CheckLength(errors, field + ".entityId", *c.entity_id, 0, kMaxString);
    if (c.calls_configuration_id) {
      CheckLength(errors, field + ".callsConfigurationId", *c.calls_configuration_id, 1, 128);
    }
  }
  auto check_list = [&](const char* field, const std::vector<std::string>& list) {
    if (list.size() > kMaxItems) Add(errors, field, "at most 255 items");
    for (const auto& item : list) {
      if (item.empty() || item.size() > kMaxString) {
        Add(errors, field, "each item must be 1..255 characters");
        break;
      }
    }
  };
  check_list("resources", s.resources);
  check_list("users", s.users);
  CheckLength(errors, "group", s.group, 0, kMaxString);
  CheckId(errors, "profile.profileId", s.profile_id);
  return errors;
}

ValidationErrors Validate(const NotificationProfile& p) {
  ValidationErrors errors;
  CheckId(errors, "profileId", p.profile_id);
  if (p.webhook.notify_url.empty()) {
    Add(errors, "webhook.notifyUrl", "must not be empty");
  } else if (p.webhook.notify_url.size() > 512) {
    Add(errors, "webhook.notifyUrl", "size must be between 1 and 512");
  } else if (!IsHttpUrl(p.webhook.notify_url)) {
    Add(errors, "webhook.notifyUrl", "must be an absolute http:// or https:// URL with a host");
  }
  CheckLength(errors, "webhook.contentType", p.webhook.content_type, 0, kMaxString);
  if (!IsHeaderValue(p.webhook.content_type)) {
    Add(errors, "webhook.contentType", "has a control character (CR, LF, NUL, …)");
  }
  CheckHeaders(errors, "headers", p.headers);
  if (!p.auth_id.empty()) CheckId(errors, "security.authId", p.auth_id);
  CheckRange(errors, "maxBucketSize", p.max_bucket_size, 1, 2000);
  CheckRange(errors, "windowSize", p.window_size, 20, 10000);
  CheckRange(errors, "connectTimeout", p.connect_timeout_ms, 300, 30000);
  CheckRange(errors, "readTimeout", p.read_timeout_ms, 1000, 90000);
  if (p.rate_limit) CheckRange(errors, "rateLimit", *p.rate_limit, 1, 5000);
  if (p.retry) {
    if (p.retry->delays_ms.empty() || p.retry->delays_ms.size() > 100) {
      Add(errors, "retry.delaysMs", "must hold 1..100 delays");
    }
    for (int64_t d : p.retry->delays_ms) {
      if (d < 0 || d > 7LL * 24 * 3600 * 1000) {
        Add(errors, "retry.delaysMs", "each delay must be between 0 and 604800000 ms");
        break;
      }
    }
    CheckRange(errors, "retry.maxAttempts", p.retry->max_attempts, 1, 100);
  }
  CheckLength(errors, "clientCertificateId", p.client_certificate_id, 0, kMaxString);
  // Checked with RE2, as delivery uses them: a pattern it cannot compile is refused now, not
  // found out at the first 2xx.
  for (const auto& [field, pattern] : {std::pair{"responseRegex", &p.response_regex},
                                       std::pair{"responseBodyRegex", &p.response_body_regex}}) {
    CheckLength(errors, field, *pattern, 0, kMaxString);
    if (pattern->empty()) continue;
    const RE2 re(*pattern, RE2::Quiet);
    if (!re.ok()) Add(errors, field, Cat("is not a valid RE2 pattern: ", re.error()));
  }
  if (!p.ordering.empty() && p.ordering != "KEY") {
    Add(errors, "ordering", "must be KEY, or left out for no ordering");
  }
  if (!p.payload_format.empty() && p.payload_format != "CLOUDEVENTS") {
    Add(errors, "payloadFormat", "must be CLOUDEVENTS, or left out for the platform's payloads");
  }
  absl::flat_hash_set<std::string> seen;
  for (const auto& proto : p.enabled_ssl_protocols) {
    if (proto != "TLSv1.2" && proto != "TLSv1.3") {
      Add(errors, "enabledSSLProtocols", Cat("unknown protocol \"", proto, "\""));
    } else if (!seen.insert(proto).second) {
      Add(errors, "enabledSSLProtocols", Cat("duplicate protocol \"", proto, "\""));
    }
  }
  return errors;
}

ValidationErrors Validate(const SecuritySetting& s) {
  ValidationErrors errors;
  if (s.previous_secret_keys.size() > 10) {
    Add(errors, "credentials.previousSecretKeys", "holds at most 10 keys");
  }
  if (!s.previous_secret_keys.empty() && s.type != SecurityType::kHmac &&
      s.type != SecurityType::kEd25519) {
    Add(errors, "credentials.previousSecretKeys", "only HMAC and ED25519 settings sign");
  }
  CheckId(errors, "authId", s.auth_id);
  switch (s.type) {
    case SecurityType::kBasic:
      CheckLength(errors, "credentials.username", s.username, 1, kMaxString);
      CheckLength(errors, "credentials.password", s.password, 1, kMaxString);
      break;
    case SecurityType::kHmac:
      CheckLength(errors, "credentials.secretKey", s.secret_key, 1, kMaxString);
      for (const auto& k : s.previous_secret_keys) {
        CheckLength(errors, "credentials.previousSecretKeys", k, 1, kMaxString);
      }
      break;
    case SecurityType::kEd25519:
      if (auto seed = model::Ed25519Seed(s.secret_key); !seed.ok()) {
        Add(errors, "credentials.secretKey", std::string(ToStd(seed.status().message())));
      }
      for (const auto& k : s.previous_secret_keys) {
        if (auto seed = model::Ed25519Seed(k); !seed.ok()) {
          Add(errors, "credentials.previousSecretKeys",
              std::string(ToStd(seed.status().message())));
        }
      }
      break;
    case SecurityType::kOAuth:
      CheckLength(errors, "credentials.tokenUrl", s.token_url, 1, kMaxString);
      if (!s.token_url.empty() && !IsHttpUrl(s.token_url)) {
        Add(errors, "credentials.tokenUrl", "must be an absolute http:// or https:// URL");
      }
      CheckLength(errors, "credentials.grantType", s.grant_type, 1, kMaxString);
      for (auto [field, value] : {std::pair{"credentials.clientId", &s.client_id},
                                  std::pair{"credentials.clientSecret", &s.client_secret},
                                  std::pair{"credentials.scope", &s.scope},
                                  std::pair{"credentials.username", &s.username},
                                  std::pair{"credentials.password", &s.password},
                                  std::pair{"credentials.resource", &s.resource},
                                  std::pair{"credentials.refreshToken", &s.refresh_token}}) {
        CheckLength(errors, field, *value, 0, kMaxString);
      }
      CheckHeaders(errors, "credentials.headers", s.headers);
      break;
    case SecurityType::kCustom:
      break;
  }
  return errors;
}

}  // namespace herald
