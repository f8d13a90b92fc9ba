// Name resolution for the delivery workers, off their threads. getaddrinfo blocks, and Asio runs
// a context's lookups one at a time on one hidden thread: a receiver whose DNS never answers
// would hold back every new connection of every profile on that worker. Here lookups run on a
// pool of threads shared by the workers, one lookup per name at a time (callers asking for a
// name being looked up wait for that lookup), and each caller waits at most its own deadline. At
// most `max_threads` lookups run at once: as many names whose DNS never answers (each holds one
// until getaddrinfo gives up) make other names wait in line, each still within its deadline.
//
// Thread-safe. Resolve() is called from a worker's io_context; it completes there.
#pragma once

// clang-format off
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
// clang-format on
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace herald::deliver {

class Resolver {
 public:
  // A name's addresses, as text; blocking. The system's (getaddrinfo) when empty.
  using LookupFn = std::function<absl::StatusOr<std::vector<std::string>>(std::string_view host)>;

  explicit Resolver(LookupFn lookup = {}, size_t max_threads = 16);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The addresses of `host`, or an error: the lookup's, or DeadlineExceeded after `timeout`.
  boost::asio::awaitable<absl::StatusOr<std::vector<boost::asio::ip::address>>> Resolve(
      std::string host, std::chrono::milliseconds timeout);

 private:
  // Shared with the lookup threads, which are not joined: one stuck in getaddrinfo must not hold
  // up a stop. After `stop` no callback runs.
  struct Pool;
  using Done = std::function<void(const absl::StatusOr<std::vector<std::string>>&)>;
  void Lookup(const std::string& host, std::weak_ptr<void> alive, Done done);
  static void Run(const std::shared_ptr<Pool>& pool);

  std::shared_ptr<Pool> pool_;
};

}  // namespace herald::deliver
