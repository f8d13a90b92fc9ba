#include "engine/deliver/clock.h"

#include <boost/asio/steady_timer.hpp>

namespace herald::deliver {
namespace {

class TimerAlarm final : public Alarm {
 public:
  explicit TimerAlarm(boost::asio::io_context& io) : timer_(io) {}
  void Set(std::chrono::steady_clock::time_point at, std::function<void()> fn) override {
    timer_.expires_at(at);  // cancels a wait set before: its handler sees operation_aborted
    timer_.async_wait([fn = std::move(fn)](const boost::system::error_code& ec) {
      if (!ec) fn();
    });
  }
  void Cancel() override { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

class SystemClock final : public Clock {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
  int64_t UnixMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::unique_ptr<Alarm> NewAlarm(boost::asio::io_context& io) const override {
    return std::make_unique<TimerAlarm>(io);
  }
};

}  // namespace

const Clock& Clock::System() {
  static const SystemClock clock;
  return clock;
}

}  // namespace herald::deliver
