// nginx (Debian) as a receiver for tests: a real server with its default limits (8 KiB of
// request headers among them), answering 200 "ok" to everything, with an access log to read.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace herald::test_support {

// Serving https instead: its certificate and key, the CA whose client certificates it demands
// (none: it asks for none), and the TLS versions it speaks.
struct NginxTls {
  std::string certificate;
  std::string key;
  std::string client_ca;
  std::string protocols = "TLSv1.2 TLSv1.3";
};

class Nginx {
 public:
  explicit Nginx(const std::string& dir, const NginxTls* tls = nullptr)
      : dir_(dir), tls_(tls != nullptr) {
    // A free port: bind to 0, read it, let go.
    port_ = FreePort();
    std::ofstream conf(dir + "/nginx.conf");
    conf << "daemon off; master_process off; worker_processes 1;\n"
         << "pid " << dir << "/nginx.pid;\nerror_log " << dir << "/error.log;\n"
         << "events { worker_connections 256; }\n"
         << "http {\n  log_format hook '$request_method $uri $status $connection "
            "$connection_requests $request_length';\n"
         << "  access_log " << dir << "/access.log hook;\n"
         << "  client_body_temp_path " << dir << "/body; proxy_temp_path " << dir << "/proxy;\n"
         << "  fastcgi_temp_path " << dir << "/fcgi; uwsgi_temp_path " << dir << "/uwsgi;\n"
         << "  scgi_temp_path " << dir << "/scgi;\n"
         << "  server { listen 127.0.0.1:" << port_ << (tls ? " ssl" : "") << ";\n";
    if (tls) {
      conf << "    ssl_certificate " << tls->certificate << "; ssl_certificate_key " << tls->key
           << ";\n    ssl_protocols " << tls->protocols << ";\n";
      if (!tls->client_ca.empty()) {
        conf << "    ssl_client_certificate " << tls->client_ca << "; ssl_verify_client on;\n";
      }
    }
    conf << "    location / { return 200 'ok'; } }\n}\n";
    conf.close();
    pid_ = fork();
    if (pid_ == 0) {
      execl("/usr/sbin/nginx", "nginx", "-p", dir.c_str(), "-c", (dir + "/nginx.conf").c_str(),
            "-e", (dir + "/error.log").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // Ready when it accepts connections.
    for (int i = 0; i < 500 && !Accepts(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~Nginx() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string url() const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_) +
           "/hook";
  }
  bool Accepts() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }
  // Access-log lines: method, uri, status, connection, request number on it, length.
  std::vector<std::vector<std::string>> log() const {
    std::ifstream in(dir_ + "/access.log");
    std::vector<std::vector<std::string>> lines;
    std::string method, uri, status, connection, number, length;
    while (in >> method >> uri >> status >> connection >> number >> length) {
      lines.push_back({method, uri, status, connection, number, length});
    }
    return lines;
  }

 private:
  static uint16_t FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }

  std::string dir_;
  bool tls_ = false;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace herald::test_support
