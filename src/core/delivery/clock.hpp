// clock.hpp: time as the delivery engine sees it, behind an interface so that
// tests run the engine on a fake clock (TimescaleDB's src/bgw/timer.h does the
// same for its scheduler).
#pragma once
#include "core/cpp_only.hpp"

#include <chrono>

namespace hyperline::delivery {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic time: deadlines, backoff, rate limits.
  virtual TimePoint Now() const = 0;
  // Wall-clock time: only to read an HTTP-date in Retry-After.
  virtual std::chrono::system_clock::time_point WallNow() const = 0;
};

// The real clocks.
class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point WallNow() const override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace hyperline::delivery
