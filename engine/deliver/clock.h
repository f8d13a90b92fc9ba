// Time for the delivery policies (retry schedule, circuit breaker, token bucket, OAuth token
// expiry): steady time for what they schedule, Unix time for HTTP dates. The deliverer uses the
// system's; unit tests pass a clock they move by hand, so the policies are tested in simulated
// time, without sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace herald::deliver {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  virtual ~Clock() = default;
  virtual time_point Now() const = 0;
  virtual int64_t UnixMillis() const = 0;

  // steady_clock and system_clock.
  static const Clock& System();
};

}  // namespace herald::deliver
