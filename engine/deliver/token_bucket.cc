#include "engine/deliver/token_bucket.h"

#include <algorithm>

namespace herald::deliver {

void TokenBucket::Reset(std::optional<int> rate) {
  tokens_ = rate ? 1 : 0;
  refilled_ = clock_.Now();
}

std::optional<Clock::time_point> TokenBucket::Take(double rate) {
  const auto now = clock_.Now();
  const double burst = std::max(1.0, rate / 20);
  tokens_ =
      std::min(burst, tokens_ + rate * std::chrono::duration<double>(now - refilled_).count());
  refilled_ = now;
  if (tokens_ < 1) {
    const auto wait = std::chrono::duration<double>((1 - tokens_) / rate);
    return now + std::chrono::duration_cast<Clock::duration>(wait);
  }
  tokens_ -= 1;
  return std::nullopt;
}

}  // namespace herald::deliver
