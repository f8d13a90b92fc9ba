#include "engine/store/config_records.h"

#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "simdjson.h"

namespace herald::store {
namespace {

using simdjson::dom::element;

void Pairs(JsonWriter& w, std::string_view key,
           const std::vector<std::pair<std::string, std::string>>& pairs) {
  if (pairs.empty()) return;
  w.Key(key).BeginArray();
  for (const auto& [k, v] : pairs) w.BeginArray().String(k).String(v).EndArray();
  w.EndArray();
}

void Strings(JsonWriter& w, std::string_view key, const std::vector<std::string>& v) {
  if (!v.empty()) w.Strings(key, v);
}

void Text(JsonWriter& w, std::string_view key, std::string_view v) {
  if (!v.empty()) w.Field(key, v);
}

void Optional(JsonWriter& w, std::string_view key, const std::optional<std::string>& v) {
  if (v) w.Field(key, *v);
}

// Reads a record's fields; the first problem is kept and reported by Finish().
class Reader {
 public:
  explicit Reader(std::string_view record) {
    if (auto e = parser_.parse(record.data(), record.size()).get(root_)) {
      Fail(Cat("not JSON (", simdjson::error_message(e), ")"));
      return;
    }
    if (!root_.is_object()) {
      Fail("not a JSON object");
      return;
    }
    int64_t v = 0;
    if (root_["v"].get_int64().get(v) != simdjson::SUCCESS) {
      Fail("no format version \"v\"");
    } else if (v != kConfigRecordVersion) {
      Fail(
          Cat("format version ", v, " is not one this release reads (", kConfigRecordVersion, ")"));
    }
  }

  element Root() const { return root_; }

  void Text(element obj, std::string_view key, std::string& out) {
    element e;
    if (!ok() || obj[key].get(e) != simdjson::SUCCESS) return;
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) return Fail(Cat(key, " is not a string"));
    out.assign(s);
  }
  void Text(std::string_view key, std::string& out) { Text(root_, key, out); }
  void Optional(element obj, std::string_view key, std::optional<std::string>& out) {
    if (!ok() || obj[key].error() != simdjson::SUCCESS) return;
    out.emplace();
    Text(obj, key, *out);
  }
  template <typename T>
  void Int(element obj, std::string_view key, T& out) {
    element e;
    if (!ok() || obj[key].get(e) != simdjson::SUCCESS) return;
    int64_t v = 0;
    if (e.get_int64().get(v) != simdjson::SUCCESS) return Fail(Cat(key, " is not an integer"));
    out = static_cast<T>(v);
  }
  template <typename T>
  void Int(std::string_view key, T& out) {
    Int(root_, key, out);
  }
  void Strings(element obj, std::string_view key, std::vector<std::string>& out) {
    simdjson::dom::array a;
    if (!ok() || obj[key].error() != simdjson::SUCCESS) return;
    if (obj[key].get_array().get(a) != simdjson::SUCCESS) return Fail(Cat(key, " is not a list"));
    for (element e : a) {
      std::string_view s;
      if (e.get_string().get(s) != simdjson::SUCCESS) return Fail(Cat(key, " holds a non-string"));
      out.emplace_back(s);
    }
  }
  void Strings(std::string_view key, std::vector<std::string>& out) { Strings(root_, key, out); }
  void Pairs(std::string_view key, std::vector<std::pair<std::string, std::string>>& out) {
    simdjson::dom::array a;
    if (!ok() || root_[key].error() != simdjson::SUCCESS) return;
    if (root_[key].get_array().get(a) != simdjson::SUCCESS) return Fail(Cat(key, " is not a list"));
    for (element e : a) {
      std::vector<std::string> pair;
      simdjson::dom::array p;
      if (e.get_array().get(p) != simdjson::SUCCESS || p.size() != 2) {
        return Fail(Cat(key, " holds something other than [name, value]"));
      }
      for (element s : p) {
        std::string_view v;
        if (s.get_string().get(v) != simdjson::SUCCESS)
          return Fail(Cat(key, " holds a non-string"));
        pair.emplace_back(v);
      }
      out.emplace_back(std::move(pair[0]), std::move(pair[1]));
    }
  }
  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }
  bool ok() const { return error_.empty(); }

  template <typename T>
  absl::StatusOr<T> Finish(std::string_view what, T value) const {
    if (!ok()) return absl::DataLossError(Cat(what, " record: ", error_));
    return value;
  }

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
  std::string error_;
};

}  // namespace

std::string_view ConfigKindName(ConfigKind kind) {
  switch (kind) {
    case ConfigKind::kCertificate:
      return "certificate";
    case ConfigKind::kSecurity:
      return "security";
    case ConfigKind::kProfile:
      return "profile";
    case ConfigKind::kSubscription:
      return "subscription";
  }
  return "";
}

std::optional<ConfigKind> ParseConfigKind(std::string_view name) {
  if (name == "certificate") return ConfigKind::kCertificate;
  if (name == "security") return ConfigKind::kSecurity;
  if (name == "profile") return ConfigKind::kProfile;
  if (name == "subscription") return ConfigKind::kSubscription;
  return std::nullopt;
}

std::string EncodeRecord(const ClientCertificate& c) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("v", kConfigRecordVersion).Field("certificate_id", c.certificate_id);
  w.Field("private_key_pem", c.private_key_pem).Field("chain_pem", c.chain_pem).EndObject();
  return out;
}

std::string EncodeRecord(const SecuritySetting& s) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("v", kConfigRecordVersion).Field("auth_id", s.auth_id);
  w.Field("type", SecurityTypeName(s.type));
  Text(w, "username", s.username);
  Text(w, "password", s.password);
  Text(w, "secret_key", s.secret_key);
  if (!s.previous_secret_keys.empty()) {
    w.Strings("previous_secret_keys", s.previous_secret_keys);
    w.Field("previous_keys_expire_at_ms", s.previous_keys_expire_at_ms);
  }
  w.Field("algorithm", HmacAlgorithmName(s.algorithm));
  Text(w, "token_url", s.token_url);
  Text(w, "grant_type", s.grant_type);
  Text(w, "client_id", s.client_id);
  Text(w, "client_secret", s.client_secret);
  Text(w, "scope", s.scope);
  Text(w, "resource", s.resource);
  Text(w, "refresh_token", s.refresh_token);
  Pairs(w, "headers", s.headers);
  w.EndObject();
  return out;
}

std::string EncodeRecord(const NotificationProfile& p) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("v", kConfigRecordVersion).Field("profile_id", p.profile_id);
  w.Field("notify_url", p.webhook.notify_url);
  Text(w, "content_type", p.webhook.content_type);
  Pairs(w, "headers", p.headers);
  Text(w, "auth_id", p.auth_id);
  w.Field("max_bucket_size", p.max_bucket_size).Field("window_size", p.window_size);
  w.Field("connect_timeout_ms", p.connect_timeout_ms).Field("read_timeout_ms", p.read_timeout_ms);
  if (p.rate_limit) w.Field("rate_limit", *p.rate_limit);
  if (p.retry) {
    w.Key("retry").BeginObject().Key("delays_ms").BeginArray();
    for (int64_t d : p.retry->delays_ms) w.Int(d);
    w.EndArray().Field("max_attempts", p.retry->max_attempts).EndObject();
  }
  Text(w, "client_certificate_id", p.client_certificate_id);
  Strings(w, "enabled_ssl_protocols", p.enabled_ssl_protocols);
  Text(w, "response_regex", p.response_regex);
  Text(w, "response_body_regex", p.response_body_regex);
  Text(w, "payload_format", p.payload_format);
  Text(w, "ordering", p.ordering);
  w.EndObject();
  return out;
}

std::string EncodeRecord(const Subscription& s) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("v", kConfigRecordVersion).Field("subscription_id", s.subscription_id);
  Optional(w, "name", s.name);
  w.Field("channel", s.channel);
  Strings(w, "events", s.events);
  Pairs(w, "event_formats", s.event_formats);
  if (!s.criteria.empty()) {
    w.Key("criteria").BeginArray();
    for (const Criterion& c : s.criteria) {
      w.BeginObject();
      Optional(w, "application_id", c.application_id);
      Optional(w, "entity_id", c.entity_id);
      Optional(w, "calls_configuration_id", c.calls_configuration_id);
      w.EndObject();
    }
    w.EndArray();
  }
  Strings(w, "resources", s.resources);
  Strings(w, "users", s.users);
  Text(w, "group", s.group);
  w.Field("profile_id", s.profile_id);
  w.EndObject();
  return out;
}

absl::StatusOr<ClientCertificate> DecodeCertificateRecord(std::string_view record) {
  Reader r(record);
  ClientCertificate c;
  r.Text("certificate_id", c.certificate_id);
  r.Text("private_key_pem", c.private_key_pem);
  r.Text("chain_pem", c.chain_pem);
  if (r.ok() && (c.certificate_id.empty() || c.private_key_pem.empty() || c.chain_pem.empty())) {
    r.Fail("no certificate_id, private_key_pem or chain_pem");
  }
  return r.Finish("certificate", std::move(c));
}

absl::StatusOr<SecuritySetting> DecodeSecurityRecord(std::string_view record) {
  Reader r(record);
  SecuritySetting s;
  r.Text("auth_id", s.auth_id);
  std::string type, algorithm;
  r.Text("type", type);
  r.Text("algorithm", algorithm);
  if (r.ok()) {
    if (auto t = ParseSecurityType(type)) {
      s.type = *t;
    } else {
      r.Fail(Cat("type \"", type, "\" is unknown"));
    }
    if (auto a = ParseHmacAlgorithm(algorithm)) {
      s.algorithm = *a;
    } else {
      r.Fail(Cat("algorithm \"", algorithm, "\" is unknown"));
    }
  }
  r.Strings("previous_secret_keys", s.previous_secret_keys);
  r.Int("previous_keys_expire_at_ms", s.previous_keys_expire_at_ms);
  r.Text("username", s.username);
  r.Text("password", s.password);
  r.Text("secret_key", s.secret_key);
  r.Text("token_url", s.token_url);
  r.Text("grant_type", s.grant_type);
  r.Text("client_id", s.client_id);
  r.Text("client_secret", s.client_secret);
  r.Text("scope", s.scope);
  r.Text("resource", s.resource);
  r.Text("refresh_token", s.refresh_token);
  r.Pairs("headers", s.headers);
  if (r.ok() && s.auth_id.empty()) r.Fail("no auth_id");
  return r.Finish("security", std::move(s));
}

absl::StatusOr<NotificationProfile> DecodeProfileRecord(std::string_view record) {
  Reader r(record);
  NotificationProfile p;
  r.Text("profile_id", p.profile_id);
  r.Text("notify_url", p.webhook.notify_url);
  r.Text("content_type", p.webhook.content_type);
  r.Pairs("headers", p.headers);
  r.Text("auth_id", p.auth_id);
  r.Int("max_bucket_size", p.max_bucket_size);
  r.Int("window_size", p.window_size);
  r.Int("connect_timeout_ms", p.connect_timeout_ms);
  r.Int("read_timeout_ms", p.read_timeout_ms);
  if (r.ok() && r.Root()["rate_limit"].error() == simdjson::SUCCESS) {
    r.Int("rate_limit", p.rate_limit.emplace());
  }
  element retry;
  if (r.ok() && r.Root()["retry"].get(retry) == simdjson::SUCCESS) {
    RetryPolicy& policy = p.retry.emplace();
    simdjson::dom::array delays;
    if (retry["delays_ms"].get_array().get(delays) == simdjson::SUCCESS) {
      for (element d : delays) {
        int64_t v = 0;
        if (d.get_int64().get(v) != simdjson::SUCCESS)
          r.Fail("retry.delays_ms holds a non-integer");
        policy.delays_ms.push_back(v);
      }
    }
    r.Int(retry, "max_attempts", policy.max_attempts);
  }
  r.Text("client_certificate_id", p.client_certificate_id);
  r.Strings("enabled_ssl_protocols", p.enabled_ssl_protocols);
  r.Text("response_regex", p.response_regex);
  r.Text("response_body_regex", p.response_body_regex);
  r.Text("payload_format", p.payload_format);
  r.Text("ordering", p.ordering);
  if (r.ok() && p.profile_id.empty()) r.Fail("no profile_id");
  return r.Finish("profile", std::move(p));
}

absl::StatusOr<Subscription> DecodeSubscriptionRecord(std::string_view record) {
  Reader r(record);
  Subscription s;
  r.Text("subscription_id", s.subscription_id);
  r.Optional(r.Root(), "name", s.name);
  r.Text("channel", s.channel);
  r.Strings("events", s.events);
  r.Pairs("event_formats", s.event_formats);
  simdjson::dom::array criteria;
  if (r.ok() && r.Root()["criteria"].get_array().get(criteria) == simdjson::SUCCESS) {
    for (element c : criteria) {
      Criterion& criterion = s.criteria.emplace_back();
      r.Optional(c, "application_id", criterion.application_id);
      r.Optional(c, "entity_id", criterion.entity_id);
      r.Optional(c, "calls_configuration_id", criterion.calls_configuration_id);
    }
  }
  r.Strings("resources", s.resources);
  r.Strings("users", s.users);
  r.Text("group", s.group);
  r.Text("profile_id", s.profile_id);
  if (r.ok() && s.subscription_id.empty()) r.Fail("no subscription_id");
  return r.Finish("subscription", std::move(s));
}

ConfigWrite PutWrite(const ClientCertificate& c, uint64_t expected) {
  return {ConfigKind::kCertificate, c.certificate_id, EncodeRecord(c), expected};
}
ConfigWrite PutWrite(const SecuritySetting& s, uint64_t expected) {
  return {ConfigKind::kSecurity, s.auth_id, EncodeRecord(s), expected};
}
ConfigWrite PutWrite(const NotificationProfile& p, uint64_t expected) {
  return {ConfigKind::kProfile, p.profile_id, EncodeRecord(p), expected};
}
ConfigWrite PutWrite(const Subscription& s, uint64_t expected) {
  return {ConfigKind::kSubscription, s.subscription_id, EncodeRecord(s), expected};
}
ConfigWrite DeleteWrite(ConfigKind kind, std::string_view id, uint64_t expected) {
  return {kind, std::string(id), std::nullopt, expected};
}

namespace {

// Create, or update when it exists.
template <typename T, typename Create, typename Update>
absl::Status Upsert(const absl::StatusOr<T>& value, Create create, Update update) {
  if (!value.ok()) return value.status();
  absl::Status s = create(*value);
  if (s.code() == absl::StatusCode::kAlreadyExists) s = update(*value);
  return s;
}

}  // namespace

absl::Status ApplyEntry(Engine& engine, const ConfigEntry& entry,
                        const std::function<void(std::string_view)>& log) {
  switch (entry.kind) {
    case ConfigKind::kCertificate:
      if (entry.deleted) return engine.DeleteCertificate(entry.id);
      return Upsert(
          DecodeCertificateRecord(entry.value),
          [&](auto& v) { return engine.CreateCertificate(v); },
          // Never updated through the API; a store that says otherwise replaces it.
          [&](auto& v) {
            absl::Status s = engine.DeleteCertificate(v.certificate_id);
            return s.ok() ? engine.CreateCertificate(v) : s;
          });
    case ConfigKind::kSecurity:
      if (entry.deleted) return engine.DeleteSecurity(entry.id);
      return Upsert(
          DecodeSecurityRecord(entry.value), [&](auto& v) { return engine.CreateSecurity(v); },
          [&](auto& v) { return engine.UpdateSecurity(v); });
    case ConfigKind::kProfile: {
      if (entry.deleted) return engine.DeleteProfile(entry.id);
      auto profile = DecodeProfileRecord(entry.value);
      // Releases before certificates stored clientCertificateId without using it: such a profile
      // loads as it worked then, without one, rather than not at all (with its subscriptions).
      if (profile.ok() && !profile->client_certificate_id.empty() &&
          absl::IsNotFound(engine.GetCertificate(profile->client_certificate_id).status())) {
        if (log) {
          log(Cat("store: profile ", profile->profile_id, " names certificate ",
                  profile->client_certificate_id,
                  ", which does not exist: loaded without a client certificate"));
        }
        profile->client_certificate_id.clear();
      }
      return Upsert(
          profile, [&](auto& v) { return engine.CreateProfile(v); },
          [&](auto& v) { return engine.UpdateProfile(v); });
    }
    case ConfigKind::kSubscription:
      if (entry.deleted) return engine.DeleteSubscription(entry.id);
      return Upsert(
          DecodeSubscriptionRecord(entry.value),
          [&](auto& v) { return engine.CreateSubscription(v); },
          [&](auto& v) { return engine.UpdateSubscription(v); });
  }
  return absl::InternalError("unknown config kind");
}

size_t LoadConfig(const ConfigStore& store, Engine& engine,
                  const std::function<void(std::string_view)>& log) {
  size_t loaded = 0;
  for (const ConfigEntry& entry : store.List()) {
    if (auto s = ApplyEntry(engine, entry, log); !s.ok()) {
      if (log) {
        log(Cat("store: ", ConfigKindName(entry.kind), " ", entry.id,
                " no longer applies and is not loaded: ", ToStd(s.message())));
      }
      continue;
    }
    ++loaded;
  }
  return loaded;
}

}  // namespace herald::store
