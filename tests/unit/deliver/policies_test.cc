// The delivery policies in simulated time: retry schedule, circuit breaker, token bucket.
#include "engine/deliver/circuit_breaker.h"
#include "engine/deliver/retry_schedule.h"
#include "engine/deliver/token_bucket.h"
#include "gtest/gtest.h"
#include "tests/unit/deliver/fake_clock.h"

namespace herald::deliver {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;

TEST(RetrySchedule, ThePlatformsScheduleWithoutDelaysOfTheProfile) {
  FakeClock clock;
  RetrySchedule schedule(/*jitter=*/0, 1, clock);
  const RetryPolicy platform;  // no delays: 1 min + n² min
  EXPECT_EQ(schedule.Delay(platform, 1, ""), 2min);
  EXPECT_EQ(schedule.Delay(platform, 2, ""), 5min);
  EXPECT_EQ(schedule.Delay(platform, 3, ""), 10min);
}

TEST(RetrySchedule, TheProfilesDelaysWithTheLastRepeating) {
  FakeClock clock;
  RetrySchedule schedule(0, 1, clock);
  const RetryPolicy policy{.delays_ms = {100, 2000}, .max_attempts = 5};
  EXPECT_EQ(schedule.Delay(policy, 1, ""), 100ms);
  EXPECT_EQ(schedule.Delay(policy, 2, ""), 2000ms);
  EXPECT_EQ(schedule.Delay(policy, 4, ""), 2000ms);
}

TEST(RetrySchedule, JitterSpreadsEachDelayWithinItsBounds) {
  FakeClock clock;
  RetrySchedule schedule(0.2, 42, clock);
  const RetryPolicy policy{.delays_ms = {10'000}};
  bool below = false, above = false;
  for (int i = 0; i < 200; ++i) {
    const auto d = schedule.Delay(policy, 1, "");
    EXPECT_GE(d, 8000ms);
    EXPECT_LE(d, 12000ms);
    below = below || d < 10'000ms;
    above = above || d > 10'000ms;
  }
  EXPECT_TRUE(below && above) << "the delays are spread both ways";
}

TEST(RetrySchedule, RetryAfterIsHonouredInSecondsOrAsADateUpToADay) {
  FakeClock clock;
  clock.SetUnixMillis(1'700'000'000'000);  // Tue, 14 Nov 2023 22:13:20 GMT
  RetrySchedule schedule(0.2, 1, clock);
  const RetryPolicy policy{.delays_ms = {100}};
  EXPECT_EQ(schedule.Delay(policy, 1, "7"), 7s) << "the receiver's word, without jitter";
  EXPECT_EQ(schedule.Delay(policy, 1, "Tue, 14 Nov 2023 22:14:20 GMT"), 60s);
  EXPECT_EQ(schedule.Delay(policy, 1, "Tue, 14 Nov 2023 22:00:00 GMT"), 0ms) << "in the past";
  EXPECT_EQ(schedule.Delay(policy, 1, "999999999"), 24h);
  const auto unreadable = schedule.Delay(policy, 1, "soon");
  EXPECT_GE(unreadable, 80ms);
  EXPECT_LE(unreadable, 120ms);
  EXPECT_EQ(ParseRetryAfter("", 0), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("12abc", 0), std::nullopt);
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresAndProbesWhenItsTimeIsUp) {
  FakeClock clock;
  CircuitBreaker breaker({.failures = 3, .open = 1s, .open_max = 8s}, clock);
  EXPECT_FALSE(breaker.Failed(false));
  EXPECT_FALSE(breaker.Failed(false));
  EXPECT_FALSE(breaker.Succeeded()) << "it was closed";
  EXPECT_FALSE(breaker.Failed(false));
  EXPECT_FALSE(breaker.Failed(false)) << "a success in between starts the count again";
  EXPECT_TRUE(breaker.Failed(false));
  EXPECT_EQ(breaker.Admit(), State::kOpen);
  EXPECT_EQ(breaker.open_until(), clock.Now() + 1s);
  clock.Advance(999ms);
  EXPECT_EQ(breaker.Admit(), State::kOpen);
  clock.Advance(1ms);
  EXPECT_EQ(breaker.Admit(), State::kHalfOpen) << "one probe";
}

TEST(CircuitBreaker, AFailedProbeReopensForTwiceAsLongUpToTheMaximum) {
  FakeClock clock;
  CircuitBreaker breaker({.failures = 1, .open = 1s, .open_max = 3s}, clock);
  ASSERT_TRUE(breaker.Failed(false));
  for (const auto expected : {2s, 3s, 3s}) {
    clock.Advance(breaker.open_for());
    ASSERT_EQ(breaker.Admit(), State::kHalfOpen);
    EXPECT_FALSE(breaker.Failed(/*probe=*/false)) << "an older request's failure does not count";
    EXPECT_TRUE(breaker.Failed(/*probe=*/true));
    EXPECT_EQ(breaker.open_for(), expected);
    EXPECT_EQ(breaker.Admit(), State::kOpen);
  }
  clock.Advance(3s);
  ASSERT_EQ(breaker.Admit(), State::kHalfOpen);
  EXPECT_TRUE(breaker.Succeeded()) << "the probe succeeded: closed";
  EXPECT_EQ(breaker.Admit(), State::kClosed);
  EXPECT_EQ(breaker.consecutive_failures(), 0);
}

TEST(TokenBucket, SendsEvenlyAtTheRateWithoutBursts) {
  FakeClock clock;
  TokenBucket bucket(clock);
  bucket.Reset(10);  // 10 requests/s: a burst of at most one
  EXPECT_EQ(bucket.Take(10), std::nullopt) << "the first goes at once";
  const auto next = bucket.Take(10);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, clock.Now() + 100ms);
  clock.Advance(100ms);
  EXPECT_EQ(bucket.Take(10), std::nullopt);
  clock.Advance(10s);  // idle for long: still only one at once
  EXPECT_EQ(bucket.Take(10), std::nullopt);
  EXPECT_TRUE(bucket.Take(10).has_value());
}

TEST(TokenBucket, AFastRateAllowsATwentiethOfASecondAtOnce) {
  FakeClock clock;
  TokenBucket bucket(clock);
  bucket.Reset(1000);
  clock.Advance(1s);
  int sent = 0;
  while (!bucket.Take(1000)) ++sent;
  EXPECT_EQ(sent, 50);
  // Over a simulated second, the rate holds.
  int in_a_second = 0;
  for (int ms = 0; ms < 1000; ++ms) {
    clock.Advance(1ms);
    while (!bucket.Take(1000)) ++in_a_second;
  }
  EXPECT_EQ(in_a_second, 1000);
}

}  // namespace
}  // namespace herald::deliver
