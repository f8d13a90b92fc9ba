// A recording webhook receiver for tests: a real HTTP/1.1 server on 127.0.0.1 (optionally TLS),
// one thread per connection, keep-alive. Records every request and answers what the test's
// handler says — a status with headers, after a delay, or misbehaves on purpose: hangs, closes
// the connection, or trickles its answer a byte at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace herald::test_support {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::chrono::steady_clock::time_point at;
  uint64_t connection = 0;  // which connection carried it (keep-alive checks)

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct Reply {
  enum class Mode { kAnswer, kHang, kClose, kTrickle };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds delay{0};
  Mode mode = Mode::kAnswer;
};

class Receiver {
 public:
  struct Options {
    std::string cert_file;  // with key_file: serve TLS
    std::string key_file;
  };
  using Handler = std::function<Reply(const ReceivedRequest&)>;

  explicit Receiver(Options options = {});
  ~Receiver();
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  uint16_t port() const { return port_; }
  std::string url(std::string_view path = "/hook") const;
  // Called for each request (on a connection thread), before it is recorded.
  void set_handler(Handler handler);

  std::vector<ReceivedRequest> requests() const;
  size_t count() const;
  // Waits until at least `n` requests arrived; false on timeout.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) const;
  // Requests being answered right now, and the most ever at once.
  int in_progress() const;
  int max_in_progress() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command in `dir`.
struct TestCertificate {
  std::string cert_file;
  std::string key_file;
};
TestCertificate MakeTestCertificate(const std::string& dir);

}  // namespace herald::test_support
