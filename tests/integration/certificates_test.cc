// Client certificates, black-box on heraldd: the platform's certificates API (upload, list, get,
// status, delete, the connection test), the key's keeping (never answered or logged, files of
// mode 0600), and mTLS on delivery against nginx demanding a client certificate from a test CA,
// with enabledSSLProtocols limiting the TLS versions. The PKI is made by the openssl command.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/testing/daemon.h"
#include "tests/testing/eventually.h"
#include "tests/testing/nginx.h"
#include "tests/testing/pki.h"
#include "tests/testing/temp_dir.h"

namespace {

using herald::test_support::Daemon;
using herald::test_support::Eventually;
using herald::test_support::Nginx;
using herald::test_support::NginxTls;
using herald::test_support::Pki;
using herald::test_support::ReadFile;
using herald::test_support::TempDir;

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string Upload(const std::string& id, const std::string& content,
                   const std::string& passphrase_b64 = "") {
  std::string body = R"({"certificateId":")" + id + R"(","certificateContent":")" + content + "\"";
  if (!passphrase_b64.empty()) body += R"(,"passphrase":")" + passphrase_b64 + "\"";
  return body + "}";
}

// Every file under `dir` holding a private key.
std::vector<std::filesystem::path> FilesWithKeys(const std::string& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && Has(ReadFile(e.path()), "PRIVATE KEY")) out.push_back(e.path());
  }
  return out;
}

TEST(Certificates, UploadListGetStatusAndDeleteInThePlatformsShapes) {
  Pki pki;
  TempDir data;
  const std::string bundle = pki.Content({"client.key", "client.pem", "ca.pem"});
  {
    Daemon d({"--listen", "127.0.0.1:0"}, data.path());
    ASSERT_NE(d.port(), 0) << d.output();
    auto r = d.Call("POST", "/subscriptions/1/certificates", Upload("client-1", bundle));
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.body, R"({"certificateId":"client-1","status":"READY"})");
    EXPECT_EQ(d.Call("POST", "/subscriptions/1/certificates", Upload("client-1", bundle)).status,
              409);

    // The key may come encrypted; its passphrase, base64 as the platform sends it, opens it.
    const std::string encrypted = pki.Content({"client.pem", "client-encrypted.key"});
    r = d.Call("POST", "/subscriptions/1/certificates",
               Upload("client-2", encrypted, "czNjcmV0"));  // "s3cret"
    EXPECT_EQ(r.status, 201) << r.body;
    r = d.Call("POST", "/subscriptions/1/certificates",
               Upload("client-3", encrypted, "d3Jvbmc="));  // "wrong"
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(Has(r.body, R"("passphrase":["does not open the private key)")) << r.body;

    // What cannot be used is refused, each with its field.
    r = d.Call("POST", "/subscriptions/1/certificates", R"({"certificateContent":"!!"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(Has(r.body, R"("certificateId":)") && Has(r.body, R"("certificateContent":)"))
        << r.body;
    r = d.Call("POST", "/subscriptions/1/certificates",
               Upload("no-key", pki.Content({"client.pem"})));
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(Has(r.body, "holds no private key")) << r.body;
    r = d.Call("POST", "/subscriptions/1/certificates",
               Upload("mismatch", pki.Content({"stranger.key", "client.pem"})));
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(Has(r.body, "none of its certificates is the private key's")) << r.body;
    // The platform's request example elides its PEM blocks ("..."): it has the right shape,
    // and is refused for what it holds, not for its shape.
    r = d.Call("POST", "/subscriptions/1/certificates",
               Upload("my-certificate-1",
                      "IyBQcml2YXRlIGtleSBvZiB0aGUgU1NMIGNlcnRpZmljYXRlCi0tLS0tQkVHSU4gUFJJVkFURSB"
                      "LRVktLS0tLQpNSUlFdmdJQkFEQU5CZ2txaGtpRzl3MEJBUUVGQUFTQ0JLZ3dnZ1NrQWdFQUFvSU"
                      "JBUURCajA4c3A1Kys0YW5HCi4uLgotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg==",
                      "TXk1dHJvbmdAUGE1NXBocmE1MyE="));
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(Has(r.body, R"("certificateContent":)")) << r.body;

    // Details: names (RFC 2253), validity in Unix ms, the decimal serial, the status.
    r = d.Call("GET", "/subscriptions/1/certificates/client-1");
    ASSERT_EQ(r.status, 200) << r.body;
    simdjson::dom::parser parser;
    simdjson::dom::element e = parser.parse(r.body);
    EXPECT_EQ(std::string_view(e["certificateId"]), "client-1");
    EXPECT_EQ(std::string_view(e["issuedBy"]), "CN=herald test CA");
    EXPECT_EQ(std::string_view(e["issuedTo"]), "O=herald tests,CN=herald client");
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    EXPECT_LE(int64_t(e["validFrom"]), now_ms);
    EXPECT_GT(int64_t(e["validUntil"]), now_ms + 29LL * 86400 * 1000);
    EXPECT_EQ(std::string_view(e["certificateStatus"]), "READY");
    const std::string serial{std::string_view(e["serialNumber"])};
    EXPECT_FALSE(serial.empty());
    EXPECT_EQ(serial.find_first_not_of("0123456789"), std::string::npos) << serial;
    EXPECT_EQ(d.Call("GET", "/subscriptions/1/certificates/nope").status, 404);

    // Lists: paged, searched, sorted by id either way.
    r = d.Call("GET", "/subscriptions/1/certificates?sortBy=CERTIFICATE_ID&direction=DESC");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_LT(r.body.find("client-2"), r.body.find("client-1")) << r.body;
    EXPECT_TRUE(Has(r.body, R"("paging":{"page":0,"size":20,"totalPages":1,"totalResults":2})"));
    r = d.Call("GET", "/subscriptions/1/certificates?size=1&page=1");
    EXPECT_TRUE(Has(r.body, "client-2") && !Has(r.body, "client-1")) << r.body;
    EXPECT_TRUE(Has(d.Call("GET", "/subscriptions/1/certificates?search=HERALD%20CLIENT").body,
                    R"("totalResults":2)"));
    EXPECT_TRUE(Has(d.Call("GET", "/subscriptions/1/certificates?search=client-2").body,
                    R"("totalResults":1)"));
    r = d.Call("GET", "/subscriptions/1/certificates?sortBy=NAME&direction=UP");
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(Has(r.body, R"("sortBy":)") && Has(r.body, R"("direction":)")) << r.body;
    r = d.Call("GET", "/subscriptions/1/certificates/status");
    EXPECT_TRUE(Has(r.body, R"({"certificateId":"client-1","status":"READY"})")) << r.body;
    r = d.Call("GET", "/subscriptions/1/certificates/status/client-2");
    EXPECT_EQ(r.body, R"({"certificateId":"client-2","status":"READY"})");
    EXPECT_EQ(d.Call("GET", "/subscriptions/1/certificates/status/nope").status, 404);

    // A profile names one that exists; one in use cannot be deleted.
    r = d.Call(
        "POST", "/subscriptions/1/profiles",
        R"({"profileId":"p","clientCertificateId":"nope","webhook":{"notifyUrl":"https://x.example/h"}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(Has(r.body, R"("clientCertificateId":["certificate nope does not exist"])"))
        << r.body;
    ASSERT_EQ(
        d.Call(
             "POST", "/subscriptions/1/profiles",
             R"({"profileId":"p","clientCertificateId":"client-1","webhook":{"notifyUrl":"https://x.example/h"}})")
            .status,
        201);
    EXPECT_EQ(d.Call("DELETE", "/subscriptions/1/certificates/client-1").status, 409);
    r = d.Call("DELETE", "/subscriptions/1/certificates/client-2");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"certificateId":"client-2"})");
    EXPECT_EQ(d.Call("DELETE", "/subscriptions/1/certificates/client-2").status, 404);

    // The key is in no answer, and only in files no one else may read.
    for (const char* path :
         {"/subscriptions/1/certificates", "/subscriptions/1/certificates/client-1",
          "/subscriptions/1/profiles/p"}) {
      EXPECT_FALSE(Has(d.Call("GET", path).body, "PRIVATE")) << path;
    }
    EXPECT_EQ(d.Stop(), 0);
    EXPECT_FALSE(Has(d.log(), "PRIVATE KEY")) << d.log();
  }
  const auto files = FilesWithKeys(data.path());
  EXPECT_FALSE(files.empty());
  for (const auto& f : files) {
    struct stat st {};
    ASSERT_EQ(stat(f.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }

  // Kept across a restart; what was deleted stays deleted.
  Daemon again({"--listen", "127.0.0.1:0"}, data.path());
  EXPECT_EQ(again.Call("GET", "/subscriptions/1/certificates/client-1").status, 200);
  EXPECT_EQ(again.Call("GET", "/subscriptions/1/certificates/client-2").status, 404);
  EXPECT_EQ(again.Call("DELETE", "/subscriptions/1/certificates/client-1").status, 409);
  EXPECT_EQ(again.Stop(), 0);
}

// nginx demands a client certificate from the test CA: the profile presenting one is
// delivered; the one without, and the one with another CA's, are not.
TEST(Mtls, AProfileWithTheCertificateIsDeliveredOneWithoutItIsNot) {
  Pki pki;
  TempDir nginx_dir, tls13_dir, config_dir;
  const NginxTls demanding{.certificate = pki.path("server.pem"),
                           .key = pki.path("server.key"),
                           .client_ca = pki.path("ca.pem")};
  Nginx nginx(nginx_dir.path(), &demanding);
  ASSERT_TRUE(nginx.Accepts());
  const NginxTls tls13_only{
      .certificate = pki.path("server.pem"), .key = pki.path("server.key"), .protocols = "TLSv1.3"};
  Nginx tls13(tls13_dir.path(), &tls13_only);
  ASSERT_TRUE(tls13.Accepts());

  const std::string config = config_dir.path() + "/herald.toml";
  std::ofstream(config) << "[delivery]\nca_file = \"" << pki.path("ca.pem") << "\"\n";
  Daemon d({"--listen", "127.0.0.1:0", "--allow-private-targets", "--config", config});
  ASSERT_NE(d.port(), 0) << d.output();
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/certificates",
                   Upload("ours", pki.Content({"client.key", "client.pem"})))
                .status,
            201);
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/certificates",
                   Upload("theirs", pki.Content({"stranger.key", "stranger.pem"})))
                .status,
            201);

  struct Case {
    std::string id, url, extra;
  };
  const std::vector<Case> cases = {
      {"with", nginx.url(), R"("clientCertificateId":"ours",)"},
      {"without", nginx.url(), ""},
      {"stranger", nginx.url(), R"("clientCertificateId":"theirs",)"},
      {"tls12", tls13.url(), R"("enabledSSLProtocols":["TLSv1.2"],)"},
      {"tls13", tls13.url(), R"("enabledSSLProtocols":["TLSv1.3"],)"},
  };
  for (const Case& c : cases) {
    const std::string body =
        R"({"subscriptionId":")" + c.id + R"(","group":")" + c.id +
        R"(","events":["DELIVERY"],"profile":{"profileId":")" + c.id + R"(",)" + c.extra +
        R"("retry":{"delaysMs":[20],"maxAttempts":2},"webhook":{"notifyUrl":")" + c.url + R"("}}})";
    ASSERT_EQ(d.Call("POST", "/subscriptions/1/subscription/SMS", body).status, 201) << body;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(d.Call("POST", "/v1/events",
                     R"({"channel":"SMS","event":"DELIVERY","eventId":"e-)" + std::to_string(i) +
                         R"(","payload":{}})")
                  .status,
              202);
  }
  auto delivered = [&](const std::string& id) {
    return Has(d.Call("GET", "/metrics").body,
               R"(herald_webhook_delivered_total{profile=")" + id + R"("} 3)");
  };
  auto dead = [&](const std::string& id) {
    return Has(d.Call("GET", "/v1/dead-letters?profileId=" + id).body, R"("totalResults":3)");
  };
  ASSERT_TRUE(Eventually([&] {
    return delivered("with") && delivered("tls13") && dead("without") && dead("stranger") &&
           dead("tls12");
  })) << d.Call("GET", "/metrics").body;
  // nginx's own word: 200 for the certificate it trusts, 400 otherwise.
  int ok = 0, refused = 0;
  for (const auto& line : nginx.log()) (line[2] == "200" ? ok : refused)++;
  EXPECT_GE(ok, 1);
  EXPECT_GE(refused, 2);
  // The dead letters say why.
  EXPECT_TRUE(Has(d.Call("GET", "/v1/dead-letters?profileId=without").body, "400"));
  const std::string tls12 = d.Call("GET", "/v1/dead-letters?profileId=tls12").body;
  EXPECT_TRUE(Has(tls12, "TLS handshake")) << tls12;

  // The connection test: a handshake (and a request without a body), no event.
  const size_t before = nginx.log().size();
  auto test = [&](const std::string& id, const std::string& url) {
    return d.Call("POST", "/subscriptions/1/certificates/test/webhook",
                  R"({"certificateId":")" + id + R"(","webhookUrl":")" + url + R"("})");
  };
  auto r = test("ours", nginx.url());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            R"({"certificateId":"ours","webhookUrl":")" + nginx.url() + R"(","result":"SUCCESS"})");
  r = test("theirs", nginx.url());
  EXPECT_TRUE(Has(r.body, R"("result":"FAIL","failReasons":["the receiver refused the request )"
                          R"(with HTTP 400)"))
      << r.body;
  EXPECT_TRUE(Has(r.body, R"("hint":)"));
  r = test("ours", "http://127.0.0.1:1/hook");
  EXPECT_TRUE(Has(r.body, R"("result":"FAIL","failReasons":["the webhook URL is not https)"))
      << r.body;
  r = test("ours", "https://127.0.0.1:1/hook");
  EXPECT_TRUE(Has(r.body, R"("result":"FAIL","failReasons":["connect to 127.0.0.1:1)")) << r.body;
  EXPECT_EQ(test("nope", nginx.url()).status, 404);
  // The platform's request example, verbatim: answered in its shape (no receiver is there).
  ASSERT_EQ(d.Call("POST", "/subscriptions/1/certificates",
                   Upload("my-certificate-1", pki.Content({"client.key", "client.pem"})))
                .status,
            201);
  r = d.Call(
      "POST", "/subscriptions/1/certificates/test/webhook",
      R"({"certificateId": "my-certificate-1", "webhookUrl": "https://example.com/webhook-url"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(Has(
      r.body,
      R"({"certificateId":"my-certificate-1","webhookUrl":"https://example.com/webhook-url","result":")"))
      << r.body;
  EXPECT_EQ(
      d.Call("POST", "/subscriptions/1/certificates/test/webhook", R"({"certificateId":"ours"})")
          .status,
      400);
  for (size_t i = before; i < nginx.log().size(); ++i) EXPECT_EQ(nginx.log()[i][0], "OPTIONS");
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace
