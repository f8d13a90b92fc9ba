// Polls a condition of a test that waits for the daemon (a delivery, a state change).
#pragma once

#include <chrono>
#include <thread>

namespace herald::test_support {

// True as soon as `done()` is, false after `limit` (a test failure then says what was awaited).
template <typename F>
bool Eventually(F done, std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

}  // namespace herald::test_support
