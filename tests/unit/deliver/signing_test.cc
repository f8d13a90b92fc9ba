#include "engine/deliver/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gtest/gtest.h"

namespace herald::deliver {
namespace {

SecuritySetting Hmac(std::string secret, HmacAlgorithm algorithm) {
  SecuritySetting s;
  s.auth_id = "h";
  s.type = SecurityType::kHmac;
  s.secret_key = std::move(secret);
  s.algorithm = algorithm;
  return s;
}

// The example of the Standard Webhooks specification.
TEST(Signing, MatchesTheStandardWebhooksExample) {
  const auto s = Hmac("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", HmacAlgorithm::kSha256);
  EXPECT_EQ(
      WebhookSignature(s, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

// Other algorithms and raw (non-whsec_) secrets, against OpenSSL's one-shot HMAC.
TEST(Signing, OtherAlgorithmsSignTheSameContentWithTheirLabel) {
  struct Case {
    HmacAlgorithm algorithm;
    const EVP_MD* md;
    const char* label;
  } cases[] = {{HmacAlgorithm::kMd5, EVP_md5(), "hmac-md5"},
               {HmacAlgorithm::kSha1, EVP_sha1(), "hmac-sha1"},
               {HmacAlgorithm::kSha224, EVP_sha224(), "hmac-sha224"},
               {HmacAlgorithm::kSha256, EVP_sha256(), "v1"},
               {HmacAlgorithm::kSha384, EVP_sha384(), "hmac-sha384"},
               {HmacAlgorithm::kSha512, EVP_sha512(), "hmac-sha512"}};
  const std::string secret = "a raw secret, not base64";
  const std::string content = "evt-1.1700000000.{\"a\":1}";
  for (const auto& c : cases) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(c.md, secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
    const std::string expected =
        std::string(c.label) + "," + Base64(std::string(reinterpret_cast<char*>(mac), len));
    EXPECT_EQ(WebhookSignature(Hmac(secret, c.algorithm), "evt-1", 1700000000, R"({"a":1})"),
              expected)
        << c.label;
  }
}

TEST(Signing, BasicAndTokenForm) {
  EXPECT_EQ(BasicAuthorization("user", "pass"), "Basic dXNlcjpwYXNz");
  SecuritySetting s;
  s.type = SecurityType::kOAuth;
  s.token_url = "https://auth.example.com/token";
  s.client_id = "client 1";
  s.client_secret = "s&cret=";
  s.scope = "hooks:write";
  EXPECT_EQ(TokenRequestForm(s),
            "grant_type=client_credentials&client_id=client+1&client_secret=s%26cret%3D&"
            "scope=hooks%3Awrite");
  s.grant_type = "password";
  s.username = "u";
  s.password = "p";
  EXPECT_EQ(TokenRequestForm(s),
            "grant_type=password&client_id=client+1&client_secret=s%26cret%3D&scope=hooks%3Awrite&"
            "username=u&password=p");
}

}  // namespace
}  // namespace herald::deliver
