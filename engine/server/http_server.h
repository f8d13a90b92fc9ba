// A small HTTP/1.1 server on Boost.Beast: keep-alive connections served by a pool of io threads,
// bodies bounded by a limit (413 beyond it), and a graceful Stop() that stops accepting, lets
// requests in flight finish and joins the threads. Routing is the handler's business.
//
// The handler runs on io threads, possibly concurrently; it must be thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "herald/engine.h"

namespace herald::server {

struct HttpRequest {
  std::string method;
  std::string target;  // path and query, as received
  std::string content_type;
  std::string authorization;
  std::string if_match;  // conditional management writes (an ETag from a GET)
  // Every header, names lower-cased, when Options::keep_headers asks for them.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When the header check asks for it, the body is read straight into an ingest buffer instead.
  IngestBuffer ingest_body;
  size_t ingest_size = 0;
  // Set by the header check for the handler: the route it matched (-1: none yet) and the
  // path's parameters.
  int route = -1;
  std::vector<std::string> path_params;
};

// What the header check decides about a request's body.
struct BodyPlan {
  size_t limit = 0;                 // bytes; larger bodies get 413
  bool into_ingest_buffer = false;  // read into HttpRequest::ingest_body (no copy to ingest)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Set by a handler whose answer must wait (for an fsync) without holding its io thread: the
  // server calls it once with `resume`, and answers when resume runs (from any thread, once):
  // with this response, or with `*replacement` when given.
  using Resume = std::function<void(HttpResponse* replacement)>;
  std::function<void(Resume resume)> wait;
  // Set by a handler that streams its answer (chunked, until the client goes away or the server
  // stops): called at once and then every `stream_interval` on the connection's thread; it
  // appends what it has to `chunk` (nothing: no chunk this time) and returns false to end.
  std::function<bool(std::string* chunk)> stream;
  std::chrono::milliseconds stream_interval{1000};
};

// Requests and connections refused by a limit, exported as metrics.
struct LimitHits {
  std::atomic<uint64_t> connections{0};    // over max_connections: closed at accept
  std::atomic<uint64_t> header_bytes{0};   // headers over max_header_bytes: 431
  std::atomic<uint64_t> body_bytes{0};     // bodies over their route's limit: 413
  std::atomic<uint64_t> request_rate{0};   // over max_requests_per_second on a connection: 429
  std::atomic<uint64_t> slow_headers{0};   // headers unfinished after header_timeout: closed
  std::atomic<uint64_t> subscriptions{0};  // a channel at max_subscriptions_per_channel: 403
};

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 8080;  // 0 = an ephemeral port; see port()
    int threads = 2;
    size_t max_body_bytes = 64u << 20;
    // Allocates ingest buffers (Engine::NewIngestBuffer) for bodies planned into one.
    std::function<IngestBuffer(size_t)> new_ingest_buffer;
    size_t max_connections = 10'000;
    size_t max_header_bytes = 16 << 10;
    // A request's headers must arrive within this (slow clients are cut off); also how long an
    // idle keep-alive connection is kept.
    std::chrono::milliseconds header_timeout{30'000};
    // The body has its own deadline, from the end of its headers: a large upload is not cut off
    // by header_timeout.
    std::chrono::milliseconds body_timeout{300'000};
    uint32_t max_requests_per_second = 50'000;  // per connection; 0 = unlimited
    LimitHits* hits = nullptr;                  // counted when given
    bool keep_headers = false;                  // fill HttpRequest::headers
  };
  // May take the request's buffers (ingest moves its body into the engine).
  using Handler = std::function<void(HttpRequest&, HttpResponse&)>;
  // Runs once the headers are in (request.body still empty): may answer at once (401, 404, …)
  // so a body is never read for a request that will be refused, and plans the body (its limit,
  // at most Options::max_body_bytes, and where it goes).
  using HeaderCheck = std::function<bool(HttpRequest&, HttpResponse&, BodyPlan*)>;

  HttpServer(Options options, Handler handler, HeaderCheck check = {});
  ~HttpServer();

  // Binds and starts serving; an error names the address that could not be used.
  absl::Status Start();
  uint16_t port() const { return port_; }
  // Stops accepting, finishes requests in flight, closes idle connections, joins the threads.
  void Stop();

  struct Impl;  // the io machinery, in http_server.cc

 private:
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace herald::server
