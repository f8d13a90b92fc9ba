// A clock the test moves by hand: the delivery policies in simulated time.
#pragma once

#include "engine/deliver/clock.h"

namespace herald::deliver {

class FakeClock final : public Clock {
 public:
  time_point Now() const override { return now_; }
  int64_t UnixMillis() const override { return unix_ms_; }
  void Advance(duration d) {
    now_ += d;
    unix_ms_ += std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  }
  void SetUnixMillis(int64_t ms) { unix_ms_ = ms; }

 private:
  time_point now_ = time_point(std::chrono::hours(1000));
  int64_t unix_ms_ = 1'700'000'000'000;
};

}  // namespace herald::deliver
