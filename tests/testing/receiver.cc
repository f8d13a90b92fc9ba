#include "tests/testing/receiver.h"

// clang-format off
#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <list>

namespace herald::test_support {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
}  // namespace

struct Receiver::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<asio::ssl::context> tls;
  std::thread accept_thread;
  std::mutex mu;
  mutable std::condition_variable cv;
  Handler handler;
  std::vector<ReceivedRequest> requests;
  std::list<std::thread> connections;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::atomic<bool> stop{false};
  std::atomic<int> in_progress{0};
  std::atomic<int> max_in_progress{0};
  std::atomic<uint64_t> next_connection{1};

  template <typename Stream>
  void Serve(Stream& stream, uint64_t connection_id) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(stream, buffer, req, ec);
      if (ec) return;
      ReceivedRequest r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& field : req) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        r.headers[name] = std::string(field.value());
      }
      r.body = req.body();
      r.at = std::chrono::steady_clock::now();
      r.connection = connection_id;
      const int now = ++in_progress;
      int seen = max_in_progress.load();
      while (now > seen && !max_in_progress.compare_exchange_weak(seen, now)) {
      }
      Reply reply;
      {
        std::unique_lock lock(mu);
        if (handler) {
          Handler h = handler;
          lock.unlock();
          reply = h(r);
          lock.lock();
        }
        requests.push_back(r);
      }
      cv.notify_all();
      auto wait = [&](std::chrono::milliseconds d) {
        std::unique_lock lock(mu);
        cv.wait_for(lock, d, [&] { return stop.load(); });
      };
      if (reply.delay.count() > 0) wait(reply.delay);
      if (reply.mode == Reply::Mode::kHang) {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop.load(); });
        --in_progress;
        return;
      }
      if (reply.mode == Reply::Mode::kClose) {
        --in_progress;
        return;
      }
      http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
      res.set(http::field::server, "herald-test-receiver");
      for (const auto& [k, v] : reply.headers) res.set(k, v);
      res.body() = reply.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      if (reply.mode == Reply::Mode::kTrickle) {
        http::response_serializer<http::string_body> sr{res};
        std::string all;
        sr.split(false);
        while (!sr.is_done()) {
          sr.next(ec, [&](beast::error_code&, const auto& buffers) {
            for (const auto b : beast::buffers_range(buffers)) {
              all.append(static_cast<const char*>(b.data()), b.size());
            }
            sr.consume(beast::buffer_bytes(buffers));
          });
          if (ec) break;
        }
        for (const char c : all) {
          if (stop.load()) break;
          asio::write(stream, asio::buffer(&c, 1), ec);
          if (ec) break;
          wait(std::chrono::milliseconds(200));
        }
        --in_progress;
        return;
      }
      http::write(stream, res, ec);
      --in_progress;
      if (ec || !req.keep_alive()) return;
    }
  }
};

Receiver::Receiver(Options options) : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  if (!options.cert_file.empty()) {
    impl.tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    impl.tls->use_certificate_chain_file(options.cert_file);
    impl.tls->use_private_key_file(options.key_file, asio::ssl::context::pem);
  }
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl.acceptor.open(endpoint.protocol());
  impl.acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl.acceptor.bind(endpoint);
  impl.acceptor.listen();
  port_ = impl.acceptor.local_endpoint().port();
  impl.accept_thread = std::thread([&impl] {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(impl.io);
      beast::error_code ec;
      impl.acceptor.accept(*socket, ec);
      if (ec || impl.stop.load()) return;
      std::lock_guard lock(impl.mu);
      impl.sockets.push_back(socket);
      const uint64_t id = impl.next_connection++;
      impl.connections.emplace_back([&impl, socket, id] {
        if (impl.tls) {
          asio::ssl::stream<tcp::socket&> stream(*socket, *impl.tls);
          beast::error_code hec;
          stream.handshake(asio::ssl::stream_base::server, hec);
          if (!hec) impl.Serve(stream, id);
        } else {
          impl.Serve(*socket, id);
        }
        beast::error_code ignored;
        socket->shutdown(tcp::socket::shutdown_both, ignored);
      });
    }
  });
}

Receiver::~Receiver() {
  Impl& impl = *impl_;
  impl.stop.store(true);
  impl.cv.notify_all();
  beast::error_code ignored;
  // Wake the blocked accept call with one connection; it sees `stop` and returns.
  {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ignored);
  }
  impl.accept_thread.join();
  impl.acceptor.close(ignored);
  {
    std::lock_guard lock(impl.mu);
    for (auto& s : impl.sockets) s->shutdown(tcp::socket::shutdown_both, ignored);
  }
  impl.cv.notify_all();
  for (auto& t : impl.connections) t.join();
}

std::string Receiver::url(std::string_view path) const {
  return std::string(impl_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
         std::string(path);
}

void Receiver::set_handler(Handler handler) {
  std::lock_guard lock(impl_->mu);
  impl_->handler = std::move(handler);
}

std::vector<ReceivedRequest> Receiver::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

size_t Receiver::count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests.size();
}

bool Receiver::WaitFor(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->requests.size() >= n; });
}

int Receiver::in_progress() const { return impl_->in_progress.load(); }
int Receiver::max_in_progress() const { return impl_->max_in_progress.load(); }

TestCertificate MakeTestCertificate(const std::string& dir) {
  TestCertificate c{dir + "/cert.pem", dir + "/key.pem"};
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
      c.key_file + " -out " + c.cert_file + " >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) std::abort();
  return c;
}

}  // namespace herald::test_support
