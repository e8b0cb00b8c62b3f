// schedule_test.cpp: query model schedules (src/core/schedule): the interval
// and cron forms, their error messages, and next run times — checked against a
// minute-by-minute reference written apart from the code under test.
#include "core/schedule.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/value.hpp"

namespace hyperline {
namespace {

constexpr int64_t kSec = 1000000;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kDayUs = 24 * kHour;

// Reference calendar (independent of value.cpp): days since 2000-01-01.
bool Leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int MonthLength(int64_t y, int m) {
  static const int kLen[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && Leap(y) ? 29 : kLen[m - 1];
}
int64_t DaysFrom2000(int64_t y, int m, int d) {
  int64_t days = 0;
  for (int64_t k = 2000; k < y; ++k) days += Leap(k) ? 366 : 365;
  for (int64_t k = y; k < 2000; ++k) days -= Leap(k) ? 366 : 365;
  for (int k = 1; k < m; ++k) days += MonthLength(y, k);
  return days + d - 1;
}

// "YYYY-MM-DDTHH:MM[:SS]" (UTC) in microseconds since 2000-01-01.
int64_t T(const std::string& iso) {
  int64_t y = std::stoll(iso.substr(0, 4));
  int m = std::stoi(iso.substr(5, 2)), d = std::stoi(iso.substr(8, 2));
  int h = std::stoi(iso.substr(11, 2)), mi = std::stoi(iso.substr(14, 2));
  int s = iso.size() >= 19 ? std::stoi(iso.substr(17, 2)) : 0;
  return DaysFrom2000(y, m, d) * kDayUs + h * kHour + mi * kMin + s * kSec;
}

// A run time as ISO text ("none" for nullopt).
std::string Iso(std::optional<int64_t> t) {
  if (!t) return "none";
  std::string out;
  AppendIsoTime(Value::TimeFromPgMicros(*t), out);
  return out;
}

std::string Next(const std::string& schedule, const std::string& after) {
  return Iso(Schedule::Parse(schedule).NextAfter(T(after)));
}

// The message of the ScheduleError `text` raises ("" when it parses).
std::string Error(const std::string& text) {
  try {
    Schedule::Parse(text);
  } catch (const ScheduleError& e) {
    return e.what();
  }
  return "";
}

TEST(Schedule, IntervalForms) {
  struct Case {
    const char* text;
    int64_t micros;
  } cases[] = {
      {"15 minutes", 15 * kMin},
      {"1 hour", kHour},
      {"1 day", kDayUs},
      {"90 seconds", 90 * kSec},
      {"1h30m", 90 * kMin},
      {"1h 30m", 90 * kMin},
      {"2 hours 30 minutes", 150 * kMin},
      {"1.5 hours", 90 * kMin},
      {"01:30", 90 * kMin},
      {"00:00:45", 45 * kSec},
      {"1:02:03.5", kHour + 2 * kMin + 3 * kSec + kSec / 2},
      {"1 week", 7 * kDayUs},
      {"  5 MIN ", 5 * kMin},
      {"1500 ms", 1500000},
      {"1 s", kSec},
      {"2 Hours", 2 * kHour},
      {"1 sec 500000 us", 1500000},
      {"3 days 4 hrs", 3 * kDayUs + 4 * kHour},
  };
  for (const Case& c : cases) {
    Schedule s = Schedule::Parse(c.text);
    EXPECT_FALSE(s.is_cron()) << c.text;
    EXPECT_EQ(s.interval_micros(), c.micros) << c.text;
  }
}

TEST(Schedule, IntervalErrorsSayWhatIsWrong) {
  EXPECT_EQ(Error(""),
            "the schedule is empty (write an interval such as '15 minutes' or a cron expression "
            "such as '0 * * * *')");
  EXPECT_EQ(Error("15"), "interval '15': '15' has no unit (write e.g. '15 minutes')");
  EXPECT_EQ(Error("15 minuts"),
            "interval '15 minuts': unknown unit 'minuts' (did you mean 'minutes'?)");
  EXPECT_EQ(Error("2 HOURZ"), "interval '2 HOURZ': unknown unit 'HOURZ' (did you mean 'hours'?)");
  EXPECT_EQ(Error("1 month"),
            "interval '1 month': months and years have no fixed length ('month'); use a cron "
            "expression ('0 0 1 * *' runs on the first of every month)");
  EXPECT_NE(Error("2 Years").find("months and years have no fixed length ('years')"),
            std::string::npos);
  EXPECT_EQ(Error("500 ms"), "interval '500 ms': a schedule interval must be at least 1 second");
  EXPECT_EQ(Error("0 seconds"),
            "interval '0 seconds': a schedule interval must be at least 1 second");
  EXPECT_EQ(Error("-5 minutes"), "interval '-5 minutes': a schedule interval must be positive");
  EXPECT_EQ(Error("1:75"), "interval '1:75': '1:75' is not a time of the form HH:MM[:SS]");
  EXPECT_EQ(Error("soon"),
            "interval 'soon': expected a number and a unit, as in '15 minutes', at 'soon'");
  EXPECT_EQ(Error("999999999999999999 weeks"), "interval '999999999999999999 weeks': too long");
}

TEST(Schedule, IntervalsFromPostgres) {
  EXPECT_EQ(Schedule::Every(15 * kMin).interval_micros(), 15 * kMin);
  EXPECT_THROW(Schedule::Every(0), ScheduleError);
  EXPECT_THROW(Schedule::Every(-kHour), ScheduleError);
  EXPECT_THROW(Schedule::Every(kSec - 1), ScheduleError);
  EXPECT_EQ(Schedule::FromPgInterval(0, 1, 30 * kMin).interval_micros(), kDayUs + 30 * kMin);
  EXPECT_EQ(Schedule::FromPgInterval(0, 0, 90 * kSec).interval_micros(), 90 * kSec);
  try {
    Schedule::FromPgInterval(1, 0, 0);
    FAIL() << "a month was accepted";
  } catch (const ScheduleError& e) {
    EXPECT_NE(std::string(e.what()).find("months or years"), std::string::npos);
  }
  EXPECT_THROW(Schedule::FromPgInterval(0, -1, kHour), ScheduleError);
}

TEST(Schedule, IntervalNextRunTimes) {
  Schedule s = Schedule::Parse("15 minutes");
  EXPECT_EQ(Iso(s.NextAfter(T("2024-12-20T16:04:11"))), "2024-12-20T16:19:11Z");
  // NextDue keeps the phase of the last due time and skips overrun slots.
  int64_t due = T("2024-12-20T10:00");
  EXPECT_EQ(Iso(s.NextDue(due, T("2024-12-20T10:07"))), "2024-12-20T10:15:00Z");
  EXPECT_EQ(Iso(s.NextDue(due, T("2024-12-20T10:31"))), "2024-12-20T10:45:00Z");
  EXPECT_EQ(Iso(s.NextDue(due, T("2024-12-20T10:15"))), "2024-12-20T10:30:00Z");
  EXPECT_EQ(Iso(s.NextDue(due, T("2024-12-20T09:00"))), "2024-12-20T10:15:00Z");
  // Never past PostgreSQL's last timestamp.
  EXPECT_EQ(Iso(s.NextAfter(kPgTimestampEnd - kMin)), "none");
  EXPECT_EQ(Iso(s.NextAfter(kPgTimestampEnd - 16 * kMin)), "+294276-12-31T23:59:00Z");
  EXPECT_EQ(Iso(s.NextDue(kPgTimestampEnd - 16 * kMin, kPgTimestampEnd - kSec)), "none");
  EXPECT_EQ(Iso(s.NextAfter(INT64_MAX)), "none");
}

TEST(Schedule, CronFieldForms) {
  // Each form, with its next run after Friday 2024-12-20 16:04:11.
  const std::string after = "2024-12-20T16:04:11";
  EXPECT_EQ(Next("* * * * *", after), "2024-12-20T16:05:00Z");
  EXPECT_EQ(Next("0 * * * *", after), "2024-12-20T17:00:00Z");
  EXPECT_EQ(Next("*/15 * * * *", after), "2024-12-20T16:15:00Z");
  EXPECT_EQ(Next("5,10,20 * * * *", after), "2024-12-20T16:05:00Z");
  EXPECT_EQ(Next("10-12 * * * *", after), "2024-12-20T16:10:00Z");
  EXPECT_EQ(Next("10-50/20 * * * *", after), "2024-12-20T16:10:00Z");
  EXPECT_EQ(Next("7/20 * * * *", after), "2024-12-20T16:07:00Z");  // 7, 27, 47
  EXPECT_EQ(Next("50/20 * * * *", after), "2024-12-20T16:50:00Z");
  EXPECT_EQ(Next("1,3-4,*/30 * * * *", after), "2024-12-20T16:30:00Z");
  EXPECT_EQ(Next("30 2 * * *", after), "2024-12-21T02:30:00Z");
  EXPECT_EQ(Next("0 9-17/4 * * *", after), "2024-12-20T17:00:00Z");
  EXPECT_EQ(Next("0 0 1 * *", after), "2025-01-01T00:00:00Z");
  EXPECT_EQ(Next("0 0 * feb *", after), "2025-02-01T00:00:00Z");
  EXPECT_EQ(Next("0 0 * FEBRUARY *", after), "2025-02-01T00:00:00Z");
  EXPECT_EQ(Next("0 0 * jun-aug *", after), "2025-06-01T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * mon", after), "2024-12-23T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * Monday", after), "2024-12-23T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * mon-wed", after), "2024-12-23T00:00:00Z");
  EXPECT_EQ(Next("0 12 * * 5", after), "2024-12-27T12:00:00Z");  // today's noon has passed
  EXPECT_EQ(Next("0 17 * * fri", after), "2024-12-20T17:00:00Z");
  // Sunday is 0 and 7.
  EXPECT_EQ(Next("0 0 * * 0", after), "2024-12-22T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * 7", after), "2024-12-22T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * sun", after), "2024-12-22T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * 5-7", after), "2024-12-21T00:00:00Z");
  // Macros.
  EXPECT_EQ(Next("@hourly", after), "2024-12-20T17:00:00Z");
  EXPECT_EQ(Next("@daily", after), "2024-12-21T00:00:00Z");
  EXPECT_EQ(Next("@midnight", after), "2024-12-21T00:00:00Z");
  EXPECT_EQ(Next("@weekly", after), "2024-12-22T00:00:00Z");
  EXPECT_EQ(Next("@monthly", after), "2025-01-01T00:00:00Z");
  EXPECT_EQ(Next("@yearly", after), "2025-01-01T00:00:00Z");
  EXPECT_EQ(Next("@annually", after), "2025-01-01T00:00:00Z");
  EXPECT_TRUE(Schedule::Parse("0 * * * *").is_cron());
  EXPECT_EQ(Schedule::Parse("0 * * * *").interval_micros(), 0);
}

TEST(Schedule, CronRunsStrictlyAfterAndOnWholeMinutes) {
  EXPECT_EQ(Next("0 * * * *", "2024-12-20T17:00:00"), "2024-12-20T18:00:00Z");
  EXPECT_EQ(Iso(Schedule::Parse("0 * * * *").NextAfter(T("2024-12-20T17:00") - 1)),
            "2024-12-20T17:00:00Z");
  EXPECT_EQ(Iso(Schedule::Parse("* * * * *").NextAfter(T("2024-12-20T17:00") + 1)),
            "2024-12-20T17:01:00Z");
  EXPECT_EQ(Next("59 23 31 12 *", "2024-12-31T23:58:59"), "2024-12-31T23:59:00Z");
  EXPECT_EQ(Next("0 0 1 1 *", "2024-12-31T23:59:59"), "2025-01-01T00:00:00Z");
}

TEST(Schedule, CronMonthEndsAndLeapDays) {
  EXPECT_EQ(Next("0 0 31 * *", "2024-04-15T00:00"), "2024-05-31T00:00:00Z");
  EXPECT_EQ(Next("0 0 31 * *", "2024-01-31T00:00"), "2024-03-31T00:00:00Z");  // no Feb 31
  EXPECT_EQ(Next("0 0 30 * *", "2024-01-30T00:00"), "2024-03-30T00:00:00Z");  // no Feb 30
  EXPECT_EQ(Next("0 0 29 * *", "2023-01-29T00:00"), "2023-03-29T00:00:00Z");
  EXPECT_EQ(Next("0 0 29 * *", "2024-01-29T00:00"), "2024-02-29T00:00:00Z");
  EXPECT_EQ(Next("0 12 29 2 *", "2024-03-01T00:00"), "2028-02-29T12:00:00Z");
  EXPECT_EQ(Next("0 12 29 2 *", "2096-03-01T00:00"), "2104-02-29T12:00:00Z");  // 2100: no
  EXPECT_EQ(Next("0 12 29 2 *", "2396-03-01T00:00"), "2400-02-29T12:00:00Z");  // 2400: yes
  EXPECT_EQ(Next("0 0 31 4,6,9,11,12 *", "2024-01-01T00:00"), "2024-12-31T00:00:00Z");
  // Quartz's L (last day of the month) is not cron: refused, not misread.
  EXPECT_EQ(Error("0 0 L * *"), "cron field 3 (day of month): 'L' is not a number");
}

TEST(Schedule, CronNeverMatchingIsRefused) {
  EXPECT_EQ(Error("0 0 30 2 *"),
            "cron expression '0 0 30 2 *' never runs: no date has a day of month and a day of week "
            "it allows in a month it allows");
  EXPECT_NE(Error("0 0 31 4,6,9,11 *"), "");
  EXPECT_NE(Error("0 0 30,31 feb *"), "");
  // With both day fields restricted a day matches either: Mondays in February.
  EXPECT_EQ(Next("0 0 30 2 mon", "2024-12-20T00:00"), "2025-02-03T00:00:00Z");
  // Feb 29 exists (leap years).
  EXPECT_EQ(Error("0 0 29 2 *"), "");
}

TEST(Schedule, CronDayOfMonthAndDayOfWeek) {
  // Both restricted: either matches (the 13th, or any Friday).
  EXPECT_EQ(Next("0 0 13 * fri", "2024-12-20T00:00"), "2024-12-27T00:00:00Z");
  EXPECT_EQ(Next("0 0 13 * fri", "2024-12-27T00:00"), "2025-01-03T00:00:00Z");
  EXPECT_EQ(Next("0 0 13 * fri", "2025-01-10T00:00"), "2025-01-13T00:00:00Z");
  EXPECT_EQ(Next("0 0 1-7 * mon", "2024-12-20T00:00"), "2024-12-23T00:00:00Z");
  // One starts with '*': both must match (Vixie cron), so */7 with mon means
  // the 1st, 8th, 15th, 22nd or 29th falling on a Monday.
  EXPECT_EQ(Next("0 0 */7 * mon", "2024-12-20T00:00"), "2025-09-01T00:00:00Z");
  EXPECT_EQ(Next("0 0 1 * *", "2024-12-20T00:00"), "2025-01-01T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * mon", "2024-12-20T00:00"), "2024-12-23T00:00:00Z");
}

TEST(Schedule, CronIsUtcAcrossDaylightSavingDates) {
  // 2024-03-10 (US) and 2024-03-31 (EU) change clocks; UTC has every minute.
  EXPECT_EQ(Next("30 2 * * *", "2024-03-10T00:00"), "2024-03-10T02:30:00Z");
  EXPECT_EQ(Next("30 2 * * *", "2024-03-31T00:00"), "2024-03-31T02:30:00Z");
  EXPECT_EQ(Next("30 1 * * *", "2024-10-27T01:30"), "2024-10-28T01:30:00Z");
}

TEST(Schedule, CronAtTheEdgesOfTime) {
  EXPECT_EQ(Iso(Schedule::Parse("0 0 1 1 *").NextAfter(kPgTimestampEnd - 200 * kDayUs)), "none");
  EXPECT_EQ(Iso(Schedule::Parse("59 23 31 12 *").NextAfter(kPgTimestampEnd - kHour)),
            "+294276-12-31T23:59:00Z");
  EXPECT_EQ(Iso(Schedule::Parse("* * * * *").NextAfter(kPgTimestampEnd - 1)), "none");
  EXPECT_EQ(Iso(Schedule::Parse("* * * * *").NextAfter(INT64_MAX)), "none");
  // PostgreSQL's first day, 4714 BC: Julian day 0 was a Monday.
  EXPECT_EQ(Iso(Schedule::Parse("0 0 * * mon").NextAfter(-211813488000000000LL - 1)),
            "-004713-11-24T00:00:00Z");
  EXPECT_EQ(Iso(Schedule::Parse("0 0 * * sun").NextAfter(-211813488000000000LL)),
            "-004713-11-30T00:00:00Z");
}

TEST(Schedule, CronErrorsNameTheFieldAndValue) {
  EXPECT_EQ(Error("0 25 * * *"), "cron field 2 (hour): 25 is out of range 0-23");
  EXPECT_EQ(Error("60 * * * *"), "cron field 1 (minute): 60 is out of range 0-59");
  EXPECT_EQ(Error("0 0 0 * *"), "cron field 3 (day of month): 0 is out of range 1-31");
  EXPECT_EQ(Error("0 0 32 * *"), "cron field 3 (day of month): 32 is out of range 1-31");
  EXPECT_EQ(Error("0 0 * 13 *"), "cron field 4 (month): 13 is out of range 1-12");
  EXPECT_EQ(Error("0 0 * * 8"), "cron field 5 (day of week): 8 is out of range 0-7");
  EXPECT_EQ(Error("x * * * *"), "cron field 1 (minute): 'x' is not a number");
  EXPECT_EQ(Error("0 0 * janu *"),
            "cron field 4 (month): 'janu' is not a month name or a number (did you mean 'jan'?)");
  EXPECT_EQ(
      Error("0 0 * * mom"),
      "cron field 5 (day of week): 'mom' is not a day name or a number (did you mean 'mon'?)");
  EXPECT_EQ(Error("*/0 * * * *"), "cron field 1 (minute): step 0 must be at least 1");
  EXPECT_EQ(Error("*/x * * * *"), "cron field 1 (minute): step 'x' is not a number");
  EXPECT_EQ(Error("*/61 * * * *"), "cron field 1 (minute): step 61 is larger than 59");
  EXPECT_EQ(Error("30-10 * * * *"), "cron field 1 (minute): range 30-10 is reversed (write 10-30)");
  EXPECT_EQ(Error("1,,2 * * * *"), "cron field 1 (minute): empty list item in '1,,2'");
  EXPECT_EQ(Error("1, * * * *"), "cron field 1 (minute): empty list item in '1,'");
  EXPECT_EQ(Error("5- * * * *"),
            "cron field 1 (minute): a range needs a value on both sides of '-'");
  EXPECT_EQ(Error("0 9999999999 * * *"), "cron field 2 (hour): 9999999999 is out of range 0-23");
  EXPECT_EQ(Error("* * * *"),
            "cron expression '* * * *' needs 5 fields (minute hour day-of-month month "
            "day-of-week), got 4");
  EXPECT_EQ(Error("0 0 * * * *"),
            "cron expression '0 0 * * * *' needs 5 fields (minute hour day-of-month month "
            "day-of-week), got 6");
  EXPECT_EQ(Error("@hourli"), "unknown schedule '@hourli' (did you mean '@hourly'?)");
}

// ---------------------------------------------------------------------------
// Against a reference: random expressions, next run found minute by minute.

// A cron expression's allowed values, evaluated the simple way.
struct RefCron {
  std::vector<bool> minute, hour, dom, month, dow;
  bool dom_star, dow_star;
};

// Expands one field ("*", "a-b/s", lists) with plain loops.
std::vector<bool> RefField(const std::string& text, int lo, int hi) {
  std::vector<bool> out(static_cast<size_t>(hi) + 1, false);
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int step = 1;
    size_t slash = item.find('/');
    if (slash != std::string::npos) {
      step = std::stoi(item.substr(slash + 1));
      item = item.substr(0, slash);
    }
    int a, b;
    if (item == "*") {
      a = lo;
      b = hi;
    } else if (item.find('-') != std::string::npos) {
      a = std::stoi(item.substr(0, item.find('-')));
      b = std::stoi(item.substr(item.find('-') + 1));
    } else {
      a = std::stoi(item);
      b = slash != std::string::npos ? hi : a;
    }
    for (int v = a; v <= b; v += step) out[static_cast<size_t>(v)] = true;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// The next matching minute after `after`, scanning day by day then minute by
// minute, or -1 when none within `max_days`.
int64_t RefNext(const RefCron& c, int64_t after, int64_t max_days) {
  int64_t first = (after / kMin + 1) * kMin;  // after >= 0 in these tests
  int64_t day = first / kDayUs;
  // Calendar fields of `day`, advanced by hand.
  int64_t y = 2000;
  int m = 1, d = 1;
  for (int64_t k = 0; k < day; ++k) {
    if (++d > MonthLength(y, m)) {
      d = 1;
      if (++m > 12) {
        m = 1;
        ++y;
      }
    }
  }
  for (int64_t k = 0; k <= max_days; ++k, ++day) {
    int weekday = static_cast<int>((day + 6) % 7);  // 2000-01-01 was a Saturday
    bool dom_ok = c.dom[static_cast<size_t>(d)];
    bool dow_ok = c.dow[static_cast<size_t>(weekday)] || (weekday == 0 && c.dow[7]);
    bool day_ok = c.dom_star || c.dow_star ? dom_ok && dow_ok : dom_ok || dow_ok;
    if (c.month[static_cast<size_t>(m)] && day_ok) {
      for (int minute = 0; minute < 1440; ++minute) {
        int64_t t = day * kDayUs + minute * kMin;
        if (t >= first && c.hour[static_cast<size_t>(minute / 60)] &&
            c.minute[static_cast<size_t>(minute % 60)]) {
          return t;
        }
      }
    }
    if (++d > MonthLength(y, m)) {
      d = 1;
      if (++m > 12) {
        m = 1;
        ++y;
      }
    }
  }
  return -1;
}

// A deterministic pseudo-random generator (no <random> engine differences).
struct Lcg {
  uint64_t s;
  int Next(int n) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int>((s >> 33) % static_cast<uint64_t>(n));
  }
};

// A random field of `lo`..`hi`: *, */s, a, a-b, a-b/s, a/s or a list of those.
std::string RandomField(Lcg& r, int lo, int hi) {
  auto one = [&]() {
    int a = lo + r.Next(hi - lo + 1);
    int b = a + r.Next(hi - a + 1);
    int s = 1 + r.Next(hi);  // steps up to the field maximum
    switch (r.Next(7)) {
      case 0:
        return std::string("*");
      case 1:
        return "*/" + std::to_string(s);
      case 2:
        return std::to_string(a);
      case 3:
        return std::to_string(a) + "-" + std::to_string(b);
      case 4:
        return std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(s);
      case 5:
        return std::to_string(a) + "/" + std::to_string(s);
      default:
        return std::to_string(a) + "," + std::to_string(b);
    }
  };
  std::string f = one();
  if (r.Next(4) == 0) f += "," + one();
  return f;
}

TEST(Schedule, CronAgreesWithAMinuteByMinuteReference) {
  Lcg r{20241220};
  int checked = 0, never = 0;
  for (int i = 0; i < 400; ++i) {
    std::string fields[5] = {RandomField(r, 0, 59), RandomField(r, 0, 23), RandomField(r, 1, 31),
                             RandomField(r, 1, 12), RandomField(r, 0, 7)};
    // Mostly unrestricted days and months, so most expressions run often.
    if (r.Next(3) != 0) fields[2] = "*";
    if (r.Next(3) != 0) fields[3] = "*";
    if (r.Next(2) != 0) fields[4] = "*";
    std::string expr =
        fields[0] + " " + fields[1] + " " + fields[2] + " " + fields[3] + " " + fields[4];
    RefCron c{RefField(fields[0], 0, 59), RefField(fields[1], 0, 23), RefField(fields[2], 1, 31),
              RefField(fields[3], 1, 12), RefField(fields[4], 0, 7),  fields[2][0] == '*',
              fields[4][0] == '*'};
    std::optional<Schedule> s;
    try {
      s = Schedule::Parse(expr);
    } catch (const ScheduleError& e) {
      // Only "never runs" may be refused; the reference must agree over 8 years.
      EXPECT_NE(std::string(e.what()).find("never runs"), std::string::npos)
          << expr << ": " << e.what();
      EXPECT_EQ(RefNext(c, 0, 8 * 366), -1) << expr;
      ++never;
      continue;
    }
    int64_t after = (r.Next(100 * 366) * kDayUs) + r.Next(1440) * kMin + r.Next(60) * kSec;
    int64_t want = RefNext(c, after, 2 * 366);
    if (want < 0) continue;  // rarer than two years: covered by the fixed cases above
    EXPECT_EQ(Iso(s->NextAfter(after)), Iso(want)) << expr << " after " << Iso(after);
    // And the run after that.
    int64_t want2 = RefNext(c, want, 2 * 366);
    if (want2 >= 0) {
      EXPECT_EQ(Iso(s->NextAfter(want)), Iso(want2)) << expr;
    }
    ++checked;
  }
  EXPECT_GT(checked, 300);
  (void)never;
}

}  // namespace
}  // namespace hyperline
