// Standard Webhooks' asymmetric keys (signature scheme v1a): an ED25519 security setting's
// secret is "whsk_" and the base64 of its 32-byte Ed25519 seed (a 64-byte seed-and-public-key
// form, as libsodium writes it, is taken too); receivers verify with "whpk_" and the base64 of
// the 32-byte public key.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace herald::model {

// The 32-byte seed; InvalidArgument saying what is wrong with `secret`.
absl::StatusOr<std::string> Ed25519Seed(std::string_view secret);
// "whpk_…" for a valid secret.
absl::StatusOr<std::string> Ed25519PublicKey(std::string_view secret);
// A new "whsk_…" from the system's randomness.
std::string NewEd25519Secret();

}  // namespace herald::model
