// heraldd end to end: the real binary, real HTTP over loopback, every endpoint that exists and
// its error paths, auth, and a graceful stop on SIGTERM.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/daemon.h"
#include "tests/testing/eventually.h"
#include "tests/testing/pki.h"
#include "tests/testing/receiver.h"

namespace {

using herald::test_support::Daemon;
using herald::test_support::Eventually;
using herald::test_support::Pki;
using Reply = herald::test_support::HttpReply;
using herald::test_support::TempDir;

const char* kInline = R"({"subscriptionId":"sms-dlr","name":"Shop DLRs","events":["DELIVERY"],
  "criteria":[{"applicationId":"shop"}],
  "profile":{"profileId":"shop","webhook":{"notifyUrl":"https://shop.example.com/dlr"},
    "security":{"authId":"shop-hmac","type":"HMAC",
      "credentials":{"secretKey":"very-secret","algorithm":"HMAC_SHA_256"}}}})";

TEST(Heraldd, HealthCatalogAndMetrics) {
  Daemon d({"--listen", "127.0.0.1:0", "--config", "configs/herald.toml"});
  ASSERT_NE(d.port(), 0) << d.output();
  EXPECT_EQ(d.Call("GET", "/healthz").status, 200);
  EXPECT_EQ(d.Call("GET", "/readyz").status, 200);
  Reply catalog = d.Call("GET", "/v1/catalog");
  EXPECT_EQ(catalog.status, 200);
  EXPECT_NE(catalog.body.find(R"("channel":"VOICE_VIDEO")"), std::string::npos);
  EXPECT_NE(catalog.body.find(R"("aliases":["KAKAO_BRAND_MESSAGE"])"), std::string::npos);
  EXPECT_NE(catalog.body.find("配達"), std::string::npos);
  Reply metrics = d.Call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.content_type.find("text/plain"), std::string::npos);
  EXPECT_NE(metrics.body.find("herald_events_accepted_total 0"), std::string::npos);
  EXPECT_EQ(d.Call("GET", "/nope").status, 404);
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Heraldd, SubscriptionLifecycleInThePlatformsShapes) {
  Daemon d({"--listen", "127.0.0.1:0"});
  ASSERT_NE(d.port(), 0) << d.output();
  Reply created = d.Call("POST", "/subscriptions/1/subscription/SMS", kInline);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(
      created.body,
      R"({"subscriptionId":"sms-dlr","profile":{"profileId":"shop","security":{"authId":"shop-hmac"}}})");
  Reply again = d.Call("POST", "/subscriptions/1/subscription/SMS", kInline);
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_NE(again.body.find(R"("requestError":{"serviceException":{"messageId":"CONFLICT")"),
            std::string::npos);

  Reply got = d.Call("GET", "/subscriptions/1/subscription/SMS/sms-dlr");
  EXPECT_EQ(got.status, 200);
  EXPECT_NE(got.body.find(R"("criteria":[{"applicationId":"shop"}])"), std::string::npos);
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/subscription/EMAIL/sms-dlr").status, 404);

  // Secrets are never echoed.
  Reply security = d.Call("GET", "/subscriptions/1/security/shop-hmac");
  EXPECT_EQ(security.status, 200);
  EXPECT_EQ(security.body.find("very-secret"), std::string::npos);
  EXPECT_NE(security.body.find("********"), std::string::npos);

  // Validation errors are keyed by field.
  Reply bad =
      d.Call("POST", "/subscriptions/1/subscription/SMS",
             R"({"subscriptionId":"x y","events":["OPEN"],"profile":{"profileId":"shop"}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find(R"("validationErrors":{)"), std::string::npos);
  EXPECT_NE(bad.body.find(R"("events":[)"), std::string::npos);
  EXPECT_NE(bad.body.find(R"("subscriptionId":[)"), std::string::npos);
  EXPECT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", "{not json").status, 400);
  EXPECT_EQ(d.Call("POST", "/subscriptions/1/subscription/NOPE", kInline).status, 404);

  // Lists: paging and filters.
  for (int i = 0; i < 3; ++i) {
    const std::string body = R"({"subscriptionId":"s)" + std::to_string(i) +
                             R"(","events":[],"resources":["r)" + std::to_string(i) +
                             R"("],"profile":{"profileId":"shop"}})";
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", body).status, 201);
  }
  Reply page = d.Call("GET", "/subscriptions/1/subscription/SMS?page=1&size=2");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find(R"("paging":{"page":1,"size":2,"totalPages":2,"totalResults":4})"),
            std::string::npos)
      << page.body;
  Reply newest = d.Call("GET", "/subscriptions/1/subscription/SMS?size=1");
  EXPECT_NE(newest.body.find(R"("subscriptionId":"s2")"), std::string::npos) << "newest first";
  Reply filtered = d.Call("GET", "/subscriptions/1/subscription/SMS?resource=r1&resource=r2");
  EXPECT_NE(filtered.body.find(R"("totalResults":2)"), std::string::npos) << filtered.body;
  Reply by_app = d.Call("GET", "/subscriptions/1/subscription/SMS?applicationId=shop");
  EXPECT_NE(by_app.body.find(R"("totalResults":1)"), std::string::npos) << by_app.body;
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/subscription/SMS?size=101").status, 400);

  // Update and delete answer 200 with ids.
  Reply updated = d.Call("PUT", "/subscriptions/1/subscription/SMS/sms-dlr",
                         R"({"events":["CLICK"],"profile":{"profileId":"shop"}})");
  EXPECT_EQ(updated.status, 200) << updated.body;
  EXPECT_NE(
      d.Call("GET", "/subscriptions/1/subscription/SMS/sms-dlr").body.find(R"("events":["CLICK"])"),
      std::string::npos);
  EXPECT_EQ(d.Call("DELETE", "/subscriptions/1/profiles/shop").status, 409) << "still referenced";
  Reply deleted = d.Call("DELETE", "/subscriptions/1/subscription/SMS/sms-dlr");
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(deleted.body, R"({"subscriptionId":"sms-dlr"})");
  EXPECT_EQ(d.Call("DELETE", "/subscriptions/1/subscription/SMS/sms-dlr").status, 404);
  EXPECT_EQ(d.Stop(), 0);
}

// The request examples of the platform's OpenAPI document (Subscriptions API v3.210.0), verbatim;
// each is accepted once its references exist.
TEST(Heraldd, AcceptsThePlatformsRequestExamples) {
  Daemon d({"--listen", "127.0.0.1:0"});
  ASSERT_NE(d.port(), 0);
  const char* create_subscription =
      R"({"subscriptionId": "ABC-123-DEF", "name": "Default group", "events": ["DELIVERY"], "criteria": [{"applicationId": "production", "entityId": "entity1"}, {"applicationId": "production", "entityId": "entity2"}, {"applicationId": "test", "entityId": "entity1"}], "resources": ["1234"], "users": ["user1", "user2"], "profile": {"profileId": "NOTIF-32395", "webhook": {"notifyUrl": "https://www.example.com/pushme"}, "security": {"authId": "NEWAUTH-9291", "type": "BASIC", "credentials": {"username": "user1", "password": "password1"}}}})";
  const char* update_subscription =
      R"({"name": "Updated group", "profile": {"profileId": "NOTIF-98765"}, "events": ["DELIVERY"], "criteria": [{"applicationId": "production", "entityId": "entity1"}, {"applicationId": "production", "entityId": "entity2"}, {"applicationId": "test", "entityId": "entity1"}], "resources": ["1234"], "users": ["user1", "user2"]})";
  const char* create_profile =
      R"({"profileId": "NOTIF-32395", "webhook": {"notifyUrl": "https://www.example.com/pushme"}, "security": {"authId": "NEWAUTH-9291", "type": "BASIC", "credentials": {"username": "user1", "password": "password1"}}, "clientCertificateId": "MYCERT-1337", "maxBucketSize": 1, "windowSize": 20, "connectTimeout": 10000, "readTimeout": 10000, "enabledSSLProtocols": ["TLSv1.3", "TLSv1.2"], "headers": {"X-Important-Header": "Important Value"}, "responseRegex": "[1-9][0-9]", "responseBodyRegex": "[1-9][0-9]", "rateLimit": 5000})";
  const char* update_profile =
      R"({"webhook": {"notifyUrl": "https://www.example.com/pushme"}, "security": {"authId": "AUTH-123"}, "maxBucketSize": 1, "windowSize": 20, "connectTimeout": 10000, "readTimeout": 10000, "enabledSSLProtocols": ["TLSv1.3", "TLSv1.2"], "headers": {"X-Important-Header": "Important Value"}, "responseRegex": "[1-9][0-9]", "responseBodyRegex": "[1-9][0-9]", "rateLimit": 5000})";
  const char* create_security =
      R"({"authId": "NEWAUTH-9291", "type": "BASIC", "credentials": {"username": "user1", "password": "password1"}})";
  const char* update_security =
      R"({"type": "BASIC", "credentials": {"username": "user1", "password": "password1"}})";

  Reply r = d.Call("POST", "/subscriptions/1/subscription/SMS", create_subscription);
  EXPECT_EQ(r.status, 201) << r.body;
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                   R"({"profileId":"NOTIF-98765","webhook":{"notifyUrl":"https://x.example/h"}})")
                .status,
            201);
  r = d.Call("PUT", "/subscriptions/1/subscription/SMS/ABC-123-DEF", update_subscription);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(
      d.Call("GET", "/subscriptions/1/subscription/SMS/ABC-123-DEF").body.find("Updated group"),
      std::string::npos);

  ASSERT_EQ(d.Call("DELETE", "/subscriptions/1/subscription/SMS/ABC-123-DEF").status, 200);
  ASSERT_EQ(d.Call("DELETE", "/subscriptions/1/profiles/NOTIF-32395").status, 200);
  ASSERT_EQ(d.Call("DELETE", "/subscriptions/1/security/NEWAUTH-9291").status, 200);
  // The profile example names a client certificate: 400 until it exists.
  r = d.Call("POST", "/subscriptions/1/profiles", create_profile);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("certificate MYCERT-1337 does not exist"), std::string::npos) << r.body;
  const Pki pki;
  r = d.Call("POST", "/subscriptions/1/certificates",
             R"({"certificateId":"MYCERT-1337","certificateContent":")" +
                 pki.Content({"client.key", "client.pem"}) + "\"}");
  ASSERT_EQ(r.status, 201) << r.body;
  r = d.Call("POST", "/subscriptions/1/profiles", create_profile);
  EXPECT_EQ(r.status, 201) << r.body;
  const std::string profile = d.Call("GET", "/subscriptions/1/profiles/NOTIF-32395").body;
  EXPECT_NE(profile.find(R"("clientCertificateId":"MYCERT-1337")"), std::string::npos) << profile;
  EXPECT_NE(profile.find(R"("rateLimit":5000)"), std::string::npos);
  EXPECT_NE(profile.find(R"("responseRegex":"[1-9][0-9]")"), std::string::npos);

  ASSERT_EQ(
      d.Call(
           "POST", "/subscriptions/1/security",
           R"({"authId":"AUTH-123","type":"HMAC","credentials":{"secretKey":"k","algorithm":"HMAC_SHA_256"}})")
          .status,
      201);
  r = d.Call("PUT", "/subscriptions/1/profiles/NOTIF-32395", update_profile);
  EXPECT_EQ(r.status, 200) << r.body;

  ASSERT_EQ(d.Call("DELETE", "/subscriptions/1/profiles/NOTIF-32395").status, 200);
  ASSERT_EQ(d.Call("DELETE", "/subscriptions/1/security/NEWAUTH-9291").status, 200);
  r = d.Call("POST", "/subscriptions/1/security", create_security);
  EXPECT_EQ(r.status, 201) << r.body;
  r = d.Call("PUT", "/subscriptions/1/security/NEWAUTH-9291", update_security);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Heraldd, BulkImportReportsCountsAndLineErrors) {
  Daemon d({"--listen", "127.0.0.1:0"});
  ASSERT_NE(d.port(), 0);
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                   R"({"profileId":"p","webhook":{"notifyUrl":"https://x.example/h"}})")
                .status,
            201);
  std::string body;
  for (int i = 0; i < 500; ++i) {
    body += R"({"channel":"EMAIL","subscriptionId":"imp)" + std::to_string(i) +
            R"(","events":["OPEN"],"profile":{"profileId":"p"}})"
            "\n";
  }
  body +=
      R"({"channel":"EMAIL","subscriptionId":"bad","events":["NOPE"],"profile":{"profileId":"p"}})"
      "\n";
  body += "{not json\n";
  body += R"({"channel":"EMAIL","subscriptionId":"imp0","events":[],"profile":{"profileId":"p"}})"
          "\n";
  Reply r = d.Call("POST", "/subscriptions/1/import", body, "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"({"imported":500,"failed":3,"errors":[{"line":501,)"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"({"line":502,)"), std::string::npos);
  EXPECT_NE(r.body.find(R"({"line":503,"error":"subscription imp0 already exists"})"),
            std::string::npos)
      << r.body;
  EXPECT_NE(d.Call("GET", "/subscriptions/1/subscription/EMAIL?size=1")
                .body.find(R"("totalResults":500)"),
            std::string::npos);
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Heraldd, ProfilesAndSecuritySettings) {
  Daemon d({"--listen", "127.0.0.1:0"});
  ASSERT_NE(d.port(), 0);
  EXPECT_EQ(
      d.Call("POST", "/subscriptions/1/security",
             R"({"authId":"basic","type":"BASIC","credentials":{"username":"u","password":"p"}})")
          .status,
      201);
  Reply profile = d.Call("POST", "/subscriptions/1/profiles",
                         R"({"profileId":"p1","webhook":{"notifyUrl":"https://x.example/h"},
                             "security":{"authId":"basic"},"maxBucketSize":50,"windowSize":20})");
  EXPECT_EQ(profile.status, 201) << profile.body;
  Reply got = d.Call("GET", "/subscriptions/1/profiles/p1");
  EXPECT_NE(got.body.find(R"("maxBucketSize":50)"), std::string::npos) << got.body;
  Reply bad = d.Call("POST", "/subscriptions/1/profiles",
                     R"({"profileId":"p2","webhook":{"notifyUrl":"ftp://x"},"readTimeout":5})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find(R"("webhook.notifyUrl":[)"), std::string::npos) << bad.body;
  EXPECT_NE(bad.body.find(R"("readTimeout":[)"), std::string::npos) << bad.body;
  Reply list = d.Call("GET", "/subscriptions/1/profiles");
  EXPECT_NE(list.body.find(R"("totalResults":1)"), std::string::npos);
  EXPECT_EQ(d.Call("DELETE", "/subscriptions/1/security/basic").status, 409);
  EXPECT_EQ(d.Call("PUT", "/subscriptions/1/security/basic",
                   R"({"type":"HMAC","credentials":{"secretKey":"k","algorithm":"HMAC_SHA_512"}})")
                .status,
            200);
  EXPECT_NE(d.Call("GET", "/subscriptions/1/security/basic").body.find("HMAC_SHA_512"),
            std::string::npos);
  EXPECT_EQ(d.Call("DELETE", "/subscriptions/1/profiles/p1").status, 200);
  EXPECT_EQ(d.Call("DELETE", "/subscriptions/1/security/basic").status, 200);
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles/p1").status, 404);
  EXPECT_EQ(d.Stop(), 0);
}

// A GET's ETag is the journal's revision of the entry; If-Match on a PUT or DELETE makes it
// conditional on it (412 when something else changed it first), and survives a restart.
TEST(Heraldd, IfMatchMakesUpdatesAndDeletesConditional) {
  TempDir dir;
  auto call = [](const Daemon& d, const std::string& method, const std::string& path,
                 const std::string& body, const std::string& if_match) {
    return herald::test_support::CallHttp(d.port(), method, path, body, "application/json", "",
                                          {{"If-Match", if_match}});
  };
  const std::string path = "/subscriptions/1/security/basic";
  const std::string v1 = R"({"type":"BASIC","credentials":{"username":"u","password":"p1"}})";
  const std::string v2 = R"({"type":"BASIC","credentials":{"username":"u2","password":"p2"}})";
  std::string etag;
  {
    Daemon d({"--listen", "127.0.0.1:0"}, dir.path());
    ASSERT_NE(d.port(), 0);
    ASSERT_EQ(
        d.Call("POST", "/subscriptions/1/security", R"({"authId":"basic",)" + v1.substr(1)).status,
        201);
    const Reply first = d.Call("GET", path);
    ASSERT_FALSE(first.etag.empty());
    ASSERT_EQ(call(d, "PUT", path, v2, first.etag).status, 200);
    // The first ETag is stale now: refused, and nothing changed.
    const Reply stale = call(d, "PUT", path, v1, first.etag);
    EXPECT_EQ(stale.status, 412) << stale.body;
    EXPECT_NE(stale.body.find("PRECONDITION_FAILED"), std::string::npos) << stale.body;
    EXPECT_NE(d.Call("GET", path).body.find(R"("username":"u2")"), std::string::npos);
    EXPECT_EQ(call(d, "DELETE", path, "", first.etag).status, 412);
    EXPECT_EQ(call(d, "PUT", path, v1, "W/\"1\"").status, 412);  // not one of ours
    etag = d.Call("GET", path).etag;
    EXPECT_NE(etag, first.etag);
    EXPECT_EQ(d.Stop(), 0);
  }
  Daemon d({"--listen", "127.0.0.1:0"}, dir.path());
  ASSERT_NE(d.port(), 0);
  EXPECT_EQ(d.Call("GET", path).etag, etag) << "the revision survives the restart";
  EXPECT_EQ(call(d, "DELETE", path, "", etag).status, 200);
  EXPECT_EQ(d.Call("GET", path).status, 404);
}

TEST(Heraldd, IngestSingleAndNdjsonWithErrors) {
  Daemon d({"--listen", "127.0.0.1:0"});
  ASSERT_NE(d.port(), 0);
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", kInline).status, 201);
  // The index publishes within 100 ms.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Reply one = d.Call("POST", "/v1/events",
                     R"({"channel":"SMS","event":"DELIVERY","applicationId":"shop","payload":{}})");
  EXPECT_EQ(one.status, 202) << one.body;
  EXPECT_EQ(one.body, R"({"accepted":1,"rejected":0,"errors":[]})");
  Reply batch = d.Call("POST", "/v1/events",
                       "{\"channel\":\"SMS\",\"event\":\"DELIVERY\",\"payload\":{}}\n"
                       "{\"channel\":\"SMS\",\"event\":\"NOPE\",\"payload\":{}}\n"
                       "{oops\n",
                       "application/x-ndjson");
  EXPECT_EQ(batch.status, 202);
  EXPECT_NE(batch.body.find(R"("accepted":1,"rejected":2)"), std::string::npos) << batch.body;
  EXPECT_NE(batch.body.find(R"({"line":2,"error":)"), std::string::npos);
  EXPECT_NE(batch.body.find(R"({"line":3,"error":)"), std::string::npos);
  Reply bad = d.Call("POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("payload"), std::string::npos);
  EXPECT_EQ(d.Call("POST", "/v1/events", "{}", "text/plain").status, 415);
  // The channel's native payload: each results[] item routed on its own.
  Reply native = d.Call("POST", "/v1/events/SMS/DELIVERY",
                        R"({"results":[{"messageId":"m1","platform":{"applicationId":"shop"}},)"
                        R"({"messageId":"m2","platform":{"applicationId":"other"}}]})");
  EXPECT_EQ(native.status, 202) << native.body;
  EXPECT_EQ(native.body, R"({"accepted":2,"rejected":0,"errors":[]})");
  EXPECT_EQ(d.Call("POST", "/v1/events/SMS/OPEN", "{}").status, 404);
  EXPECT_EQ(d.Call("POST", "/v1/events/SMS/DELIVERY", "{oops").status, 400);
  EXPECT_EQ(d.Call("GET", "/v1/events").status, 405);
  Reply metrics = d.Call("GET", "/metrics");
  EXPECT_NE(metrics.body.find("herald_events_accepted_total 4"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find(R"(herald_events_rejected_total{reason="unknown_event"} 1)"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("herald_events_matched_total 2"), std::string::npos);
  EXPECT_NE(metrics.body.find("herald_routing_duration_seconds_count 5"), std::string::npos)
      << "one observation per ingest request that reached the engine";
  EXPECT_NE(metrics.body.find(R"(herald_http_request_duration_seconds_bucket{le="+Inf"})"),
            std::string::npos);
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Heraldd, OversizeBodiesAndFullQueues) {
  TempDir dir;
  const std::string config = dir.path() + "/small.toml";
  {
    std::ofstream out(config);
    out << "[engine]\nmax_event_bytes = 256\nqueue_max_notifications = 1\n";
  }
  Daemon d({"--listen", "127.0.0.1:0", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  const std::string big =
      R"({"channel":"SMS","event":"DELIVERY","payload":{"x":")" + std::string(400, 'x') + R"("}})";
  Reply too_big = d.Call("POST", "/v1/events", big);
  EXPECT_EQ(too_big.status, 413) << too_big.body;
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"all","events":[],"profile":{"profileId":"p",
                       "webhook":{"notifyUrl":"https://x.example/h"}}})")
                .status,
            201);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string batch;
  for (int i = 0; i < 2000; ++i)
    batch += R"({"channel":"SMS","event":"DELIVERY","payload":{}})"
             "\n";
  // A queue of one cannot take 2000 notifications at once: the rest wait in the spool, and the
  // client is not asked to send them again.
  Reply full = d.Call("POST", "/v1/events", batch, "application/x-ndjson");
  EXPECT_EQ(full.status, 202) << full.body;
  const std::string metrics = d.Call("GET", "/metrics").body;
  EXPECT_EQ(metrics.find("herald_spool_waiting_for_room 0\n"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("herald_notifications_back_pressured_total 0\n"), std::string::npos)
      << "back-pressure is counted";
  EXPECT_NE(metrics.find("herald_notifications_back_pressured_total "), std::string::npos);
  EXPECT_EQ(d.Stop(), 0);
}

TEST(Heraldd, KeysAreRequiredWhenConfigured) {
  Daemon d({"--listen", "127.0.0.1:0", "--api-key", "admin", "--ingest-key", "feed"});
  ASSERT_NE(d.port(), 0);
  const std::string event = R"({"channel":"SMS","event":"DELIVERY","payload":{}})";
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles").status, 401);
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles", "", "", "App wrong").status, 401);
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles", "", "", "App admin").status, 200);
  EXPECT_EQ(d.Call("POST", "/v1/events", event).status, 401);
  EXPECT_EQ(d.Call("POST", "/v1/events", event, "application/json", "App feed").status, 202);
  EXPECT_EQ(d.Call("POST", "/v1/events", event, "application/json", "App admin").status, 202);
  // Separate scopes: the ingest key may not manage.
  const Reply forbidden = d.Call("GET", "/subscriptions/1/profiles", "", "", "App feed");
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_NE(forbidden.body.find("FORBIDDEN"), std::string::npos);
  EXPECT_EQ(d.Call("GET", "/v1/dead-letters", "", "", "App feed").status, 403);
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles", "", "", "App feedx").status, 401);
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles", "", "", "app admin").status, 401);
  EXPECT_EQ(d.Call("GET", "/healthz").status, 200) << "health needs no key";
  // Refused on its headers: a large body is never read for an unauthorized request.
  EXPECT_EQ(d.Call("POST", "/v1/events", std::string(8 << 20, ' ')).status, 401);
  // Management bodies are small: 413 past 1 MiB.
  EXPECT_EQ(d.Call("POST", "/subscriptions/1/profiles", std::string(2 << 20, ' '),
                   "application/json", "App admin")
                .status,
            413);
  EXPECT_EQ(d.Stop(), 0);
  EXPECT_EQ(d.output().find("admin"), std::string::npos) << "keys are never logged";
  EXPECT_EQ(d.output().find("feed"), std::string::npos);
}

TEST(Heraldd, StateSurvivesRestartsAndKill9) {
  TempDir dir;
  {
    Daemon d({"--listen", "127.0.0.1:0"}, dir.path());
    ASSERT_NE(d.port(), 0) << d.output();
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", kInline).status, 201);
    ASSERT_EQ(d.Call("PUT", "/subscriptions/1/subscription/SMS/sms-dlr",
                     R"({"events":["CLICK"],"profile":{"profileId":"shop"}})")
                  .status,
              200);
    EXPECT_EQ(d.Stop(), 0);
  }
  {
    Daemon d({"--listen", "127.0.0.1:0"}, dir.path());
    ASSERT_NE(d.port(), 0) << d.output();
    Reply got = d.Call("GET", "/subscriptions/1/subscription/SMS/sms-dlr");
    EXPECT_EQ(got.status, 200) << d.output();
    EXPECT_NE(got.body.find(R"("events":["CLICK"])"), std::string::npos) << got.body;
    // Routing works from the restored state.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Reply ev = d.Call("POST", "/v1/events",
                      R"({"channel":"SMS","event":"CLICK","applicationId":"shop","payload":{}})");
    EXPECT_EQ(ev.status, 202);
    EXPECT_NE(d.Call("GET", "/metrics").body.find("herald_events_matched_total 1"),
              std::string::npos);
    // An acknowledged change survives kill -9.
    ASSERT_EQ(
        d.Call("POST", "/subscriptions/1/security",
               R"({"authId":"late","type":"BASIC","credentials":{"username":"u","password":"pw"}})")
            .status,
        201);
    ASSERT_EQ(d.Call("DELETE", "/subscriptions/1/subscription/SMS/sms-dlr").status, 200);
    EXPECT_EQ(d.Signal(SIGKILL), -SIGKILL);
  }
  // A torn record at the end of the journal (a crash mid-write) is cut off, the rest kept.
  {
    std::ofstream journal(dir.path() + "/config.journal", std::ios::app);
    journal << "0badc0de {\"op\":\"put\",\"kind\":\"secur";
  }
  {
    Daemon d({"--listen", "127.0.0.1:0"}, dir.path());
    ASSERT_NE(d.port(), 0) << d.output();
    EXPECT_EQ(d.Call("GET", "/subscriptions/1/security/late").status, 200);
    EXPECT_EQ(d.Call("GET", "/subscriptions/1/subscription/SMS/sms-dlr").status, 404);
    EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles/shop").status, 200);
    EXPECT_EQ(d.Stop(), 0);
  }
  // Credentials in profile headers are masked by GET but kept for delivery.
  {
    Daemon d({"--listen", "127.0.0.1:0"}, dir.path());
    ASSERT_NE(d.port(), 0);
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                     R"({"profileId":"custom","webhook":{"notifyUrl":"https://x.example/h"},
                         "headers":{"X-Api-Key":"hunter2","X-Team":"blue"}})")
                  .status,
              201);
    const std::string got = d.Call("GET", "/subscriptions/1/profiles/custom").body;
    EXPECT_EQ(got.find("hunter2"), std::string::npos) << got;
    // Every header value is masked unless its name is known to carry nothing secret.
    EXPECT_NE(got.find(R"("X-Team":"********")"), std::string::npos) << got;
    EXPECT_EQ(d.Stop(), 0);
    std::ifstream snapshot(dir.path() + "/config.snapshot");
    const std::string stored((std::istreambuf_iterator<char>(snapshot)), {});
    EXPECT_NE(stored.find("hunter2"), std::string::npos);
  }
  // Secrets are on disk for delivery, in files only the owner can read.
  struct stat st {};
  ASSERT_EQ(stat((dir.path() + "/config.snapshot").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Heraldd, BadFlagsAndConfigExitWithCode2) {
  for (std::vector<std::string> args : {std::vector<std::string>{"--nope"},
                                        {"--listen", "nowhere"},
                                        {"--durability", "sometimes"},
                                        {"--config", "/nonexistent.toml"}}) {
    std::vector<std::string> all = {HERALDD_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::string cmd;
    for (const auto& a : all) cmd += "'" + a + "' ";
    cmd += "2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    const int status = pclose(p);
    EXPECT_EQ(WEXITSTATUS(status), 2) << cmd << "\n" << out;
    const std::string named = args[0] == "--config" ? "/nonexistent.toml" : args[0].substr(2);
    EXPECT_NE(out.find(named), std::string::npos) << out;
  }
}

}  // namespace

namespace {

TEST(Heraldd, DeliversWebhooksKeepsDeadLettersAndReplaysThem) {
  herald::test_support::Receiver receiver;
  std::atomic<int> status{400};
  receiver.set_handler([&](const herald::test_support::ReceivedRequest&) {
    return herald::test_support::Reply{.status = status.load()};
  });
  TempDir data;
  const std::string profile = R"({"profileId":"rx","webhook":{"notifyUrl":")" + receiver.url() +
                              R"("},"retry":{"delaysMs":[10],"maxAttempts":2}})";
  const std::string event =
      R"({"channel":"SMS","event":"DELIVERY","eventId":"e-1","payload":{"results":[{"m":1}]}})";
  {
    Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"}, data.path());
    ASSERT_NE(d.port(), 0) << d.output();
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/profiles", profile).status, 201);
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"rx"}})")
                  .status,
              201);
    // A committed change reaches routing within 100 ms (DESIGN §2).
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ASSERT_EQ(d.Call("POST", "/v1/events", event).status, 202);
    // 400 is not retried: one request, one dead letter.
    ASSERT_TRUE(Eventually([&] {
      return d.Call("GET", "/v1/dead-letters?profileId=rx").body.find(R"("totalResults":1)") !=
             std::string::npos;
    }));
    EXPECT_EQ(receiver.count(), 1u);
    const Reply letters = d.Call("GET", "/v1/dead-letters?profileId=rx&page=0&size=10");
    EXPECT_EQ(letters.status, 200);
    EXPECT_NE(letters.body.find(R"("webhookId":"e-1")"), std::string::npos) << letters.body;
    EXPECT_NE(letters.body.find(R"("lastStatus":400)"), std::string::npos);
    EXPECT_NE(letters.body.find(R"("payload":{"results":[{"m":1}]})"), std::string::npos);
    // The counter follows the write to the store.
    EXPECT_TRUE(Eventually([&] {
      return d.Call("GET", "/metrics")
                 .body.find(R"(herald_webhook_dead_lettered_total{profile="rx"} 1)") !=
             std::string::npos;
    }));

    // Replay once the receiver is fixed: delivered with the same webhook-id.
    status = 200;
    EXPECT_EQ(d.Call("POST", "/v1/dead-letters/replay", R"({"profileId":"rx","ids":["1"]})").body,
              R"({"replayed":1})");
    ASSERT_TRUE(receiver.WaitFor(2, std::chrono::seconds(10)));
    EXPECT_EQ(receiver.requests()[1].header("webhook-id"), "e-1");
    ASSERT_TRUE(Eventually([&] {
      return d.Call("GET", "/metrics")
                 .body.find(R"(herald_webhook_delivered_total{profile="rx"} 1)") !=
             std::string::npos;
    }));
    EXPECT_NE(d.Call("GET", "/v1/dead-letters").body.find(R"("totalResults":0)"),
              std::string::npos);
    EXPECT_NE(d.Call("GET", "/metrics")
                  .body.find("herald_webhook_request_duration_seconds_bucket{profile=\"rx\""),
              std::string::npos);
    // Bad replays get clear errors.
    EXPECT_EQ(d.Call("POST", "/v1/dead-letters/replay", "{}").status, 400);
    EXPECT_EQ(
        d.Call("POST", "/v1/dead-letters/replay", R"({"profileId":"rx","ids":[true]})").status,
        400);
    for (const char* ids : {"null", "\"3\"", "{}"}) {
      EXPECT_EQ(d.Call("POST", "/v1/dead-letters/replay",
                       std::string(R"({"profileId":"rx","ids":)") + ids + "}")
                    .status,
                400)
          << ids;
    }
    EXPECT_EQ(d.Call("POST", "/v1/dead-letters/replay", R"({"profileId":"nope"})").status, 404);
    EXPECT_EQ(d.Call("GET", "/v1/dead-letters?size=0").status, 400);

    // 410 disables the profile; the API and the metrics say so.
    status = 410;
    ASSERT_EQ(d.Call("POST", "/v1/events", event).status, 202);
    ASSERT_TRUE(Eventually([&] {
      return d.Call("GET", "/subscriptions/1/profiles/rx").body.find(R"("disabled":true)") !=
             std::string::npos;
    }));
    EXPECT_NE(d.Call("GET", "/metrics").body.find(R"(herald_webhook_disabled{profile="rx"} 1)"),
              std::string::npos);
    EXPECT_EQ(d.Stop(), 0);
  }
  // Disabled survives a restart; updating the profile enables it again.
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"}, data.path());
  ASSERT_NE(d.port(), 0) << d.output();
  EXPECT_NE(d.Call("GET", "/subscriptions/1/profiles/rx").body.find(R"("disabled":true)"),
            std::string::npos);
  ASSERT_EQ(d.Call("PUT", "/subscriptions/1/profiles/rx", profile).status, 200);
  EXPECT_NE(d.Call("GET", "/subscriptions/1/profiles/rx").body.find(R"("disabled":false)"),
            std::string::npos);
  status = 200;
  ASSERT_EQ(d.Call("POST", "/v1/dead-letters/replay", R"({"profileId":"rx"})").body,
            R"({"replayed":1})");
  ASSERT_TRUE(receiver.WaitFor(4, std::chrono::seconds(10)));
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace

namespace {

// An operator reading the log learns why a receiver fails, once, and that it is back, once: not
// a line per request, and not a counter alone.
TEST(Heraldd, TheLogSaysOnceWhyAReceiverFailsAndWhenItIsBack) {
  herald::test_support::Receiver receiver;
  std::atomic<bool> down{true};
  std::atomic<int> delivered{0};
  receiver.set_handler([&](const herald::test_support::ReceivedRequest&) {
    if (down) return herald::test_support::Reply{.status = 502, .body = "upstream unavailable"};
    ++delivered;
    return herald::test_support::Reply{.status = 200};
  });
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                   R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"rx",)"
                   R"("maxBucketSize":1,"retry":{"delaysMs":[20],"maxAttempts":20},)"
                   R"("webhook":{"notifyUrl":")" +
                       receiver.url() + R"("}}})")
                .status,
            201);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  for (int n = 0; n < 5; ++n) {
    ASSERT_EQ(
        d.Call("POST", "/v1/events", R"({"channel":"SMS","event":"DELIVERY","payload":{}})").status,
        202);
  }
  ASSERT_TRUE(Eventually([&] { return receiver.count() >= 5; }));  // then its circuit opens
  down = false;
  ASSERT_TRUE(Eventually([&] { return delivered >= 5; })) << d.output();
  EXPECT_EQ(d.Stop(), 0);
  const std::string out = d.log();
  auto count = [&](std::string_view needle) {
    size_t n = 0;
    for (size_t at = out.find(needle); at != std::string::npos; at = out.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("rx: failing: HTTP 502: upstream unavailable"), 1u) << out;
  EXPECT_EQ(count("rx: delivering again after"), 1u) << out;
}

TEST(Heraldd, WebhookTargetsOnPrivateAddressesAreRefused) {
  Daemon d({"--listen", "127.0.0.1:0"});
  ASSERT_NE(d.port(), 0) << d.output();
  auto profile = [](const std::string& url) {
    return R"({"profileId":"p","webhook":{"notifyUrl":")" + url + R"("}})";
  };
  for (const char* url : {"http://127.0.0.1:9/h", "http://localhost/h", "http://10.1.2.3/h",
                          "https://169.254.169.254/latest/meta-data", "http://[::1]:8080/",
                          "http://[::ffff:192.168.0.1]/", "http://0.0.0.0/"}) {
    const Reply r = d.Call("POST", "/subscriptions/1/profiles", profile(url));
    EXPECT_EQ(r.status, 400) << url;
    EXPECT_NE(r.body.find(R"("webhook.notifyUrl":[)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("allow_private_targets is off"), std::string::npos) << r.body;
  }
  const Reply token = d.Call(
      "POST", "/subscriptions/1/security",
      R"({"authId":"o","type":"OAUTH","credentials":{"tokenUrl":"http://192.168.1.1/token","grantType":"client_credentials"}})");
  EXPECT_EQ(token.status, 400);
  EXPECT_NE(token.body.find(R"("credentials.tokenUrl":[)"), std::string::npos) << token.body;
  // Inline definitions in a subscription are checked too.
  EXPECT_EQ(
      d.Call(
           "POST", "/subscriptions/1/subscription/SMS",
           R"({"subscriptionId":"s","profile":{"profileId":"q","webhook":{"notifyUrl":"http://127.0.0.1/"}}})")
          .status,
      400);
  // Public addresses pass; a name that does not resolve now is checked again at connect time.
  EXPECT_EQ(d.Call("POST", "/subscriptions/1/profiles", profile("https://93.184.216.34/h")).status,
            201);
  EXPECT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                   R"({"profileId":"p2","webhook":{"notifyUrl":"https://hooks.invalid/h"}})")
                .status,
            201);
  EXPECT_EQ(d.Stop(), 0);

  Daemon allowed({"--listen", "127.0.0.1:0", "--allow-private-targets"});
  ASSERT_NE(allowed.port(), 0);
  EXPECT_EQ(
      allowed.Call("POST", "/subscriptions/1/profiles", profile("http://127.0.0.1:9/h")).status,
      201);
  EXPECT_EQ(allowed.Stop(), 0);
}

}  // namespace
