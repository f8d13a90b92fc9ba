// heraldd as a child process for integration tests: started on an ephemeral port with its own
// data_dir, called over real HTTP, stopped by signal with its exit code and output.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

// clang-format off
#include <utility>  // before Asio: Boost 1.74's asio uses std::exchange without including it
// clang-format on
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/http_call.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace herald::test_support {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

class Daemon {
 public:
  // `max_file_bytes` > 0 starts it with that file size limit (RLIMIT_FSIZE): writes beyond it
  // fail as on a full disk.
  // `wait_ready`: return once /readyz answers 200 (the spool's replay is done), not as soon as
  // it listens.
  // `runner`: a command that runs heraldd (its path and arguments follow), and must exec it so
  // that signals reach it: a namespace of its own, for one.
  explicit Daemon(std::vector<std::string> args, const std::string& data_dir = "",
                  rlim_t max_file_bytes = 0, bool wait_ready = true,
                  std::vector<std::string> runner = {}) {
    if (data_dir.empty()) {
      args.push_back("--data-dir");
      args.push_back(own_dir_.path());
    } else {
      args.push_back("--data-dir");
      args.push_back(data_dir);
    }
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) std::abort();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&actions, err[0]);
    // HERALDD_UNDER_TEST runs the tests against another build (e.g. the previous release).
    const char* const path =
        std::getenv("HERALDD_UNDER_TEST") ? std::getenv("HERALDD_UNDER_TEST") : HERALDD_PATH;
    std::vector<std::string> all = std::move(runner);
    all.push_back(path);
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    rlimit saved{};
    getrlimit(RLIMIT_FSIZE, &saved);
    if (max_file_bytes > 0) {
      rlimit limited = saved;
      limited.rlim_cur = max_file_bytes;
      setrlimit(RLIMIT_FSIZE, &limited);  // inherited by the child only: restored below
    }
    const int spawned =
        posix_spawnp(&pid_, all[0].c_str(), &actions, nullptr, argv.data(), environ);
    if (max_file_bytes > 0) setrlimit(RLIMIT_FSIZE, &saved);
    if (spawned != 0) std::abort();
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(err[1]);
    // Its log, drained as it comes (a full pipe would block the daemon) and echoed to ours.
    stderr_reader_ = std::thread([this, fd = err[0]] {
      FILE* in = fdopen(fd, "r");
      char line[4096];
      while (fgets(line, sizeof line, in)) {
        std::fputs(line, stderr);
        std::lock_guard lock(log_mu_);
        log_ += line;
      }
      fclose(in);
    });
    stdout_ = fdopen(out[0], "r");
    char line[512];
    while (fgets(line, sizeof line, stdout_)) {
      output_ += line;
      unsigned port = 0;
      if (std::sscanf(line, "heraldd listening on http://127.0.0.1:%u", &port) == 1) {
        port_ = static_cast<uint16_t>(port);
        break;
      }
    }
    if (port_ != 0 && wait_ready) {
      for (int i = 0; i < 6000; ++i) {
        try {
          if (Call("GET", "/readyz").status == 200) break;
        } catch (const std::exception&) {
          break;  // it died: the test sees it
        }
        usleep(20'000);
      }
    }
  }
  ~Daemon() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_) fclose(stdout_);
    if (stderr_reader_.joinable()) stderr_reader_.join();
  }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

  // Resident memory of the daemon, in KiB (from /proc).
  long RssKib() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
  }

  // Sends raw bytes on a new connection, then returns everything received until the daemon
  // closes the connection or `timeout` passes.
  std::string Raw(const std::string& bytes,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    boost::asio::io_context io;
    tcp::socket socket(io);
    boost::system::error_code ec;
    socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), ec);
    if (ec) return "connect failed: " + ec.message();
    boost::asio::write(socket, boost::asio::buffer(bytes), ec);
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(socket.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  const std::string& output() const { return output_; }
  // What it logged on stderr so far (all of it once stopped).
  std::string log() const {
    std::lock_guard lock(log_mu_);
    return log_;
  }

  // SIGTERM, then the exit code.
  int Stop() { return Signal(SIGTERM); }
  // Sends `sig` and returns the exit code (-signal when killed by it).
  int Signal(int sig) {
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    char line[512];
    while (fgets(line, sizeof line, stdout_)) output_ += line;
    if (stderr_reader_.joinable()) stderr_reader_.join();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

  HttpReply Call(const std::string& method, const std::string& target, const std::string& body = "",
                 const std::string& content_type = "application/json",
                 const std::string& auth = "") {
    return CallHttp(port_, method, target, body, content_type, auth);
  }

 private:
  TempDir own_dir_;
  pid_t pid_ = -1;
  FILE* stdout_ = nullptr;
  std::string output_;
  uint16_t port_ = 0;
  bool reaped_ = false;
  mutable std::mutex log_mu_;
  std::string log_;
  std::thread stderr_reader_;
};

}  // namespace herald::test_support
