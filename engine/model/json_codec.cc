#include "engine/model/json_codec.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "engine/common/http_syntax.h"
#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/model/ed25519_keys.h"

namespace herald::model {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Collects field errors while reading one object.
class Reader {
 public:
  Reader(object obj, std::string prefix, ValidationErrors* errors)
      : obj_(obj), prefix_(std::move(prefix)), errors_(errors) {}

  std::string Field(std::string_view key) const { return prefix_ + std::string(key); }
  void Error(std::string_view key, std::string message) {
    (*errors_)[Field(key)].push_back(std::move(message));
  }

  bool Has(std::string_view key) {
    element e;
    return obj_[key].get(e) == simdjson::SUCCESS && !e.is_null();
  }

  std::optional<std::string> String(std::string_view key) {
    element e;
    if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
    std::string_view v;
    if (e.get_string().get(v) != simdjson::SUCCESS) {
      Error(key, "must be a string");
      return std::nullopt;
    }
    return std::string(v);
  }

  std::optional<int64_t> Int(std::string_view key) {
    element e;
    if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
    int64_t v;
    if (e.get_int64().get(v) != simdjson::SUCCESS) {
      Error(key, "must be an integer");
      return std::nullopt;
    }
    return v;
  }

  std::optional<array> Array(std::string_view key) {
    element e;
    if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
    array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) {
      Error(key, "must be an array");
      return std::nullopt;
    }
    return a;
  }

  std::optional<object> Object(std::string_view key) {
    element e;
    if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
    object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
      Error(key, "must be an object");
      return std::nullopt;
    }
    return o;
  }

  std::vector<std::string> Strings(std::string_view key) {
    std::vector<std::string> out;
    if (auto a = Array(key)) {
      for (element item : *a) {
        std::string_view v;
        if (item.get_string().get(v) != simdjson::SUCCESS) {
          Error(key, "must be an array of strings");
          break;
        }
        out.emplace_back(v);
      }
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> StringMap(std::string_view key) {
    std::vector<std::pair<std::string, std::string>> out;
    if (auto o = Object(key)) {
      for (auto [k, v] : *o) {
        std::string_view value;
        if (v.get_string().get(value) != simdjson::SUCCESS) {
          Error(key, "values must be strings");
          break;
        }
        out.emplace_back(std::string(k), std::string(value));
      }
    }
    return out;
  }

  void Int32(std::string_view key, int* out) {
    if (auto v = Int(key)) {
      if (*v < INT32_MIN || *v > INT32_MAX) {
        Error(key, "out of range");
      } else {
        *out = static_cast<int>(*v);
      }
    }
  }

 private:
  object obj_;
  std::string prefix_;
  ValidationErrors* errors_;
};

absl::Status Finish(const ValidationErrors& errors) {
  return errors.empty() ? absl::OkStatus() : ValidationError(errors);
}

bool AsObject(element json, object* obj, ValidationErrors* errors, const std::string& field) {
  if (json.get_object().get(*obj) != simdjson::SUCCESS) {
    (*errors)[field.empty() ? "body" : field].push_back("must be a JSON object");
    return false;
  }
  return true;
}

// A reference to an existing resource rather than an inline definition: the definition's
// required parts are absent (a profile's webhook; a security setting's type and credentials),
// so a GET body sent back — {"profileId":…,"security":{"authId":…}} — stays a reference.
bool IsReferenceOnly(object o, std::string_view id_key) {
  auto present = [&](std::string_view key) {
    simdjson::dom::element e;
    return o[key].get(e) == simdjson::SUCCESS && !e.is_null();
  };
  if (id_key == "profileId") return !present("webhook");
  return !present("type") && !present("credentials");
}

void DecodeSecurityInto(object o, const std::string& prefix, SecuritySetting* s,
                        ValidationErrors* errors) {
  Reader r(o, prefix, errors);
  s->auth_id = r.String("authId").value_or("");
  if (auto type = r.String("type")) {
    if (auto t = ParseSecurityType(*type)) {
      s->type = *t;
    } else {
      r.Error("type", "must be one of BASIC, HMAC, OAUTH, CUSTOM, ED25519");
    }
  } else {
    r.Error("type", "must not be null");
  }
  auto creds = r.Object("credentials");
  if (!creds) {
    // ED25519 without credentials: heraldd makes the key.
    if (s->type != SecurityType::kCustom && s->type != SecurityType::kEd25519) {
      r.Error("credentials", "must not be null");
    }
    return;
  }
  Reader c(*creds, prefix + "credentials.", errors);
  s->username = c.String("username").value_or("");
  s->password = c.String("password").value_or("");
  s->secret_key = c.String("secretKey").value_or("");
  s->previous_secret_keys = c.Strings("previousSecretKeys");
  s->previous_keys_expire_at_ms = c.Int("previousSecretKeysExpireAt").value_or(0);
  if (auto alg = c.String("algorithm")) {
    if (auto a = ParseHmacAlgorithm(*alg)) {
      s->algorithm = *a;
    } else {
      c.Error("algorithm",
              "must be one of HMAC_MD5, HMAC_SHA_1, HMAC_SHA_224, HMAC_SHA_256, HMAC_SHA_384, "
              "HMAC_SHA_512");
    }
  } else if (s->type == SecurityType::kHmac) {
    c.Error("algorithm", "must not be null");
  }
  s->token_url = c.String("tokenUrl").value_or("");
  s->grant_type = c.String("grantType").value_or("");
  s->client_id = c.String("clientId").value_or("");
  s->client_secret = c.String("clientSecret").value_or("");
  s->scope = c.String("scope").value_or("");
  s->resource = c.String("resource").value_or("");
  s->refresh_token = c.String("refreshToken").value_or("");
  s->headers = c.StringMap("headers");
}

void DecodeProfileInto(object o, const std::string& prefix, ProfileRequest* out,
                       ValidationErrors* errors) {
  Reader r(o, prefix, errors);
  NotificationProfile& p = out->profile;
  p.profile_id = r.String("profileId").value_or("");
  if (auto webhook = r.Object("webhook")) {
    Reader w(*webhook, prefix + "webhook.", errors);
    p.webhook.notify_url = w.String("notifyUrl").value_or("");
    p.webhook.content_type = w.String("contentType").value_or("");
  } else {
    r.Error("webhook", "must not be null");
  }
  if (auto security = r.Object("security")) {
    Reader sec(*security, prefix + "security.", errors);
    p.auth_id = sec.String("authId").value_or("");
    if (!IsReferenceOnly(*security, "authId")) {
      SecuritySetting s;
      DecodeSecurityInto(*security, prefix + "security.", &s, errors);
      out->inline_security = std::move(s);
    }
  }
  p.headers = r.StringMap("headers");
  r.Int32("maxBucketSize", &p.max_bucket_size);
  r.Int32("windowSize", &p.window_size);
  r.Int32("connectTimeout", &p.connect_timeout_ms);
  r.Int32("readTimeout", &p.read_timeout_ms);
  if (r.Has("rateLimit")) {
    int rate = 0;
    r.Int32("rateLimit", &rate);
    p.rate_limit = rate;
  }
  p.client_certificate_id = r.String("clientCertificateId").value_or("");
  p.enabled_ssl_protocols = r.Strings("enabledSSLProtocols");
  p.response_regex = r.String("responseRegex").value_or("");
  p.response_body_regex = r.String("responseBodyRegex").value_or("");
  p.payload_format = r.String("payloadFormat").value_or("");
  p.ordering = r.String("ordering").value_or("");
  if (auto retry = r.Object("retry")) {
    Reader rr(*retry, prefix + "retry.", errors);
    RetryPolicy policy;
    if (auto delays = rr.Array("delaysMs")) {
      for (element d : *delays) {
        int64_t v;
        if (d.get_int64().get(v) != simdjson::SUCCESS) {
          rr.Error("delaysMs", "must be an array of integers");
          break;
        }
        policy.delays_ms.push_back(v);
      }
    }
    rr.Int32("maxAttempts", &policy.max_attempts);
    p.retry = std::move(policy);
  }
}

}  // namespace

absl::StatusOr<SecuritySetting> DecodeSecurity(element json) {
  ValidationErrors errors;
  object o;
  SecuritySetting s;
  if (AsObject(json, &o, &errors, "")) DecodeSecurityInto(o, "", &s, &errors);
  if (auto st = Finish(errors); !st.ok()) return st;
  return s;
}

absl::StatusOr<ProfileRequest> DecodeProfile(element json) {
  ValidationErrors errors;
  object o;
  ProfileRequest p;
  if (AsObject(json, &o, &errors, "")) DecodeProfileInto(o, "", &p, &errors);
  if (auto st = Finish(errors); !st.ok()) return st;
  return p;
}

absl::StatusOr<SubscriptionRequest> DecodeSubscription(element json, std::string_view channel) {
  ValidationErrors errors;
  object o;
  SubscriptionRequest req;
  if (!AsObject(json, &o, &errors, "")) return Finish(errors);
  Reader r(o, "", &errors);
  Subscription& s = req.subscription;
  s.subscription_id = r.String("subscriptionId").value_or("");
  s.name = r.String("name");
  s.channel = r.String("channel").value_or(std::string(channel));
  if (!channel.empty() && s.channel != channel) {
    r.Error("channel", "does not match the channel of the path");
  }
  if (auto events = r.Array("events")) {
    for (element e : *events) {
      std::string_view name;
      object eo;
      if (e.get_string().get(name) == simdjson::SUCCESS) {
        s.events.emplace_back(name);
      } else if (e.get_object().get(eo) == simdjson::SUCCESS) {
        std::string_view format;
        if (eo["event"].get_string().get(name) != simdjson::SUCCESS ||
            eo["format"].get_string().get(format) != simdjson::SUCCESS) {
          r.Error("events", "an event object needs string \"event\" and \"format\"");
          continue;
        }
        s.events.emplace_back(name);
        s.event_formats.emplace_back(std::string(name), std::string(format));
      } else {
        r.Error("events", "items must be event names or {\"event\",\"format\"} objects");
      }
    }
  } else if (!r.Has("events")) {
    r.Error("events", "must not be null");
  }
  if (auto criteria = r.Array("criteria")) {
    size_t i = 0;
    for (element c : *criteria) {
      object co;
      const std::string field = Cat("criteria[", i++, "].");
      if (!AsObject(c, &co, &errors, field)) continue;
      Reader cr(co, field, &errors);
      Criterion crit;
      crit.application_id = cr.String("applicationId");
      crit.entity_id = cr.String("entityId");
      crit.calls_configuration_id = cr.String("callsConfigurationId");
      s.criteria.push_back(std::move(crit));
    }
  }
  s.resources = r.Strings("resources");
  s.users = r.Strings("users");
  s.group = r.String("group").value_or("");
  if (auto profile = r.Object("profile")) {
    Reader pr(*profile, "profile.", &errors);
    s.profile_id = pr.String("profileId").value_or("");
    if (!IsReferenceOnly(*profile, "profileId")) {
      ProfileRequest p;
      DecodeProfileInto(*profile, "profile.", &p, &errors);
      req.inline_profile = std::move(p.profile);
      req.inline_security = std::move(p.inline_security);
    }
  } else {
    r.Error("profile", "must not be null");
  }
  if (auto st = Finish(errors); !st.ok()) return st;
  return req;
}

namespace {
template <typename T, typename F>
absl::StatusOr<T> ParseThen(std::string_view text, F&& decode) {
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(text.data(), text.size()).get(root)) {
    return absl::InvalidArgumentError(Cat("malformed JSON: ", simdjson::error_message(err)));
  }
  return decode(root);
}
}  // namespace

absl::StatusOr<SubscriptionRequest> DecodeSubscription(std::string_view text,
                                                       std::string_view channel) {
  return ParseThen<SubscriptionRequest>(text,
                                        [&](element e) { return DecodeSubscription(e, channel); });
}
absl::StatusOr<ProfileRequest> DecodeProfile(std::string_view text) {
  return ParseThen<ProfileRequest>(text, [](element e) { return DecodeProfile(e); });
}
absl::StatusOr<SecuritySetting> DecodeSecurity(std::string_view text) {
  return ParseThen<SecuritySetting>(text, [](element e) { return DecodeSecurity(e); });
}

absl::StatusOr<CertificateUpload> DecodeCertificateUpload(std::string_view text) {
  return ParseThen<CertificateUpload>(text, [](element json) -> absl::StatusOr<CertificateUpload> {
    ValidationErrors errors;
    object o;
    CertificateUpload c;
    if (!AsObject(json, &o, &errors, "")) return Finish(errors);
    Reader r(o, "", &errors);
    c.certificate_id = r.String("certificateId").value_or("");
    if (!r.Has("certificateId")) r.Error("certificateId", "must not be null");
    auto base64 = [&](std::string_view key, std::string* out) {
      if (const auto v = r.String(key)) {
        absl::string_view text(v->data(), v->size());
        if (!absl::Base64Unescape(text, out)) r.Error(key, "is not base64");
      }
    };
    base64("certificateContent", &c.pem);
    if (!r.Has("certificateContent")) r.Error("certificateContent", "must not be null");
    base64("passphrase", &c.passphrase);
    if (auto st = Finish(errors); !st.ok()) return st;
    return c;
  });
}

absl::StatusOr<ConnectionTest> DecodeConnectionTest(std::string_view text) {
  return ParseThen<ConnectionTest>(text, [](element json) -> absl::StatusOr<ConnectionTest> {
    ValidationErrors errors;
    object o;
    ConnectionTest t;
    if (!AsObject(json, &o, &errors, "")) return Finish(errors);
    Reader r(o, "", &errors);
    t.certificate_id = r.String("certificateId").value_or("");
    t.webhook_url = r.String("webhookUrl").value_or("");
    if (t.certificate_id.empty()) r.Error("certificateId", "must not be empty");
    if (t.webhook_url.empty()) r.Error("webhookUrl", "must not be empty");
    if (auto st = Finish(errors); !st.ok()) return st;
    return t;
  });
}

std::string EncodeCertificateDetails(const ClientCertificate& c, const CertificateDetails& d,
                                     std::string_view status) {
  std::string out;
  JsonWriter(out)
      .BeginObject()
      .Field("certificateId", c.certificate_id)
      .Field("issuedBy", d.issued_by)
      .Field("issuedTo", d.issued_to)
      .Field("validFrom", d.valid_from_ms)
      .Field("validUntil", d.valid_until_ms)
      .Field("certificateStatus", status)
      .Field("serialNumber", d.serial_number)
      .EndObject();
  return out;
}

namespace {

constexpr std::string_view kMask = "********";

// Header values are masked unless the name is known to carry nothing secret: CUSTOM security
// puts credentials in profile headers under any name.
bool IsPlainHeader(std::string_view name) {
  for (std::string_view plain : {"accept", "accept-charset", "accept-encoding", "accept-language",
                                 "cache-control", "content-language", "pragma", "user-agent"}) {
    if (EqualsLowercase(name, plain)) return true;
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> MaskHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers, bool all) {
  auto out = headers;
  for (auto& [name, value] : out) {
    if (all || !IsPlainHeader(name)) value = std::string(kMask);
  }
  return out;
}

// A masked value sent back (a GET → PUT round trip) means "keep the stored one"; with nothing
// stored it is refused, so the mask never becomes a secret.
void Restore(std::string& value, const std::string* stored, const char* field,
             ValidationErrors& errors) {
  if (value != kMask) return;
  if (stored && !stored->empty()) {
    value = *stored;
  } else {
    errors[field].push_back(Cat("\"", kMask, "\" is how GET masks a secret; send the value"));
  }
}

void RestoreHeaders(std::vector<std::pair<std::string, std::string>>& headers,
                    const std::vector<std::pair<std::string, std::string>>* stored,
                    const char* field, ValidationErrors& errors) {
  for (auto& [name, value] : headers) {
    const std::string* before = nullptr;
    if (stored) {
      for (const auto& [n, v] : *stored) {
        if (n.size() == name.size() && absl::EqualsIgnoreCase(ToAbsl(n), ToAbsl(name))) before = &v;
      }
    }
    Restore(value, before, field, errors);
  }
}

void WriteSecurityRef(JsonWriter& w, std::string_view auth_id) {
  w.Key("security").BeginObject();
  if (!auth_id.empty()) w.Field("authId", auth_id);
  w.EndObject();
}

void WriteHeaders(JsonWriter& w, std::string_view key,
                  const std::vector<std::pair<std::string, std::string>>& headers) {
  w.Key(key).BeginObject();
  for (const auto& [name, value] : headers) w.Field(name, value);
  w.EndObject();
}

}  // namespace

absl::Status RestoreMaskedSecrets(SecuritySetting& s, const SecuritySetting* stored) {
  ValidationErrors errors;
  // A secret is kept only for the same kind of setting.
  if (stored && stored->type != s.type) stored = nullptr;
  for (size_t i = 0; i < s.previous_secret_keys.size(); ++i) {
    const bool have = stored && i < stored->previous_secret_keys.size();
    Restore(s.previous_secret_keys[i], have ? &stored->previous_secret_keys[i] : nullptr,
            "credentials.previousSecretKeys", errors);
  }
  // An ED25519 secret is never shown, so a GET → PUT round trip sends none: keep the stored one.
  if (s.type == SecurityType::kEd25519 && s.secret_key.empty() && stored) {
    s.secret_key = stored->secret_key;
  }
  Restore(s.password, stored ? &stored->password : nullptr, "credentials.password", errors);
  Restore(s.secret_key, stored ? &stored->secret_key : nullptr, "credentials.secretKey", errors);
  Restore(s.client_secret, stored ? &stored->client_secret : nullptr, "credentials.clientSecret",
          errors);
  Restore(s.refresh_token, stored ? &stored->refresh_token : nullptr, "credentials.refreshToken",
          errors);
  RestoreHeaders(s.headers, stored ? &stored->headers : nullptr, "credentials.headers", errors);
  return errors.empty() ? absl::OkStatus() : ValidationError(errors);
}

absl::Status RestoreMaskedHeaders(NotificationProfile& p, const NotificationProfile* stored) {
  ValidationErrors errors;
  RestoreHeaders(p.headers, stored ? &stored->headers : nullptr, "headers", errors);
  return errors.empty() ? absl::OkStatus() : ValidationError(errors);
}

std::string EncodeProfile(const NotificationProfile& p, bool mask) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("profileId", p.profile_id);
  w.Key("webhook")
      .BeginObject()
      .Field("notifyUrl", p.webhook.notify_url)
      .Field("contentType",
             p.webhook.content_type.empty() ? "application/json" : p.webhook.content_type)
      .EndObject();
  WriteSecurityRef(w, p.auth_id);
  if (!p.client_certificate_id.empty()) w.Field("clientCertificateId", p.client_certificate_id);
  w.Key("maxBucketSize").Int(p.max_bucket_size);
  w.Key("windowSize").Int(p.window_size);
  w.Key("connectTimeout").Int(p.connect_timeout_ms);
  w.Key("readTimeout").Int(p.read_timeout_ms);
  if (p.rate_limit) w.Key("rateLimit").Int(*p.rate_limit);
  if (!p.enabled_ssl_protocols.empty()) w.Strings("enabledSSLProtocols", p.enabled_ssl_protocols);
  WriteHeaders(w, "headers", mask ? MaskHeaders(p.headers, /*all=*/false) : p.headers);
  if (!p.response_regex.empty()) w.Field("responseRegex", p.response_regex);
  if (!p.response_body_regex.empty()) w.Field("responseBodyRegex", p.response_body_regex);
  if (!p.payload_format.empty()) w.Field("payloadFormat", p.payload_format);
  if (!p.ordering.empty()) w.Field("ordering", p.ordering);
  if (p.retry) {
    w.Key("retry").BeginObject().Key("delaysMs").BeginArray();
    for (const auto delay : p.retry->delays_ms) w.Int(delay);
    w.EndArray().Field("maxAttempts", int64_t{p.retry->max_attempts}).EndObject();
  }
  w.EndObject();
  return out;
}

std::string EncodeSecurity(const SecuritySetting& s, bool mask) {
  auto secret = [&](const std::string& v) { return mask ? std::string(kMask) : v; };
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("authId", s.auth_id).Field("type", SecurityTypeName(s.type));
  w.Key("credentials").BeginObject();
  switch (s.type) {
    case SecurityType::kBasic:
      w.Field("username", s.username).Field("password", secret(s.password));
      break;
    case SecurityType::kHmac:
      w.Field("secretKey", secret(s.secret_key)).Field("algorithm", HmacAlgorithmName(s.algorithm));
      if (!s.previous_secret_keys.empty()) {
        w.Key("previousSecretKeys").BeginArray();
        for (const auto& k : s.previous_secret_keys) w.String(secret(k));
        w.EndArray();
      }
      break;
    case SecurityType::kOAuth:
      w.Field("tokenUrl", s.token_url).Field("grantType", s.grant_type);
      if (!s.client_id.empty()) w.Field("clientId", s.client_id);
      if (!s.client_secret.empty()) w.Field("clientSecret", secret(s.client_secret));
      if (!s.scope.empty()) w.Field("scope", s.scope);
      if (!s.username.empty()) w.Field("username", s.username);
      if (!s.password.empty()) w.Field("password", secret(s.password));
      if (!s.resource.empty()) w.Field("resource", s.resource);
      if (!s.refresh_token.empty()) w.Field("refreshToken", secret(s.refresh_token));
      if (!s.headers.empty()) {
        WriteHeaders(w, "headers", mask ? MaskHeaders(s.headers, true) : s.headers);
      }
      break;
    case SecurityType::kCustom:
      break;
    case SecurityType::kEd25519:
      // The secret never leaves; receivers verify with the public key.
      if (!mask) w.Field("secretKey", s.secret_key);
      if (auto key = Ed25519PublicKey(s.secret_key); key.ok()) w.Field("publicKey", *key);
      if (!s.previous_secret_keys.empty()) {
        if (!mask) w.Strings("previousSecretKeys", s.previous_secret_keys);
        w.Key("previousPublicKeys").BeginArray();
        for (const auto& k : s.previous_secret_keys) {
          if (auto key = Ed25519PublicKey(k); key.ok()) w.String(*key);
        }
        w.EndArray();
      }
      break;
  }
  if (s.previous_keys_expire_at_ms != 0 && !s.previous_secret_keys.empty()) {
    w.Field("previousSecretKeysExpireAt", s.previous_keys_expire_at_ms);
  }
  w.EndObject().EndObject();
  return out;
}

std::string EncodeSubscription(const Subscription& s, const NotificationProfile* profile) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("subscriptionId", s.subscription_id);
  if (s.name) w.Field("name", *s.name);
  w.Field("channel", s.channel);
  w.Key("profile").BeginObject().Field("profileId", s.profile_id);
  WriteSecurityRef(w, profile ? std::string_view(profile->auth_id) : "");
  w.EndObject();
  w.Key("events").BeginArray();
  for (const auto& event : s.events) {
    std::string_view format;
    for (const auto& [e, f] : s.event_formats) {
      if (e == event) format = f;
    }
    if (format.empty()) {
      w.String(event);
    } else {
      w.BeginObject().Field("event", event).Field("format", format).EndObject();
    }
  }
  w.EndArray();
  w.Key("criteria").BeginArray();
  for (const auto& c : s.criteria) {
    w.BeginObject();
    if (c.application_id) w.Field("applicationId", *c.application_id);
    if (c.entity_id) w.Field("entityId", *c.entity_id);
    if (c.calls_configuration_id) w.Field("callsConfigurationId", *c.calls_configuration_id);
    w.EndObject();
  }
  w.EndArray();
  w.Strings("resources", s.resources);
  w.Strings("users", s.users);
  w.Field("group", s.group);
  w.EndObject();
  return out;
}

}  // namespace herald::model
