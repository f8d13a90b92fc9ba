// Hostile input against the real heraldd: malformed and oversized requests of many kinds, slow
// and crowding clients, path tricks. Each gets a clear error or a closed connection; the daemon
// stays up with bounded memory, and the events it accepted before are still delivered.
#include <simdjson.h>
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/daemon.h"
#include "tests/testing/receiver.h"

namespace {

using namespace std::chrono_literals;
using herald::test_support::Daemon;
using herald::test_support::HttpReply;
using herald::test_support::Receiver;
using herald::test_support::TempDir;

std::string Event(int n) {
  return R"({"channel":"SMS","event":"DELIVERY","eventId":"good-)" + std::to_string(n) +
         R"(","payload":{"n":)" + std::to_string(n) + "}}";
}

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() + "/heraldd.toml") << R"(
allow_private_targets = true
[limits]
max_connections = 200
max_header_bytes = 8192
header_timeout_ms = 700
max_requests_per_second = 200
max_subscriptions_per_channel = 3
)";
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{
        "--listen", "127.0.0.1:0", "--config", dir_.path() + "/heraldd.toml"});
    ASSERT_NE(daemon_->port(), 0) << daemon_->output();
    Daemon& d = *daemon_;
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/profiles",
                     R"({"profileId":"rx","maxBucketSize":1,"webhook":{"notifyUrl":")" +
                         receiver_.url() + R"("}})")
                  .status,
              201);
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS",
                     R"({"subscriptionId":"s","events":["DELIVERY"],"profile":{"profileId":"rx"}})")
                  .status,
              201);
    std::this_thread::sleep_for(150ms);  // visible to routing within 100 ms
    for (int i = 0; i < 20; ++i) ASSERT_EQ(d.Call("POST", "/v1/events", Event(i)).status, 202);
  }

  // After the barrage: alive, answering, and every good event delivered.
  void ExpectHealthyAndDelivered() {
    Daemon& d = *daemon_;
    EXPECT_EQ(d.Call("GET", "/healthz").status, 200);
    EXPECT_EQ(d.Call("POST", "/v1/events", Event(20)).status, 202);
    std::set<std::string> ids;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      ids.clear();
      for (const auto& r : receiver_.requests()) ids.insert(r.header("webhook-id"));
      bool all = true;
      for (int i = 0; i <= 20; ++i) all = all && ids.contains("good-" + std::to_string(i));
      if (all) break;
      std::this_thread::sleep_for(10ms);
    }
    for (int i = 0; i <= 20; ++i) EXPECT_TRUE(ids.contains("good-" + std::to_string(i))) << i;
    if (HasFailure()) {
      for (const auto& id : ids) ADD_FAILURE() << "received " << id;
    }
    EXPECT_EQ(d.Stop(), 0);
  }

  TempDir dir_;
  Receiver receiver_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(Hostile, MalformedEventsGetClearErrors) {
  Daemon& d = *daemon_;
  const long rss_before = d.RssKib();
  const std::vector<std::string> bodies = {
      "{",
      "}",
      "[1,2",
      "nul",
      R"("just a string")",
      R"({"channel":"SMS","event":"DELIVERY","payload":{}}})",
      R"({"channel":"SMS","event":"DELIVERY","payload":{"a":tru}})",
      R"({"channel":1,"event":"DELIVERY","payload":{}})",
      R"({"channel":"SMS","event":"DELIVERY","payload":{"n":1e99999}})",
      R"({"channel":"SMS","event":"DELIVERY","payload":{"s":"\u00"}})",
      R"({"channel":"SMS","event":"DELIVERY","payload":{"s":"\x"}})",
      std::string(R"({"channel":"SMS","event":"DELIVERY","payload":{"s":")") + '\0' + "\"}}",
      std::string(R"({"channel":"SMS)") + '\0' + R"(","event":"DELIVERY","payload":{}})",
      R"({"channel":"SMS","event":"DELIVERY","user":")" + std::string("\xc3\x28") +
          R"(","payload":{}})",
      R"({"channel":"SMS","event":"DELIVERY","resource":")" + std::string(300, 'r') +
          R"(","payload":{}})",
      R"({"channel":"SMS","event":"NOPE","payload":{}})",
      R"({"channel":"NOPE","event":"DELIVERY","payload":{}})",
      std::string(200'000, '[') + std::string(200'000, ']'),
      R"({"channel":"SMS","event":"DELIVERY","payload":)" + std::string(100'000, '[') +
          std::string(100'000, ']') + "}",
  };
  for (const auto& body : bodies) {
    const HttpReply r = d.Call("POST", "/v1/events", body);
    EXPECT_EQ(r.status, 400) << body.substr(0, 80);
    EXPECT_NE(r.body.find(R"("messageId":"BAD_REQUEST")"), std::string::npos) << r.body;
  }
  // Duplicate keys: the first wins, deterministically; never a server error.
  const HttpReply dup =
      d.Call("POST", "/v1/events",
             R"({"channel":"SMS","channel":"EMAIL","event":"DELIVERY","payload":{},"payload":[]})");
  EXPECT_TRUE(dup.status == 202 || dup.status == 400) << dup.status << dup.body;
  // Huge strings: under the event limit they are fine; over it, 413.
  EXPECT_EQ(d.Call("POST", "/v1/events",
                   R"({"channel":"EMAIL","event":"OPEN","payload":{"s":")" +
                       std::string(900'000, 'x') + R"("}})")
                .status,
            202);
  EXPECT_EQ(d.Call("POST", "/v1/events",
                   R"({"channel":"SMS","event":"DELIVERY","payload":{"s":")" +
                       std::string(3 << 20, 'x') + R"("}})")
                .status,
            413);
  // NDJSON: the bad lines are reported by number, the good ones routed.
  const HttpReply batch =
      d.Call("POST", "/v1/events", "{\n" + Event(100) + "\n\xff\xfe\n", "application/x-ndjson");
  EXPECT_EQ(batch.status, 202);
  EXPECT_NE(batch.body.find(R"("accepted":1,"rejected":2)"), std::string::npos) << batch.body;
  // Wrong content types.
  EXPECT_EQ(d.Call("POST", "/v1/events", Event(0), "text/plain").status, 415);
  EXPECT_EQ(d.Call("POST", "/v1/events", Event(0), "multipart/form-data; boundary=x").status, 415);
  // Management bodies too.
  for (const char* body : {"{", "[]", R"({"profileId":[]})", R"({"profileId":"p","webhook":7})"}) {
    EXPECT_EQ(d.Call("POST", "/subscriptions/1/profiles", body).status, 400) << body;
  }
  EXPECT_LT(d.RssKib() - rss_before, 256 * 1024) << "memory must stay bounded";
  ExpectHealthyAndDelivered();
}

TEST_F(Hostile, BrokenHttpIsAnsweredOrClosed) {
  Daemon& d = *daemon_;
  // Truncated: fewer bytes than Content-Length, then the client goes away.
  d.Raw(
      "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 100\r\n\r\n{\"channel\"",
      200ms);
  // Chunked: a valid chunked NDJSON body is ingested.
  const std::string line = Event(200) + "\n";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", line.size());
  const std::string chunked = d.Raw(
      "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
      std::string(size) + "\r\n" + line + "\r\n0\r\n\r\n");
  EXPECT_NE(chunked.find("202"), std::string::npos) << chunked;
  EXPECT_NE(chunked.find(R"("accepted":1)"), std::string::npos) << chunked;
  // Malformed chunk sizes, a bad request line, a header without a colon: closed or 400.
  for (const std::string& raw :
       {std::string("POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "zz\r\nabc\r\n0\r\n\r\n"),
        std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/1.1\r\nNoColonHere\r\n\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)}) {
    const std::string answer = d.Raw(raw, 2s);
    EXPECT_TRUE(answer.empty() || answer.find("HTTP/1.1 400") == 0) << answer;
  }
  // Oversize headers: 431.
  const std::string big_header =
      d.Raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20'000, 'a') + "\r\n\r\n");
  EXPECT_EQ(big_header.find("HTTP/1.1 431"), 0u) << big_header.substr(0, 100);
  // Oversize bodies: 413 on the declared length, before the body is read.
  const std::string big_body = d.Raw(
      "POST /subscriptions/1/profiles HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 50000000\r\n\r\n");
  EXPECT_EQ(big_body.find("HTTP/1.1 413"), 0u) << big_body.substr(0, 100);
  // Path tricks in ids: never a file, never a 5xx.
  for (const char* target :
       {"/subscriptions/1/profiles/..%2F..%2Fetc%2Fpasswd", "/subscriptions/1/profiles/../../x",
        "/subscriptions/1/profiles/a/b", "/subscriptions/1/profiles/%00",
        "/subscriptions/1/subscription/SMS/../../../etc/passwd",
        "/subscriptions/1/subscription/%2e%2e/x", "/v1/events/SMS/../../x", "//subscriptions/1/x",
        "/subscriptions/1/profiles?page=-1&size=99999999999999999999"}) {
    const HttpReply r = d.Call("GET", target);
    EXPECT_TRUE(r.status == 400 || r.status == 404 || r.status == 405) << target << " " << r.status;
  }
  // Bytes that are not UTF-8 in a path the answer quotes: still valid JSON, in UTF-8.
  for (const std::string& target : {std::string("/no/\xff\xfe"), std::string("/x\xc3"),
                                    std::string("/\xed\xa0\x80"), std::string("/\xe2\x82")}) {
    const HttpReply r = d.Call("GET", target);
    EXPECT_EQ(r.status, 404);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    EXPECT_EQ(parser.parse(r.body).get(root), simdjson::SUCCESS) << r.body;
  }
  const std::string long_id(300, 'a');
  EXPECT_EQ(d.Call("GET", "/subscriptions/1/profiles/" + long_id).status, 404);
  EXPECT_EQ(
      d.Call("POST", "/subscriptions/1/profiles",
             R"({"profileId":")" + long_id + R"(","webhook":{"notifyUrl":"https://a.test/"}})")
          .status,
      400);
  ExpectHealthyAndDelivered();
}

TEST_F(Hostile, SlowCrowdingAndChattyClientsHitLimits) {
  Daemon& d = *daemon_;
  // Slow loris: headers that never finish are cut off after header_timeout.
  const auto start = std::chrono::steady_clock::now();
  const std::string slow = d.Raw("POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ", 5s);
  EXPECT_TRUE(slow.empty()) << slow;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  // Crowding: more connections than max_connections; the extra ones are closed at once.
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> crowd;
  boost::asio::io_context io;
  for (int i = 0; i < 2000; ++i) {
    auto s = std::make_unique<boost::asio::ip::tcp::socket>(io);
    boost::system::error_code ec;
    s->connect({boost::asio::ip::make_address("127.0.0.1"), d.port()}, ec);
    if (!ec) crowd.push_back(std::move(s));
  }
  EXPECT_GT(crowd.size(), 200u);
  crowd.clear();  // once they leave, new clients are served again (checked at the end)
  // Chatty: one connection over max_requests_per_second gets 429 with Retry-After.
  std::string burst;
  for (int i = 0; i < 400; ++i) burst += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string answers = d.Raw(burst, 3s);
  EXPECT_NE(answers.find("HTTP/1.1 429"), std::string::npos);
  EXPECT_NE(answers.find("Retry-After: 1"), std::string::npos);
  // Subscriptions per channel.
  for (int i = 0; i < 3; ++i) {
    d.Call("POST", "/subscriptions/1/subscription/EMAIL",
           R"({"subscriptionId":"e)" + std::to_string(i) +
               R"(","events":["OPEN"],"profile":{"profileId":"rx"}})");
  }
  const HttpReply full =
      d.Call("POST", "/subscriptions/1/subscription/EMAIL",
             R"({"subscriptionId":"e9","events":["OPEN"],"profile":{"profileId":"rx"}})");
  EXPECT_EQ(full.status, 403);
  EXPECT_NE(full.body.find("max_subscriptions_per_channel"), std::string::npos) << full.body;
  std::this_thread::sleep_for(1100ms);  // the request-rate bucket refills
  const std::string metrics = d.Call("GET", "/metrics").body;
  for (const char* limit : {"max_connections", "max_header_bytes", "max_requests_per_second",
                            "header_timeout", "max_subscriptions_per_channel"}) {
    const std::string prefix = std::string("herald_limit_hits_total{limit=\"") + limit + "\"} ";
    const size_t at = metrics.find(prefix);
    ASSERT_NE(at, std::string::npos) << limit;
    if (std::string(limit) != "max_header_bytes") {
      EXPECT_NE(metrics.substr(at + prefix.size(), 2), "0\n") << limit;
    }
  }
  ExpectHealthyAndDelivered();
}

}  // namespace
