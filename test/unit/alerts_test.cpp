// Tests for src/core/alerts: which health checks changed, and the payload of
// NOTIFY hyperline_alerts.
#include "core/alerts.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace hyperline::alerts {
namespace {

std::vector<CheckStatus> Checks(std::initializer_list<std::pair<const char*, const char*>> list) {
  std::vector<CheckStatus> out;
  for (auto [name, status] : list) out.push_back({name, status, std::string(name) + " says so"});
  return out;
}

TEST(Alerts, OnlyChangedChecksAreAlerts) {
  auto before = Checks({{"worker", "ok"}, {"backlog", "warning"}, {"destinations", "ok"}});
  auto now = Checks({{"worker", "ok"}, {"backlog", "critical"}, {"destinations", "ok"}});
  std::vector<Alert> a = Changes(before, now);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].check_name, "backlog");
  EXPECT_EQ(a[0].status, "critical");
  EXPECT_EQ(a[0].previous_status, "warning");
  EXPECT_EQ(a[0].detail, "backlog says so");
  EXPECT_TRUE(Changes(now, now).empty()) << "the same statuses again: nothing";
}

TEST(Alerts, AFirstEvaluationAnnouncesProblemsOnly) {
  auto now = Checks({{"worker", "ok"}, {"destinations", "critical"}, {"failed_events", "warning"}});
  std::vector<Alert> a = Changes({}, now);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].check_name, "destinations");
  EXPECT_EQ(a[0].previous_status, "ok");
  EXPECT_EQ(a[1].check_name, "failed_events");
  // A check that went away is not an alert; a new one that is ok neither.
  EXPECT_TRUE(Changes(Checks({{"gone", "critical"}}), Checks({{"new", "ok"}})).empty());
}

TEST(Alerts, PayloadIsJsonWithTheFields) {
  Alert a{"destinations", "critical", "ok", "destination \"hyperline\" unauthorized:\n401"};
  auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1734710651123));
  std::string p = Payload(a, "app", at);
  nlohmann::json j = nlohmann::json::parse(p);
  EXPECT_EQ(j["check_name"], "destinations");
  EXPECT_EQ(j["status"], "critical");
  EXPECT_EQ(j["previous_status"], "ok");
  EXPECT_EQ(j["detail"], "destination \"hyperline\" unauthorized:\n401");
  EXPECT_EQ(j["at"], "2024-12-20T16:04:11.123Z");
  EXPECT_EQ(j["database"], "app");
}

TEST(Alerts, LongDetailsAreCutBelowNotifysLimit) {
  Alert a{"query_models", "critical", "ok", std::string(20000, 'x')};
  std::string p = Payload(a, std::string(63, 'd'), std::chrono::system_clock::now());
  EXPECT_LT(p.size(), 8000u);
  EXPECT_TRUE(nlohmann::json::accept(p));
}

}  // namespace
}  // namespace hyperline::alerts
