// alerts.hpp: what the delivery worker NOTIFYs on channel hyperline_alerts —
// which health checks changed status since the last evaluation, and the JSON
// payload of each change (src/pg/health.cpp runs hyperline.health() and sends
// them).
#pragma once
#include "core/cpp_only.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace hyperline::alerts {

// One row of hyperline.health().
struct CheckStatus {
  std::string check_name;
  std::string status;  // ok, warning, critical
  std::string detail;
};

// A check whose status changed.
struct Alert {
  std::string check_name;
  std::string status;
  std::string previous_status;
  std::string detail;
};

// The checks of `current` whose status differs from `previous`. A check
// absent from `previous` (the first evaluation since the server started, or a
// new check) counts as having been ok: a problem found at start is announced,
// a healthy start is not.
std::vector<Alert> Changes(const std::vector<CheckStatus>& previous,
                           const std::vector<CheckStatus>& current);

// The NOTIFY payload of an alert: a JSON object with check_name, status,
// detail, at (ISO 8601 UTC, milliseconds), previous_status and database.
// The detail is cut to keep the payload well under NOTIFY's 8000 bytes.
std::string Payload(const Alert& alert, const std::string& database,
                    std::chrono::system_clock::time_point at);

}  // namespace hyperline::alerts
