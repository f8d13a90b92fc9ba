// The platform's certificates API (DESIGN §4): upload, list, get, delete, status and the
// connection test. Answers show a certificate's names, validity and status, never its key.
#include <algorithm>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/model/json_codec.h"
#include "engine/server/http_api.h"
#include "engine/server/http_reply.h"

namespace herald::server {
namespace {

constexpr std::chrono::milliseconds kTestTimeout{NotificationProfile::kDefaultConnectTimeoutMs};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Described {
  ClientCertificate certificate;
  CertificateDetails details;
  std::string_view status;
};

Described Describe(ClientCertificate certificate) {
  Described d{.certificate = std::move(certificate)};
  // A stored chain that no longer reads shows empty names, and as expired: it cannot be used.
  auto details = DescribeCertificate(d.certificate);
  if (details.ok()) d.details = std::move(*details);
  d.status = d.details.valid_until_ms < NowMs() ? "EXPIRED" : "READY";
  return d;
}

std::string StatusBody(std::string_view id, std::string_view status) {
  std::string out;
  JsonWriter(out).BeginObject().Field("certificateId", id).Field("status", status).EndObject();
  return out;
}

// ?search&sortBy&direction of the lists: the certificates they ask for, by id.
absl::StatusOr<std::vector<Described>> Listed(const Engine& engine, const Query& query) {
  ValidationErrors errors;
  const std::string sort_by = Value(query, "sortBy");
  if (!sort_by.empty() && sort_by != "CERTIFICATE_ID") {
    errors["sortBy"].push_back("must be CERTIFICATE_ID");
  }
  const std::string direction = Value(query, "direction");
  if (!direction.empty() && direction != "ASC" && direction != "DESC") {
    errors["direction"].push_back("must be ASC or DESC");
  }
  if (!errors.empty()) return ValidationError(errors);
  // Case-insensitive, in the id and the certificate's names.
  const std::string search = absl::AsciiStrToLower(Value(query, "search"));
  std::vector<Described> out;
  for (ClientCertificate& c : engine.ListCertificates()) {
    Described d = Describe(std::move(c));
    auto has = [&](const std::string& s) {
      return absl::StrContains(absl::AsciiStrToLower(s), search);
    };
    if (search.empty() || has(d.certificate.certificate_id) || has(d.details.issued_to) ||
        has(d.details.issued_by)) {
      out.push_back(std::move(d));
    }
  }
  if (direction == "DESC") std::reverse(out.begin(), out.end());  // listed by id
  return out;
}

}  // namespace

// The page of certificates a list asks for (?page&size&search&sortBy&direction), each encoded.
template <typename Encode>
void HttpApi::AnswerPage(Call& call, Encode encode) {
  auto paging = ParsePaging(call.query);
  if (!paging.ok()) return FromStatus(call.response, paging.status());
  auto listed = Listed(engine_, call.query);
  if (!listed.ok()) return FromStatus(call.response, listed.status());
  Json(call.response, 200, Page(*listed, *paging, encode));
}

void HttpApi::CreateCertificate(Call& call) {
  auto upload = model::DecodeCertificateUpload(call.request.body);
  if (!upload.ok()) return FromStatus(call.response, upload.status());
  if (upload->certificate_id == "status" || upload->certificate_id == "test") {
    // …/certificates/status and …/test are the API's own paths.
    return FromStatus(
        call.response,
        ValidationError({{"certificateId", {"\"status\" and \"test\" are reserved"}}}));
  }
  auto certificate =
      ParseClientCertificate(upload->certificate_id, upload->pem, upload->passphrase);
  if (!certificate.ok()) return FromStatus(call.response, certificate.status());
  const std::string id = certificate->certificate_id;
  if (auto st = management_.CreateCertificate(*certificate); !st.ok()) {
    return FromStatus(call.response, st);
  }
  Json(call.response, 201, StatusBody(id, Describe(std::move(*certificate)).status));
  call.response.headers.emplace_back("Location", Cat("/subscriptions/1/certificates/", id));
}

void HttpApi::ListCertificates(Call& call) {
  AnswerPage(call, [](const Described& d) {
    return model::EncodeCertificateDetails(d.certificate, d.details, d.status);
  });
}

void HttpApi::GetCertificate(Call& call) {
  auto c = engine_.GetCertificate(call.params[0]);
  if (!c.ok()) return FromStatus(call.response, c.status());
  const Described d = Describe(std::move(*c));
  Json(call.response, 200, model::EncodeCertificateDetails(d.certificate, d.details, d.status));
}

void HttpApi::DeleteCertificate(Call& call) {
  const std::string& id = call.params[0];
  if (auto st = management_.DeleteCertificate(id); !st.ok()) return FromStatus(call.response, st);
  Json(call.response, 200, IdBody("certificateId", id));
}

void HttpApi::ListCertificateStatuses(Call& call) {
  AnswerPage(call,
             [](const Described& d) { return StatusBody(d.certificate.certificate_id, d.status); });
}

void HttpApi::GetCertificateStatus(Call& call) {
  auto c = engine_.GetCertificate(call.params[0]);
  if (!c.ok()) return FromStatus(call.response, c.status());
  const std::string id = c->certificate_id;
  Json(call.response, 200, StatusBody(id, Describe(std::move(*c)).status));
}

// A TLS handshake presenting the certificate, on a delivery worker; the answer waits for it
// without holding an io thread.
void HttpApi::TestCertificateConnection(Call& call) {
  auto test = model::DecodeConnectionTest(call.request.body);
  if (!test.ok()) return FromStatus(call.response, test.status());
  auto certificate = engine_.GetCertificate(test->certificate_id);
  if (!certificate.ok()) return FromStatus(call.response, certificate.status());
  if (!deliverer_) {
    return Error(call.response, 503, "SERVICE_UNAVAILABLE", "this daemon delivers no webhooks");
  }
  call.response.wait = [this, test = std::move(*test), certificate = std::move(*certificate)](
                           HttpResponse::Resume resume) mutable {
    const std::string id = test.certificate_id, url = test.webhook_url;
    deliverer_->TestConnection(
        test.webhook_url, std::move(certificate), kTestTimeout,
        [resume = std::move(resume), id, url](const absl::Status& s) {
          std::string body;
          JsonWriter w(body);
          w.BeginObject().Field("certificateId", id).Field("webhookUrl", url);
          if (s.ok()) {
            w.Field("result", "SUCCESS");
          } else {
            w.Field("result", "FAIL").Key("failReasons").BeginArray();
            w.String(ToStd(s.message())).EndArray();
            w.Field("hint",
                    "The receiver must take TLS connections from this daemon, and trust the "
                    "issuer of the certificate if it asks for one.");
          }
          w.EndObject();
          HttpResponse answer;
          Json(answer, 200, std::move(body));
          resume(&answer);
        });
  };
}

}  // namespace herald::server
