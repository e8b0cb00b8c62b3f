// Tests for src/core/stats_window: the latency histogram behind hyperline.stats's
// percentiles and the per-minute counts behind health()'s failed_events.
#include "core/stats_window.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace hyperline::window {
namespace {

constexpr int64_t kMinute = 29000000;  // some minute (Postgres timestamps / 60 s)

TEST(StatsWindow, BucketsAreQuarterOctavesFromATenthOfAMillisecond) {
  EXPECT_EQ(LatencyBucket(0), 0);
  EXPECT_EQ(LatencyBucket(0.05), 0);
  EXPECT_EQ(LatencyBucket(-3), 0);
  EXPECT_EQ(LatencyBucket(std::nan("")), 0);
  EXPECT_EQ(LatencyBucket(0.1), 1);
  EXPECT_EQ(LatencyBucket(0.2), 5);  // one octave up: four buckets on
  EXPECT_EQ(LatencyBucket(1e12), kTopLatencyBucket);
  int last = 0;
  for (double ms = 0.01; ms < 1e10; ms *= 1.03) {
    int b = LatencyBucket(ms);
    ASSERT_GE(b, last) << ms;
    last = b;
    if (b > 0 && b < kTopLatencyBucket) {
      double v = LatencyBucketValue(b);
      EXPECT_LT(std::fabs(v - ms) / ms, 0.091) << ms;  // within 9 %
    }
  }
  EXPECT_EQ(last, kTopLatencyBucket);
}

TEST(StatsWindow, PercentilesAreWithinNinePercent) {
  LatencyHistogram h;
  std::memset(&h, 0, sizeof h);
  double out[3];
  double ps[3] = {0.5, 0.9, 0.99};
  EXPECT_FALSE(LatencyPercentiles(h, kMinute, ps, out, 3)) << "empty";
  std::vector<double> ms;
  for (int i = 1; i <= 1000; ++i) ms.push_back(i);  // 1..1000 ms
  AddLatencies(h, ms.data(), ms.size(), kMinute);
  ASSERT_TRUE(LatencyPercentiles(h, kMinute, ps, out, 3));
  double exact[3] = {500, 900, 990};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(out[i], exact[i], exact[i] * 0.091) << ps[i];
  EXPECT_LE(out[0], out[1]);
  EXPECT_LE(out[1], out[2]);
  // One slow event among many fast ones: p99 says so only when it is 1 % of them.
  LatencyHistogram g;
  std::memset(&g, 0, sizeof g);
  std::vector<double> fast(98, 2.0);
  AddLatencies(g, fast.data(), fast.size(), kMinute);
  double slow[2] = {5000, 5000};
  AddLatencies(g, slow, 2, kMinute);
  ASSERT_TRUE(LatencyPercentiles(g, kMinute, ps, out, 3));
  EXPECT_NEAR(out[0], 2.0, 0.2);
  EXPECT_NEAR(out[1], 2.0, 0.2);
  EXPECT_NEAR(out[2], 5000, 5000 * 0.091);
}

TEST(StatsWindow, LatenciesAreTheLastFiveMinutes) {
  LatencyHistogram h;
  std::memset(&h, 0, sizeof h);
  double p50 = 0.5, out = 0;
  double old_ms = 100, new_ms = 10;
  AddLatencies(h, &old_ms, 1, kMinute);
  AddLatencies(h, &new_ms, 1, kMinute + 3);
  AddLatencies(h, &new_ms, 1, kMinute + 4);
  ASSERT_TRUE(LatencyPercentiles(h, kMinute + 4, &p50, &out, 1));
  EXPECT_NEAR(out, 10, 1) << "two of three at 10 ms";
  // Minute kMinute leaves the window at kMinute + 5.
  double p100 = 1.0;
  ASSERT_TRUE(LatencyPercentiles(h, kMinute + 4, &p100, &out, 1));
  EXPECT_NEAR(out, 100, 10) << "the 100 ms one still counts";
  ASSERT_TRUE(LatencyPercentiles(h, kMinute + 5, &p100, &out, 1));
  EXPECT_NEAR(out, 10, 1) << "gone a minute later";
  EXPECT_FALSE(LatencyPercentiles(h, kMinute + 9, &p100, &out, 1)) << "all gone";
  // Writing again after a long pause starts from a clean ring.
  double mid = 50;
  AddLatencies(h, &mid, 1, kMinute + 100);
  ASSERT_TRUE(LatencyPercentiles(h, kMinute + 100, &p100, &out, 1));
  EXPECT_NEAR(out, 50, 5);
  // A minute older than the ring reaches (the clock went back) is dropped.
  double ancient = 7000;
  AddLatencies(h, &ancient, 1, kMinute + 90);
  ASSERT_TRUE(LatencyPercentiles(h, kMinute + 100, &p100, &out, 1));
  EXPECT_NEAR(out, 50, 5);
}

TEST(StatsWindow, CountsOfTheLastHour) {
  MinuteCounts c;
  std::memset(&c, 0, sizeof c);
  EXPECT_EQ(CountLastHour(c, kMinute), 0);
  AddCount(c, 3, kMinute);
  AddCount(c, 0, kMinute + 1);
  AddCount(c, 4, kMinute + 30);
  EXPECT_EQ(CountLastHour(c, kMinute + 30), 7);
  EXPECT_EQ(CountLastHour(c, kMinute + 59), 7);
  EXPECT_EQ(CountLastHour(c, kMinute + 60), 4) << "the first minute left the hour";
  EXPECT_EQ(CountLastHour(c, kMinute + 89), 4);
  EXPECT_EQ(CountLastHour(c, kMinute + 90), 0);
  AddCount(c, 5, kMinute + 61);  // passes minute kMinute's slot: cleared
  EXPECT_EQ(CountLastHour(c, kMinute + 61), 9);
  AddCount(c, 1, kMinute + 500);
  EXPECT_EQ(CountLastHour(c, kMinute + 500), 1);
}

}  // namespace
}  // namespace hyperline::window
