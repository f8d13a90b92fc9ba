// One HTTP/1.1 request to 127.0.0.1:port over a fresh connection, as a client would make it.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>  // before Asio: Boost 1.74's asio uses std::exchange without including it
#include <vector>

namespace herald::test_support {

struct HttpReply {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string retry_after;
  std::string etag;
};

// Connects `socket` to 127.0.0.1:port; its reads then fail after `receive_timeout` without data.
inline boost::system::error_code ConnectLoopback(boost::asio::ip::tcp::socket& socket,
                                                 uint16_t port, timeval receive_timeout) {
  boost::system::error_code ec;
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  if (!ec) {
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &receive_timeout,
                 sizeof receive_timeout);
  }
  return ec;
}

// status -1 (and the error as body) when the exchange fails.
inline HttpReply CallHttp(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body = "",
                          const std::string& content_type = "application/json",
                          const std::string& auth = "",
                          const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  boost::asio::io_context io;
  tcp::socket socket(io);
  // A server that never answers fails the call after a minute rather than hanging the test.
  beast::error_code ec = ConnectLoopback(socket, port, {.tv_sec = 60, .tv_usec = 0});
  if (ec) return {-1, ec.message(), "", "", ""};
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  if (!auth.empty()) req.set(http::field::authorization, auth);
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  http::write(socket, req, ec);  // may fail when the server answers before the body is sent
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res, ec);
  if (ec) return {-1, ec.message(), "", "", ""};
  return {static_cast<int>(res.result_int()), res.body(),
          std::string(res[http::field::content_type]), std::string(res["Retry-After"]),
          std::string(res[http::field::etag])};
}

// A streamed answer (chunked NDJSON): what arrived until `lines` lines were in, the server
// ended it, or `timeout` passed; `ended` says whether the server ended it.
struct StreamReply {
  int status = 0;
  std::string content_type;
  std::vector<std::string> lines;
  bool ended = false;
};

inline StreamReply ReadStream(uint16_t port, const std::string& target, size_t lines,
                              std::chrono::milliseconds timeout, const std::string& auth = "") {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  boost::asio::io_context io;
  tcp::socket socket(io);
  StreamReply out;
  // Short reads: the loop below checks its deadline between them.
  beast::error_code ec = ConnectLoopback(socket, port, {.tv_sec = 0, .tv_usec = 200'000});
  if (ec) return {-1};
  http::request<http::empty_body> req(http::verb::get, target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (!auth.empty()) req.set(http::field::authorization, auth);
  http::write(socket, req, ec);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string body;
  while (std::chrono::steady_clock::now() < deadline) {
    http::read_some(socket, buffer, parser, ec);
    if (parser.is_header_done() && out.status == 0) {
      out.status = static_cast<int>(parser.get().result_int());
      out.content_type = std::string(parser.get()[http::field::content_type]);
    }
    if (parser.is_done()) out.ended = true;
    std::string& got = parser.get().body();
    for (size_t nl = got.find('\n'); nl != std::string::npos; nl = got.find('\n')) {
      out.lines.push_back(got.substr(0, nl));
      got.erase(0, nl + 1);
    }
    if (out.ended || out.lines.size() >= lines) break;
    if (ec && ec != boost::asio::error::would_block && ec != boost::asio::error::try_again &&
        ec != beast::error::timeout) {
      break;
    }
  }
  return out;
}

}  // namespace herald::test_support
