// The SSRF guard at write time (DESIGN §5), off the paths a slow resolver would block. A profile
// or security write naming a host looks it up first, on a thread of its own and for at most
// `timeout`, while the request holds neither an io thread nor the management lock; the write
// then runs with the answer at hand. A name that does not resolve in time is accepted: the
// deliverer checks each connection's addresses anyway. Answers are kept for a minute, so a
// burst of writes to one receiver looks it up once. Thread-safe.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/common/mutex.h"
#include "engine/deliver/resolver.h"

namespace herald::server {

class TargetLookups {
 public:
  explicit TargetLookups(std::chrono::milliseconds timeout = std::chrono::seconds(1),
                         deliver::Resolver::LookupFn lookup = {});
  ~TargetLookups();  // stops, if Stop was not called

  // The webhook and token URLs a management request body names ("notifyUrl", "tokenUrl" at any
  // depth); none when it is not JSON.
  static std::vector<std::string> UrlsIn(std::string_view body);
  // Of the hosts of `urls`, the names (not literal addresses) with no answer kept.
  std::vector<std::string> Unknown(const std::vector<std::string>& urls) const;
  // Looks `hosts` up, then runs `then` on the lookups' thread; after Stop, runs it at once.
  void LookUp(std::vector<std::string> hosts, std::function<void()> then);
  // Lookups not yet begun are skipped; returns once every `then` has run (after at most the
  // lookup in flight, `timeout`).
  void Stop();
  // The guard's verdict on `url` from what is known: a literal address, or a name's kept answer;
  // a name with none passes. A malformed URL passes too (the model's validation reports it).
  absl::Status Check(std::string_view url) const;

 private:
  struct Answer {
    std::vector<boost::asio::ip::address> addresses;  // empty: did not resolve in time
    std::chrono::steady_clock::time_point at;
  };
  void Keep(const std::string& host, std::vector<boost::asio::ip::address> addresses);
  void Spawn(std::vector<std::string> hosts, std::function<void()> then) HERALD_REQUIRES(mu_);

  const std::chrono::milliseconds timeout_;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, Answer> answers_ HERALD_GUARDED_BY(mu_);
  bool stopping_ HERALD_GUARDED_BY(mu_) = false;
  boost::asio::thread_pool thread_{1};
  // Declared after thread_, so it goes first: no lookup answer is posted to a gone thread.
  deliver::Resolver resolver_;
};

}  // namespace herald::server
