// schedule.cpp: parsing schedules and computing run times (see schedule.hpp).
#include "core/schedule.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "core/ascii.hpp"
#include "core/names.hpp"
#include "core/value.hpp"

namespace hyperline {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerMinute = 60 * kMicrosPerSecond;
constexpr int64_t kMicrosPerHour = 60 * kMicrosPerMinute;

// Why this bound: the Gregorian calendar repeats every 400 years (146097 days,
// a whole number of weeks), so a cron expression that matches no day in 400
// years from some day never matches.
constexpr int64_t kCronSearchDays = 146097 + 1;

// Splits `s` on ASCII blanks.
std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && AsciiSpace(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !AsciiSpace(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && AsciiSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && AsciiSpace(s.back())) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------
// Intervals.

struct Unit {
  const char* name;
  int64_t micros;
};

const Unit kUnits[] = {
    {"microsecond", 1},
    {"microseconds", 1},
    {"us", 1},
    {"usec", 1},
    {"usecs", 1},
    {"millisecond", 1000},
    {"milliseconds", 1000},
    {"ms", 1000},
    {"msec", 1000},
    {"msecs", 1000},
    {"second", kMicrosPerSecond},
    {"seconds", kMicrosPerSecond},
    {"sec", kMicrosPerSecond},
    {"secs", kMicrosPerSecond},
    {"s", kMicrosPerSecond},
    {"minute", kMicrosPerMinute},
    {"minutes", kMicrosPerMinute},
    {"min", kMicrosPerMinute},
    {"mins", kMicrosPerMinute},
    {"m", kMicrosPerMinute},
    {"hour", kMicrosPerHour},
    {"hours", kMicrosPerHour},
    {"hr", kMicrosPerHour},
    {"hrs", kMicrosPerHour},
    {"h", kMicrosPerHour},
    {"day", kMicrosPerDay},
    {"days", kMicrosPerDay},
    {"d", kMicrosPerDay},
    {"week", 7 * kMicrosPerDay},
    {"weeks", 7 * kMicrosPerDay},
    {"w", 7 * kMicrosPerDay},
};

// PostgreSQL interval units without a fixed length.
const char* const kCalendarUnits[] = {"month",   "months",  "mon",       "mons",       "year",
                                      "years",   "yr",      "yrs",       "y",          "decade",
                                      "decades", "century", "centuries", "millennium", "millennia"};

// Reads an unsigned decimal at s[i]: integer digits and an optional fraction.
// Fails (returns false) on no digits or more than 18 integer digits.
bool ReadNumber(std::string_view s, size_t& i, int64_t& whole, std::string& fraction) {
  size_t start = i;
  whole = 0;
  while (i < s.size() && AsciiDigit(s[i])) {
    if (i - start >= 18) return false;
    whole = whole * 10 + (s[i] - '0');
    ++i;
  }
  bool any = i > start;
  fraction.clear();
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && AsciiDigit(s[i])) fraction.push_back(s[i++]);
    any = any || !fraction.empty();
  }
  return any;
}

// whole.fraction * unit, in microseconds (the fraction truncated to a microsecond).
__int128 Scale(int64_t whole, const std::string& fraction, int64_t unit) {
  __int128 v = static_cast<__int128>(whole) * unit;
  __int128 num = 0, den = 1;
  for (size_t k = 0; k < fraction.size() && k < 18; ++k) {
    num = num * 10 + (fraction[k] - '0');
    den *= 10;
  }
  return v + num * unit / den;
}

}  // namespace

// Parses an interval text (see schedule.hpp).
Schedule Schedule::ParseInterval(std::string_view text) {
  auto fail = [&](const std::string& why) -> Schedule {
    throw ScheduleError("interval '" + std::string(text) + "': " + why);
  };
  std::string_view s = TrimBlanks(text);
  __int128 total = 0;
  size_t i = 0;
  bool any = false;
  std::string fraction;
  while (true) {
    while (i < s.size() && AsciiSpace(s[i])) ++i;
    if (i >= s.size()) break;
    if (s[i] == '-') return fail("a schedule interval must be positive");
    if (s[i] == '+') ++i;
    size_t number_at = i;
    int64_t whole;
    if (!ReadNumber(s, i, whole, fraction)) {
      size_t end = i;
      while (end < s.size() && !AsciiSpace(s[end])) ++end;
      return fail("expected a number and a unit, as in '15 minutes', at '" +
                  std::string(s.substr(number_at, end - number_at)) + "'");
    }
    if (i < s.size() && s[i] == ':') {
      // HH:MM[:SS[.frac]]: two-digit minutes and seconds, below 60.
      auto two_digits = [&](int64_t& v) {
        if (i + 2 > s.size() || !AsciiDigit(s[i]) || !AsciiDigit(s[i + 1])) return false;
        v = (s[i] - '0') * 10 + (s[i + 1] - '0');
        i += 2;
        return v < 60;
      };
      int64_t minutes = 0, seconds = 0;
      std::string sec_fraction;
      ++i;
      bool ok = fraction.empty() && two_digits(minutes);
      if (ok && i < s.size() && s[i] == ':') {
        ++i;
        ok = two_digits(seconds);
        if (ok && i < s.size() && s[i] == '.') {
          ++i;
          while (i < s.size() && AsciiDigit(s[i])) sec_fraction.push_back(s[i++]);
        }
      }
      if (!ok || (i < s.size() && !AsciiSpace(s[i]))) {
        size_t end = i;
        while (end < s.size() && !AsciiSpace(s[end])) ++end;
        return fail("'" + std::string(s.substr(number_at, end - number_at)) +
                    "' is not a time of the form HH:MM[:SS]");
      }
      total += static_cast<__int128>(whole) * kMicrosPerHour +
               static_cast<__int128>(minutes) * kMicrosPerMinute +
               Scale(seconds, sec_fraction, kMicrosPerSecond);
      any = true;
      continue;
    }
    while (i < s.size() && AsciiSpace(s[i])) ++i;
    size_t unit_at = i;
    while (i < s.size() && AsciiAlpha(s[i])) ++i;
    std::string unit = AsciiLowerString(s.substr(unit_at, i - unit_at));
    if (unit.empty()) {
      return fail("'" + std::string(TrimBlanks(s.substr(number_at, i - number_at))) +
                  "' has no unit (write e.g. '15 minutes')");
    }
    const Unit* found = nullptr;
    for (const Unit& u : kUnits) {
      if (unit == u.name) found = &u;
    }
    if (found == nullptr) {
      for (const char* c : kCalendarUnits) {
        if (unit == c) {
          return fail("months and years have no fixed length ('" + unit +
                      "'); use a cron expression ('0 0 1 * *' runs on the first of every month)");
        }
      }
      static const std::vector<std::string_view> kSuggestions = {
          "microseconds", "milliseconds", "seconds", "minutes", "hours", "days", "weeks"};
      std::string hint = ClosestName(unit, kSuggestions);
      return fail("unknown unit '" + std::string(s.substr(unit_at, i - unit_at)) + "'" +
                  (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"));
    }
    total += Scale(whole, fraction, found->micros);
    any = true;
    if (total > INT64_MAX) return fail("too long");
  }
  if (!any) return fail("empty");
  if (total > INT64_MAX) return fail("too long");
  if (total < kMicrosPerSecond) return fail("a schedule interval must be at least 1 second");
  return Every(static_cast<int64_t>(total));
}

// An interval schedule of `micros` microseconds.
Schedule Schedule::Every(int64_t micros) {
  if (micros < kMicrosPerSecond) {
    throw ScheduleError("a schedule interval must be at least 1 second");
  }
  Schedule s;
  s.interval_ = micros;
  return s;
}

// An interval schedule from PostgreSQL's Interval fields.
Schedule Schedule::FromPgInterval(int32_t months, int32_t days, int64_t micros) {
  if (months != 0) {
    throw ScheduleError(
        "a schedule interval cannot contain months or years (they have no fixed length); use a "
        "cron expression ('0 0 1 * *' runs on the first of every month)");
  }
  __int128 total = static_cast<__int128>(days) * kMicrosPerDay + micros;
  if (total > INT64_MAX) throw ScheduleError("a schedule interval is too long");
  if (total < kMicrosPerSecond) {
    throw ScheduleError("a schedule interval must be at least 1 second");
  }
  return Every(static_cast<int64_t>(total));
}

namespace {

// ---------------------------------------------------------------------------
// Cron.

struct CronField {
  const char* name;
  int min;
  int max;
  const char* const* names;  // names for min, min+1, ... (or nullptr)
  int names_base;            // value of names[0]
};

const char* const kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const kMonthFullNames[] = {"january",   "february", "march",    "april",
                                       "may",       "june",     "july",     "august",
                                       "september", "october",  "november", "december"};
const char* const kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
const char* const kDayFullNames[] = {"sunday",   "monday", "tuesday", "wednesday",
                                     "thursday", "friday", "saturday"};

const CronField kCronFields[5] = {
    {"minute", 0, 59, nullptr, 0},       {"hour", 0, 23, nullptr, 0},
    {"day of month", 1, 31, nullptr, 0}, {"month", 1, 12, kMonthNames, 1},
    {"day of week", 0, 7, kDayNames, 0},
};

// Parses one cron field into a bit set (bit v = value v allowed).
class FieldParser {
 public:
  FieldParser(int index, std::string_view text)
      : index_(index), f_(kCronFields[index]), text_(text) {}

  uint64_t Parse() {
    uint64_t bits = 0;
    size_t start = 0;
    while (true) {
      size_t comma = text_.find(',', start);
      std::string_view item = text_.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (item.empty()) Fail("empty list item in '" + std::string(text_) + "'");
      bits |= Item(item);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return bits;
  }

 private:
  [[noreturn]] void Fail(const std::string& why) const {
    throw ScheduleError("cron field " + std::to_string(index_ + 1) + " (" + f_.name + "): " + why);
  }

  // One list item: *, N, N-M, each with an optional /S.
  uint64_t Item(std::string_view item) {
    std::string_view range = item;
    int step = 1;
    bool has_step = false;
    size_t slash = item.find('/');
    if (slash != std::string_view::npos) {
      range = item.substr(0, slash);
      std::string_view st = item.substr(slash + 1);
      int64_t v;
      if (!Number(st, v)) Fail("step '" + std::string(st) + "' is not a number");
      if (v < 1) Fail("step " + std::string(st) + " must be at least 1");
      if (v > f_.max) Fail("step " + std::string(st) + " is larger than " + std::to_string(f_.max));
      step = static_cast<int>(v);
      has_step = true;
    }
    int lo, hi;
    if (range == "*") {
      lo = f_.min;
      hi = f_.max;
    } else {
      size_t dash = range.find('-', 1);
      if (dash == std::string_view::npos) {
        lo = ValueOf(range);
        hi = has_step ? f_.max : lo;  // N/S: from N to the maximum
      } else {
        lo = ValueOf(range.substr(0, dash));
        hi = ValueOf(range.substr(dash + 1));
        if (hi < lo) {
          Fail("range " + std::string(range) + " is reversed (write " + std::to_string(hi) + "-" +
               std::to_string(lo) + ")");
        }
      }
    }
    uint64_t bits = 0;
    for (int v = lo; v <= hi; v += step) bits |= uint64_t{1} << v;
    return bits;
  }

  // Decimal digits only; false otherwise (or more than 9 digits).
  static bool Number(std::string_view s, int64_t& v) {
    if (s.empty() || s.size() > 9) return false;
    v = 0;
    for (char c : s) {
      if (!AsciiDigit(c)) return false;
      v = v * 10 + (c - '0');
    }
    return true;
  }

  // A number or a name, checked against the field's range.
  int ValueOf(std::string_view s) {
    if (s.empty()) Fail("a range needs a value on both sides of '-'");
    int64_t v;
    if (Number(s, v)) {
      if (v < f_.min || v > f_.max) {
        Fail(std::string(s) + " is out of range " + std::to_string(f_.min) + "-" +
             std::to_string(f_.max));
      }
      return static_cast<int>(v);
    }
    if (s.size() > 9 && AsciiDigit(s[0])) {
      Fail(std::string(s.substr(0, 12)) + (s.size() > 12 ? "..." : "") + " is out of range " +
           std::to_string(f_.min) + "-" + std::to_string(f_.max));
    }
    if (f_.names != nullptr) {
      std::string name = AsciiLowerString(s);
      const char* const* full = f_.names == kMonthNames ? kMonthFullNames : kDayFullNames;
      int count = f_.names == kMonthNames ? 12 : 7;
      std::vector<std::string_view> candidates;
      for (int k = 0; k < count; ++k) {
        if (name == f_.names[k] || name == full[k]) return f_.names_base + k;
        candidates.push_back(f_.names[k]);
      }
      std::string hint = ClosestName(name, candidates);
      Fail("'" + std::string(s) + "' is not a " + (f_.names == kMonthNames ? "month" : "day") +
           " name or a number" +
           (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"));
    }
    Fail("'" + std::string(s) + "' is not a number");
  }

  int index_;
  const CronField& f_;
  std::string_view text_;
};

}  // namespace

// Parses a five-field cron expression or an @macro (see schedule.hpp).
Schedule Schedule::ParseCron(std::string_view text) {
  std::string lower = AsciiLowerString(TrimBlanks(text));
  std::string expr(TrimBlanks(text));
  if (!lower.empty() && lower[0] == '@') {
    static const std::pair<const char*, const char*> kMacros[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    bool found = false;
    for (const auto& [name, value] : kMacros) {
      if (lower == name) {
        expr = value;
        found = true;
      }
    }
    if (!found) {
      std::vector<std::string_view> names;
      for (const auto& m : kMacros) names.push_back(m.first);
      std::string hint = ClosestName(lower, names);
      throw ScheduleError("unknown schedule '" + std::string(TrimBlanks(text)) + "'" +
                          (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"));
    }
  }
  std::vector<std::string_view> fields = Fields(expr);
  if (fields.size() != 5) {
    throw ScheduleError("cron expression '" + std::string(TrimBlanks(text)) +
                        "' needs 5 fields (minute hour day-of-month month day-of-week), got " +
                        std::to_string(fields.size()));
  }
  Schedule s;
  s.cron_ = true;
  s.minutes_ = FieldParser(0, fields[0]).Parse();
  s.hours_ = static_cast<uint32_t>(FieldParser(1, fields[1]).Parse());
  s.days_ = static_cast<uint32_t>(FieldParser(2, fields[2]).Parse());
  s.months_ = static_cast<uint32_t>(FieldParser(3, fields[3]).Parse());
  uint64_t dow = FieldParser(4, fields[4]).Parse();
  if (dow & (uint64_t{1} << 7)) dow = (dow | 1) & 0x7F;  // 7 is Sunday too
  s.weekdays_ = static_cast<uint32_t>(dow);
  s.day_star_ = fields[2][0] == '*';
  s.weekday_star_ = fields[4][0] == '*';
  // Refuse what never runs (February 30th, April 31st): the calendar repeats
  // every 400 years, so one search of that length from any day decides it.
  if (!s.NextAfter(-1)) {
    throw ScheduleError("cron expression '" + std::string(TrimBlanks(text)) +
                        "' never runs: no date has " +
                        (s.day_star_ || s.weekday_star_
                             ? "a day of month and a day of week it allows in a month it allows"
                             : "a day it allows in a month it allows"));
  }
  return s;
}

// Parses an interval or a cron expression.
Schedule Schedule::Parse(std::string_view text) {
  std::string_view t = TrimBlanks(text);
  if (t.empty()) {
    throw ScheduleError(
        "the schedule is empty (write an interval such as '15 minutes' or a cron expression such "
        "as '0 * * * *')");
  }
  if (t[0] == '@') return ParseCron(t);
  std::vector<std::string_view> fields = Fields(t);
  // Cron when a field has a character only cron uses, or when there are five
  // fields, the first a number; otherwise an interval.
  std::string_view first = fields[0];
  bool cron_chars = t.find_first_of("*,/") != std::string_view::npos;
  bool plain =
      std::all_of(first.begin(), first.end(), [](char c) { return AsciiDigit(c) || c == '-'; });
  if (cron_chars || (plain && fields.size() == 5)) return ParseCron(t);
  return ParseInterval(t);
}

// Whether the cron day fields accept this day (Vixie cron's rule).
bool Schedule::DayMatches(unsigned day_of_month, int64_t days_since_2000) const {
  int weekday = static_cast<int>(FloorMod(days_since_2000 + 6, 7));  // 2000-01-01: Saturday
  bool dom = (days_ >> day_of_month) & 1;
  bool dow = (weekdays_ >> weekday) & 1;
  return day_star_ || weekday_star_ ? dom && dow : dom || dow;
}

// The first run time strictly after `after` (see schedule.hpp).
std::optional<int64_t> Schedule::NextAfter(int64_t after) const {
  if (!cron_) {
    __int128 next = static_cast<__int128>(after) + interval_;
    if (next >= kPgTimestampEnd) return std::nullopt;
    return static_cast<int64_t>(next);
  }
  if (after >= kPgTimestampEnd) return std::nullopt;
  // The first whole minute after `after`.
  int64_t day = FloorDiv(after, kMicrosPerDay);
  int64_t minute = FloorMod(after, kMicrosPerDay) / kMicrosPerMinute + 1;  // of the day, 0-1440
  const int64_t last_day = day + kCronSearchDays;
  int64_t y;
  unsigned m, d;
  CivilFromDays(day + kUnixToPgEpochDays, y, m, d);
  while (day <= last_day) {
    if (minute >= 1440 || !((months_ >> m) & 1) || !DayMatches(d, day)) {
      if (!((months_ >> m) & 1)) {
        // Skip to the first day of the next month.
        int64_t next_y = m == 12 ? y + 1 : y;
        unsigned next_m = m == 12 ? 1 : m + 1;
        day = CivilToDays(next_y, next_m, 1) - kUnixToPgEpochDays;
      } else {
        ++day;
      }
      minute = 0;
      CivilFromDays(day + kUnixToPgEpochDays, y, m, d);
      continue;
    }
    for (int64_t h = minute / 60; h < 24; ++h) {
      if (!((hours_ >> h) & 1)) continue;
      int64_t from = h == minute / 60 ? minute % 60 : 0;
      uint64_t allowed = minutes_ >> from;
      if (allowed == 0) continue;
      int64_t mm = from + __builtin_ctzll(allowed);
      __int128 t = static_cast<__int128>(day) * kMicrosPerDay +
                   static_cast<__int128>(h) * kMicrosPerHour +
                   static_cast<__int128>(mm) * kMicrosPerMinute;
      if (t >= kPgTimestampEnd) return std::nullopt;
      return static_cast<int64_t>(t);
    }
    minute = 1440;  // nothing left today
  }
  return std::nullopt;
}

// The next run time after the run due at `last_due` finished at `now`.
std::optional<int64_t> Schedule::NextDue(int64_t last_due, int64_t now) const {
  if (cron_) return NextAfter(std::max(last_due, now));
  __int128 k = 1;
  if (now >= last_due) k = (static_cast<__int128>(now) - last_due) / interval_ + 1;
  __int128 next = static_cast<__int128>(last_due) + k * interval_;
  if (next >= kPgTimestampEnd) return std::nullopt;
  return static_cast<int64_t>(next);
}

}  // namespace hyperline
