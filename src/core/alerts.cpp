// alerts.cpp: health check changes and their NOTIFY payloads (alerts.hpp).
#include "core/alerts.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "core/protocol.hpp"
#include "core/value.hpp"

namespace hyperline::alerts {
namespace {
constexpr size_t kMaxDetailBytes = 2000;
}  // namespace

std::vector<Alert> Changes(const std::vector<CheckStatus>& previous,
                           const std::vector<CheckStatus>& current) {
  std::vector<Alert> out;
  for (const CheckStatus& c : current) {
    auto before = std::find_if(previous.begin(), previous.end(), [&c](const CheckStatus& p) {
      return p.check_name == c.check_name;
    });
    std::string was = before == previous.end() ? "ok" : before->status;
    if (was != c.status) out.push_back(Alert{c.check_name, c.status, was, c.detail});
  }
  return out;
}

std::string Payload(const Alert& alert, const std::string& database,
                    std::chrono::system_clock::time_point at) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[64];
  std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  std::string out = "{\"check_name\":\"";
  AppendJsonEscaped(alert.check_name, out);
  out += "\",\"status\":\"";
  AppendJsonEscaped(alert.status, out);
  out += "\",\"detail\":\"";
  AppendJsonEscaped(Truncate(alert.detail, kMaxDetailBytes), out);
  out += "\",\"at\":\"";
  out += when;
  out += "\",\"previous_status\":\"";
  AppendJsonEscaped(alert.previous_status, out);
  out += "\",\"database\":\"";
  AppendJsonEscaped(database, out);
  out += "\"}";
  return out;
}

}  // namespace hyperline::alerts
