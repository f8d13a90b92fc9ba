// Request authentication (DESIGN §5): Standard Webhooks signatures for HMAC security settings,
// Basic credentials, and the form body of an OAuth client-credentials token request.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "herald/subscription.h"

namespace herald::deliver {

std::string Base64(std::string_view bytes);

// The `webhook-signature` value for an HMAC setting, over "<id>.<timestamp>.<body>":
// HMAC_SHA_256 → "v1,<base64>" (Standard Webhooks); the others "<alg>,<base64>", e.g.
// "hmac-sha512,…". The key is the base64 after "whsec_" when the secret has that prefix, else the
// secret's bytes as they are.
std::string WebhookSignature(const SecuritySetting& security, std::string_view id,
                             int64_t timestamp, std::string_view body);

// The `webhook-signature` value for an ED25519 setting: "v1a,<base64>", Ed25519 over
// "<id>.<timestamp>.<body>" (Standard Webhooks' asymmetric scheme); empty when the secret is not
// a valid whsk_ key (validated at write time).
std::string Ed25519WebhookSignature(const SecuritySetting& security, std::string_view id,
                                    int64_t timestamp, std::string_view body);

// The `webhook-signature` of an HMAC or ED25519 setting: its key's signature, then one per
// previous key while they are kept (until previous_keys_expire_at_ms), space-separated.
std::string WebhookSignatures(const SecuritySetting& security, std::string_view id,
                              int64_t timestamp, std::string_view body, int64_t now_ms);

// "Basic base64(username:password)".
std::string BasicAuthorization(std::string_view username, std::string_view password);

// application/x-www-form-urlencoded body of a token request for an OAUTH setting: its grantType
// (client_credentials, or password / refresh_token with their fields) with the client's id,
// secret, scope and resource when set.
std::string TokenRequestForm(const SecuritySetting& security);

}  // namespace herald::deliver
