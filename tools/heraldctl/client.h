// heraldctl's connection to heraldd: where it is (flag > environment > named context), one
// keep-alive HTTP/1.1 connection (TLS for https URLs), and what an answer means as an exit code.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace heraldctl {

// DESIGN §9's exit codes.
enum Exit : int {
  kOk = 0,
  kServerError = 1,
  kUsage = 2,  // and 400
  kNotFound = 3,
  kAuth = 4,
  kConflict = 5,
  kPartial = 6,
  kCannotConnect = 7,
};

// Ends the command with `code` after printing `what()` on stderr.
struct Failure : std::runtime_error {
  Failure(int exit_code, const std::string& message)
      : std::runtime_error(message), code(exit_code) {}
  int code;
};

struct Endpoint {
  std::string url = "http://127.0.0.1:8080";
  std::string api_key;
  std::string context;  // the named context it came from, if any
};

struct Response {
  int status = 0;
  std::string body;
  std::string content_type;
};

// The exit code for an HTTP status.
int ExitCodeFor(int status);
// The message of the platform's error envelope (with its validationErrors), or the body.
std::string ErrorText(const Response& response);

class Client {
 public:
  // `trace`: print each request and answer's status line on stderr (the key redacted).
  Client(Endpoint endpoint, bool trace);
  ~Client();
  const Endpoint& endpoint() const { return endpoint_; }

  // One request; throws Failure(kCannotConnect) when heraldd cannot be reached.
  Response Call(std::string_view method, std::string_view target, std::string_view body = "",
                std::string_view content_type = "application/json");
  // Call, then Failure with the exit code and the server's message unless it answered 2xx.
  Response Checked(std::string_view method, std::string_view target, std::string_view body = "",
                   std::string_view content_type = "application/json");
  // A streamed (NDJSON) answer: `on_line` for each line until it returns false or the stream
  // ends; returns the status (a non-2xx answer's body goes to Failure).
  void Stream(std::string_view target, const std::function<bool(std::string_view)>& on_line);

 private:
  struct Connection;
  Endpoint endpoint_;
  bool trace_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace heraldctl
