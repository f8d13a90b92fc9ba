// Tests of management-plane validation (include/herald/subscription.h, DESIGN §2): every
// constraint of subscriptions, notification profiles and security settings, on both sides of each
// bound, with all problems of a request reported at once, keyed by the API's JSON field names.
// Also the ValidationErrors <-> absl::Status round trip and the enum name round trips.
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "herald/catalog.h"
#include "herald/status.h"
#include "herald/subscription.h"
#include "tests/testing/shipped_catalog.h"

namespace herald {
namespace {

std::string CatalogPath() { return herald::test_support::ShippedCatalogPath(); }

std::set<std::string> FieldsOf(const ValidationErrors& errors) {
  std::set<std::string> fields;
  for (const auto& [field, messages] : errors) fields.insert(field);
  return fields;
}

std::string Dump(const ValidationErrors& errors) {
  std::string out;
  for (const auto& [field, messages] : errors) {
    for (const auto& m : messages) out += "\n  " + field + ": " + m;
  }
  return out.empty() ? " (none)" : out;
}

template <typename T>
struct Case {
  const char* what;
  std::function<void(T&)> change;
  std::set<std::string> fields;  // fields with errors; empty = valid
};

// --- Subscriptions ---

class SubscriptionValidation : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(herald::test_support::ShippedCatalog(), nullptr)
        << "configs/catalog.json did not load";
  }
  static const Catalog& catalog() { return *herald::test_support::ShippedCatalog(); }

  static Subscription Valid() {
    Subscription s;
    s.subscription_id = "sub-1";
    s.channel = "SMS";
    s.events = {"DELIVERY"};
    s.profile_id = "profile_1";
    return s;
  }

 private:
};

TEST_F(SubscriptionValidation, EveryConstraint) {
  const std::string s255(255, 'x'), s256(256, 'x');
  const std::vector<std::string> many(256, "DELIVERY");
  using S = Subscription;
  // clang-format off
  const std::vector<Case<S>> cases = {
    {"valid", [](S&) {}, {}},
    // subscriptionId: 1..255 of [A-Za-z0-9_-]
    {"id empty", [](S& s) { s.subscription_id = ""; }, {"subscriptionId"}},
    {"id 1 char", [](S& s) { s.subscription_id = "a"; }, {}},
    {"id 255 chars", [&](S& s) { s.subscription_id = s255; }, {}},
    {"id 256 chars", [&](S& s) { s.subscription_id = s256; }, {"subscriptionId"}},
    {"id every allowed class", [](S& s) { s.subscription_id = "Az09_-"; }, {}},
    {"id with '/'", [](S& s) { s.subscription_id = "a/b"; }, {"subscriptionId"}},
    {"id with ' '", [](S& s) { s.subscription_id = "a b"; }, {"subscriptionId"}},
    {"id with '.'", [](S& s) { s.subscription_id = "a.b"; }, {"subscriptionId"}},
    {"id with non-ASCII", [](S& s) { s.subscription_id = "配達"; }, {"subscriptionId"}},
    // name: optional, 1..255 when present
    {"name absent", [](S& s) { s.name.reset(); }, {}},
    {"name 255", [&](S& s) { s.name = s255; }, {}},
    {"name 256", [&](S& s) { s.name = s256; }, {"name"}},
    {"name empty", [](S& s) { s.name = ""; }, {"name"}},
    // channel: a catalog channel or alias
    {"unknown channel", [](S& s) { s.channel = "SMX"; }, {"channel"}},
    {"lowercase channel", [](S& s) { s.channel = "sms"; }, {"channel"}},
    {"empty channel", [](S& s) { s.channel = ""; }, {"channel"}},
    {"alias channel", [](S& s) { s.channel = "KAKAO_BRAND_MESSAGE"; s.events = {"CLICK"}; }, {}},
    // events: 0..255 events of the channel
    {"no events = every event", [](S& s) { s.events.clear(); }, {}},
    {"event of another channel", [](S& s) { s.events = {"DELIVERY", "OPEN"}; }, {"events"}},
    {"lowercase event", [](S& s) { s.events = {"delivery"}; }, {"events"}},
    {"event not in the alias's channel",
     [](S& s) { s.channel = "KAKAO_BRAND_MESSAGE"; s.events = {"INBOUND_MESSAGE"}; }, {"events"}},
    {"255 events", [&](S& s) { s.events.assign(many.begin(), many.end() - 1); }, {}},
    {"256 events", [&](S& s) { s.events = many; }, {"events"}},
    // criteria: each pair needs a non-empty half; 0..255 pairs
    {"criterion with application only", [](S& s) { s.criteria = {{"app", {}}}; }, {}},
    {"criterion with entity only", [](S& s) { s.criteria = {{{}, "ent"}}; }, {}},
    {"criterion with both halves missing", [](S& s) { s.criteria = {{}}; }, {"criteria[0]"}},
    {"criterion with both halves empty", [](S& s) { s.criteria = {{"", ""}}; }, {"criteria[0]"}},
    {"second criterion empty",
     [](S& s) { s.criteria = {{"app", "ent"}, {"", {}}}; }, {"criteria[1]"}},
    {"criterion application 256",
     [&](S& s) { s.criteria = {{s256, "ent"}}; }, {"criteria[0].applicationId"}},
    {"criterion entity 255", [&](S& s) { s.criteria = {{"app", s255}}; }, {}},
    {"255 criteria", [](S& s) { s.criteria.assign(255, {"app", {}}); }, {}},
    {"256 criteria", [](S& s) { s.criteria.assign(256, {"app", {}}); }, {"criteria"}},
    // resources and users: 1..255 characters each, 0..255 items
    {"resource 255", [&](S& s) { s.resources = {"InfoSMS", s255}; }, {}},
    {"resource empty", [](S& s) { s.resources = {"InfoSMS", ""}; }, {"resources"}},
    {"resource 256", [&](S& s) { s.resources = {s256}; }, {"resources"}},
    {"256 resources", [](S& s) { s.resources.assign(256, "r"); }, {"resources"}},
    {"user 255", [&](S& s) { s.users = {s255}; }, {}},
    {"user empty", [](S& s) { s.users = {""}; }, {"users"}},
    {"user 256", [&](S& s) { s.users = {"jdoe", s256}; }, {"users"}},
    {"256 users", [](S& s) { s.users.assign(256, "u"); }, {"users"}},
    // group: 0..255
    {"group empty (default)", [](S& s) { s.group = ""; }, {}},
    {"group 255", [&](S& s) { s.group = s255; }, {}},
    {"group 256", [&](S& s) { s.group = s256; }, {"group"}},
    // profile: a valid id
    {"profile id empty", [](S& s) { s.profile_id = ""; }, {"profile.profileId"}},
    {"profile id with space", [](S& s) { s.profile_id = "my profile"; }, {"profile.profileId"}},
    {"profile id 256", [&](S& s) { s.profile_id = s256; }, {"profile.profileId"}},
  };
  // clang-format on
  for (const auto& c : cases) {
    S s = Valid();
    c.change(s);
    const ValidationErrors errors = Validate(s, catalog());
    EXPECT_EQ(FieldsOf(errors), c.fields) << c.what << Dump(errors);
  }
}

TEST_F(SubscriptionValidation, UnknownEventMessageNamesEventAndChannel) {
  Subscription s = Valid();
  s.events = {"OPEN", "DELIVERY", "SEEN"};
  const ValidationErrors errors = Validate(s, catalog());
  ASSERT_EQ(FieldsOf(errors), std::set<std::string>{"events"}) << Dump(errors);
  const auto& messages = errors.at("events");
  ASSERT_EQ(messages.size(), 2u) << "one message per unknown event" << Dump(errors);
  EXPECT_NE(messages[0].find("\"OPEN\""), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find("SMS"), std::string::npos) << messages[0];
  EXPECT_NE(messages[1].find("\"SEEN\""), std::string::npos) << messages[1];
}

TEST_F(SubscriptionValidation, ReportsEveryProblemAtOnce) {
  Subscription s = Valid();
  s.subscription_id = "";
  s.events = {"OPEN"};
  s.group = std::string(256, 'g');
  const ValidationErrors errors = Validate(s, catalog());
  EXPECT_EQ(FieldsOf(errors), (std::set<std::string>{"subscriptionId", "events", "group"}))
      << Dump(errors);

  Subscription worse;  // everything empty and wrong at once
  worse.channel = "NOPE";
  worse.criteria = {Criterion{}};
  worse.users = {""};
  EXPECT_EQ(FieldsOf(Validate(worse, catalog())),
            (std::set<std::string>{"subscriptionId", "channel", "criteria[0]", "users",
                                   "profile.profileId"}));
}

// --- Notification profiles ---

NotificationProfile ValidProfile() {
  NotificationProfile p;
  p.profile_id = "profile_1";
  p.webhook.notify_url = "https://hooks.example.com/herald";
  return p;
}

TEST(ProfileValidation, DefaultsAreValid) {
  EXPECT_EQ(FieldsOf(Validate(ValidProfile())), std::set<std::string>{})
      << Dump(Validate(ValidProfile()));
}

TEST(ProfileValidation, NotifyUrl) {
  const std::string url512 = "https://h.example/" + std::string(512 - 18, 'p');
  ASSERT_EQ(url512.size(), 512u);
  const struct {
    std::string url;
    bool valid;
  } cases[] = {
      {"https://hooks.example.com/herald", true},
      {"http://localhost/x", true},
      {"https://host:8443/p?q=1", true},
      {"http://[::1]:8080/x", true},
      {"http://[::1]/x", true},
      {"HTTPS://HOST.EXAMPLE/", true},
      {"http://host:1", true},
      {"http://host:65535/", true},
      {url512, true},
      {url512 + "p", false},
      {"", false},
      {"ftp://host/file", false},
      {"hooks.example.com/herald", false},
      {"//host/x", false},
      {"http://", false},
      {"https:///path", false},
      {"http://:8080/x", false},
      {"http://host:99999", false},
      {"http://host:0/", false},
      {"http://host:/", false},
      {"http://host:-1/", false},
      {"http://host:80a/", false},
      {"http://user:secret@host/", false},
      {"http://ho st/", false},
      {"http://host/a b", false},
      {"http://host/\r\nX-Injected: 1", false},
      {"http://[::1/x", false},
      {"http://[::1]x/", false},
  };
  for (const auto& c : cases) {
    NotificationProfile p = ValidProfile();
    p.webhook.notify_url = c.url;
    const ValidationErrors errors = Validate(p);
    EXPECT_EQ(FieldsOf(errors),
              c.valid ? std::set<std::string>{} : std::set<std::string>{"webhook.notifyUrl"})
        << "\"" << c.url << "\"" << Dump(errors);
  }
}

TEST(ProfileValidation, EveryOtherConstraint) {
  using P = NotificationProfile;
  const std::string s255(255, 'x'), s256(256, 'x');
  // clang-format off
  const std::vector<Case<P>> cases = {
    {"profileId empty", [](P& p) { p.profile_id = ""; }, {"profileId"}},
    {"profileId with '/'", [](P& p) { p.profile_id = "a/b"; }, {"profileId"}},
    {"profileId 255", [&](P& p) { p.profile_id = s255; }, {}},
    {"profileId 256", [&](P& p) { p.profile_id = s256; }, {"profileId"}},
    {"contentType 255", [&](P& p) { p.webhook.content_type = s255; }, {}},
    {"contentType 256", [&](P& p) { p.webhook.content_type = s256; }, {"webhook.contentType"}},
    // headers: token names, values without CR/LF/NUL
    {"good header", [](P& p) { p.headers = {{"X-Api-Key", "k 1; a=b"}}; }, {}},
    {"header name with space", [](P& p) { p.headers = {{"X Api", "v"}}; }, {"headers"}},
    {"header name empty", [](P& p) { p.headers = {{"", "v"}}; }, {"headers"}},
    {"header name with colon", [](P& p) { p.headers = {{"X-A:", "v"}}; }, {"headers"}},
    {"header name 256", [&](P& p) { p.headers = {{s256, "v"}}; }, {"headers"}},
    {"header value with CR LF", [](P& p) { p.headers = {{"X-A", "v\r\nX-Injected: 1"}}; },
     {"headers"}},
    {"header value with LF", [](P& p) { p.headers = {{"X-A", "v\nw"}}; }, {"headers"}},
    {"header value with CR", [](P& p) { p.headers = {{"X-A", "v\rw"}}; }, {"headers"}},
    {"header value 4096", [](P& p) { p.headers = {{"X-A", std::string(4096, 'v')}}; }, {}},
    {"header value 4097", [](P& p) { p.headers = {{"X-A", std::string(4097, 'v')}}; },
     {"headers"}},
    {"headers over 4608 bytes in all",
     [](P& p) { p.headers = {{"X-A", std::string(3000, 'v')}, {"X-B", std::string(2000, 'v')}}; },
     {"headers"}},
    {"header value with NUL", [](P& p) { p.headers = {{"X-A", std::string("v\0w", 3)}}; },
     {"headers"}},
    {"header value with tab", [](P& p) { p.headers = {{"X-A", "v\tw"}}; }, {}},
    // reserved: framing, hop-by-hop, the body's type and herald's own names
    {"header Host", [](P& p) { p.headers = {{"Host", "evil.example"}}; }, {"headers"}},
    {"header content-length", [](P& p) { p.headers = {{"content-length", "0"}}; }, {"headers"}},
    {"header Transfer-Encoding", [](P& p) { p.headers = {{"Transfer-Encoding", "chunked"}}; },
     {"headers"}},
    {"header Connection", [](P& p) { p.headers = {{"Connection", "close"}}; }, {"headers"}},
    {"header Content-Type", [](P& p) { p.headers = {{"Content-Type", "text/plain"}}; },
     {"headers"}},
    {"header Webhook-Id", [](P& p) { p.headers = {{"Webhook-Id", "x"}}; }, {"headers"}},
    {"header X-Herald-Event", [](P& p) { p.headers = {{"X-Herald-Event", "x"}}; }, {"headers"}},
    {"header X-Heraldic", [](P& p) { p.headers = {{"X-Heraldic", "x"}}; }, {}},
    {"contentType with CR LF",
     [](P& p) { p.webhook.content_type = "application/json\r\nX-Injected: 1"; },
     {"webhook.contentType"}},
    {"contentType with LF", [](P& p) { p.webhook.content_type = "a\nb"; }, {"webhook.contentType"}},
    // security: optional, a valid id when present
    {"authId absent", [](P& p) { p.auth_id = ""; }, {}},
    {"authId valid", [](P& p) { p.auth_id = "auth-1"; }, {}},
    {"authId invalid", [](P& p) { p.auth_id = "auth 1"; }, {"security.authId"}},
    // numeric ranges, both sides of each bound
    {"maxBucketSize 0", [](P& p) { p.max_bucket_size = 0; }, {"maxBucketSize"}},
    {"maxBucketSize 1", [](P& p) { p.max_bucket_size = 1; }, {}},
    {"maxBucketSize 2000", [](P& p) { p.max_bucket_size = 2000; }, {}},
    {"maxBucketSize 2001", [](P& p) { p.max_bucket_size = 2001; }, {"maxBucketSize"}},
    {"windowSize 19", [](P& p) { p.window_size = 19; }, {"windowSize"}},
    {"windowSize 20", [](P& p) { p.window_size = 20; }, {}},
    {"windowSize 10000", [](P& p) { p.window_size = 10000; }, {}},
    {"windowSize 10001", [](P& p) { p.window_size = 10001; }, {"windowSize"}},
    {"connectTimeout 299", [](P& p) { p.connect_timeout_ms = 299; }, {"connectTimeout"}},
    {"connectTimeout 300", [](P& p) { p.connect_timeout_ms = 300; }, {}},
    {"connectTimeout 30000", [](P& p) { p.connect_timeout_ms = 30000; }, {}},
    {"connectTimeout 30001", [](P& p) { p.connect_timeout_ms = 30001; }, {"connectTimeout"}},
    {"readTimeout 999", [](P& p) { p.read_timeout_ms = 999; }, {"readTimeout"}},
    {"readTimeout 1000", [](P& p) { p.read_timeout_ms = 1000; }, {}},
    {"readTimeout 90000", [](P& p) { p.read_timeout_ms = 90000; }, {}},
    {"readTimeout 90001", [](P& p) { p.read_timeout_ms = 90001; }, {"readTimeout"}},
    {"rateLimit absent", [](P& p) { p.rate_limit.reset(); }, {}},
    {"rateLimit 0", [](P& p) { p.rate_limit = 0; }, {"rateLimit"}},
    {"rateLimit 1", [](P& p) { p.rate_limit = 1; }, {}},
    {"rateLimit 5000", [](P& p) { p.rate_limit = 5000; }, {}},
    {"rateLimit 5001", [](P& p) { p.rate_limit = 5001; }, {"rateLimit"}},
    // retry: 1..100 delays of 0..1 week, 1..100 attempts
    {"retry valid", [](P& p) { p.retry = RetryPolicy{{0, 100, 1000}, 5}; }, {}},
    {"retry without delays", [](P& p) { p.retry = RetryPolicy{{}, 5}; }, {"retry.delaysMs"}},
    {"retry negative delay", [](P& p) { p.retry = RetryPolicy{{10, -1}, 5}; }, {"retry.delaysMs"}},
    {"retry delay of a week", [](P& p) { p.retry = RetryPolicy{{604800000}, 5}; }, {}},
    {"retry delay over a week", [](P& p) { p.retry = RetryPolicy{{604800001}, 5}; },
     {"retry.delaysMs"}},
    {"retry 100 delays", [](P& p) { p.retry = RetryPolicy{std::vector<int64_t>(100, 1), 5}; }, {}},
    {"retry 101 delays", [](P& p) { p.retry = RetryPolicy{std::vector<int64_t>(101, 1), 5}; },
     {"retry.delaysMs"}},
    {"retry maxAttempts 0", [](P& p) { p.retry = RetryPolicy{{10}, 0}; }, {"retry.maxAttempts"}},
    {"retry maxAttempts 1", [](P& p) { p.retry = RetryPolicy{{10}, 1}; }, {}},
    {"retry maxAttempts 100", [](P& p) { p.retry = RetryPolicy{{10}, 100}; }, {}},
    {"retry maxAttempts 101", [](P& p) { p.retry = RetryPolicy{{10}, 101}; },
     {"retry.maxAttempts"}},
    // stored for later (mTLS), still bounded
    {"clientCertificateId 256", [&](P& p) { p.client_certificate_id = s256; },
     {"clientCertificateId"}},
    {"TLS protocols valid", [](P& p) { p.enabled_ssl_protocols = {"TLSv1.2", "TLSv1.3"}; }, {}},
    {"TLS protocol unknown", [](P& p) { p.enabled_ssl_protocols = {"SSLv3"}; },
     {"enabledSSLProtocols"}},
    {"TLS protocol duplicate", [](P& p) { p.enabled_ssl_protocols = {"TLSv1.3", "TLSv1.3"}; },
     {"enabledSSLProtocols"}},
  };
  // clang-format on
  for (const auto& c : cases) {
    NotificationProfile p = ValidProfile();
    c.change(p);
    const ValidationErrors errors = Validate(p);
    EXPECT_EQ(FieldsOf(errors), c.fields) << c.what << Dump(errors);
  }
}

TEST(ProfileValidation, ReportsEveryProblemAtOnce) {
  NotificationProfile p = ValidProfile();
  p.webhook.notify_url = "ftp://host/x";
  p.max_bucket_size = 0;
  p.read_timeout_ms = 90001;
  EXPECT_EQ(FieldsOf(Validate(p)),
            (std::set<std::string>{"webhook.notifyUrl", "maxBucketSize", "readTimeout"}))
      << Dump(Validate(p));
}

// --- Security settings ---

SecuritySetting Security(SecurityType type) {
  SecuritySetting s;
  s.auth_id = "auth-1";
  s.type = type;
  return s;
}

TEST(SecurityValidation, EveryTypeNeedsItsCredentials) {
  using S = SecuritySetting;
  constexpr auto kBasic = SecurityType::kBasic;
  constexpr auto kHmac = SecurityType::kHmac;
  constexpr auto kOAuth = SecurityType::kOAuth;
  const std::string token_url = "https://auth.example.com/oauth/token";
  // clang-format off
  const std::vector<Case<S>> cases = {
    {"BASIC complete",
     [](S& s) { s.type = kBasic; s.username = "user"; s.password = "pass"; }, {}},
    {"BASIC without password", [](S& s) { s.type = kBasic; s.username = "user"; },
     {"credentials.password"}},
    {"BASIC without username", [](S& s) { s.type = kBasic; s.password = "pass"; },
     {"credentials.username"}},
    {"BASIC without both", [](S& s) { s.type = kBasic; },
     {"credentials.username", "credentials.password"}},
    {"BASIC username 256",
     [](S& s) { s.type = kBasic; s.username = std::string(256, 'u'); s.password = "pass"; },
     {"credentials.username"}},
    {"HMAC complete",
     [](S& s) { s.type = kHmac; s.secret_key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; }, {}},
    {"HMAC without secret", [](S& s) { s.type = kHmac; }, {"credentials.secretKey"}},
    {"OAUTH complete",
     [&](S& s) { s.type = kOAuth; s.token_url = token_url; s.grant_type = "client_credentials"; },
     {}},
    {"OAUTH without tokenUrl", [](S& s) { s.type = kOAuth; s.grant_type = "client_credentials"; },
     {"credentials.tokenUrl"}},
    {"OAUTH tokenUrl not http(s)",
     [](S& s) { s.type = kOAuth; s.token_url = "ftp://auth.example.com/t"; s.grant_type = "g"; },
     {"credentials.tokenUrl"}},
    {"OAUTH tokenUrl without host",
     [](S& s) { s.type = kOAuth; s.token_url = "https:///token"; s.grant_type = "g"; },
     {"credentials.tokenUrl"}},
    {"OAUTH without grantType", [&](S& s) { s.type = kOAuth; s.token_url = token_url; },
     {"credentials.grantType"}},
    {"OAUTH optional field 256",
     [&](S& s) {
       s.type = kOAuth; s.token_url = token_url; s.grant_type = "g";
       s.client_secret = std::string(256, 's');
     },
     {"credentials.clientSecret"}},
    {"OAUTH bad header",
     [&](S& s) {
       s.type = kOAuth; s.token_url = token_url; s.grant_type = "g";
       s.headers = {{"X-A", "a\r\nb"}};
     },
     {"credentials.headers"}},
    {"CUSTOM needs nothing", [](S& s) { s.type = SecurityType::kCustom; }, {}},
    {"authId empty", [](S& s) { s.auth_id = ""; }, {"authId"}},
    {"authId with '.'", [](S& s) { s.auth_id = "a.b"; }, {"authId"}},
  };
  // clang-format on
  for (const auto& c : cases) {
    SecuritySetting s = Security(SecurityType::kCustom);
    c.change(s);
    const ValidationErrors errors = Validate(s);
    EXPECT_EQ(FieldsOf(errors), c.fields) << c.what << Dump(errors);
  }
}

TEST(SecurityValidation, ReportsEveryProblemAtOnce) {
  SecuritySetting s = Security(SecurityType::kOAuth);
  s.auth_id = "bad id";
  EXPECT_EQ(FieldsOf(Validate(s)),
            (std::set<std::string>{"authId", "credentials.tokenUrl", "credentials.grantType"}))
      << Dump(Validate(s));
}

// --- Status round trip and names ---

TEST(ValidationErrorStatus, RoundTripsTheFieldErrors) {
  const ValidationErrors errors = {
      {"events", {"event \"OPEN\" does not exist for channel SMS", "at most 255 events"}},
      {"webhook.notifyUrl", {"must not be empty"}},
      {"criteria[0]", {"applicationId and entityId must not both be empty"}},
  };
  const absl::Status status = ValidationError(errors);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  EXPECT_NE(message.find("events: event \"OPEN\" does not exist for channel SMS"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("webhook.notifyUrl: must not be empty"), std::string::npos) << message;
  EXPECT_NE(message.find("criteria[0]: "), std::string::npos) << message;
  EXPECT_EQ(ValidationErrorsOf(status), errors);
}

TEST(ValidationErrorStatus, OtherStatusesCarryNoFieldErrors) {
  EXPECT_TRUE(ValidationErrorsOf(absl::OkStatus()).empty());
  EXPECT_TRUE(ValidationErrorsOf(absl::InvalidArgumentError("events: bad")).empty());
  EXPECT_TRUE(ValidationErrorsOf(absl::NotFoundError("no such subscription")).empty());
}

// Messages quote what the user sent (a channel, a header name), which may hold any character;
// the field errors must come back exactly as they were, never split into invented fields.
TEST(ValidationErrorStatus, RoundTripsMessagesQuotingArbitraryInput) {
  const ValidationErrors direct = {{"channel", {"unknown channel \"a\tb\nevents\tforged\""}},
                                   {"empty", {""}}};
  EXPECT_EQ(ValidationErrorsOf(ValidationError(direct)), direct);

  auto catalog = Catalog::Load(CatalogPath());
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  Subscription s;
  s.subscription_id = "sub-1";
  s.profile_id = "p";
  s.channel = "SMX\nevents\tforged";
  const ValidationErrors errors = Validate(s, **catalog);
  ASSERT_EQ(FieldsOf(errors), std::set<std::string>{"channel"}) << Dump(errors);
  EXPECT_EQ(ValidationErrorsOf(ValidationError(errors)), errors);
}

TEST(Names, SecurityTypesRoundTrip) {
  const std::pair<SecurityType, std::string_view> names[] = {{SecurityType::kBasic, "BASIC"},
                                                             {SecurityType::kHmac, "HMAC"},
                                                             {SecurityType::kOAuth, "OAUTH"},
                                                             {SecurityType::kCustom, "CUSTOM"}};
  for (const auto& [type, name] : names) {
    EXPECT_EQ(SecurityTypeName(type), name);
    EXPECT_EQ(ParseSecurityType(name), type) << name;
  }
  for (std::string_view bad : {"", "basic", "OAuth", "OAUTH2", "HMAC_SHA_256", "BASIC "}) {
    EXPECT_EQ(ParseSecurityType(bad), std::nullopt) << "\"" << bad << "\"";
  }
}

TEST(Names, HmacAlgorithmsRoundTrip) {
  const std::pair<HmacAlgorithm, std::string_view> names[] = {
      {HmacAlgorithm::kMd5, "HMAC_MD5"},        {HmacAlgorithm::kSha1, "HMAC_SHA_1"},
      {HmacAlgorithm::kSha224, "HMAC_SHA_224"}, {HmacAlgorithm::kSha256, "HMAC_SHA_256"},
      {HmacAlgorithm::kSha384, "HMAC_SHA_384"}, {HmacAlgorithm::kSha512, "HMAC_SHA_512"}};
  for (const auto& [algorithm, name] : names) {
    EXPECT_EQ(HmacAlgorithmName(algorithm), name);
    EXPECT_EQ(ParseHmacAlgorithm(name), algorithm) << name;
  }
  for (std::string_view bad : {"", "HMAC_SHA256", "hmac_sha_256", "SHA_256", "HMAC_SHA_3"}) {
    EXPECT_EQ(ParseHmacAlgorithm(bad), std::nullopt) << "\"" << bad << "\"";
  }
}

TEST(Names, IsValidId) {
  for (std::string_view id : {"a", "Z", "0", "_", "-", "sub_1-A", "0123456789"}) {
    EXPECT_TRUE(IsValidId(id)) << id;
  }
  EXPECT_TRUE(IsValidId(std::string(255, 'a')));
  for (std::string_view id : {"", "a b", "a/b", "a.b", "a+b", "a%20", "é", "a\n"}) {
    EXPECT_FALSE(IsValidId(id)) << "\"" << id << "\"";
  }
  EXPECT_FALSE(IsValidId(std::string(256, 'a')));
}

}  // namespace
}  // namespace herald
