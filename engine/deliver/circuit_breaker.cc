#include "engine/deliver/circuit_breaker.h"

#include <algorithm>

namespace herald::deliver {

CircuitBreaker::State CircuitBreaker::Admit() {
  if (state_ == State::kOpen && clock_.Now() >= open_until_) state_ = State::kHalfOpen;
  return state_;
}

bool CircuitBreaker::Failed(bool probe) {
  if (state_ == State::kHalfOpen && !probe) return false;
  ++consecutive_failures_;
  const bool reopen = state_ == State::kHalfOpen;
  if (!reopen && (state_ == State::kOpen || consecutive_failures_ < options_.failures)) {
    return false;
  }
  open_for_ = reopen ? std::min(options_.open_max, open_for_ * 2) : options_.open;
  state_ = State::kOpen;
  open_until_ = clock_.Now() + open_for_;
  return true;
}

bool CircuitBreaker::Succeeded() {
  consecutive_failures_ = 0;
  if (state_ == State::kClosed) return false;
  state_ = State::kClosed;
  return true;
}

}  // namespace herald::deliver
