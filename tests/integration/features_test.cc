// Delivery features beyond the platform's basics, black-box on heraldd against real receivers:
// response checks (responseRegex, responseBodyRegex), Ed25519 signatures (Standard Webhooks
// v1a, verified by an independent implementation: Node's crypto), secret rotation, CloudEvents
// output with endpoint validation, and per-key ordering.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/daemon.h"
#include "tests/testing/eventually.h"
#include "tests/testing/receiver.h"
#include "tests/testing/temp_dir.h"

namespace {

using herald::test_support::Daemon;
using herald::test_support::Eventually;
using herald::test_support::ReceivedRequest;
using herald::test_support::Receiver;
using Answer = herald::test_support::Reply;

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

// Whether the reference standardwebhooks package verifies the request with `secret`.
bool ReferenceVerifies(const std::string& secret, const ReceivedRequest& r) {
  herald::test_support::TempDir dir;
  const std::string dump = dir.path() + "/requests.ndjson";
  auto quoted = [](const std::string& v) {
    std::string out = "\"";
    for (const char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  };
  std::ofstream(dump) << "{\"secret\":" << quoted(secret)
                      << ",\"raw\":false,\"id\":" << quoted(r.header("webhook-id"))
                      << ",\"timestamp\":" << quoted(r.header("webhook-timestamp"))
                      << ",\"signature\":" << quoted(r.header("webhook-signature"))
                      << ",\"body\":" << quoted(r.body) << "}\n";
  const char* root = std::getenv("HERALD_SOURCE_DIR");
  const std::string source = root ? root : ".";
  const std::string cmd = "NODE_PATH=" + source + "/build/npm/node_modules node " + source +
                          "/tests/integration/verify_signatures.mjs " + dump + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Rotation: while previous keys are kept, each request carries a signature per key, so a
// receiver verifies with the old key or the new one; once they expire, the new key alone signs.
TEST(SecretRotation, EveryKeySignsUntilThePreviousKeysExpire) {
  Receiver receiver;
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  const std::string old_key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const std::string new_key = "whsec_dGhlIG5ldyBrZXkgb2YgdGhlIHNlY3JldA==";
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/security",
                   R"({"authId":"rot","type":"HMAC","credentials":{"algorithm":"HMAC_SHA_256",)"
                   R"("secretKey":")" +
                       new_key + R"(","previousSecretKeys":[")" + old_key + R"("]}})")
                .status,
            201);
  const std::string setting = d.Call("GET", "/subscriptions/1/security/rot").body;
  EXPECT_TRUE(Has(setting, R"("previousSecretKeys":["********"])")) << setting;
  EXPECT_FALSE(Has(setting, old_key)) << setting;
  ASSERT_EQ(d.Call("PUT", "/subscriptions/1/security/rot", setting).status, 200);  // kept
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"p",)"
                   R"("maxBucketSize":1,"security":{"authId":"rot"},"webhook":{"notifyUrl":")" +
                       receiver.url() + R"("}}})")
                .status,
            201);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const std::string event = R"({"channel":"SMS","event":"DELIVERY","payload":{"n":1}})";
  ASSERT_EQ(d.Call("POST", "/v1/events", event).status, 202);
  ASSERT_TRUE(receiver.WaitFor(1, std::chrono::seconds(10)));
  const auto both = receiver.requests()[0];
  const std::string signatures = both.header("webhook-signature");
  ASSERT_NE(signatures.find("v1,"), std::string::npos);
  EXPECT_NE(signatures.find(" v1,"), std::string::npos) << "two signatures: " << signatures;
  EXPECT_TRUE(ReferenceVerifies(new_key, both)) << signatures;
  EXPECT_TRUE(ReferenceVerifies(old_key, both)) << signatures;
  EXPECT_FALSE(ReferenceVerifies("whsec_c29tZW9uZSBlbHNlcyBrZXk=", both));

  // Expired previous keys sign no more.
  ASSERT_EQ(d.Call("PUT", "/subscriptions/1/security/rot",
                   R"({"type":"HMAC","credentials":{"algorithm":"HMAC_SHA_256","secretKey":")" +
                       new_key + R"(","previousSecretKeys":[")" + old_key +
                       R"("],"previousSecretKeysExpireAt":1000}})")
                .status,
            200);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(d.Call("POST", "/v1/events", event).status, 202);
  ASSERT_TRUE(receiver.WaitFor(2, std::chrono::seconds(10)));
  const auto one = receiver.requests()[1];
  EXPECT_EQ(one.header("webhook-signature").find(' '), std::string::npos)
      << one.header("webhook-signature");
  EXPECT_TRUE(ReferenceVerifies(new_key, one));
  EXPECT_FALSE(ReferenceVerifies(old_key, one));

  // ED25519 rotates the same way: a v1a signature per key.
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/security",
                   R"({"authId":"ed","type":"ED25519","credentials":{"previousSecretKeys":)"
                   R"(["whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="]}})")
                .status,
            201);
  const std::string ed = d.Call("GET", "/subscriptions/1/security/ed").body;
  EXPECT_TRUE(
      Has(ed, R"("previousPublicKeys":["whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="])"))
      << ed;
  ASSERT_EQ(d.Call("PUT", "/subscriptions/1/profiles/p",
                   R"({"maxBucketSize":1,"security":{"authId":"ed"},"webhook":{"notifyUrl":")" +
                       receiver.url() + R"("}})")
                .status,
            200);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(d.Call("POST", "/v1/events", event).status, 202);
  ASSERT_TRUE(receiver.WaitFor(3, std::chrono::seconds(10)));
  const auto signed_twice = receiver.requests()[2];
  EXPECT_NE(signed_twice.header("webhook-signature").find(" v1a,"), std::string::npos);
  EXPECT_TRUE(NodeVerifies(Field(ed, "publicKey"), signed_twice));
  EXPECT_TRUE(NodeVerifies("whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", signed_twice));
  EXPECT_EQ(d.Stop(), 0);
}

// CloudEvents endpoint validation: a receiver that allows the origin that asks.
Answer AllowOrigin(const ReceivedRequest& r) {
  return Answer{.status = 200,
                .headers = {{"WebHook-Allowed-Origin", r.header("webhook-request-origin")}}};
}

std::vector<ReceivedRequest> Posts(const Receiver& receiver) {
  std::vector<ReceivedRequest> out;
  for (auto& r : receiver.requests()) {
    if (r.method == "POST") out.push_back(std::move(r));
  }
  return out;
}

// payloadFormat CLOUDEVENTS: a lone notification is one structured-mode event whose id is the
// webhook-id; a batch is a CloudEvents batch, each event with its own id.
TEST(CloudEvents, NotificationsGoAsEventsAndBatchesAsBatches) {
  Receiver receiver;
  std::atomic<bool> first{true};
  receiver.set_handler([&](const ReceivedRequest& r) {
    if (r.method == "OPTIONS") return AllowOrigin(r);
    // The first is answered slowly, so that the next ones gather into one batch.
    return Answer{.status = 200,
                  .delay = std::chrono::milliseconds(first.exchange(false) ? 1000 : 0)};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(
      d.Call("POST", "/subscriptions/1/subscription/SMS",
             R"({"subscriptionId":"ce-sub","events":["DELIVERY"],"profile":{"profileId":"ce",)"
             R"("payloadFormat":"CLOUDEVENTS","webhook":{"notifyUrl":")" +
                 receiver.url() + R"("}}})")
          .status,
      201);
  EXPECT_TRUE(
      Has(d.Call("GET", "/subscriptions/1/profiles/ce").body, R"("payloadFormat":"CLOUDEVENTS")"));
  EXPECT_EQ(
      d.Call(
           "POST", "/subscriptions/1/profiles",
           R"({"profileId":"x","payloadFormat":"XML","webhook":{"notifyUrl":"http://127.0.0.1:9/"}})")
          .status,
      400);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto send = [&](const std::string& id, int n) {
    return d
        .Call("POST", "/v1/events",
              R"({"channel":"SMS","event":"DELIVERY","eventId":")" + id + R"(","payload":{"n":)" +
                  std::to_string(n) + "}}")
        .status;
  };
  ASSERT_EQ(send("ce-1", 1), 202);
  ASSERT_TRUE(Eventually([&] { return receiver.in_progress() == 1; }));  // the rest wait for it
  for (int i = 2; i <= 4; ++i) ASSERT_EQ(send("ce-" + std::to_string(i), i), 202);
  ASSERT_TRUE(receiver.WaitFor(3, std::chrono::seconds(10)));  // the validation, then two
  const auto single = Posts(receiver)[0];
  EXPECT_EQ(single.header("content-type"), "application/cloudevents+json");
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  ASSERT_EQ(parser.parse(single.body).get(e), simdjson::SUCCESS) << single.body;
  EXPECT_EQ(std::string_view(e["specversion"]), "1.0");
  EXPECT_EQ(std::string_view(e["id"]), "ce-1");
  EXPECT_EQ(std::string_view(e["id"]), single.header("webhook-id"));
  EXPECT_EQ(std::string_view(e["type"]), "SMS.DELIVERY");
  EXPECT_EQ(std::string_view(e["source"]), "/herald/SMS");
  EXPECT_EQ(std::string_view(e["subject"]), "ce-sub");
  EXPECT_EQ(std::string_view(e["time"]).size(), 24u) << single.body;  // 2026-12-03T10:00:00.000Z
  EXPECT_EQ(int64_t(e["data"]["n"]), 1);

  const auto batch = Posts(receiver)[1];
  EXPECT_EQ(batch.header("content-type"), "application/cloudevents-batch+json");
  simdjson::dom::array events;
  ASSERT_EQ(parser.parse(batch.body).get(events), simdjson::SUCCESS) << batch.body;
  ASSERT_EQ(events.size(), 3u) << batch.body;
  // Each its own event: the id says which, and its data is that event's payload. (Their order in
  // the batch is not promised: the profile does not ask for ordering.)
  std::set<std::string> ids;
  for (auto event : events) {
    const std::string id = std::string(std::string_view(event["id"]));
    ids.insert(id);
    EXPECT_EQ("ce-" + std::to_string(int64_t(event["data"]["n"])), id);
  }
  EXPECT_EQ(ids, (std::set<std::string>{"ce-2", "ce-3", "ce-4"}));
  EXPECT_EQ(d.Stop(), 0);
}

// CloudEvents endpoint validation (abuse protection): before its first delivery a CLOUDEVENTS
// profile asks its receiver with OPTIONS and WebHook-Request-Origin; only a 200 allowing the
// origin lets deliveries start, each then carrying Origin. A refusal shows on the profile, and
// the receiver is not asked again, nor sent anything, until the profile is updated;
// WebHook-Allowed-Rate caps the profile's rate.
TEST(CloudEvents, EndpointValidationGatesDeliveries) {
  herald::test_support::TempDir dir;
  const std::string config = dir.path() + "/herald.toml";
  std::ofstream(config) << "[delivery]\norigin = \"events.herald.test\"\n";
  Receiver accepting, refusing, limiting, flaky;
  std::atomic<int> flaky_asked{0};
  flaky.set_handler([&](const ReceivedRequest& r) {
    if (r.method != "OPTIONS") return Answer{.status = 200};
    // Not up yet the first time: asked again a second later, not refused.
    return ++flaky_asked == 1 ? Answer{.status = 503} : AllowOrigin(r);
  });
  accepting.set_handler([](const ReceivedRequest& r) {
    return r.method == "OPTIONS" ? AllowOrigin(r) : Answer{.status = 200};
  });
  std::atomic<bool> refuse{true};
  refusing.set_handler([&](const ReceivedRequest& r) {
    if (r.method != "OPTIONS") return Answer{.status = 200};
    if (refuse) return Answer{.status = 200, .headers = {{"WebHook-Allowed-Origin", "other"}}};
    return AllowOrigin(r);
  });
  limiting.set_handler([](const ReceivedRequest& r) {
    if (r.method != "OPTIONS") return Answer{.status = 200};
    Answer a = AllowOrigin(r);
    a.headers.emplace_back("WebHook-Allowed-Rate", "120");  // per minute: 2 a second
    return a;
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  auto profile = [](const std::string& id, const Receiver& r) {
    return R"({"profileId":")" + id +
           R"(","payloadFormat":"CLOUDEVENTS","maxBucketSize":1,"webhook":{"notifyUrl":")" +
           r.url() + R"("}})";
  };
  for (const auto& [id, receiver] : {std::pair<std::string, Receiver*>{"accepting", &accepting},
                                     {"refusing", &refusing},
                                     {"limiting", &limiting},
                                     {"flaky", &flaky}}) {
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     R"({"subscriptionId":")" + id + R"(","group":")" + id +
                         R"(","events":["DELIVERY"],"profile":)" + profile(id, *receiver) + "}")
                  .status,
              201);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto send = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_EQ(d.Call("POST", "/v1/events",
                       R"({"channel":"SMS","event":"DELIVERY","eventId":"v-)" + std::to_string(i) +
                           R"(","payload":{}})")
                    .status,
                202);
    }
  };
  send(0, 6);

  // Accepted: asked once, first, with the configured origin; every delivery carries Origin.
  ASSERT_TRUE(Eventually([&] { return Posts(accepting).size() == 6; }));
  const auto asked = accepting.requests();
  ASSERT_EQ(asked[0].method, "OPTIONS");
  EXPECT_EQ(asked[0].header("webhook-request-origin"), "events.herald.test");
  EXPECT_EQ(std::count_if(asked.begin(), asked.end(),
                          [](const ReceivedRequest& r) { return r.method == "OPTIONS"; }),
            1);
  for (const auto& post : Posts(accepting)) EXPECT_EQ(post.header("origin"), "events.herald.test");

  // Refused: shown with its reason; nothing sent; the notifications are dead letters.
  ASSERT_TRUE(Eventually([&] {
    return Has(d.Call("GET", "/v1/dead-letters?profileId=refusing").body, R"("totalResults":6)");
  }));
  std::string stats = d.Call("GET", "/v1/stats").body;
  EXPECT_TRUE(Has(stats, R"("profileId":"refusing","state":"refused")")) << stats;
  EXPECT_TRUE(Has(stats, R"(WebHook-Allowed-Origin is \"other\", not \"events.herald.test\")"))
      << stats;
  const std::string refused = d.Call("GET", "/subscriptions/1/profiles/refusing").body;
  EXPECT_TRUE(Has(refused, R"("endpointValidation":{"state":"refused","reason":")")) << refused;
  EXPECT_TRUE(Has(d.Call("GET", "/v1/dead-letters?profileId=refusing").body,
                  "endpoint validation refused"));
  send(6, 8);  // not a reason to ask again
  ASSERT_TRUE(Eventually([&] {
    return Has(d.Call("GET", "/v1/dead-letters?profileId=refusing").body, R"("totalResults":8)");
  }));
  EXPECT_EQ(refusing.count(), 1u);
  // Updating the profile asks again; once allowed, deliveries flow (and the dead letters replay).
  refuse = false;
  ASSERT_EQ(
      d.Call("PUT", "/subscriptions/1/profiles/refusing", profile("refusing", refusing)).status,
      200);
  send(8, 9);
  ASSERT_TRUE(Eventually([&] { return Posts(refusing).size() == 1; }));
  ASSERT_EQ(d.Call("POST", "/v1/dead-letters/replay", R"({"profileId":"refusing"})").status, 200);
  ASSERT_TRUE(Eventually([&] { return Posts(refusing).size() == 9; }));
  EXPECT_TRUE(Has(d.Call("GET", "/v1/stats").body, R"("profileId":"refusing","state":"healthy")"));

  // Not reached at first: what waited is delivered once the receiver allows it (all 9 events).
  ASSERT_TRUE(Eventually([&] { return Posts(flaky).size() == 9; }));
  EXPECT_EQ(flaky_asked.load(), 2);

  // The allowed rate: 2 requests a second, so its 9 take 4 s.
  ASSERT_TRUE(Eventually([&] { return Posts(limiting).size() == 9; }, std::chrono::seconds(20)));
  const auto posts = Posts(limiting);
  EXPECT_GE(posts.back().at - posts.front().at, std::chrono::milliseconds(3500));
  stats = d.Call("GET", "/v1/stats").body;
  EXPECT_TRUE(Has(stats, R"("endpointValidation":{"state":"allowed","allowedRatePerMinute":120})"))
      << stats;
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace

namespace {

// The "n" of a {"k":…,"n":…} payload.
std::string KeyOf(const ReceivedRequest& r) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(r.body).get(e) != simdjson::SUCCESS) return "?";
  return std::string(std::string_view(e["k"])) + "-" + std::to_string(int64_t(e["n"]));
}

std::string Event(const std::string& key, int n) {
  return R"({"channel":"SMS","event":"DELIVERY","eventId":")" + key + "-" + std::to_string(n) +
         R"(","key":")" + key + R"(","payload":{"k":")" + key + R"(","n":)" + std::to_string(n) +
         "}}";
}

std::string OrderedProfile(const std::string& url, int retry_delay_ms) {
  return R"({"subscriptionId":"ordered","events":["DELIVERY"],"profile":{"profileId":"ordered",)"
         R"("ordering":"KEY","maxBucketSize":1,"retry":{"delaysMs":[)" +
         std::to_string(retry_delay_ms) + R"(],"maxAttempts":5},"webhook":{"notifyUrl":")" + url +
         R"("}}})";
}

// ordering KEY: one key's notifications reach the receiver one at a time in ingest order, a
// later one waiting while an earlier one is retried; other keys flow meanwhile.
TEST(Ordering, OneKeyAtATimeInIngestOrderWhileOtherKeysFlow) {
  Receiver receiver;
  std::mutex mu;
  std::map<std::string, int> in_progress;  // per key
  bool overlapped = false;
  std::atomic<bool> failed_once{false};
  receiver.set_handler([&](const ReceivedRequest& r) {
    const std::string id = KeyOf(r);
    const std::string key = id.substr(0, id.find('-'));
    {
      std::lock_guard lock(mu);
      if (++in_progress[key] > 1) overlapped = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    {
      std::lock_guard lock(mu);
      --in_progress[key];
    }
    if (id == "a-1" && !failed_once.exchange(true)) return Answer{.status = 503};
    return Answer{.status = 200};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", OrderedProfile(receiver.url(), 400))
                .status,
            201);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  std::string ndjson;
  for (int n = 1; n <= 4; ++n) ndjson += Event("a", n) + "\n" + Event("b", n) + "\n";
  const auto r = d.Call("POST", "/v1/events", ndjson, "application/x-ndjson");
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(receiver.WaitFor(9, std::chrono::seconds(10)));
  std::vector<std::string> seen;
  for (const auto& req : receiver.requests()) seen.push_back(KeyOf(req));
  std::vector<std::string> a, b;
  for (const auto& id : seen) (id[0] == 'a' ? a : b).push_back(id);
  EXPECT_EQ(a, (std::vector<std::string>{"a-1", "a-1", "a-2", "a-3", "a-4"}));
  EXPECT_EQ(b, (std::vector<std::string>{"b-1", "b-2", "b-3", "b-4"}));
  // b did not wait for a's retry: it was all through before a-1 went again.
  const auto second_a1 =
      std::find(std::next(std::find(seen.begin(), seen.end(), "a-1")), seen.end(), "a-1");
  EXPECT_LT(std::find(seen.begin(), seen.end(), "b-4"), second_a1);
  std::lock_guard lock(mu);
  EXPECT_FALSE(overlapped) << "two requests of one key at once";
  EXPECT_EQ(d.Stop(), 0);
}

// The order holds across a crash: what was waiting behind a notification in retry comes after it
// once heraldd is back.
TEST(Ordering, TheOrderHoldsAcrossAKill9) {
  herald::test_support::TempDir data;
  Receiver receiver;
  std::atomic<bool> refuse{true};
  receiver.set_handler([&](const ReceivedRequest& r) {
    return Answer{.status = refuse && KeyOf(r) == "r-1" ? 503 : 200};
  });
  {
    Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"}, data.path());
    ASSERT_NE(d.port(), 0) << d.output();
    ASSERT_EQ(
        d.Call("POST", "/subscriptions/1/subscription/SMS", OrderedProfile(receiver.url(), 60000))
            .status,
        201);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    for (int n = 1; n <= 3; ++n) ASSERT_EQ(d.Call("POST", "/v1/events", Event("r", n)).status, 202);
    ASSERT_TRUE(receiver.WaitFor(1, std::chrono::seconds(10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(receiver.count(), 1u) << "r-2 went while r-1 waits for its retry";
    d.Signal(SIGKILL);
  }
  refuse = false;
  Daemon again({"--listen", "127.0.0.1:0", "--allow-private-targets"}, data.path());
  ASSERT_NE(again.port(), 0) << again.output();
  ASSERT_TRUE(receiver.WaitFor(4, std::chrono::seconds(10)));
  std::vector<std::string> seen;
  for (const auto& req : receiver.requests()) seen.push_back(KeyOf(req));
  EXPECT_EQ(seen, (std::vector<std::string>{"r-1", "r-1", "r-2", "r-3"}));
  EXPECT_EQ(again.Stop(), 0);
}

// Under back-pressure: a full queue's refusals wait in the spool and are offered again as it
// drains; an ordered profile takes nothing newer meanwhile, so a key's order holds even then.
TEST(Ordering, TheOrderHoldsWhenAFullQueueKeepsEventsInTheSpool) {
  herald::test_support::TempDir dir;
  const std::string config = dir.path() + "/herald.toml";
  std::ofstream(config) << "[engine]\nqueue_max_notifications = 2\n"
                           "[delivery]\nmax_held_per_profile = 1\n"
                           "[spool]\ncursor_interval_ms = 20\n";
  Receiver receiver;
  receiver.set_handler([](const ReceivedRequest&) {
    return Answer{.status = 200, .delay = std::chrono::milliseconds(5)};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets", "--config", config},
           dir.path() + "/data");
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", OrderedProfile(receiver.url(), 50))
                .status,
            201);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  constexpr int kEvents = 60;
  for (int n = 1; n <= kEvents; ++n) {
    ASSERT_EQ(d.Call("POST", "/v1/events", Event("k", n)).status, 202) << n;
  }
  ASSERT_TRUE(receiver.WaitFor(kEvents, std::chrono::seconds(20)));
  std::vector<std::string> seen, want;
  for (const auto& req : receiver.requests()) seen.push_back(KeyOf(req));
  for (int n = 1; n <= kEvents; ++n) want.push_back("k-" + std::to_string(n));
  EXPECT_EQ(seen, want);
  // It did go through the spool's waiting list, or this showed nothing.
  const std::string metrics = d.Call("GET", "/metrics").body;
  const size_t at = metrics.find("\nherald_notifications_back_pressured_total ");
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GT(std::stoull(metrics.substr(at + 43)), 0u) << metrics.substr(at, 60);
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace
