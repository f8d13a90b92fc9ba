// The management-plane model (DESIGN §2): subscriptions, notification profiles and security
// settings, with the validation every write goes through. Field names in ValidationErrors are the
// JSON names of the management API, so the daemon can return them as `validationErrors` verbatim.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "herald/catalog.h"
#include "herald/status.h"

namespace herald {

// One application/entity pair; a missing (or empty) half is a wildcard, both missing is invalid.
struct Criterion {
  std::optional<std::string> application_id;
  std::optional<std::string> entity_id;
  std::optional<std::string> calls_configuration_id;  // stored, not matched
  bool operator==(const Criterion&) const = default;
};

struct Subscription {
  std::string subscription_id;
  std::optional<std::string> name;
  std::string channel;              // API name or alias; stored canonical
  std::vector<std::string> events;  // empty = every event of the channel
  // Optional payload format per event ({"event","format"} items of the API), stored verbatim.
  std::vector<std::pair<std::string, std::string>> event_formats;
  std::vector<Criterion> criteria;  // empty = any application/entity
  std::vector<std::string> resources;
  std::vector<std::string> users;
  std::string group;  // one notification per group per event
  std::string profile_id;
  bool operator==(const Subscription&) const = default;
};

struct RetryPolicy {
  std::vector<int64_t> delays_ms;  // delay before attempt n+1; the last entry repeats
  int max_attempts = 10;
  bool operator==(const RetryPolicy&) const = default;
};

struct Webhook {
  std::string notify_url;
  std::string content_type;  // empty = application/json
  bool operator==(const Webhook&) const = default;
};

struct NotificationProfile {
  static constexpr int kDefaultMaxBucketSize = 100;
  static constexpr int kDefaultWindowSize = 20;
  static constexpr int kDefaultConnectTimeoutMs = 5000;
  static constexpr int kDefaultReadTimeoutMs = 10000;

  std::string profile_id;
  Webhook webhook;
  std::vector<std::pair<std::string, std::string>> headers;  // added to every request
  std::string auth_id;                                       // empty = no security setting
  int max_bucket_size = kDefaultMaxBucketSize;               // 1..2000
  int window_size = kDefaultWindowSize;                      // 20..10000 concurrent requests
  int connect_timeout_ms = kDefaultConnectTimeoutMs;         // 300..30000
  int read_timeout_ms = kDefaultReadTimeoutMs;               // 1000..90000
  std::optional<int> rate_limit;                             // 1..5000 requests/s
  std::optional<RetryPolicy> retry;
  // The certificate presented on every TLS connection to the receiver (mTLS), and the TLS
  // versions allowed ("TLSv1.2", "TLSv1.3"; empty: what the system allows).
  std::string client_certificate_id;
  std::vector<std::string> enabled_ssl_protocols;
  std::string response_regex;
  std::string response_body_regex;
  // "" (the platform's payloads) or "CLOUDEVENTS": each notification as a CloudEvents 1.0
  // structured-mode event, a batch as a CloudEvents batch.
  std::string payload_format;
  // "" (none) or "KEY": notifications with the same envelope key reach the receiver one at a
  // time, in ingest order (a later one waits while an earlier one is retried); other keys, and
  // notifications without one, go in parallel up to window_size.
  std::string ordering;
  bool operator==(const NotificationProfile&) const = default;
};

// kEd25519: Standard Webhooks' asymmetric signatures (v1a); its secret_key is "whsk_…".
enum class SecurityType : uint8_t { kBasic, kHmac, kOAuth, kCustom, kEd25519 };
enum class HmacAlgorithm : uint8_t { kMd5, kSha1, kSha224, kSha256, kSha384, kSha512 };

struct SecuritySetting {
  std::string auth_id;
  SecurityType type = SecurityType::kCustom;
  // BASIC (and optional OAUTH password grant)
  std::string username;
  std::string password;
  // HMAC (and ED25519's whsk_ key)
  std::string secret_key;
  HmacAlgorithm algorithm = HmacAlgorithm::kSha256;
  // Rotation, HMAC and ED25519: while these are kept, every request carries one signature per
  // key, space-separated, so receivers verify with the old key or the new one. Until
  // previous_keys_expire_at_ms (Unix ms; 0: until removed).
  std::vector<std::string> previous_secret_keys;
  int64_t previous_keys_expire_at_ms = 0;
  // OAUTH
  std::string token_url;
  std::string grant_type;
  std::string client_id;
  std::string client_secret;
  std::string scope;
  std::string resource;
  std::string refresh_token;
  std::vector<std::pair<std::string, std::string>> headers;
  bool operator==(const SecuritySetting&) const = default;
};

std::string_view SecurityTypeName(SecurityType type);
std::optional<SecurityType> ParseSecurityType(std::string_view name);
std::string_view HmacAlgorithmName(HmacAlgorithm algorithm);  // "HMAC_SHA_256", ...
std::optional<HmacAlgorithm> ParseHmacAlgorithm(std::string_view name);

// True for 1..255 characters of [A-Za-z0-9_-]: the rule for every resource id.
bool IsValidId(std::string_view id);

// Each returns every problem found, keyed by field; empty means valid.
ValidationErrors Validate(const Subscription& subscription, const Catalog& catalog);
ValidationErrors Validate(const NotificationProfile& profile);
ValidationErrors Validate(const SecuritySetting& security);

}  // namespace herald
