// Client certificates (the platform's certificates API, DESIGN §2): a private key and its
// certificate chain, presented on every TLS connection to the receivers of the profiles that name
// it (mTLS). The key is held unencrypted once its upload's passphrase opened it; heraldd keeps it
// only in files of mode 0600 and never returns or logs it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace herald {

struct ClientCertificate {
  std::string certificate_id;
  std::string private_key_pem;  // PKCS#8, unencrypted
  std::string chain_pem;        // the key's certificate first, then the rest of the chain
  bool operator==(const ClientCertificate&) const = default;
};

// What the API shows of a certificate: its leaf's names (RFC 2253), validity (Unix ms) and
// decimal serial number.
struct CertificateDetails {
  std::string issued_by;
  std::string issued_to;
  int64_t valid_from_ms = 0;
  int64_t valid_until_ms = 0;
  std::string serial_number;
};

// A PEM text holding one private key (encrypted with `passphrase`, or not) and the certificates
// of its chain, in any order, comments between blocks allowed. Returns it normalized; a
// validation error on "certificateContent" (or "passphrase") saying what is wrong: no key, no
// certificate, a passphrase that does not open the key, no certificate for the key.
absl::StatusOr<ClientCertificate> ParseClientCertificate(std::string_view certificate_id,
                                                         std::string_view pem,
                                                         std::string_view passphrase);

// DataLoss when the stored chain no longer reads.
absl::StatusOr<CertificateDetails> DescribeCertificate(const ClientCertificate& certificate);

}  // namespace herald
