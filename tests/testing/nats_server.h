// Real nats-server processes (Debian's) with JetStream for tests: one node, or a cluster of
// three on loopback (reference/jetstream.md §4). Each node keeps its store under `dir`, so a
// node killed with SIGKILL and started again recovers its state.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/http_call.h"

namespace herald::test_support {

class NatsServers {
 public:
  // `nodes` servers (1 or 3), started and healthy (JetStream up, a meta leader elected).
  NatsServers(const std::string& dir, int nodes = 1) : dir_(dir) {
    for (int i = 0; i < nodes; ++i) {
      Node n;
      n.name = "n" + std::to_string(i + 1);
      n.client_port = FreePort();
      n.monitor_port = FreePort();
      n.cluster_port = nodes > 1 ? FreePort() : 0;
      nodes_.push_back(n);
    }
    for (int i = 0; i < nodes; ++i) WriteConfig(i);
    for (int i = 0; i < nodes; ++i) Start(i);
    for (int i = 0; i < nodes; ++i) WaitHealthy(i);
    for (int t = 0; t < 1500 && nodes > 1 && MetaLeader() < 0; ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~NatsServers() {
    for (size_t i = 0; i < nodes_.size(); ++i) Signal(static_cast<int>(i), SIGTERM);
  }

  int size() const { return static_cast<int>(nodes_.size()); }
  std::string url(int i) const {
    return "nats://127.0.0.1:" + std::to_string(nodes_[i].client_port);
  }
  // Every node's URL, comma-separated (--nats-url).
  std::string urls() const {
    std::string out;
    for (int i = 0; i < size(); ++i) out += (i ? "," : "") + url(i);
    return out;
  }
  uint16_t monitor_port(int i) const { return nodes_[i].monitor_port; }

  void Start(int i) {
    Node& n = nodes_[i];
    const std::string conf = dir_ + "/" + n.name + ".conf";
    const std::string log = dir_ + "/" + n.name + ".log";
    n.pid = fork();
    if (n.pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that crashes takes its servers with it
      execl("/usr/sbin/nats-server", "nats-server", "-c", conf.c_str(), "-l", log.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  void Kill(int i) { Signal(i, SIGKILL); }
  void Stop(int i) { Signal(i, SIGTERM); }
  bool running(int i) const { return nodes_[i].pid > 0; }

  // JetStream answers on the node: /healthz is ok (with a cluster, once it has a meta leader).
  bool Healthy(int i) const {
    const HttpReply r = CallHttp(nodes_[i].monitor_port, "GET", "/healthz", "", "");
    return r.status == 200 && r.body.find("ok") != std::string::npos;
  }
  // The node that leads the JetStream meta group (as a running node's /jsz says), or -1.
  int MetaLeader() const {
    for (int i = 0; i < size(); ++i) {
      if (!running(i)) continue;
      const HttpReply r = CallHttp(nodes_[i].monitor_port, "GET", "/jsz", "", "");
      const size_t meta = r.body.find("\"meta_cluster\"");
      const size_t at = r.body.find("\"leader\": \"", meta);
      if (meta == std::string::npos || at == std::string::npos) continue;
      const size_t from = at + 11;
      const std::string name = r.body.substr(from, r.body.find('"', from) - from);
      for (int j = 0; j < size(); ++j) {
        if (nodes_[j].name == name) return j;
      }
    }
    return -1;
  }
  void WaitHealthy(int i) const {
    for (int t = 0; t < 1500 && !Healthy(i); ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  struct Node {
    std::string name;
    uint16_t client_port = 0, monitor_port = 0, cluster_port = 0;
    pid_t pid = -1;
  };

  void WriteConfig(int i) const {
    const Node& n = nodes_[i];
    std::ofstream conf(dir_ + "/" + n.name + ".conf");
    conf << "server_name: " << n.name << "\nlisten: 127.0.0.1:" << n.client_port
         << "\nhttp: 127.0.0.1:" << n.monitor_port << "\njetstream { store_dir: \"" << dir_ << "/"
         << n.name << "\", max_memory_store: 256MB, max_file_store: 2GB }\n";
    if (n.cluster_port != 0) {
      conf << "cluster {\n  name: herald-test\n  listen: 127.0.0.1:" << n.cluster_port
           << "\n  routes: [";
      for (size_t j = 0; j < nodes_.size(); ++j) {
        conf << (j ? ", " : "") << "nats-route://127.0.0.1:" << nodes_[j].cluster_port;
      }
      conf << "]\n}\n";
    }
  }
  void Signal(int i, int sig) {
    Node& n = nodes_[i];
    if (n.pid <= 0) return;
    kill(n.pid, sig);
    waitpid(n.pid, nullptr, 0);
    n.pid = -1;
  }
  static uint16_t FreePort() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
  }

  std::string dir_;
  std::vector<Node> nodes_;
};

}  // namespace herald::test_support
