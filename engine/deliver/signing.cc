#include "engine/deliver/signing.h"

#include <openssl/evp.h>
#include <openssl/params.h>

#include <memory>
#include <vector>

#include "engine/common/strings.h"
#include "engine/model/ed25519_keys.h"

namespace herald::deliver {
namespace {

const char* DigestName(HmacAlgorithm algorithm) {
  switch (algorithm) {
    case HmacAlgorithm::kMd5:
      return "MD5";
    case HmacAlgorithm::kSha1:
      return "SHA1";
    case HmacAlgorithm::kSha224:
      return "SHA224";
    case HmacAlgorithm::kSha256:
      return "SHA256";
    case HmacAlgorithm::kSha384:
      return "SHA384";
    case HmacAlgorithm::kSha512:
      return "SHA512";
  }
  return "SHA256";
}

std::string_view Label(HmacAlgorithm algorithm) {
  switch (algorithm) {
    case HmacAlgorithm::kMd5:
      return "hmac-md5";
    case HmacAlgorithm::kSha1:
      return "hmac-sha1";
    case HmacAlgorithm::kSha224:
      return "hmac-sha224";
    case HmacAlgorithm::kSha256:
      return "v1";
    case HmacAlgorithm::kSha384:
      return "hmac-sha384";
    case HmacAlgorithm::kSha512:
      return "hmac-sha512";
  }
  return "v1";
}

// The signing key: "whsec_<base64>" decodes; anything else (or bad base64) is used as it is.
std::string Key(std::string_view secret) {
  constexpr std::string_view kPrefix = "whsec_";
  if (secret.substr(0, kPrefix.size()) != kPrefix) return std::string(secret);
  const std::string_view encoded = secret.substr(kPrefix.size());
  std::string key(encoded.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                                reinterpret_cast<const unsigned char*>(encoded.data()),
                                static_cast<int>(encoded.size()));
  if (n < 0 || encoded.size() % 4 != 0) return std::string(secret);
  // EVP_DecodeBlock counts the bytes that '=' padding stands for; drop them.
  size_t len = static_cast<size_t>(n);
  for (size_t i = encoded.size(); i > 0 && encoded[i - 1] == '='; --i) --len;
  key.resize(len);
  return key;
}

bool Unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void AppendFormField(std::string& out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  if (!out.empty()) out += '&';
  out += name;
  out += '=';
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : value) {
    if (Unreserved(c)) {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

}  // namespace

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string WebhookSignature(const SecuritySetting& security, std::string_view id,
                             int64_t timestamp, std::string_view body) {
  const std::string key = Key(security.secret_key);
  const std::string prefix = Cat(id, ".", timestamp, ".");
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;
  // Fetched once: the HMAC implementation is immutable and shared between threads.
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac);
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(
                             "digest", const_cast<char*>(DigestName(security.algorithm)), 0),
                         OSSL_PARAM_construct_end()};
  EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params);
  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(prefix.data()), prefix.size());
  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  EVP_MAC_final(ctx, mac, &mac_len, sizeof mac);
  EVP_MAC_CTX_free(ctx);
  return Cat(Label(security.algorithm), ",",
             Base64(std::string_view(reinterpret_cast<const char*>(mac), mac_len)));
}

std::string Ed25519WebhookSignature(const SecuritySetting& security, std::string_view id,
                                    int64_t timestamp, std::string_view body) {
  const auto seed = model::Ed25519Seed(security.secret_key);
  if (!seed.ok()) return "";
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                   reinterpret_cast<const unsigned char*>(seed->data()), 32),
      EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  // Ed25519 signs the whole message at once (no streaming): the content is assembled first.
  const std::string message = Cat(id, ".", timestamp, ".", body);
  unsigned char signature[64];
  size_t len = sizeof signature;
  if (!key || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), signature, &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return "";
  }
  return Cat("v1a,", Base64(std::string_view(reinterpret_cast<const char*>(signature), len)));
}

std::string WebhookSignatures(const SecuritySetting& security, std::string_view id,
                              int64_t timestamp, std::string_view body, int64_t now_ms) {
  auto sign = [&](const SecuritySetting& with) {
    return with.type == SecurityType::kEd25519 ? Ed25519WebhookSignature(with, id, timestamp, body)
                                               : WebhookSignature(with, id, timestamp, body);
  };
  std::string out = sign(security);
  const bool expired =
      security.previous_keys_expire_at_ms != 0 && now_ms >= security.previous_keys_expire_at_ms;
  if (security.previous_secret_keys.empty() || expired) return out;
  SecuritySetting previous;
  previous.type = security.type;
  previous.algorithm = security.algorithm;
  for (const auto& key : security.previous_secret_keys) {
    previous.secret_key = key;
    const std::string one = sign(previous);
    if (!one.empty()) out += " " + one;
  }
  return out;
}

std::string BasicAuthorization(std::string_view username, std::string_view password) {
  return Cat("Basic ", Base64(Cat(username, ":", password)));
}

std::string TokenRequestForm(const SecuritySetting& security) {
  std::string form;
  AppendFormField(form, "grant_type",
                  security.grant_type.empty() ? "client_credentials" : security.grant_type);
  AppendFormField(form, "client_id", security.client_id);
  AppendFormField(form, "client_secret", security.client_secret);
  AppendFormField(form, "scope", security.scope);
  AppendFormField(form, "resource", security.resource);
  if (security.grant_type == "password") {
    AppendFormField(form, "username", security.username);
    AppendFormField(form, "password", security.password);
  }
  if (security.grant_type == "refresh_token") {
    AppendFormField(form, "refresh_token", security.refresh_token);
  }
  return form;
}

}  // namespace herald::deliver
