// heraldd: flags and signals; the daemon itself is engine/server/daemon.h.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "engine/server/daemon.h"
#include "engine/server/daemon_config.h"

int main(int argc, char** argv) {
  auto config = herald::server::ParseDaemonConfig(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "heraldd: %s\n%s", std::string(config.status().message()).c_str(),
                 herald::server::DaemonUsage().c_str());
    return 2;
  }
  if (config->help) {
    std::fputs(herald::server::DaemonUsage().c_str(), stdout);
    return 0;
  }
  // A closed stdout or peer must not kill the daemon: writes report the error instead. Nor may
  // a file size limit: the spool's write fails and ingest answers 503.
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGXFSZ, SIG_IGN);
  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  config->engine.log = [](std::string_view line) {
    std::fprintf(stderr, "heraldd: %.*s\n", static_cast<int>(line.size()), line.data());
  };
  config->delivery.log = config->engine.log;
  auto daemon = herald::server::Daemon::Create(*std::move(config), [](std::string_view line) {
    std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  });
  if (!daemon.ok()) {
    std::fprintf(stderr, "heraldd: %s\n", std::string(daemon.status().message()).c_str());
    return absl::IsInvalidArgument(daemon.status()) ? 2 : 1;
  }
  // The stop signals are taken by a thread of their own, so a SIGTERM is heard during the
  // replay too.
  std::atomic<int> stop_signal{0};
  std::thread signals([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    stop_signal.store(signal);
    stop_signal.notify_all();
  });
  signals.detach();
  if (auto s = (*daemon)->Start([&] { return stop_signal.load() != 0; }); !s.ok()) {
    const bool stopped = absl::IsCancelled(s);
    std::fprintf(stderr, "heraldd: %s\n", std::string(s.message()).c_str());
    if (stopped) std::printf("heraldd: stopped\n");
    return stopped ? 0 : 1;
  }
  stop_signal.wait(0);
  std::printf("heraldd: %s received, stopping\n",
              stop_signal.load() == SIGTERM ? "SIGTERM" : "SIGINT");
  std::fflush(stdout);
  (*daemon)->Stop();
  std::printf("heraldd: stopped\n");
  return 0;
}
