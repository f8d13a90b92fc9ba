#include "engine/model/ed25519_keys.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "absl/strings/escaping.h"

namespace herald::model {
namespace {
constexpr std::string_view kSecretPrefix = "whsk_";
constexpr std::string_view kPublicPrefix = "whpk_";
}  // namespace

absl::StatusOr<std::string> Ed25519Seed(std::string_view secret) {
  if (!secret.starts_with(kSecretPrefix)) {
    return absl::InvalidArgumentError("must start with whsk_ (or be left out to have one made)");
  }
  std::string key;
  const std::string encoded(secret.substr(kSecretPrefix.size()));
  if (!absl::Base64Unescape(encoded, &key) || (key.size() != 32 && key.size() != 64)) {
    return absl::InvalidArgumentError("must be whsk_ and the base64 of a 32-byte Ed25519 seed");
  }
  key.resize(32);
  return key;
}

absl::StatusOr<std::string> Ed25519PublicKey(std::string_view secret) {
  auto seed = Ed25519Seed(secret);
  if (!seed.ok()) return seed.status();
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                   reinterpret_cast<const unsigned char*>(seed->data()), 32),
      EVP_PKEY_free);
  unsigned char pub[32];
  size_t len = sizeof pub;
  if (!key || EVP_PKEY_get_raw_public_key(key.get(), pub, &len) != 1 || len != 32) {
    return absl::InternalError("OpenSSL could not derive the Ed25519 public key");
  }
  return std::string(kPublicPrefix) +
         absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(pub), len));
}

std::string NewEd25519Secret() {
  unsigned char seed[32];
  if (RAND_bytes(seed, sizeof seed) != 1) std::abort();  // no randomness: nothing is safe
  return std::string(kSecretPrefix) +
         absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(seed), sizeof seed));
}

}  // namespace herald::model
