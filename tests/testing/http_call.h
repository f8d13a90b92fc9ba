// One HTTP/1.1 request to 127.0.0.1:port over a fresh connection, as a client would make it.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string>
#include <utility>  // before Asio: Boost 1.74's asio uses std::exchange without including it

namespace herald::test_support {

struct HttpReply {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string retry_after;
};

// status -1 (and the error as body) when the exchange fails.
inline HttpReply CallHttp(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body = "",
                          const std::string& content_type = "application/json",
                          const std::string& auth = "") {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  boost::asio::io_context io;
  tcp::socket socket(io);
  beast::error_code ec;
  socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return {-1, ec.message(), "", ""};
  // A server that never answers fails the call after a minute rather than hanging the test.
  const timeval wait{.tv_sec = 60, .tv_usec = 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  if (!auth.empty()) req.set(http::field::authorization, auth);
  req.body() = body;
  req.prepare_payload();
  http::write(socket, req, ec);  // may fail when the server answers before the body is sent
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res, ec);
  if (ec) return {-1, ec.message(), "", ""};
  return {static_cast<int>(res.result_int()), res.body(),
          std::string(res[http::field::content_type]), std::string(res["Retry-After"])};
}

}  // namespace herald::test_support
