// A profile's rate limit (`rateLimit`, requests per second): a token bucket holding at most a
// twentieth of a second's worth (at least one), so a limited profile sends evenly, never in
// bursts. Not thread-safe: a worker owns its profiles' buckets.
#pragma once

#include <optional>

#include "engine/deliver/clock.h"

namespace herald::deliver {

class TokenBucket {
 public:
  explicit TokenBucket(const Clock& clock = Clock::System()) : clock_(clock) {
    refilled_ = clock_.Now();
  }

  // A new limit (or none): starts again with one token.
  void Reset(std::optional<int> rate);
  // Takes a token for one request at `rate`: nullopt when it may go now, else when to ask again.
  std::optional<Clock::time_point> Take(double rate);

 private:
  const Clock& clock_;
  double tokens_ = 0;
  Clock::time_point refilled_;
};

}  // namespace herald::deliver
