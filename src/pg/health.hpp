// health.hpp: SQL hyperline.health() (health.cpp) and the delivery worker's
// alerts: it evaluates
// hyperline.health() a few times a minute and sends NOTIFY hyperline_alerts
// with a JSON payload for every check whose status changed (src/core/alerts).
// The last statuses sent are kept in shared memory per database (stats.hpp),
// so a restarted worker neither sends a change again nor misses one.
#pragma once

#include <chrono>

namespace hyperline::pg {

// The NOTIFY channel of the alerts.
inline constexpr const char* kAlertChannel = "hyperline_alerts";

class HealthMonitor {
 public:
  // How often hyperline.health() is evaluated.
  static constexpr std::chrono::milliseconds kInterval{10000};

  // Evaluates soon (a destination's state just changed).
  void Soon();
  // When Tick next has something to do.
  std::chrono::steady_clock::time_point NextDeadline() const { return next_; }
  // When due: evaluates hyperline.health() and sends the changes, in one short
  // transaction. An error is logged (at most once a minute) and the next
  // evaluation tries again; it never stops the delivery.
  void Tick();

 private:
  // The first evaluation a moment after the worker is ready.
  std::chrono::steady_clock::time_point next_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
};

}  // namespace hyperline::pg
