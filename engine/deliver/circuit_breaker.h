// A profile's circuit breaker (DESIGN §5). Closed: requests go, up to the window. After
// `failures` consecutive failed requests it opens: nothing goes for `open`; then half-open: one
// probe. A probe that fails opens it again for twice as long (up to `open_max`); a success closes
// it. Only transport errors, 408 and 5xx count as failures, and while half-open only the
// probe's: requests sent before it opened may still be finishing. Not thread-safe: a worker owns
// its profiles' breakers.
#pragma once

#include <chrono>

#include "engine/deliver/clock.h"

namespace herald::deliver {

class CircuitBreaker {
 public:
  struct Options {
    int failures = 5;
    std::chrono::milliseconds open{1000};
    std::chrono::milliseconds open_max{60000};
  };
  enum class State { kClosed, kOpen, kHalfOpen };

  explicit CircuitBreaker(Options options, const Clock& clock = Clock::System())
      : options_(options), clock_(clock) {}

  // Before sending: open and its time is up → half-open. kOpen: wait until open_until().
  State Admit();
  // A request the breaker counts failed (`probe`: the half-open circuit's one request). True
  // when that opened the circuit.
  bool Failed(bool probe);
  // A request succeeded. True when that closed an open or half-open circuit.
  bool Succeeded();

  State state() const { return state_; }
  Clock::time_point open_until() const { return open_until_; }
  std::chrono::milliseconds open_for() const { return open_for_; }
  int consecutive_failures() const { return consecutive_failures_; }

 private:
  const Options options_;
  const Clock& clock_;
  State state_ = State::kClosed;
  int consecutive_failures_ = 0;
  Clock::time_point open_until_{};
  std::chrono::milliseconds open_for_{0};
};

}  // namespace herald::deliver
