#include "engine/deliver/http_client.h"

// clang-format off
#include <utility>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
// clang-format on

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "engine/common/http_syntax.h"
#include "engine/common/strings.h"
#include "engine/deliver/address_guard.h"

namespace herald::deliver {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// A worker's io_context runs on one thread: streams name its executor type, rather than Asio's
// type-erased any_io_executor, which would copy a ref-counted executor at every operation.
using Stream = beast::basic_stream<tcp, asio::io_context::executor_type>;

struct HttpClient::Connection {
  std::unique_ptr<Stream> plain;
  std::unique_ptr<beast::ssl_stream<Stream>> tls;
  beast::flat_buffer buffer;
  Stream& lowest() { return tls ? tls->next_layer() : *plain; }
};

namespace {

constexpr size_t kMaxRequestHeaderBytes = 8192;

beast::string_view View(std::string_view s) { return {s.data(), s.size()}; }

std::string Describe(std::string_view step, const beast::error_code& ec,
                     std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) return Cat(step, ": timed out after ", timeout.count(), " ms");
  return Cat(step, ": ", ec.message());
}

// What makes a request unsendable ("" when nothing does): a header that is not valid HTTP, or
// headers over the 8 KiB a receiver's server takes (nginx's default, DESIGN §5).
std::string InvalidHeader(const ClientRequest& request) {
  if (!IsHeaderValue(request.content_type)) return "the content type has a control character";
  // The request line, host, user-agent, content-type and content-length lines, the blank line.
  size_t bytes = request.url->target.size() + 16 + request.url->host_header.size() + 8 + 20 +
                 request.content_type.size() + 16 + 40 + 2;
  if (request.headers) {
    for (const auto& [name, value] : *request.headers) {
      if (!IsHeaderName(name)) return "a header name is not an HTTP token";
      if (!IsHeaderValue(value)) return Cat("header \"", name, "\" has a control character");
      bytes += name.size() + value.size() + 4;
    }
  }
  if (bytes > kMaxRequestHeaderBytes) {
    return Cat("the request headers would be ", bytes, " bytes, over the ", kMaxRequestHeaderBytes,
               " a receiver is sure to take");
  }
  return "";
}

}  // namespace

HttpClient::HttpClient(asio::io_context& io, Options options)
    : io_(io), options_(std::move(options)), tls_(asio::ssl::context::tls_client) {}

HttpClient::~HttpClient() = default;

absl::Status HttpClient::Verify(asio::ssl::context& context) const {
  beast::error_code ec;
  context.set_verify_mode(asio::ssl::verify_peer, ec);
  if (!ec) {
    if (options_.ca_file.empty()) {
      context.set_default_verify_paths(ec);
    } else {
      context.load_verify_file(options_.ca_file, ec);
    }
  }
  if (ec) {
    return absl::InvalidArgumentError(Cat("TLS CA file ",
                                          options_.ca_file.empty() ? "(system)" : options_.ca_file,
                                          ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(asio::io_context& io,
                                                               Options options) {
  std::unique_ptr<HttpClient> client(new HttpClient(io, std::move(options)));
  if (absl::Status s = client->Verify(client->tls_); !s.ok()) return s;
  return client;
}

absl::StatusOr<std::shared_ptr<const TlsSettings>> HttpClient::Tls(
    const ClientCertificate* certificate, const std::vector<std::string>& protocols) {
  std::string key;
  if (certificate) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    std::string material = certificate->private_key_pem + certificate->chain_pem;
    SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest);
    OPENSSL_cleanse(material.data(), material.size());
    key = Cat(certificate->certificate_id, "#");
    constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < 8; ++i) {
      key.push_back(kHex[digest[i] >> 4]);
      key.push_back(kHex[digest[i] & 15]);
    }
  }
  std::vector<std::string> versions = protocols;
  std::sort(versions.begin(), versions.end());
  for (const std::string& v : versions) key += Cat("/", v);
  if (auto it = tls_by_key_.find(key); it != tls_by_key_.end()) {
    if (auto live = it->second.lock()) return live;
  }
  absl::erase_if(tls_by_key_, [](const auto& entry) { return entry.second.expired(); });

  auto settings = std::make_shared<TlsSettings>();
  settings->key = key;
  if (absl::Status s = Verify(settings->context); !s.ok()) return s;
  beast::error_code ec;
  if (certificate) {
    const auto& c = *certificate;
    settings->context.use_certificate_chain(asio::buffer(c.chain_pem), ec);
    if (ec) {
      return absl::InvalidArgumentError(
          Cat("certificate ", c.certificate_id, ": its chain does not load: ", ec.message()));
    }
    settings->context.use_private_key(asio::buffer(c.private_key_pem), asio::ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          Cat("certificate ", c.certificate_id, ": its key does not load: ", ec.message()));
    }
  }
  if (!versions.empty()) {
    // Only the versions listed (validated: TLSv1.2, TLSv1.3); the older ones never.
    long off = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
    auto listed = [&](std::string_view v) {
      return std::find(versions.begin(), versions.end(), v) != versions.end();
    };
    if (!listed("TLSv1.2")) off |= SSL_OP_NO_TLSv1_2;
    if (!listed("TLSv1.3")) off |= SSL_OP_NO_TLSv1_3;
    SSL_CTX_set_options(settings->context.native_handle(), off);
  }
  tls_by_key_[key] = settings;
  return std::shared_ptr<const TlsSettings>(std::move(settings));
}

void HttpClient::CloseIdle() { idle_.clear(); }

asio::awaitable<std::unique_ptr<HttpClient::Connection>> HttpClient::Connect(
    const ClientRequest& request, ClientResponse& response) {
  const Url& url = *request.url;
  const auto redirect = [](beast::error_code& ec) {
    return asio::redirect_error(asio::use_awaitable, ec);
  };
  // Resolve, connect and handshake share the connect timeout.
  const auto deadline = std::chrono::steady_clock::now() + request.connect_timeout;
  beast::error_code ec;
  std::vector<tcp::endpoint> endpoints;
  const auto literal = asio::ip::make_address(url.host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, url.port);
  } else {
    // Locals, not temporaries, in co_await expressions: GCC 12 destroys those twice.
    std::string host = url.host;
    auto addresses = co_await options_.resolver->Resolve(std::move(host), request.connect_timeout);
    if (!addresses.ok()) {
      response.error = std::string(addresses.status().message());
      co_return nullptr;
    }
    for (const auto& address : *addresses) endpoints.emplace_back(address, url.port);
  }
  if (!options_.allow_private_targets) {
    std::erase_if(endpoints, [](const tcp::endpoint& e) { return !IsPublicAddress(e.address()); });
    if (endpoints.empty()) {
      response.error = Cat("refused: ", url.host,
                           " is a loopback, private, link-local or multicast address "
                           "(allow_private_targets is off)");
      response.refused = true;
      co_return nullptr;
    }
  }
  auto connection = std::make_unique<Connection>();
  if (url.tls) {
    // Beast's stream takes the context by reference to copy its settings into the SSL object.
    auto& context = request.tls ? const_cast<asio::ssl::context&>(request.tls->context) : tls_;
    connection->tls = std::make_unique<beast::ssl_stream<Stream>>(io_, context);
  } else {
    connection->plain = std::make_unique<Stream>(io_);
  }
  Stream& stream = connection->lowest();
  stream.expires_at(deadline);
  co_await stream.async_connect(endpoints, redirect(ec));
  if (ec) {
    response.error = Describe(Cat("connect to ", url.host_header), ec, request.connect_timeout);
    co_return nullptr;
  }
  stream.socket().set_option(tcp::no_delay(true), ec);
  if (url.tls) {
    SSL* ssl = connection->tls->native_handle();
    if (!SSL_set_tlsext_host_name(ssl, url.host.c_str())) {
      response.error = Cat("TLS: cannot set the server name ", url.host);
      co_return nullptr;
    }
    connection->tls->set_verify_callback(asio::ssl::host_name_verification(url.host));
    co_await connection->tls->async_handshake(asio::ssl::stream_base::client, redirect(ec));
    if (ec) {
      const long verify = SSL_get_verify_result(ssl);
      response.error =
          Describe(Cat("TLS handshake with ", url.host_header), ec, request.connect_timeout);
      if (verify != X509_V_OK) {
        response.error += Cat(" (", X509_verify_cert_error_string(verify), ")");
      }
      co_return nullptr;
    }
  }
  stream.expires_never();
  co_return connection;
}

template <typename Stream>
asio::awaitable<void> HttpClient::Exchange(Stream& stream, Connection& connection,
                                           const ClientRequest& request, ClientResponse& response,
                                           bool& keep_alive, bool& got_bytes) {
  http::request<http::span_body<const char>> message{
      request.options ? http::verb::options : http::verb::post, request.url->target, 11};
  message.set(http::field::host, View(request.url->host_header));
  message.set(http::field::user_agent, "herald");
  if (!request.content_type.empty()) {
    message.set(http::field::content_type, View(request.content_type));
  }
  if (request.headers) {
    for (const auto& [name, value] : *request.headers) message.insert(View(name), View(value));
  }
  message.body() = {request.body.data(), request.body.size()};
  message.prepare_payload();
  message.keep_alive(true);

  beast::error_code ec;
  connection.lowest().expires_after(request.read_timeout);
  co_await http::async_write(stream, message, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    response.error = Describe("send", ec, request.read_timeout);
    got_bytes = ec == beast::error::timeout;  // a slow receiver, not a stale connection
    co_return;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  co_await http::async_read(stream, connection.buffer, parser,
                            asio::redirect_error(asio::use_awaitable, ec));
  got_bytes = parser.got_some() || ec == beast::error::timeout;
  if (ec == http::error::body_limit && parser.is_header_done()) {
    // The status is what matters; the oversized body is dropped with the connection.
    response.status = static_cast<int>(parser.get().result_int());
    const auto retry_after = parser.get()[http::field::retry_after];
    response.retry_after.assign(retry_after.data(), retry_after.size());
    co_return;
  }
  if (ec) {
    response.error = Describe("response", ec, request.read_timeout);
    co_return;
  }
  connection.lowest().expires_never();
  auto& r = parser.get();
  response.status = static_cast<int>(r.result_int());
  response.reason = std::string(r.reason());
  const auto retry_after = r[http::field::retry_after];
  response.retry_after.assign(retry_after.data(), retry_after.size());
  response.body = std::move(r.body());
  if (request.options) {
    for (const auto& field : r) {
      const beast::string_view name = field.name_string();
      response.headers.emplace_back(
          absl::AsciiStrToLower(absl::string_view(name.data(), name.size())),
          std::string(field.value().data(), field.value().size()));
    }
  }
  keep_alive = r.keep_alive();
}

asio::awaitable<ClientResponse> HttpClient::Send(ClientRequest request) {
  // Checked when the profile was written; checked again here, so nothing unchecked (a token an
  // endpoint sent, a profile from an older store) reaches the wire.
  if (std::string bad = InvalidHeader(request); !bad.empty()) {
    ClientResponse refused{.error = Cat("refused to send: ", bad), .refused = true};
    co_return refused;
  }
  const std::string key =
      request.tls ? Cat(request.url->origin, "\n", request.tls->key) : request.url->origin;
  for (int round = 0;; ++round) {
    ClientResponse response;
    std::unique_ptr<Connection> connection;
    auto it = idle_.find(key);
    if (round > 0 && it != idle_.end()) {
      it->second.clear();  // the peer closed its idle connections: the others are stale too
    } else if (it != idle_.end() && !it->second.empty()) {
      connection = std::move(it->second.back());
      it->second.pop_back();
    }
    const bool reused = connection != nullptr;
    if (!connection) {
      connection = co_await Connect(request, response);
      if (!connection) co_return response;
    }
    bool keep_alive = false, got_bytes = false;
    if (connection->tls) {
      co_await Exchange(*connection->tls, *connection, request, response, keep_alive, got_bytes);
    } else {
      co_await Exchange(*connection->plain, *connection, request, response, keep_alive, got_bytes);
    }
    // A pooled connection the receiver closed while idle fails before any response byte.
    if (response.status == 0 && reused && !got_bytes && round == 0) continue;
    if (response.status != 0 && keep_alive) {
      auto& pool = idle_[key];
      if (pool.size() < options_.max_idle_per_origin) pool.push_back(std::move(connection));
    }
    co_return response;
  }
}

}  // namespace herald::deliver
