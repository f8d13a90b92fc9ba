// The deliverer's HTTP/1.1 client on Boost.Beast, one per delivery worker (single-threaded: it
// runs on its worker's io_context). Keep-alive connections are pooled per origin (scheme, host,
// port); TLS verifies the peer's chain (system CAs, or a CA file) and host name. Each request has
// a connect timeout (resolve, connect and TLS handshake together) and a read timeout (writing the
// request and reading the whole response, so a receiver that trickles bytes is cut off). Redirects
// are not followed. A reused connection the peer had closed is retried once on a fresh one.
// A profile's TLS settings (a client certificate for mTLS, the TLS versions it allows) get a TLS
// context of their own, and connections made with it a pool of their own.
#pragma once

// clang-format off
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
// clang-format on
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/deliver/resolver.h"
#include "engine/deliver/url.h"
#include "herald/certificate.h"

namespace herald::deliver {

// A TLS context other than the client's default, with the name its connections are pooled under.
struct TlsSettings {
  std::string key;  // the certificate's id and content digest, and the versions
  boost::asio::ssl::context context{boost::asio::ssl::context::tls_client};
};

struct ClientRequest {
  const Url* url = nullptr;
  const TlsSettings* tls = nullptr;  // null: the client's default context
  bool options = false;              // OPTIONS instead of POST (a probe; no body)
  std::string_view content_type;     // none when empty
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;
  std::string_view body;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{10000};
};

struct ClientResponse {
  int status = 0;        // 0: no response; `error` says why
  std::string reason;    // the status line's reason phrase, e.g. "OK"
  std::string error;     // transport failure (connect, TLS, timeout, reset, refused target)
  bool refused = false;  // the target was refused by policy (private address): do not retry
  std::string retry_after;
  std::string body;  // at most Options::max_response_bytes
  // The response's headers, names lowercase: for OPTIONS requests only (a POST's are not kept).
  std::vector<std::pair<std::string, std::string>> headers;
};

class HttpClient {
 public:
  struct Options {
    std::string ca_file;  // empty: the system's CAs
    bool allow_private_targets = false;
    size_t max_idle_per_origin = 256;
    size_t max_response_bytes = 1 << 20;
    Resolver* resolver = nullptr;  // host names; required, outlives the client
  };

  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(boost::asio::io_context& io,
                                                            Options options);
  ~HttpClient();

  boost::asio::awaitable<ClientResponse> Send(ClientRequest request);
  // The context presenting `certificate` (none when null) and allowing only `protocols`
  // ("TLSv1.2", "TLSv1.3"; all the system allows when empty), verifying receivers as the default
  // does. A context lives while a config holds it (a refresh finds it again by its key, so pools
  // outlive refreshes); then its key material is freed. InvalidArgument when the certificate or
  // key does not load.
  absl::StatusOr<std::shared_ptr<const TlsSettings>> Tls(const ClientCertificate* certificate,
                                                         const std::vector<std::string>& protocols);

  // Closes pooled idle connections (on shutdown).
  void CloseIdle();

 private:
  struct Connection;
  HttpClient(boost::asio::io_context& io, Options options);
  boost::asio::awaitable<std::unique_ptr<Connection>> Connect(const ClientRequest& request,
                                                              ClientResponse& response);
  template <typename Stream>
  boost::asio::awaitable<void> Exchange(Stream& stream, Connection& connection,
                                        const ClientRequest& request, ClientResponse& response,
                                        bool& keep_alive, bool& got_bytes);

  // Peer verification with the system's CAs or options_.ca_file.
  absl::Status Verify(boost::asio::ssl::context& context) const;

  boost::asio::io_context& io_;
  const Options options_;
  boost::asio::ssl::context tls_;
  absl::flat_hash_map<std::string, std::weak_ptr<const TlsSettings>> tls_by_key_;
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
};

}  // namespace herald::deliver
