// JSON for the management plane, in the shapes of the platform's Subscriptions API (OpenAPI
// v3.210.0): decoding requests into the model, encoding the model into responses. Decoding checks
// shape (types, enum values) and reports problems per field, as validationErrors; ranges and
// references are checked by Validate() and the engine. Encoding never writes a secret.
//
// Stateless; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "herald/certificate.h"
#include "herald/status.h"
#include "herald/subscription.h"
#include "simdjson.h"

namespace herald::model {

// A subscription request may define its profile (and the profile its security setting) inline.
struct SubscriptionRequest {
  Subscription subscription;
  std::optional<NotificationProfile> inline_profile;
  std::optional<SecuritySetting> inline_security;
};

struct ProfileRequest {
  NotificationProfile profile;
  std::optional<SecuritySetting> inline_security;
};

// `channel` fills Subscription::channel when the body has none (it comes from the URL path).
absl::StatusOr<SubscriptionRequest> DecodeSubscription(simdjson::dom::element json,
                                                       std::string_view channel = {});
absl::StatusOr<ProfileRequest> DecodeProfile(simdjson::dom::element json);
absl::StatusOr<SecuritySetting> DecodeSecurity(simdjson::dom::element json);

// Parses text then decodes; malformed JSON is a BAD_REQUEST-style InvalidArgument.
absl::StatusOr<SubscriptionRequest> DecodeSubscription(std::string_view text,
                                                       std::string_view channel = {});
absl::StatusOr<ProfileRequest> DecodeProfile(std::string_view text);
absl::StatusOr<SecuritySetting> DecodeSecurity(std::string_view text);

// POST /subscriptions/1/certificates, its base64 fields decoded (ParseClientCertificate reads
// the PEM), and POST …/certificates/test/webhook.
struct CertificateUpload {
  std::string certificate_id;
  std::string pem;
  std::string passphrase;
};
absl::StatusOr<CertificateUpload> DecodeCertificateUpload(std::string_view text);
struct ConnectionTest {
  std::string certificate_id;
  std::string webhook_url;
};
absl::StatusOr<ConnectionTest> DecodeConnectionTest(std::string_view text);
// CertificateDetailsResponse; the private key is never part of it.
std::string EncodeCertificateDetails(const ClientCertificate& certificate,
                                     const CertificateDetails& details, std::string_view status);

std::string EncodeSubscription(const Subscription& s, const NotificationProfile* profile);
// Header values that look like credentials are masked unless `mask` is false (the store).
std::string EncodeProfile(const NotificationProfile& p, bool mask = true);
// A value GET masked ("********") and sent back means "keep the stored one": these put the stored
// secrets (of a setting of the same type) and header values back, and refuse a mask with nothing
// stored behind it (400 naming the field).
absl::Status RestoreMaskedSecrets(SecuritySetting& s, const SecuritySetting* stored);
absl::Status RestoreMaskedHeaders(NotificationProfile& p, const NotificationProfile* stored);
// Secrets (password, secretKey, clientSecret, refreshToken) are masked unless `mask` is false,
// which only the store uses, to write them to data_dir.
std::string EncodeSecurity(const SecuritySetting& s, bool mask = true);

}  // namespace herald::model
