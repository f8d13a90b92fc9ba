// heraldd as an object (DESIGN §4, §7): the deliverer, the engine, the config store and event log,
// the HTTP API and server, with their start and stop order in one place. main() parses flags and
// signals and runs it; a test may run it in process.
//
//   Create  opens the stores and loads the config into the engine; nothing listens yet.
//   Start   listens (health answers, the rest waits), replays what the last run accepted and had
//           not finished, then is ready.
//   Stop    not ready; the server stops taking requests; held notifications get shutdown_grace;
//           the event log writes its last cursors; the config store closes (compacts).
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/server/daemon_config.h"
#include "herald/engine.h"

namespace herald::server {

class Daemon {
 public:
  // `config.engine.log` (and delivery.log) say what happens; `out`, when given, gets the lines
  // an operator reads on start (where it listens, what it loaded). InvalidArgument: the
  // configuration is wrong (heraldd exits 2); another error: the machine refused (exit 1).
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(
      DaemonConfig config, std::function<void(std::string_view)> out = {});
  ~Daemon();  // stops, when started and not stopped

  // Returns once ready, or with the error that kept it from starting (after undoing what had
  // started). `stop` is asked during the replay: when it says yes, Start returns Cancelled, and
  // the next start goes on from where the replay was.
  absl::Status Start(const std::function<bool()>& stop = {});
  void Stop();

  uint16_t port() const;  // where it listens, once started
  Engine& engine();

 private:
  struct Parts;
  explicit Daemon(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace herald::server
