// The OAuth token cache in simulated time, against a real token endpoint on loopback: one fetch
// shared by every request waiting for it (its failure too), kept until expires_in less a margin,
// replaced when refused or when the setting changes, and refused when it cannot be a header.
// clang-format off
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
// clang-format on
#include "engine/deliver/oauth_tokens.h"

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "engine/deliver/http_client.h"
#include "engine/deliver/resolver.h"
#include "gtest/gtest.h"
#include "tests/testing/receiver.h"
#include "tests/unit/deliver/fake_clock.h"

namespace herald::deliver {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test_support::ReceivedRequest;
using test_support::Receiver;
using test_support::Reply;

class OAuthTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto client = HttpClient::Create(io_, {.allow_private_targets = true, .resolver = &resolver_});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    tokens_.emplace(io_, *client_, clock_);
    security_.auth_id = "oauth-1";
    security_.type = SecurityType::kOAuth;
    security_.token_url = endpoint_.url("/token");
    security_.client_id = "herald";
    security_.client_secret = "s3cret";
    security_.scope = "webhooks";
    Answer(R"({"access_token":"t1","expires_in":60})");
  }

  // The endpoint answers `body` (HTTP `status`) from now on.
  void Answer(std::string body, int status = 200, std::chrono::milliseconds delay = 0ms) {
    endpoint_.set_handler([=](const ReceivedRequest&) {
      return Reply{.status = status,
                   .headers = {{"content-type", "application/json"}},
                   .body = body,
                   .delay = delay};
    });
  }

  // `n` concurrent Gets, run to completion; their results in order.
  std::vector<absl::StatusOr<std::string>> GetMany(int n, std::string stale = "") {
    std::vector<absl::StatusOr<std::string>> results(n, absl::UnknownError("not run"));
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(
          io_,
          [&, i]() -> asio::awaitable<void> {
            results[i] = co_await tokens_->Get(security_, stale);
          },
          asio::detached);
    }
    io_.restart();
    io_.run();
    return results;
  }
  absl::StatusOr<std::string> Get(std::string stale = "") { return GetMany(1, stale)[0]; }

  Receiver endpoint_;
  FakeClock clock_;
  asio::io_context io_;
  Resolver resolver_;
  std::unique_ptr<HttpClient> client_;
  std::optional<OAuthTokens> tokens_;
  SecuritySetting security_;
};

TEST_F(OAuthTokensTest, PostsTheClientCredentialsFormToTheTokenUrl) {
  ASSERT_EQ(Get().value_or("error"), "t1");
  const auto requests = endpoint_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/token");
  EXPECT_EQ(requests[0].header("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(requests[0].header("accept"), "application/json");
  EXPECT_EQ(requests[0].body,
            "grant_type=client_credentials&client_id=herald&client_secret=s3cret&scope=webhooks");
}

TEST_F(OAuthTokensTest, KeptUntilExpiresInLessAMargin) {
  ASSERT_EQ(Get().value_or("error"), "t1");
  Answer(R"({"access_token":"t2","expires_in":60})");
  // A 60 s token is refreshed 6 s early (a tenth of its life, at most 30 s).
  clock_.Advance(53s);
  EXPECT_EQ(Get().value_or("error"), "t1");
  EXPECT_EQ(endpoint_.count(), 1u);
  clock_.Advance(1s);
  EXPECT_EQ(Get().value_or("error"), "t2");
  EXPECT_EQ(endpoint_.count(), 2u);
}

TEST_F(OAuthTokensTest, ALongLivedTokenIsRefreshedThirtySecondsEarly) {
  Answer(R"({"access_token":"t1","expires_in":3600})");
  ASSERT_EQ(Get().value_or("error"), "t1");
  clock_.Advance(3569s);
  EXPECT_EQ(Get().value_or("error"), "t1");
  clock_.Advance(1s);
  Answer(R"({"access_token":"t2","expires_in":3600})");
  EXPECT_EQ(Get().value_or("error"), "t2");
}

TEST_F(OAuthTokensTest, WithoutExpiresInKeptUntilRefused) {
  Answer(R"({"access_token":"t1"})");
  ASSERT_EQ(Get().value_or("error"), "t1");
  clock_.Advance(24h * 365 * 5);
  EXPECT_EQ(Get().value_or("error"), "t1");
  EXPECT_EQ(endpoint_.count(), 1u);
}

TEST_F(OAuthTokensTest, AnExpiresInBeyondAYearIsCappedAtAYear) {
  Answer(R"({"access_token":"t1","expires_in":999999999999})");
  ASSERT_EQ(Get().value_or("error"), "t1");
  clock_.Advance(24h * 366);
  Answer(R"({"access_token":"t2"})");
  EXPECT_EQ(Get().value_or("error"), "t2");
}

TEST_F(OAuthTokensTest, ConcurrentRequestsShareOneFetch) {
  Answer(R"({"access_token":"t1","expires_in":60})", 200, 100ms);
  const auto results = GetMany(5);
  for (const auto& r : results) EXPECT_EQ(r.value_or("error"), "t1");
  EXPECT_EQ(endpoint_.count(), 1u);
}

TEST_F(OAuthTokensTest, WaitersShareAFailureRatherThanTryingAgainAtOnce) {
  Answer(R"({"error":"unavailable"})", 503, 100ms);
  const auto results = GetMany(4);
  for (const auto& r : results) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(r.status().message().find("answered HTTP 503"), std::string_view::npos) << r.status();
  }
  EXPECT_EQ(endpoint_.count(), 1u);
  // The next request tries again.
  Answer(R"({"access_token":"t1"})");
  EXPECT_EQ(Get().value_or("error"), "t1");
  EXPECT_EQ(endpoint_.count(), 2u);
}

TEST_F(OAuthTokensTest, ARefusedTokenIsReplacedOnce) {
  ASSERT_EQ(Get().value_or("error"), "t1");
  Answer(R"({"access_token":"t2","expires_in":60})");
  // Two requests refused with t1 share one new token.
  const auto results = GetMany(2, "t1");
  for (const auto& r : results) EXPECT_EQ(r.value_or("error"), "t2");
  EXPECT_EQ(endpoint_.count(), 2u);
  // A refusal of a token already replaced does not fetch again.
  EXPECT_EQ(Get("t1").value_or("error"), "t2");
  EXPECT_EQ(endpoint_.count(), 2u);
}

TEST_F(OAuthTokensTest, AChangedSettingFetchesANewToken) {
  ASSERT_EQ(Get().value_or("error"), "t1");
  Answer(R"({"access_token":"t2","expires_in":60})");
  security_.client_secret = "rotated";
  EXPECT_EQ(Get().value_or("error"), "t2");
  EXPECT_NE(endpoint_.requests().back().body.find("client_secret=rotated"), std::string::npos);
}

TEST_F(OAuthTokensTest, AnAnswerWithoutATokenIsAnError) {
  for (const char* body : {R"({"token_type":"bearer"})", R"({"access_token":""})", "not json"}) {
    Answer(body);
    const auto r = Get();
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_NE(r.status().message().find("without an access_token"), std::string_view::npos)
        << r.status();
  }
}

TEST_F(OAuthTokensTest, ATokenThatCannotBeAHeaderIsRefused) {
  Answer(R"({"access_token":"t1\r\nx-injected: 1"})");
  auto r = Get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot be sent in a header"), std::string_view::npos);
  Answer(R"({"access_token":")" + std::string(kMaxTokenBytes + 1, 'a') + R"("})");
  r = Get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot be sent in a header"), std::string_view::npos);
}

TEST_F(OAuthTokensTest, AnUnreachableEndpointIsUnavailable) {
  security_.token_url = "http://127.0.0.1:1/token";
  const auto r = Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("token request to"), std::string_view::npos) << r.status();
}

TEST_F(OAuthTokensTest, ABadTokenUrlIsAnErrorWithoutARequest) {
  security_.token_url = "not a url";
  EXPECT_FALSE(Get().ok());
  EXPECT_EQ(endpoint_.count(), 0u);
}

}  // namespace
}  // namespace herald::deliver
