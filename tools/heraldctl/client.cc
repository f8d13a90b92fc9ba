#include "tools/heraldctl/client.h"

// clang-format off
#include <utility>  // before Asio: Boost 1.74's asio uses std::exchange without including it
// clang-format on
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <iostream>
#include <optional>

#include "simdjson.h"

namespace heraldctl {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct ParsedUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string prefix;  // a path the API sits under ("" for the root)
};

ParsedUrl ParseUrl(std::string_view url) {
  ParsedUrl out;
  if (url.starts_with("https://")) {
    out.tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    throw Failure(kUsage, "the URL must start with http:// or https://: " + std::string(url));
  }
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) out.prefix = std::string(url.substr(slash));
  while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
    out.host = std::string(authority.substr(0, colon));
    out.port = std::string(authority.substr(colon + 1));
  } else {
    out.host = std::string(authority);
    out.port = out.tls ? "443" : "80";
  }
  if (out.host.size() > 2 && out.host.front() == '[')
    out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host.empty()) throw Failure(kUsage, "the URL has no host: " + std::string(url));
  return out;
}

}  // namespace

int ExitCodeFor(int status) {
  if (status >= 200 && status < 300) return kOk;
  if (status == 401 || status == 403) return kAuth;
  if (status == 404) return kNotFound;
  if (status == 409 || status == 412) return kConflict;
  if (status >= 400 && status < 500) return kUsage;
  return kServerError;
}

std::string ErrorText(const Response& response) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view text;
  if (parser.parse(response.body).get(root) == simdjson::SUCCESS &&
      root["requestError"]["serviceException"]["text"].get_string().get(text) ==
          simdjson::SUCCESS) {
    std::string out = "HTTP " + std::to_string(response.status) + ": " + std::string(text);
    simdjson::dom::object errors;
    if (root["requestError"]["serviceException"]["validationErrors"].get_object().get(errors) ==
            simdjson::SUCCESS &&
        errors.size() > 0) {
      out = "HTTP " + std::to_string(response.status) + ": the request is not valid";
      for (auto [field, messages] : errors) {
        simdjson::dom::array list;
        if (messages.get_array().get(list) != simdjson::SUCCESS) continue;
        for (auto m : list) {
          std::string_view message;
          if (m.get_string().get(message) == simdjson::SUCCESS) {
            out += "\n  " + std::string(field) + ": " + std::string(message);
          }
        }
      }
    }
    return out;
  }
  std::string body = response.body.substr(0, 500);
  return "HTTP " + std::to_string(response.status) + (body.empty() ? "" : ": " + body);
}

struct Client::Connection {
  asio::io_context io;
  ssl::context tls{ssl::context::tls_client};
  ParsedUrl url;
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  bool open() const { return plain.has_value() || secure.has_value(); }
  void Close() {
    plain.reset();
    secure.reset();
    buffer.clear();
  }
  void Open() {
    tcp::resolver resolver(io);
    beast::error_code ec;
    const auto addresses = resolver.resolve(url.host, url.port, ec);
    if (ec) {
      throw Failure(kCannotConnect, "cannot resolve " + url.host + ": " + ec.message());
    }
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(addresses, ec);
    if (ec) {
      throw Failure(kCannotConnect, "cannot connect to " + url.host + ":" + url.port + ": " +
                                        ec.message() + " (is heraldd running? see --url)");
    }
    stream.expires_never();
    if (!url.tls) {
      plain.emplace(std::move(stream));
      return;
    }
    tls.set_default_verify_paths();
    tls.set_verify_mode(ssl::verify_peer);
    secure.emplace(std::move(stream), tls);
    SSL_set_tlsext_host_name(secure->native_handle(), url.host.c_str());
    secure->set_verify_callback(ssl::host_name_verification(url.host));
    secure->handshake(ssl::stream_base::client, ec);
    if (ec) {
      Close();
      throw Failure(kCannotConnect, "TLS with " + url.host + ": " + ec.message());
    }
  }
  template <typename F>
  auto With(F&& f) {
    if (plain) return f(*plain);
    return f(*secure);
  }
};

Client::Client(Endpoint endpoint, bool trace)
    : endpoint_(std::move(endpoint)), trace_(trace), connection_(std::make_unique<Connection>()) {
  connection_->url = ParseUrl(endpoint_.url);
}

Client::~Client() = default;

Response Client::Call(std::string_view method, std::string_view target, std::string_view body,
                      std::string_view content_type) {
  Connection& c = *connection_;
  http::request<http::string_body> req(http::string_to_verb(std::string(method)),
                                       c.url.prefix + std::string(target), 11);
  req.set(http::field::host, c.url.host);
  req.set(http::field::user_agent, "heraldctl");
  if (!endpoint_.api_key.empty()) req.set(http::field::authorization, "App " + endpoint_.api_key);
  if (!body.empty()) req.set(http::field::content_type, std::string(content_type));
  req.body() = std::string(body);
  req.prepare_payload();
  if (trace_) {
    std::cerr << "> " << method << " " << req.target()
              << (endpoint_.api_key.empty() ? "" : " (Authorization: App [redacted])") << "\n";
  }
  // A kept-alive connection the server closed meanwhile: once more on a new one.
  for (int round = 0;; ++round) {
    if (!c.open()) c.Open();
    beast::error_code ec;
    http::response<http::string_body> res;
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    c.With([&](auto& stream) {
      http::write(stream, req, ec);
      if (!ec) http::read(stream, c.buffer, parser, ec);
      return 0;
    });
    if (ec) {
      c.Close();
      if (round == 0) continue;
      throw Failure(kCannotConnect, "lost the connection to heraldd: " + ec.message());
    }
    res = parser.release();
    if (!res.keep_alive()) c.Close();
    Response out{static_cast<int>(res.result_int()), std::move(res.body()),
                 std::string(res[http::field::content_type])};
    if (trace_) std::cerr << "< " << out.status << " (" << out.body.size() << " bytes)\n";
    return out;
  }
}

Response Client::Checked(std::string_view method, std::string_view target, std::string_view body,
                         std::string_view content_type) {
  Response r = Call(method, target, body, content_type);
  if (r.status < 200 || r.status >= 300) throw Failure(ExitCodeFor(r.status), ErrorText(r));
  return r;
}

void Client::Stream(std::string_view target, const std::function<bool(std::string_view)>& on_line) {
  Connection& c = *connection_;
  c.Close();
  c.Open();
  http::request<http::empty_body> req(http::verb::get, c.url.prefix + std::string(target), 11);
  req.set(http::field::host, c.url.host);
  req.set(http::field::user_agent, "heraldctl");
  if (!endpoint_.api_key.empty()) req.set(http::field::authorization, "App " + endpoint_.api_key);
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  beast::error_code ec;
  c.With([&](auto& stream) {
    http::write(stream, req, ec);
    if (!ec) http::read_header(stream, c.buffer, parser, ec);
    return 0;
  });
  if (ec) {
    c.Close();
    throw Failure(kCannotConnect, "lost the connection to heraldd: " + ec.message());
  }
  const int status = static_cast<int>(parser.get().result_int());
  if (status < 200 || status >= 300) {
    c.With([&](auto& stream) {
      http::read(stream, c.buffer, parser, ec);
      return 0;
    });
    c.Close();
    throw Failure(ExitCodeFor(status), ErrorText({status, parser.get().body(), ""}));
  }
  while (!parser.is_done()) {
    c.With([&](auto& stream) {
      http::read_some(stream, c.buffer, parser, ec);
      return 0;
    });
    std::string& got = parser.get().body();
    size_t start = 0;
    for (size_t nl = got.find('\n'); nl != std::string::npos; nl = got.find('\n', start)) {
      if (!on_line(std::string_view(got).substr(start, nl - start))) {
        c.Close();
        return;
      }
      start = nl + 1;
    }
    got.erase(0, start);
    if (ec) break;
  }
  c.Close();
  if (ec && ec != http::error::end_of_stream) {
    throw Failure(kCannotConnect, "the stream from heraldd ended: " + ec.message());
  }
}

}  // namespace heraldctl
