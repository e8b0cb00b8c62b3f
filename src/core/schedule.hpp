// schedule.hpp: when a query model runs — a fixed interval, or a five-field
// cron expression in UTC.
//
// Vocabulary: a Schedule is parsed once from the `schedule` text of a query
// model (or built from an interval PostgreSQL already parsed) and answers one
// question: the next run time after a given instant. Instants are microseconds
// since 2000-01-01T00:00:00Z, PostgreSQL's own TimestampTz (see value.hpp); a
// run time is always a valid timestamptz, before kPgTimestampEnd.
//
// Accepted texts (case-insensitive, surrounding blanks ignored):
//   - an interval: one or more "<number> <unit>" parts, the number an integer or
//     a decimal fraction, the space optional: '15 minutes', '1 hour',
//     '1 day', '90 seconds', '1.5 hours', '1h30m', '2 hours 30 minutes', or
//     'HH:MM[:SS]' ('01:30'). Units: microsecond(s)/us/usec, millisecond(s)/
//     ms/msec, second(s)/sec(s)/s, minute(s)/min(s)/m, hour(s)/hr(s)/h,
//     day(s)/d, week(s)/w. At least 1 second. Months and years are refused
//     (they have no fixed length: use cron, '0 0 1 * *' is monthly).
//   - a cron expression: five fields "minute hour day-of-month month
//     day-of-week" (0-59, 0-23, 1-31, 1-12 or jan-dec, 0-7 or sun-sat with 0
//     and 7 both Sunday), each a list of `*`, `N`, `N-M`, with an optional
//     step `/S` (`*/15`, `1-30/2`, `5/10` = 5-max/10); or @yearly (@annually),
//     @monthly, @weekly, @daily (@midnight), @hourly. Vixie cron's day rule:
//     when neither day field starts with `*`, a day matches if either matches
//     (`0 0 1 * mon` runs on the 1st and on Mondays); otherwise both must. An
//     expression no day can ever match (`0 0 30 2 *`) is refused.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hyperline {

// PostgreSQL's END_TIMESTAMP (294277-01-01T00:00:00Z) in microseconds since
// 2000-01-01: every run time is before it.
constexpr int64_t kPgTimestampEnd = 9223371331200000000LL;

// A schedule text that does not parse. what() names the problem, e.g.
// "cron field 2 (hour): 25 is out of range 0-23".
class ScheduleError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class Schedule {
 public:
  // Parses an interval or a cron expression (see above); throws ScheduleError.
  static Schedule Parse(std::string_view text);
  // An interval of `micros` microseconds (at least one second); throws ScheduleError.
  static Schedule Every(int64_t micros);
  // An interval as PostgreSQL keeps it (Interval's month, day and time fields);
  // months must be zero, a day is 24 hours. Throws ScheduleError.
  static Schedule FromPgInterval(int32_t months, int32_t days, int64_t micros);

  bool is_cron() const { return cron_; }
  // The interval in microseconds (interval schedules; 0 for cron).
  int64_t interval_micros() const { return interval_; }

  // The first run time strictly after `after`: after + the interval, or the
  // next minute the cron expression matches. nullopt when there is none before
  // kPgTimestampEnd.
  std::optional<int64_t> NextAfter(int64_t after) const;

  // The next run time once the run due at `last_due` has finished at `now`:
  // for an interval, the first last_due + k * interval (k >= 1) after `now`, so
  // runs keep their phase and a slow run skips the slots it overran; for cron,
  // NextAfter(max(last_due, now)). nullopt as for NextAfter.
  std::optional<int64_t> NextDue(int64_t last_due, int64_t now) const;

 private:
  Schedule() = default;

  bool cron_ = false;
  int64_t interval_ = 0;
  // Cron: allowed values as bit sets (bit i = value i).
  uint64_t minutes_ = 0;       // 0-59
  uint32_t hours_ = 0;         // 0-23
  uint32_t days_ = 0;          // 1-31
  uint32_t months_ = 0;        // 1-12
  uint32_t weekdays_ = 0;      // 0-6, Sunday = 0
  bool day_star_ = false;      // day-of-month field starts with '*'
  bool weekday_star_ = false;  // day-of-week field starts with '*'

  static Schedule ParseCron(std::string_view text);
  static Schedule ParseInterval(std::string_view text);
  // Whether the cron day fields accept this day (Vixie cron's rule).
  bool DayMatches(unsigned day_of_month, int64_t days_since_2000) const;
};

}  // namespace hyperline
