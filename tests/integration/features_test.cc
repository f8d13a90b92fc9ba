// Delivery features beyond the platform's basics, black-box on heraldd against real receivers:
// response checks (responseRegex, responseBodyRegex) and Ed25519 signatures (Standard Webhooks
// v1a), these verified by an independent implementation: Node's crypto.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "tests/testing/daemon.h"
#include "tests/testing/receiver.h"
#include "tests/testing/temp_dir.h"

namespace {

using herald::test_support::Daemon;
using herald::test_support::ReceivedRequest;
using herald::test_support::Receiver;
using Answer = herald::test_support::Reply;

template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// A 2xx counts as delivered only when the status line and the body match the profile's patterns
// (RE2, anywhere in the text); otherwise it is a failed attempt, retried, and in the end a dead
// letter that says which check refused it.
TEST(ResponseChecks, A2xxCountsOnlyWhenTheStatusLineAndTheBodyMatch) {
  Receiver receiver;
  std::atomic<int> strict_requests{0};
  receiver.set_handler([&](const ReceivedRequest& r) {
    if (r.target == "/strict") {
      // Refuses in its body twice, then accepts.
      return Answer{
          .status = 200,
          .body = ++strict_requests <= 2 ? R"({"accepted":false})" : R"({"accepted":true})"};
    }
    return Answer{.status = 200, .body = R"({"accepted":true})"};  // /created wants a 201
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  for (const auto& [id, path, status_re] :
       {std::tuple{"strict", "/strict", "^200 OK$"}, std::tuple{"created", "/created", "^201 "}}) {
    const std::string body =
        std::string(R"({"subscriptionId":")") + id + R"(","group":")" + id +
        R"(","events":["DELIVERY"],"profile":{"profileId":")" + id +
        R"(","maxBucketSize":1,"retry":{"delaysMs":[20],"maxAttempts":3},)" +
        R"("responseRegex":")" + status_re +
        R"(","responseBodyRegex":"\"accepted\":true","webhook":{"notifyUrl":")" +
        receiver.url(path) + R"("}}})";
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", body).status, 201) << body;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(d.Call("POST", "/v1/events",
                   R"({"channel":"SMS","event":"DELIVERY","eventId":"e-1","payload":{}})")
                .status,
            202);
  ASSERT_TRUE(Eventually([&] {
    return Has(d.Call("GET", "/metrics").body,
               R"(herald_webhook_delivered_total{profile="strict"} 1)") &&
           Has(d.Call("GET", "/v1/dead-letters?profileId=created").body, R"("totalResults":1)");
  })) << d.Call("GET", "/metrics").body;
  EXPECT_EQ(strict_requests.load(), 3);
  EXPECT_TRUE(Has(d.Call("GET", "/v1/dead-letters?profileId=strict").body, R"("totalResults":0)"));
  const std::string refused = d.Call("GET", "/v1/deliveries?profileId=strict&limit=3").body;
  EXPECT_TRUE(Has(refused, R"("outcome":"retrying")")) << refused;
  EXPECT_TRUE(Has(refused, R"(the body does not match responseBodyRegex \"accepted\":true)"))
      << refused;
  const std::string letter = d.Call("GET", "/v1/dead-letters?profileId=created").body;
  EXPECT_TRUE(Has(letter, R"("attempts":3)")) << letter;
  EXPECT_TRUE(Has(letter, "HTTP 200 OK: the status line does not match responseRegex ^201 "))
      << letter;
  EXPECT_EQ(d.Stop(), 0);
}

TEST(ResponseChecks, APatternRe2CannotCompileIsRefusedWhenWritten) {
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  const auto r = d.Call("POST", "/subscriptions/1/profiles",
                        R"({"profileId":"p","webhook":{"notifyUrl":"http://127.0.0.1:9/"},)"
                        R"("responseRegex":"(2","responseBodyRegex":"ok"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(Has(r.body, R"("responseRegex":["is not a valid RE2 pattern: missing ): (2"])"))
      << r.body;
  // The platform's own example patterns are taken.
  EXPECT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                   R"({"profileId":"p","webhook":{"notifyUrl":"http://127.0.0.1:9/"},)"
                   R"("responseRegex":"[1-9][0-9]","responseBodyRegex":"[1-9][0-9]"})")
                .status,
            201);
  EXPECT_EQ(d.Stop(), 0);
}

// The value of "field":"…" in `json` (the first), or "".
std::string Field(const std::string& json, const std::string& field) {
  const std::string key = "\"" + field + "\":\"";
  const size_t at = json.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  return json.substr(start, json.find('"', start) - start);
}

// Whether Node's crypto verifies `signature` ("v1a,<base64>") over "id.timestamp.body" with
// `public_key` ("whpk_<base64>").
bool NodeVerifies(const std::string& public_key, const ReceivedRequest& r) {
  herald::test_support::TempDir dir;
  const std::string message = dir.path() + "/message";
  std::ofstream(message) << r.header("webhook-id") << "." << r.header("webhook-timestamp") << "."
                         << r.body;
  const std::string script =
      "const c=require('crypto'),fs=require('fs');"
      "const raw=Buffer.from(process.argv[1].slice(5),'base64');"
      "const "
      "key=c.createPublicKey({key:Buffer.concat([Buffer.from('302a300506032b6570032100','hex'),raw]"
      "),"
      "format:'der',type:'spki'});"
      "const ok=process.argv[3].split(' ').some(s=>s.startsWith('v1a,')&&"
      "c.verify(null,fs.readFileSync(process.argv[2]),key,Buffer.from(s.slice(4),'base64')));"
      "process.exit(ok?0:1)";
  const std::string cmd = "node -e \"" + script + "\" '" + public_key + "' '" + message + "' '" +
                          r.header("webhook-signature") + "'";
  return std::system(cmd.c_str()) == 0;
}

TEST(Ed25519, SignaturesVerifyWithThePublicKeyAndTheSecretIsNeverShown) {
  Receiver receiver;
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  // Without a secretKey heraldd makes one; GET shows the public key only.
  ASSERT_EQ(
      d.Call("POST", "/subscriptions/1/security", R"({"authId":"ed","type":"ED25519"})").status,
      201);
  const std::string setting = d.Call("GET", "/subscriptions/1/security/ed").body;
  const std::string public_key = Field(setting, "publicKey");
  EXPECT_EQ(public_key.substr(0, 5), "whpk_") << setting;
  EXPECT_FALSE(Has(setting, "secretKey")) << setting;
  EXPECT_FALSE(Has(setting, "whsk_")) << setting;
  EXPECT_FALSE(Has(d.Call("GET", "/subscriptions/1/security").body, "whsk_"));
  // A given secret's public key is RFC 8032's (test 1).
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/security",
                   R"({"authId":"rfc","type":"ED25519","credentials":{"secretKey":)"
                   R"("whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="}})")
                .status,
            201);
  EXPECT_EQ(Field(d.Call("GET", "/subscriptions/1/security/rfc").body, "publicKey"),
            "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  const auto bad = d.Call("POST", "/subscriptions/1/security",
                          R"({"authId":"bad","type":"ED25519","credentials":{"secretKey":"abc"}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(Has(bad.body, R"("credentials.secretKey")")) << bad.body;

  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"p",)"
                   R"("maxBucketSize":1,"security":{"authId":"ed"},"webhook":{"notifyUrl":")" +
                       receiver.url() + R"("}}})")
                .status,
            201);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(d.Call("POST", "/v1/events",
                   R"({"channel":"SMS","event":"DELIVERY","eventId":"e-1","payload":{"n":1}})")
                .status,
            202);
  ASSERT_TRUE(receiver.WaitFor(1, std::chrono::seconds(10)));
  const auto first = receiver.requests()[0];
  EXPECT_EQ(first.header("webhook-signature").substr(0, 4), "v1a,");
  EXPECT_TRUE(NodeVerifies(public_key, first)) << first.header("webhook-signature");
  EXPECT_FALSE(NodeVerifies(Field(d.Call("GET", "/subscriptions/1/security/rfc").body, "publicKey"),
                            first));  // another key does not verify it

  // A GET → PUT round trip keeps the secret: the same public key still verifies.
  ASSERT_EQ(d.Call("PUT", "/subscriptions/1/security/ed", setting).status, 200);
  EXPECT_EQ(Field(d.Call("GET", "/subscriptions/1/security/ed").body, "publicKey"), public_key);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(d.Call("POST", "/v1/events",
                   R"({"channel":"SMS","event":"DELIVERY","eventId":"e-2","payload":{"n":2}})")
                .status,
            202);
  ASSERT_TRUE(receiver.WaitFor(2, std::chrono::seconds(10)));
  EXPECT_TRUE(NodeVerifies(public_key, receiver.requests()[1]));
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace
