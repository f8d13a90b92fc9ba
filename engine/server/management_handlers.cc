// The Subscriptions management API (DESIGN §4, the platform's shapes): decode, check, call the
// ManagementService, encode.
#include <algorithm>
#include <charconv>

#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/model/ed25519_keys.h"
#include "engine/model/json_codec.h"
#include "engine/server/http_api.h"
#include "engine/server/http_reply.h"
#include "simdjson.h"

namespace herald::server {
namespace {

std::string ProfileIds(std::string_view profile_id, std::string_view auth_id) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("profileId", profile_id).Key("security").BeginObject();
  if (!auth_id.empty()) w.Field("authId", auth_id);
  w.EndObject().EndObject();
  return out;
}

// {"subscriptionId":…,"profile":{"profileId":…,"security":{"authId":…}}}
std::string SubscriptionIds(Engine& engine, const Subscription& s) {
  auto profile = engine.GetProfile(s.profile_id);
  std::string out;
  JsonWriter(out)
      .BeginObject()
      .Field("subscriptionId", s.subscription_id)
      .RawField("profile", ProfileIds(s.profile_id, profile.ok() ? profile->auth_id : ""))
      .EndObject();
  return out;
}

// Whether a subscription passes the list's filters (each a list of accepted values; empty
// accepts all).
bool Listed(const Subscription& s, const Query& query) {
  auto criteria_have = [&](const std::vector<std::string>& want, bool app) {
    if (want.empty()) return true;
    return std::any_of(s.criteria.begin(), s.criteria.end(), [&](const Criterion& c) {
      const auto& v = app ? c.application_id : c.entity_id;
      return v && std::find(want.begin(), want.end(), *v) != want.end();
    });
  };
  auto list_has = [](const std::vector<std::string>& want, const std::vector<std::string>& have) {
    if (want.empty()) return true;
    return std::any_of(have.begin(), have.end(), [&](const std::string& h) {
      return std::find(want.begin(), want.end(), h) != want.end();
    });
  };
  return criteria_have(Values(query, "applicationId"), true) &&
         criteria_have(Values(query, "entityId"), false) &&
         list_has(Values(query, "resource"), s.resources) &&
         list_has(Values(query, "user"), s.users);
}

}  // namespace

std::string HttpApi::Channel(Call& call) const {
  const std::string& channel = call.params[0];
  const int ch = engine_.catalog().FindChannel(channel);
  if (ch < 0) {
    Error(call.response, 404, "NOT_FOUND", Cat("unknown channel ", channel));
    return "";
  }
  return engine_.catalog().channels()[ch].channel;
}

void HttpApi::CreateSubscription(Call& call) {
  const std::string channel = Channel(call);
  if (channel.empty()) return;
  auto req = model::DecodeSubscription(call.request.body, call.params[0]);
  if (!req.ok()) return FromStatus(call.response, req.status());
  if (auto s = management_.CreateSubscription(req->subscription, std::move(req->inline_security),
                                              std::move(req->inline_profile));
      !s.ok()) {
    return FromStatus(call.response, s);
  }
  Json(call.response, 201, SubscriptionIds(engine_, req->subscription));
}

void HttpApi::ListSubscriptions(Call& call) {
  const std::string channel = Channel(call);
  if (channel.empty()) return;
  auto paging = ParsePaging(call.query);
  if (!paging.ok()) return FromStatus(call.response, paging.status());
  std::vector<Subscription> listed;
  for (Subscription& s : engine_.ListSubscriptions(channel)) {
    if (Listed(s, call.query)) listed.push_back(std::move(s));
  }
  Json(call.response, 200, Page(listed, *paging, [&](const Subscription& s) {
         auto p = engine_.GetProfile(s.profile_id);
         return model::EncodeSubscription(s, p.ok() ? &*p : nullptr);
       }));
}

void HttpApi::SetETag(Call& call, store::ConfigKind kind, const std::string& id) const {
  if (!config_) return;
  if (const auto stored = config_->Get(kind, id)) {
    call.response.headers.emplace_back("ETag", Cat("\"", stored->revision, "\""));
  }
}

bool HttpApi::IfMatch(Call& call, uint64_t* revision) const {
  *revision = store::kAnyRevision;
  std::string_view v = call.request.if_match;
  if (v.empty() || v == "*") return true;
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n == store::kAnyRevision) {
    Error(call.response, 412, "PRECONDITION_FAILED",
          Cat("If-Match: ", call.request.if_match, " is not an ETag this API gave"));
    return false;
  }
  *revision = n;
  return true;
}

void HttpApi::GetSubscription(Call& call) {
  const std::string channel = Channel(call);
  if (channel.empty()) return;
  const std::string& id = call.params[1];
  auto s = engine_.GetSubscription(id);
  if (!s.ok() || s->channel != channel) {
    return Error(call.response, 404, "NOT_FOUND",
                 Cat("subscription ", id, " not found in ", channel));
  }
  auto p = engine_.GetProfile(s->profile_id);
  Json(call.response, 200, model::EncodeSubscription(*s, p.ok() ? &*p : nullptr));
  SetETag(call, store::ConfigKind::kSubscription, id);
}

void HttpApi::UpdateSubscription(Call& call) {
  const std::string channel = Channel(call);
  if (channel.empty()) return;
  const std::string& id = call.params[1];
  if (auto s = engine_.GetSubscription(id); !s.ok() || s->channel != channel) {
    return Error(call.response, 404, "NOT_FOUND",
                 Cat("subscription ", id, " not found in ", channel));
  }
  uint64_t if_match = 0;
  if (!IfMatch(call, &if_match)) return;
  auto req = model::DecodeSubscription(call.request.body, call.params[0]);
  if (!req.ok()) return FromStatus(call.response, req.status());
  req->subscription.subscription_id = id;
  if (auto s = management_.UpdateSubscription(channel, req->subscription, if_match); !s.ok()) {
    return FromStatus(call.response, s);
  }
  Json(call.response, 200, SubscriptionIds(engine_, req->subscription));
}

void HttpApi::DeleteSubscription(Call& call) {
  const std::string channel = Channel(call);
  if (channel.empty()) return;
  const std::string& id = call.params[1];
  uint64_t if_match = 0;
  if (!IfMatch(call, &if_match)) return;
  if (auto s = management_.DeleteSubscription(channel, id, if_match); !s.ok()) {
    return FromStatus(call.response, s);
  }
  Json(call.response, 200, IdBody("subscriptionId", id));
}

void HttpApi::CreateProfile(Call& call) {
  auto req = model::DecodeProfile(call.request.body);
  if (!req.ok()) return FromStatus(call.response, req.status());
  if (auto s = management_.CreateProfile(req->profile, std::move(req->inline_security)); !s.ok()) {
    return FromStatus(call.response, s);
  }
  Json(call.response, 201, ProfileIds(req->profile.profile_id, req->profile.auth_id));
}

void HttpApi::ListProfiles(Call& call) {
  auto paging = ParsePaging(call.query);
  if (!paging.ok()) return FromStatus(call.response, paging.status());
  Json(call.response, 200,
       Page(engine_.ListProfiles(), *paging,
            [this](const NotificationProfile& p) { return EncodeProfile(p); }));
}

void HttpApi::GetProfile(Call& call) {
  auto p = engine_.GetProfile(call.params[0]);
  if (!p.ok()) return FromStatus(call.response, p.status());
  Json(call.response, 200, EncodeProfile(*p));
  SetETag(call, store::ConfigKind::kProfile, call.params[0]);
}

void HttpApi::UpdateProfile(Call& call) {
  const std::string& id = call.params[0];
  uint64_t if_match = 0;
  if (!IfMatch(call, &if_match)) return;
  auto req = model::DecodeProfile(call.request.body);
  if (!req.ok()) return FromStatus(call.response, req.status());
  req->profile.profile_id = id;
  if (auto s = management_.UpdateProfile(req->profile, if_match); !s.ok()) {
    return FromStatus(call.response, s);
  }
  Json(call.response, 200, ProfileIds(id, req->profile.auth_id));
}

void HttpApi::DeleteProfile(Call& call) {
  const std::string& id = call.params[0];
  uint64_t if_match = 0;
  if (!IfMatch(call, &if_match)) return;
  if (auto s = management_.DeleteProfile(id, if_match); !s.ok()) {
    return FromStatus(call.response, s);
  }
  Json(call.response, 200, IdBody("profileId", id));
}

void HttpApi::CreateSecurity(Call& call) {
  auto s = model::DecodeSecurity(call.request.body);
  if (!s.ok()) return FromStatus(call.response, s.status());
  if (auto st = management_.CreateSecurity(*s); !st.ok()) return FromStatus(call.response, st);
  Json(call.response, 201, IdBody("authId", s->auth_id));
}

void HttpApi::ListSecurity(Call& call) {
  auto paging = ParsePaging(call.query);
  if (!paging.ok()) return FromStatus(call.response, paging.status());
  Json(call.response, 200, Page(engine_.ListSecurity(), *paging, [](const SecuritySetting& s) {
         return model::EncodeSecurity(s);
       }));
}

void HttpApi::GetSecurity(Call& call) {
  auto s = engine_.GetSecurity(call.params[0]);
  if (!s.ok()) return FromStatus(call.response, s.status());
  Json(call.response, 200, model::EncodeSecurity(*s));
  SetETag(call, store::ConfigKind::kSecurity, call.params[0]);
}

void HttpApi::UpdateSecurity(Call& call) {
  const std::string& id = call.params[0];
  uint64_t if_match = 0;
  if (!IfMatch(call, &if_match)) return;
  auto s = model::DecodeSecurity(call.request.body);
  if (!s.ok()) return FromStatus(call.response, s.status());
  s->auth_id = id;
  if (auto st = management_.UpdateSecurity(*s, if_match); !st.ok()) {
    return FromStatus(call.response, st);
  }
  Json(call.response, 200, IdBody("authId", id));
}

void HttpApi::DeleteSecurity(Call& call) {
  const std::string& id = call.params[0];
  uint64_t if_match = 0;
  if (!IfMatch(call, &if_match)) return;
  if (auto st = management_.DeleteSecurity(id, if_match); !st.ok()) {
    return FromStatus(call.response, st);
  }
  Json(call.response, 200, IdBody("authId", id));
}

// Bulk import: NDJSON, one subscription per line, each carrying its "channel" and a reference to
// an existing profile. Good lines are created (and persisted with one write); bad lines are
// reported by number. Answers {"imported","failed","errors":[{"line","error"}]}.
void HttpApi::Import(Call& call) {
  struct Failure {
    size_t line;
    std::string error;
  };
  std::vector<Failure> failures;
  std::vector<Subscription> decoded;
  std::vector<size_t> decoded_lines;
  std::string_view body = call.request.body;
  simdjson::dom::parser parser;
  size_t line = 0;
  while (!body.empty()) {
    ++line;
    const size_t nl = body.find('\n');
    std::string_view text = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
    simdjson::dom::element root;
    if (auto e = parser.parse(text.data(), text.size()).get(root)) {
      failures.push_back({line, Cat("malformed JSON: ", simdjson::error_message(e))});
      continue;
    }
    auto req = model::DecodeSubscription(root);
    if (!req.ok()) {
      failures.push_back({line, std::string(ToStd(req.status().message()))});
      continue;
    }
    if (req->inline_profile || req->inline_security) {
      failures.push_back(
          {line, "import takes a profile reference ({\"profileId\"}); create profiles first"});
      continue;
    }
    decoded.push_back(std::move(req->subscription));
    decoded_lines.push_back(line);
  }
  std::vector<absl::Status> results;
  if (auto s = management_.Import(decoded, &results); !s.ok()) return FromStatus(call.response, s);
  size_t imported = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok()) {
      ++imported;
    } else {
      failures.push_back({decoded_lines[i], std::string(ToStd(results[i].message()))});
    }
  }
  std::stable_sort(failures.begin(), failures.end(),
                   [](const Failure& a, const Failure& b) { return a.line < b.line; });
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("imported", uint64_t{imported});
  w.Field("failed", uint64_t{failures.size()}).Key("errors").BeginArray();
  // Enough to act on, without an unbounded answer.
  for (size_t i = 0; i < failures.size() && i < 1000; ++i) {
    w.BeginObject().Field("line", uint64_t{failures[i].line});
    w.Field("error", failures[i].error).EndObject();
  }
  w.EndArray().EndObject();
  Json(call.response, 200, std::move(out));
}

ValidationErrors HttpApi::CheckWrite(NotificationProfile* profile,
                                     SecuritySetting* security) const {
  // Masked values sent back (a GET → PUT round trip) keep what is stored; reported with the
  // model's own errors, so a request learns all of them at once (a malformed URL is the
  // model's to report).
  ValidationErrors errors;
  auto merge = [&](const ValidationErrors& more) {
    for (auto& [field, messages] : more) {
      auto& all = errors[field];
      all.insert(all.end(), messages.begin(), messages.end());
    }
  };
  if (profile) {
    auto stored = engine_.GetProfile(profile->profile_id);
    merge(ValidationErrorsOf(
        model::RestoreMaskedHeaders(*profile, stored.ok() ? &*stored : nullptr)));
  }
  if (security) {
    auto stored = engine_.GetSecurity(security->auth_id);
    merge(ValidationErrorsOf(
        model::RestoreMaskedSecrets(*security, stored.ok() ? &*stored : nullptr)));
    if (security->type == SecurityType::kEd25519 && security->secret_key.empty()) {
      security->secret_key = model::NewEd25519Secret();
    }
  }
  if (profile) merge(Validate(*profile));
  if (security) merge(Validate(*security));
  // The SSRF guard, on addresses looked up before the request got here (DeferForLookups).
  if (lookups_ && profile && !errors.contains("webhook.notifyUrl")) {
    const absl::Status s = lookups_->Check(profile->webhook.notify_url);
    if (!s.ok()) errors["webhook.notifyUrl"].push_back(std::string(ToStd(s.message())));
  }
  if (lookups_ && security && security->type == SecurityType::kOAuth &&
      !errors.contains("credentials.tokenUrl")) {
    const absl::Status s = lookups_->Check(security->token_url);
    if (!s.ok()) errors["credentials.tokenUrl"].push_back(std::string(ToStd(s.message())));
  }
  return errors;
}

std::string HttpApi::EncodeProfile(const NotificationProfile& profile) const {
  std::string json = model::EncodeProfile(profile);
  if (deliverer_ && !json.empty() && json.back() == '}') {
    json.pop_back();
    json +=
        deliverer_->disabled(profile.profile_id) ? R"(,"disabled":true)" : R"(,"disabled":false)";
    if (profile.payload_format == "CLOUDEVENTS") {
      for (const ProfileDeliveryStats& s : deliverer_->stats()) {
        if (s.profile_id != profile.profile_id || s.validation.empty()) continue;
        std::string v;
        JsonWriter w(v);
        w.BeginObject();
        EncodeValidation(w, s);
        w.EndObject();
        json += "," + v.substr(1, v.size() - 2);
      }
    }
    json += "}";
  }
  return json;
}

}  // namespace herald::server
