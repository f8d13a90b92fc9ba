// Time for the deliverer (retry schedule, circuit breaker, token bucket, OAuth token expiry, and
// the worker's timers): steady time for what it schedules, Unix time for HTTP dates and dead
// letters. The deliverer uses the system's; unit tests pass a clock they move by hand, so the
// policies and the worker are tested in simulated time, without sleeping.
#pragma once

// clang-format off
#include <utility>  // Boost 1.74's asio uses std::exchange without including it
#include <boost/asio/io_context.hpp>
// clang-format on
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace herald::deliver {

// A one-shot timer on a Clock, bound to an io_context: its callback runs there.
class Alarm {
 public:
  virtual ~Alarm() = default;
  // Calls `fn` once the clock reaches `at`. Replaces an earlier setting, whose callback does not
  // run.
  virtual void Set(std::chrono::steady_clock::time_point at, std::function<void()> fn) = 0;
  virtual void Cancel() = 0;  // the callback does not run
};

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  virtual ~Clock() = default;
  virtual time_point Now() const = 0;
  virtual int64_t UnixMillis() const = 0;
  // An alarm whose callbacks run on `io`; it must not outlive the clock or `io`.
  virtual std::unique_ptr<Alarm> NewAlarm(boost::asio::io_context& io) const = 0;

  // steady_clock and system_clock; alarms are Asio steady timers.
  static const Clock& System();
};

}  // namespace herald::deliver
