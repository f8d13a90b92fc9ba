#include "engine/server/http_server.h"

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <cstring>
#include <optional>
#include <set>

#include "engine/common/mutex.h"
#include "engine/common/strings.h"

namespace herald::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
// One io_context per thread, connections spread over them: a connection's handlers all run on
// its thread, so it needs no strand, and threads share no scheduler. Naming the executor type
// (rather than Asio's type-erased any_io_executor) spares every operation an executor copy.
using Executor = asio::io_context::executor_type;
using Socket = tcp::socket::rebind_executor<Executor>::other;
using Stream = beast::basic_stream<tcp, Executor>;

namespace {
constexpr auto kIdleTimeout = std::chrono::seconds(60);

void Count(std::atomic<uint64_t> LimitHits::*counter, LimitHits* hits) {
  if (hits) (hits->*counter).fetch_add(1, std::memory_order_relaxed);
}

HttpResponse LimitAnswer(int status, std::string_view message_id, std::string_view text) {
  HttpResponse r;
  r.status = status;
  r.body = Cat(R"({"requestError":{"serviceException":{"messageId":")", message_id, R"(","text":")",
               text, R"("}}})");
  return r;
}

// A Beast body that lands straight in an engine ingest buffer: the bytes are parsed in place
// and the notifications slice their payloads from it.
struct IngestBody {
  struct value_type {
    const std::function<IngestBuffer(size_t)>* allocate = nullptr;
    IngestBuffer buffer;
    size_t size = 0;
  };
  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      body_.buffer = (*body_.allocate)(length ? static_cast<size_t>(*length) : 64 * 1024);
      body_.size = 0;
      ec = {};
    }
    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      const size_t n = asio::buffer_size(buffers);
      if (body_.size + n > body_.buffer.capacity()) {  // chunked: grow
        IngestBuffer bigger =
            (*body_.allocate)(std::max(2 * body_.buffer.capacity(), body_.size + n));
        std::memcpy(bigger.data(), body_.buffer.data(), body_.size);
        body_.buffer = std::move(bigger);
      }
      asio::buffer_copy(asio::buffer(body_.buffer.data() + body_.size, n), buffers);
      body_.size += n;
      ec = {};
      return n;
    }
    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

}  // namespace

class Session;

struct HttpServer::Impl {
  Options options;
  Handler handler;
  HeaderCheck check;
  // contexts[0] also runs the acceptor.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<Executor>> work;
  size_t next_context = 0;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  Mutex sessions_mu;
  std::set<std::shared_ptr<Session>> sessions HERALD_GUARDED_BY(sessions_mu);

  void Accept();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, HttpServer::Impl* server) : stream_(std::move(socket)), server_(server) {}

  void Start() { Read(); }
  // Closes the connection if it is idle between requests; a request in flight completes first.
  void CloseIfIdle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->tick_) self->tick_->cancel();  // a stream ends at its next tick

      // A request partly received is in flight too: let it finish.
      if (!self->busy_ && !(self->header_ && self->header_->got_some())) self->Close();
    });
  }

 private:
  void Read() {
    header_.emplace();
    header_->body_limit(server_->options.max_body_bytes);
    header_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    string_.reset();
    ingest_.reset();
    stream_.expires_after(server_->options.header_timeout);
    http::async_read_header(
        stream_, buffer_, *header_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  HttpRequest RequestLine() {
    auto& req = header_->get();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.content_type = std::string(req[http::field::content_type]);
    request.authorization = std::string(req[http::field::authorization]);
    request.if_match = std::string(req[http::field::if_match]);
    if (server_->options.keep_headers) {
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request.headers.emplace_back(std::move(name), std::string(field.value()));
      }
    }
    return request;
  }

  // A token bucket per connection: max_requests_per_second, bursts of as many.
  bool WithinRate() {
    const uint32_t rate = server_->options.max_requests_per_second;
    if (rate == 0) return true;
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min<double>(
        rate, tokens_ + rate * std::chrono::duration<double>(now - refilled_).count());
    refilled_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

  void OnHeader(beast::error_code ec) {
    LimitHits* hits = server_->options.hits;
    if (ec == http::error::header_limit) {
      Count(&LimitHits::header_bytes, hits);
      linger_ = true;
      return Write(
          LimitAnswer(431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
                      Cat("request headers exceed ", server_->options.max_header_bytes, " bytes")),
          /*keep_alive=*/false);
    }
    if (ec) {
      if (ec == beast::error::timeout && header_->got_some()) Count(&LimitHits::slow_headers, hits);
      return Close();
    }
    busy_ = true;
    if (!WithinRate()) {
      Count(&LimitHits::request_rate, hits);
      HttpResponse r =
          LimitAnswer(429, "TOO_MANY_REQUESTS",
                      "too many requests on this connection (max_requests_per_second)");
      r.headers.emplace_back("Retry-After", "1");
      linger_ = true;
      return Write(r, /*keep_alive=*/false);
    }
    request_ = RequestLine();
    keep_alive_ = header_->get().keep_alive();
    BodyPlan plan{.limit = server_->options.max_body_bytes};
    if (server_->check) {
      HttpResponse early;
      if (!server_->check(request_, early, &plan)) {
        // Refused before its body is read: answer, then close gently (see LingerClose).
        linger_ = true;
        return Write(early, /*keep_alive=*/false);
      }
      plan.limit = std::min(plan.limit, server_->options.max_body_bytes);
      // Beast checks a declared Content-Length against the limit in force when it parsed the
      // header, so a tighter per-route limit is checked here; chunked bodies hit body_limit.
      if (const auto length = header_->content_length(); length && *length > plan.limit) {
        Count(&LimitHits::body_bytes, hits);
        HttpResponse r;
        r.status = 413;
        r.body = Cat(R"({"requestError":{"serviceException":{"messageId":"PAYLOAD_TOO_LARGE",)",
                     R"("text":"request body exceeds )", plan.limit, R"( bytes"}}})");
        linger_ = true;
        return Write(r, /*keep_alive=*/false);
      }
    }
    stream_.expires_after(server_->options.body_timeout);
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); };
    if (plan.into_ingest_buffer && server_->options.new_ingest_buffer) {
      ingest_.emplace(std::move(*header_));
      ingest_->body_limit(plan.limit);
      ingest_->get().body().allocate = &server_->options.new_ingest_buffer;
      http::async_read(stream_, buffer_, *ingest_, std::move(done));
    } else {
      string_.emplace(std::move(*header_));
      string_->body_limit(plan.limit);
      http::async_read(stream_, buffer_, *string_, std::move(done));
    }
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      Count(&LimitHits::body_bytes, server_->options.hits);
      HttpResponse r;
      r.status = 413;
      r.body =
          R"({"requestError":{"serviceException":{"messageId":"PAYLOAD_TOO_LARGE","text":"request body exceeds the limit"}}})";
      Write(r, /*keep_alive=*/false);
      return;
    }
    if (ec) return Close();
    if (ingest_) {
      request_.ingest_body = std::move(ingest_->get().body().buffer);
      request_.ingest_size = ingest_->get().body().size;
    } else {
      request_.body = std::move(string_->get().body());
    }
    HttpResponse response;
    server_->handler(request_, response);
    request_ = HttpRequest{};  // releases the ingest buffer's reference
    if (response.wait) {
      auto held = std::make_shared<HttpResponse>(std::move(response));
      auto wait = std::exchange(held->wait, nullptr);
      wait([self = shared_from_this(), held](HttpResponse* replacement) {
        if (replacement) *held = std::move(*replacement);
        asio::post(self->stream_.get_executor(), [self, held] {
          self->Write(*held, self->keep_alive_ && !self->server_->stopping.load());
        });
      });
      return;
    }
    if (response.stream) return StartStream(std::move(response));
    Write(response, keep_alive_ && !server_->stopping.load());
  }

  // A streamed answer: the header with chunked encoding, then a chunk whenever the producer has
  // one, until it ends, the server stops or the client goes away (a read that completes).
  void StartStream(HttpResponse r) {
    auto res = std::make_shared<http::response<http::empty_body>>();
    res->version(11);
    res->result(static_cast<http::status>(r.status));
    res->set(http::field::server, "heraldd");
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->chunked(true);
    res->keep_alive(false);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    producer_ = std::move(r.stream);
    interval_ = r.stream_interval;
    tick_.emplace(stream_.get_executor());
    stream_.expires_never();
    http::async_write_header(
        stream_, *serializer,
        [self = shared_from_this(), res, serializer](beast::error_code ec, size_t) {
          if (ec) return self->Close();
          self->WatchForHangUp();
          self->Tick();
        });
  }
  void WatchForHangUp() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (!ec) return self->WatchForHangUp();  // ignore what it sends
                              self->hung_up_ = true;
                              if (self->tick_) self->tick_->cancel();
                            });
  }
  void Tick() {
    if (hung_up_ || closed_) return Close();
    auto chunk = std::make_shared<std::string>();
    const bool more = !server_->stopping.load() && producer_(chunk.get());
    auto next = [self = shared_from_this(), more](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      if (!more) return self->EndStream();
      self->tick_->expires_after(self->interval_);
      self->tick_->async_wait([self](beast::error_code) { self->Tick(); });
    };
    if (chunk->empty()) return next({}, 0);
    // A client that stops reading times the write out; between writes there is no deadline,
    // so the hang-up watcher's read waits as long as the stream lasts.
    stream_.expires_after(kIdleTimeout);
    asio::async_write(stream_, http::make_chunk(asio::buffer(*chunk)),
                      [this, chunk, next](beast::error_code ec, size_t n) {
                        if (!ec) stream_.expires_never();
                        next(ec, n);
                      });
  }
  void EndStream() {
    stream_.expires_after(kIdleTimeout);
    asio::async_write(stream_, http::make_chunk_last(),
                      [self = shared_from_this()](beast::error_code, size_t) { self->Close(); });
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
                        if (!ec && self->linger_) return self->LingerClose();
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
    MutexLock lock(server_->sessions_mu);
    server_->sessions.erase(shared_from_this());
  }

  Stream stream_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  // The header is read first; the body parser, chosen by the header check, takes it over.
  std::optional<http::request_parser<http::empty_body>> header_;
  std::optional<http::request_parser<http::string_body>> string_;
  std::optional<http::request_parser<IngestBody>> ingest_;
  HttpRequest request_;
  bool keep_alive_ = false;
  bool busy_ = false;
  bool closed_ = false;
  bool linger_ = false;
  size_t discarded_ = 0;
  // A streamed answer's producer, its period and timer, and whether the client went away.
  std::function<bool(std::string*)> producer_;
  std::chrono::milliseconds interval_{1000};
  std::optional<asio::steady_timer> tick_;
  bool hung_up_ = false;
  double tokens_ = 1e9;  // full until the first refill caps it
  std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
  std::array<char, 16384> discard_;
};

void HttpServer::Impl::Accept() {
  asio::io_context& target = *contexts[next_context++ % contexts.size()];
  acceptor->async_accept(target.get_executor(), [this](beast::error_code ec, Socket socket) {
    if (stopping.load()) return;
    if (!ec) {
      auto session = std::make_shared<Session>(std::move(socket), this);
      bool admitted = false;
      {
        MutexLock lock(sessions_mu);
        if (sessions.size() < options.max_connections) {
          sessions.insert(session);
          admitted = true;
        }
      }
      if (admitted) {
        session->Start();
      } else {
        Count(&LimitHits::connections, options.hits);  // the session closes as it goes
      }
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
  Impl& impl = *impl_;
  for (int i = 0; i < std::max(1, impl.options.threads); ++i) {
    impl.contexts.push_back(std::make_unique<asio::io_context>(1));
    impl.work.push_back(asio::make_work_guard(impl.contexts.back()->get_executor()));
  }
  impl.acceptor.emplace(*impl.contexts[0]);
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl.options.host, ec);
  if (ec) return absl::InvalidArgumentError(Cat("listen: bad address \"", impl.options.host, "\""));
  const tcp::endpoint endpoint(address, impl.options.port);
  impl.acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor->bind(endpoint, ec);
  if (!ec) impl.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        Cat("listen: cannot use ", impl.options.host, ":", impl.options.port, ": ", ec.message()));
  }
  port_ = impl.acceptor->local_endpoint().port();
  impl.Accept();
  for (auto& context : impl.contexts) {
    impl.threads.emplace_back([io = context.get()] { io->run(); });
  }
  return absl::OkStatus();
}

void HttpServer::Stop() {
  Impl& impl = *impl_;
  if (impl.threads.empty() || impl.stopping.exchange(true)) return;
  asio::post(*impl.contexts[0], [&impl] {
    beast::error_code ec;
    impl.acceptor->close(ec);
  });
  {
    MutexLock lock(impl.sessions_mu);
    for (const auto& s : impl.sessions) s->CloseIfIdle();
  }
  // Requests in flight finish and close their connections; then nothing keeps io busy.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    {
      MutexLock lock(impl.sessions_mu);
      if (impl.sessions.empty()) break;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl.work.clear();
  for (auto& context : impl.contexts) context->stop();
  for (auto& t : impl.threads) t.join();
  impl.threads.clear();
}

}  // namespace herald::server
