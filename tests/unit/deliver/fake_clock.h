// A clock the test moves by hand: the delivery policies and the worker in simulated time. Its
// alarms fire when Advance reaches them, posted to their io_context. Thread-safe: a worker's
// thread may read it and set alarms while the test advances it.
#pragma once

#include <boost/asio/post.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/deliver/clock.h"

namespace herald::deliver {

class FakeClock final : public Clock {
 public:
  time_point Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  int64_t UnixMillis() const override {
    std::lock_guard lock(mu_);
    return unix_ms_;
  }
  void Advance(duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
    unix_ms_ += std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    for (const auto& state : alarms_) FireIfDue(state);
  }
  void SetUnixMillis(int64_t ms) {
    std::lock_guard lock(mu_);
    unix_ms_ = ms;
  }
  std::unique_ptr<Alarm> NewAlarm(boost::asio::io_context& io) const override {
    auto state = std::make_shared<State>();
    state->io = &io;
    std::lock_guard lock(mu_);
    alarms_.push_back(state);
    return std::make_unique<FakeAlarm>(*this, std::move(state));
  }
  // Alarms set and not yet fired.
  size_t pending() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& s : alarms_) n += s->fn != nullptr;
    return n;
  }

 private:
  struct State {
    boost::asio::io_context* io = nullptr;
    time_point at = time_point::max();
    std::function<void()> fn;
    uint64_t generation = 0;  // moves with every Set and Cancel: a posted callback checks it
  };

  class FakeAlarm final : public Alarm {
   public:
    FakeAlarm(const FakeClock& clock, std::shared_ptr<State> state)
        : clock_(clock), state_(std::move(state)) {}
    ~FakeAlarm() override {
      std::lock_guard lock(clock_.mu_);
      std::erase(clock_.alarms_, state_);
      ++state_->generation;
    }
    void Set(time_point at, std::function<void()> fn) override {
      std::lock_guard lock(clock_.mu_);
      ++state_->generation;
      state_->at = at;
      state_->fn = std::move(fn);
      clock_.FireIfDue(state_);
    }
    void Cancel() override {
      std::lock_guard lock(clock_.mu_);
      ++state_->generation;
      state_->fn = nullptr;
    }

   private:
    const FakeClock& clock_;
    std::shared_ptr<State> state_;
  };

  // With mu_ held.
  void FireIfDue(const std::shared_ptr<State>& state) const {
    if (!state->fn || state->at > now_) return;
    boost::asio::post(*state->io, [this, state, generation = state->generation,
                                   fn = std::exchange(state->fn, nullptr)] {
      {
        std::lock_guard lock(mu_);
        if (state->generation != generation) return;  // set again, or cancelled, meanwhile
      }
      fn();
    });
  }

  mutable std::mutex mu_;
  time_point now_ = time_point(std::chrono::hours(1000));
  int64_t unix_ms_ = 1'700'000'000'000;
  mutable std::vector<std::shared_ptr<State>> alarms_;
};

}  // namespace herald::deliver
