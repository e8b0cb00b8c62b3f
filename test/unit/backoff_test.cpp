// Tests for retry delays, Retry-After parsing and the token bucket.
#include "core/backoff.hpp"

#include <gtest/gtest.h>

#include <ctime>

namespace hyperline {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Backoff, CeilingDoublesFromBaseAndCaps) {
  EXPECT_EQ(BackoffCeilingMs(1, 100, 10000), 100);
  EXPECT_EQ(BackoffCeilingMs(2, 100, 10000), 200);
  EXPECT_EQ(BackoffCeilingMs(5, 100, 10000), 1600);
  EXPECT_EQ(BackoffCeilingMs(8, 100, 10000), 10000);
  EXPECT_EQ(BackoffCeilingMs(1000, 100, 10000), 10000);  // no overflow
  EXPECT_EQ(BackoffCeilingMs(0, 100, 10000), 100);
  EXPECT_EQ(BackoffCeilingMs(3, 5000, 3000), 3000);  // base above cap
}

TEST(Backoff, JitterStaysBetweenHalfAndCeiling) {
  for (int attempt = 1; attempt < 12; ++attempt) {
    int64_t ceiling = BackoffCeilingMs(attempt, 250, 60000);
    EXPECT_EQ(BackoffMs(attempt, 250, 60000, 0.0), ceiling / 2);
    EXPECT_EQ(BackoffMs(attempt, 250, 60000, 1.0), ceiling);
    int64_t mid = BackoffMs(attempt, 250, 60000, 0.5);
    EXPECT_GT(mid, ceiling / 2 - 1);
    EXPECT_LE(mid, ceiling);
  }
  // Different random draws give different delays (that is the point of jitter).
  EXPECT_NE(BackoffMs(6, 1000, 300000, 0.1), BackoffMs(6, 1000, 300000, 0.9));
}

TEST(RetryAfter, DeltaSeconds) {
  auto now = std::chrono::system_clock::now();
  EXPECT_EQ(ParseRetryAfterMs("120", now), 120000);
  EXPECT_EQ(ParseRetryAfterMs(" 0 ", now), 0);
  EXPECT_EQ(ParseRetryAfterMs("3\r\n", now), 3000);
  EXPECT_FALSE(ParseRetryAfterMs("", now).has_value());
  EXPECT_FALSE(ParseRetryAfterMs("-5", now).has_value());
  EXPECT_FALSE(ParseRetryAfterMs("1.5", now).has_value());
  EXPECT_FALSE(ParseRetryAfterMs("soon", now).has_value());
}

TEST(RetryAfter, HttpDateForms) {
  // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 seconds since the epoch.
  auto at = std::chrono::system_clock::time_point(seconds(784111777));
  auto before = at - seconds(90);
  EXPECT_EQ(ParseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", before), 90000);
  EXPECT_EQ(ParseRetryAfterMs("Sunday, 06-Nov-94 08:49:37 GMT", before), 90000);
  EXPECT_EQ(ParseRetryAfterMs("Sun Nov  6 08:49:37 1994", before), 90000);
  // In the past: no wait.
  EXPECT_EQ(ParseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", at + seconds(5)), 0);
  EXPECT_FALSE(ParseRetryAfterMs("Sun, 06 Foo 1994 08:49:37 GMT", before).has_value());
  EXPECT_FALSE(ParseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 CET", before).has_value());
  EXPECT_FALSE(ParseRetryAfterMs("Sun, 06 Nov 1994 25:49:37 GMT", before).has_value());
}

TEST(RetryAfter, DateMatchesLibcTimegm) {
  // Cross-check the date arithmetic against timegm for a leap-year date.
  std::tm tm = {};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 1;
  tm.tm_mday = 29;
  tm.tm_hour = 23;
  tm.tm_min = 59;
  tm.tm_sec = 58;
  time_t t = timegm(&tm);
  auto now = std::chrono::system_clock::from_time_t(t) - milliseconds(1500);
  EXPECT_EQ(ParseRetryAfterMs("Thu, 29 Feb 2024 23:59:58 GMT", now), 1500);
}

TEST(TokenBucket, UnlimitedWhenRateIsZero) {
  TokenBucket b(0, 0);
  auto t = TokenBucket::Clock::now();
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b.TryTake(t));
  EXPECT_EQ(b.WaitTime(t).count(), 0);
}

TEST(TokenBucket, LimitsToRateAfterBurst) {
  TokenBucket b(10, 2);  // 10/s, burst 2
  auto t = TokenBucket::Clock::time_point() + seconds(100);
  EXPECT_TRUE(b.TryTake(t));
  EXPECT_TRUE(b.TryTake(t));
  EXPECT_FALSE(b.TryTake(t));
  EXPECT_EQ(b.WaitTime(t).count(), 100000);  // one token per 100 ms
  EXPECT_FALSE(b.TryTake(t + milliseconds(50)));
  EXPECT_TRUE(b.TryTake(t + milliseconds(100)));
  EXPECT_FALSE(b.TryTake(t + milliseconds(100)));
  // Over one simulated second at most rate (+ burst) requests pass.
  int passed = 0;
  auto start = t + seconds(10);
  for (int ms = 0; ms < 1000; ++ms) passed += b.TryTake(start + milliseconds(ms)) ? 1 : 0;
  EXPECT_GE(passed, 10);
  EXPECT_LE(passed, 12);
}

TEST(TokenBucket, FractionalRate) {
  TokenBucket b(0.5, 1);  // one request every 2 s
  auto t = TokenBucket::Clock::time_point() + seconds(1);
  EXPECT_TRUE(b.TryTake(t));
  EXPECT_FALSE(b.TryTake(t + milliseconds(1999)));
  EXPECT_TRUE(b.TryTake(t + milliseconds(2000)));
}

TEST(TokenBucket, SetRateClipsTokens) {
  TokenBucket b(100, 50);
  auto t = TokenBucket::Clock::time_point() + seconds(1);
  EXPECT_TRUE(b.TryTake(t));
  b.SetRate(1, 1, t);
  EXPECT_TRUE(b.TryTake(t));
  EXPECT_FALSE(b.TryTake(t));
}

}  // namespace
}  // namespace hyperline
