#include "engine/deliver/retry_schedule.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <string>

namespace herald::deliver {

using std::chrono::milliseconds;

std::optional<milliseconds> ParseRetryAfter(std::string_view value, int64_t now_unix_ms) {
  if (value.empty()) return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string_view::npos && value.size() < 10) {
    int64_t seconds = 0;
    std::from_chars(value.data(), value.data() + value.size(), seconds);
    return milliseconds(seconds * 1000);
  }
  struct tm tm = {};
  const std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const int64_t at_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return milliseconds(std::max<int64_t>(0, at_ms - now_unix_ms));
}

milliseconds RetrySchedule::Delay(const RetryPolicy& policy, int attempts,
                                  std::string_view retry_after) {
  if (auto honoured = ParseRetryAfter(retry_after, clock_.UnixMillis())) {
    return std::min<milliseconds>(*honoured, std::chrono::hours(24));
  }
  double base;
  const auto& delays = policy.delays_ms;
  if (delays.empty()) {
    base = 60'000.0 * (1 + static_cast<double>(attempts) * attempts);
  } else {
    base = static_cast<double>(delays[std::min<size_t>(attempts - 1, delays.size() - 1)]);
  }
  if (jitter_ <= 0) return milliseconds(static_cast<int64_t>(base));
  std::uniform_real_distribution<double> spread(1 - jitter_, 1 + jitter_);
  return milliseconds(static_cast<int64_t>(base * spread(rng_)));
}

}  // namespace herald::deliver
