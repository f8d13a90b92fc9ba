// When a failed request is tried again (DESIGN §5): the receiver's Retry-After when it sent one
// (at most a day), else the profile's delays (the last repeating), else the platform's schedule
// of 1 min + n² min before retry n; each of ours spread by ±jitter so that failed profiles do not
// retry in step.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

#include "engine/deliver/clock.h"
#include "herald/subscription.h"

namespace herald::deliver {

// Retry-After: delta-seconds or an HTTP-date (relative to `now_unix_ms`); nullopt when absent or
// unreadable.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         int64_t now_unix_ms);

class RetrySchedule {
 public:
  RetrySchedule(double jitter, uint64_t seed, const Clock& clock = Clock::System())
      : jitter_(jitter), rng_(seed), clock_(clock) {}

  // The wait before retry number `attempts` (attempts ≥ 1 were made).
  std::chrono::milliseconds Delay(const RetryPolicy& policy, int attempts,
                                  std::string_view retry_after);

 private:
  const double jitter_;
  std::mt19937_64 rng_;
  const Clock& clock_;
};

}  // namespace herald::deliver
