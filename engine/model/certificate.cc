#include "herald/certificate.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <vector>

#include "engine/common/strings.h"
#include "herald/status.h"
#include "herald/subscription.h"

namespace herald {
namespace {

struct Free {
  void operator()(BIO* b) const { BIO_free(b); }
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(X509* x) const { X509_free(x); }
  void operator()(BIGNUM* n) const { BN_free(n); }
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

Owned<BIO> Reader(std::string_view pem) {
  return Owned<BIO>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string Drain(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

// OpenSSL's reason for the latest failure, and the queue emptied.
std::string LastError() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  const char* reason = code ? ERR_reason_error_string(code) : nullptr;
  return reason ? reason : "unreadable";
}

int Passphrase(char* buf, int size, int /*rwflag*/, void* user) {
  const auto* phrase = static_cast<const std::string_view*>(user);
  if (phrase->size() > static_cast<size_t>(size)) return -1;
  std::copy(phrase->begin(), phrase->end(), buf);
  return static_cast<int>(phrase->size());
}

std::vector<Owned<X509>> ReadCertificates(std::string_view pem) {
  std::vector<Owned<X509>> out;
  Owned<BIO> bio = Reader(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the end of the text reads as "no start line"
  return out;
}

absl::Status Refuse(std::string_view field, std::string message) {
  return ValidationError({{std::string(field), {std::move(message)}}});
}

std::string Name(X509_NAME* name) {
  Owned<BIO> out(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(out.get(), name, 0, XN_FLAG_RFC2253);
  return Drain(out.get());
}

int64_t Millis(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

}  // namespace

absl::StatusOr<ClientCertificate> ParseClientCertificate(std::string_view certificate_id,
                                                         std::string_view pem,
                                                         std::string_view passphrase) {
  if (!IsValidId(certificate_id)) {
    return Refuse("certificateId", "must be 1..255 characters of A-Z, a-z, 0-9, _ and -");
  }
  ERR_clear_error();
  Owned<BIO> bio = Reader(pem);
  std::string_view phrase = passphrase;
  Owned<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, Passphrase, &phrase));
  if (!key) {
    const unsigned long code = ERR_peek_last_error();
    const std::string why = LastError();
    // An encrypted key that does not open is the passphrase's fault, whatever the cipher says
    // ("bad decrypt", "pkcs12 cipherfinal error").
    const bool encrypted = pem.find("ENCRYPTED") != std::string_view::npos;
    if (encrypted || ERR_GET_REASON(code) == PEM_R_BAD_PASSWORD_READ) {
      return Refuse("passphrase", Cat("does not open the private key (", why, ")"));
    }
    return Refuse("certificateContent",
                  Cat("holds no private key that reads as PEM (", why,
                      "); expected a PRIVATE KEY block and the certificate chain"));
  }
  std::vector<Owned<X509>> chain = ReadCertificates(pem);
  if (chain.empty()) {
    return Refuse("certificateContent", "holds no CERTIFICATE block that reads as PEM");
  }
  // The key's certificate goes first; the rest keep their order.
  auto leaf = std::find_if(chain.begin(), chain.end(), [&](const Owned<X509>& x) {
    return X509_check_private_key(x.get(), key.get()) == 1;
  });
  ERR_clear_error();
  if (leaf == chain.end()) {
    return Refuse("certificateContent", "none of its certificates is the private key's");
  }
  std::rotate(chain.begin(), leaf, leaf + 1);
  // What TLS itself refuses (a key too small for the system's security level, say) is refused
  // now, not at every delivery.
  Owned<SSL_CTX> tls(SSL_CTX_new(TLS_client_method()));
  if (!tls || SSL_CTX_use_certificate(tls.get(), chain.front().get()) != 1 ||
      SSL_CTX_use_PrivateKey(tls.get(), key.get()) != 1) {
    return Refuse("certificateContent", Cat("TLS refuses this certificate: ", LastError()));
  }

  ClientCertificate out{.certificate_id = std::string(certificate_id)};
  Owned<BIO> key_pem(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PKCS8PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                    nullptr) != 1) {
    return Refuse("certificateContent", Cat("its private key cannot be kept: ", LastError()));
  }
  out.private_key_pem = Drain(key_pem.get());
  Owned<BIO> chain_pem(BIO_new(BIO_s_mem()));
  for (const auto& x : chain) PEM_write_bio_X509(chain_pem.get(), x.get());
  out.chain_pem = Drain(chain_pem.get());
  return out;
}

absl::StatusOr<CertificateDetails> DescribeCertificate(const ClientCertificate& certificate) {
  std::vector<Owned<X509>> chain = ReadCertificates(certificate.chain_pem);
  if (chain.empty()) {
    return absl::DataLossError(
        Cat("certificate ", certificate.certificate_id, ": its stored chain does not read"));
  }
  X509* leaf = chain.front().get();
  CertificateDetails d;
  d.issued_by = Name(X509_get_issuer_name(leaf));
  d.issued_to = Name(X509_get_subject_name(leaf));
  d.valid_from_ms = Millis(X509_get0_notBefore(leaf));
  d.valid_until_ms = Millis(X509_get0_notAfter(leaf));
  Owned<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), nullptr));
  if (serial) {
    char* text = BN_bn2dec(serial.get());
    if (text) d.serial_number = text;
    OPENSSL_free(text);
  }
  return d;
}

}  // namespace herald
