#include "engine/server/http_server.h"

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>

#include "engine/common/strings.h"

namespace herald::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kIdleTimeout = std::chrono::seconds(60);
}

class Session;

struct HttpServer::Impl {
  Options options;
  Handler handler;
  HeaderCheck check;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::mutex sessions_mu;
  std::set<std::shared_ptr<Session>> sessions;

  void Accept();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {}

  void Start() { Read(); }
  // Closes the connection if it is idle between requests; a request in flight completes first.
  void CloseIfIdle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      // A request partly received is in flight too: let it finish.
      if (!self->busy_ && !(self->parser_ && self->parser_->got_some())) self->Close();
    });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    stream_.expires_after(kIdleTimeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  HttpRequest RequestLine() {
    auto& req = parser_->get();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.content_type = std::string(req[http::field::content_type]);
    request.authorization = std::string(req[http::field::authorization]);
    return request;
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return Close();
    busy_ = true;
    if (server_->check) {
      size_t limit = server_->options.max_body_bytes;
      HttpResponse early;
      if (!server_->check(RequestLine(), early, &limit)) {
        // Refused before its body is read: answer, then close gently (see LingerClose).
        linger_ = true;
        return Write(early, /*keep_alive=*/false);
      }
      limit = std::min(limit, server_->options.max_body_bytes);
      // Beast checks a declared Content-Length against the limit in force when it parsed the
      // header, so a tighter per-route limit is checked here; chunked bodies hit body_limit.
      if (const auto length = parser_->content_length(); length && *length > limit) {
        HttpResponse r;
        r.status = 413;
        r.body = Cat(R"({"requestError":{"serviceException":{"messageId":"PAYLOAD_TOO_LARGE",)",
                     R"("text":"request body exceeds )", limit, R"( bytes"}}})");
        linger_ = true;
        return Write(r, /*keep_alive=*/false);
      }
      parser_->body_limit(limit);
    }
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      HttpResponse r;
      r.status = 413;
      r.body =
          R"({"requestError":{"serviceException":{"messageId":"PAYLOAD_TOO_LARGE","text":"request body exceeds the limit"}}})";
      Write(r, /*keep_alive=*/false);
      return;
    }
    if (ec) return Close();
    HttpRequest request = RequestLine();
    auto& req = parser_->get();
    request.body = std::move(req.body());
    HttpResponse response;
    server_->handler(request, response);
    Write(response, req.keep_alive() && !server_->stopping.load());
  }

  void Write(const HttpResponse& r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<http::status>(r.status));
    res->set(http::field::server, "heraldd");
    res->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->body() = r.body;
    res->keep_alive(keep_alive);
    res->prepare_payload();
    stream_.expires_after(kIdleTimeout);  // the read's deadline must not cut the answer short
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                        self->busy_ = false;
                        if (ec || !keep_alive || self->server_->stopping.load())
                          return self->Close();
                        self->Read();
                      });
  }

  // After an early answer the client may still be sending its body; closing with unread data
  // would reset the connection and could destroy the answer in flight. So: stop sending, then
  // read and discard for a short while (bounded in time and bytes), then close.
  void LingerClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    Discard();
  }
  void Discard() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ > (64u << 20)) return self->Close();
                              self->Discard();
                            });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
    std::lock_guard lock(server_->sessions_mu);
    server_->sessions.erase(shared_from_this());
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool busy_ = false;
  bool closed_ = false;
  bool linger_ = false;
  size_t discarded_ = 0;
  std::array<char, 16384> discard_;
};

void HttpServer::Impl::Accept() {
  acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (stopping.load()) return;
    if (!ec) {
      auto session = std::make_shared<Session>(std::move(socket), this);
      {
        std::lock_guard lock(sessions_mu);
        sessions.insert(session);
      }
      session->Start();
    }
    Accept();
  });
}

HttpServer::HttpServer(Options options, Handler handler, HeaderCheck check)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->check = std::move(check);
}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec)
    return absl::InvalidArgumentError(Cat("listen: bad address \"", impl_->options.host, "\""));
  const tcp::endpoint endpoint(address, impl_->options.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(Cat("listen: cannot use ", impl_->options.host, ":",
                                      impl_->options.port, ": ", ec.message()));
  }
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->Accept();
  for (int i = 0; i < std::max(1, impl_->options.threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (impl_->threads.empty() || impl_->stopping.exchange(true)) return;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  {
    std::lock_guard lock(impl_->sessions_mu);
    for (const auto& s : impl_->sessions) s->CloseIfIdle();
  }
  // Requests in flight finish and close their connections; then nothing keeps io busy.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    {
      std::lock_guard lock(impl_->sessions_mu);
      if (impl_->sessions.empty()) break;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace herald::server
