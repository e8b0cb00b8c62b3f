// date.cpp: the `date` filter's strftime and date-string parsing, all in UTC.
//
// Why UTC: payloads must not depend on the session's TimeZone (SPEC: timestamps
// render as ISO 8601 UTC whatever the session settings).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/liquid/internal.hpp"

namespace hyperline::liquid {

namespace {

const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                         "July",    "August",   "September", "October", "November", "December"};
const char* kDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                       "Thursday", "Friday", "Saturday"};

struct Tm {
  int64_t year;
  int mon, mday, hour, min, sec, usec, wday, yday;
  __int128 epoch_secs;  // why 128 bits: days * 86400 may pass int64 for far dates
};

// Splits a time into UTC calendar fields.
Tm Breakdown(TimePoint tp) {
  int64_t days = tp.days + kUnixToPgEpochDays;  // since 1970-01-01
  int64_t rem = tp.micros;
  Tm t;
  unsigned m, d;
  CivilFromDays(days, t.year, m, d);
  t.mon = static_cast<int>(m);
  t.mday = static_cast<int>(d);
  int64_t secs = rem / 1000000;
  t.usec = static_cast<int>(rem % 1000000);
  t.hour = static_cast<int>(secs / 3600);
  t.min = static_cast<int>(secs / 60 % 60);
  t.sec = static_cast<int>(secs % 60);
  t.wday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday
  t.yday = static_cast<int>(days - CivilToDays(t.year, 1, 1)) + 1;
  t.epoch_secs = static_cast<__int128>(days) * 86400 + secs;
  return t;
}

// ISO 8601 week-based year and week number.
void IsoWeek(const Tm& t, int64_t& iso_year, int& week) {
  int wday_mon = (t.wday + 6) % 7;  // Monday = 0
  int64_t days = CivilToDays(t.year, static_cast<unsigned>(t.mon), static_cast<unsigned>(t.mday));
  int64_t thursday = days - wday_mon + 3;
  int64_t y;
  unsigned m, d;
  CivilFromDays(thursday, y, m, d);
  iso_year = y;
  week = static_cast<int>((thursday - CivilToDays(y, 1, 1)) / 7 + 1);
}

// Decimal text of a 128-bit integer.
std::string Int128ToString(__int128 v) {
  if (v >= INT64_MIN && v <= INT64_MAX) return std::to_string(static_cast<int64_t>(v));
  bool neg = v < 0;
  unsigned __int128 u =
      neg ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  std::string digits;
  while (u > 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  if (neg) digits.push_back('-');
  return std::string(digits.rbegin(), digits.rend());
}

// Appends `body` left-padded to `width` with `pad` (zero padding keeps the sign first).
void Pad(std::string& out, const std::string& body, int width, char pad, bool neg_ok = true) {
  (void)neg_ok;
  if (static_cast<int>(body.size()) < width) {
    if (pad == '0' && !body.empty() && body[0] == '-') {
      out.push_back('-');
      out.append(static_cast<size_t>(width) - body.size(), '0');
      out.append(body, 1, std::string::npos);
      return;
    }
    out.append(static_cast<size_t>(width) - body.size(), pad);
  }
  out += body;
}

}  // namespace

// Returns the current time in micros since the epoch.
int64_t NowMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

// Formats a UTC time with Ruby's strftime directives and flags.
std::string Strftime(TimePoint tp, std::string_view format) {
  Tm t = Breakdown(tp);
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c != '%' || i + 1 >= format.size()) {
      out.push_back(c);
      continue;
    }
    size_t start = i;
    ++i;
    bool no_pad = false, upcase = false, swapcase = false;
    char pad_flag = 0;
    while (i < format.size() && std::strchr("-_0^#", format[i])) {
      char f = format[i++];
      if (f == '-')
        no_pad = true;
      else if (f == '_')
        pad_flag = ' ';
      else if (f == '0')
        pad_flag = '0';
      else if (f == '^')
        upcase = true;
      else
        swapcase = true;
    }
    int width = -1;
    while (i < format.size() && AsciiDigit(format[i])) {
      width = (width < 0 ? 0 : width) * 10 + (format[i] - '0');
      if (width > 1024) width = 1024;  // why: no format may allocate unbounded memory
      ++i;
    }
    while (i < format.size() && (format[i] == 'E' || format[i] == 'O')) ++i;
    if (i >= format.size()) {
      out.append(format.substr(start));
      break;
    }
    char conv = format[i];
    std::string body;
    int def_width = 0;
    char def_pad = '0';
    bool text = false;
    auto num = [&](int64_t v, int w, char p = '0') {
      body = std::to_string(v);
      def_width = w;
      def_pad = p;
    };
    switch (conv) {
      case 'Y':
        num(t.year, t.year < 0 ? 5 : 4);
        break;
      case 'C':
        num(t.year >= 0 ? t.year / 100 : -((-t.year + 99) / 100), 2);
        break;
      case 'y':
        num(((t.year % 100) + 100) % 100, 2);
        break;
      case 'm':
        num(t.mon, 2);
        break;
      case 'B':
        body = kMonths[t.mon - 1];
        text = true;
        break;
      case 'b':
      case 'h':
        body = std::string(kMonths[t.mon - 1], 3);
        text = true;
        break;
      case 'd':
        num(t.mday, 2);
        break;
      case 'e':
        num(t.mday, 2, ' ');
        break;
      case 'j':
        num(t.yday, 3);
        break;
      case 'H':
        num(t.hour, 2);
        break;
      case 'k':
        num(t.hour, 2, ' ');
        break;
      case 'I':
        num(t.hour % 12 == 0 ? 12 : t.hour % 12, 2);
        break;
      case 'l':
        num(t.hour % 12 == 0 ? 12 : t.hour % 12, 2, ' ');
        break;
      case 'P':
        body = t.hour < 12 ? "am" : "pm";
        text = true;
        break;
      case 'p':
        body = t.hour < 12 ? "AM" : "PM";
        text = true;
        break;
      case 'M':
        num(t.min, 2);
        break;
      case 'S':
        num(t.sec, 2);
        break;
      case 'L':
      case 'N': {
        int digits = width > 0 ? width : (conv == 'L' ? 3 : 9);
        std::string frac = std::to_string(t.usec);
        frac.insert(0, 6 - frac.size(), '0');
        if (digits <= 6) {
          body = frac.substr(0, static_cast<size_t>(digits));
        } else {
          body = frac + std::string(static_cast<size_t>(digits - 6), '0');
        }
        width = -1;
        text = true;
        break;
      }
      case 'z':
        body = "+0000";
        text = true;
        break;
      case 'Z':
        body = "UTC";
        text = true;
        break;
      case 'A':
        body = kDays[t.wday];
        text = true;
        break;
      case 'a':
        body = std::string(kDays[t.wday], 3);
        text = true;
        break;
      case 'u':
        num(t.wday == 0 ? 7 : t.wday, 1);
        break;
      case 'w':
        num(t.wday, 1);
        break;
      case 's':
        body = Int128ToString(t.epoch_secs);
        def_width = 1;
        break;
      case 'U':
        num((t.yday - 1 + 7 - t.wday) / 7, 2);
        break;
      case 'W':
        num((t.yday - 1 + 7 - (t.wday + 6) % 7) / 7, 2);
        break;
      case 'G': {
        int64_t y;
        int w;
        IsoWeek(t, y, w);
        num(y, 4);
        break;
      }
      case 'g': {
        int64_t y;
        int w;
        IsoWeek(t, y, w);
        num(((y % 100) + 100) % 100, 2);
        break;
      }
      case 'V': {
        int64_t y;
        int w;
        IsoWeek(t, y, w);
        num(w, 2);
        break;
      }
      case 'n':
        body = "\n";
        text = true;
        break;
      case 't':
        body = "\t";
        text = true;
        break;
      case '%':
        body = "%";
        text = true;
        break;
      case 'c':
        body = Strftime(tp, "%a %b %e %H:%M:%S %Y");
        text = true;
        break;
      case 'D':
      case 'x':
        body = Strftime(tp, "%m/%d/%y");
        text = true;
        break;
      case 'F':
        body = Strftime(tp, "%Y-%m-%d");
        text = true;
        break;
      case 'X':
      case 'T':
        body = Strftime(tp, "%H:%M:%S");
        text = true;
        break;
      case 'r':
        body = Strftime(tp, "%I:%M:%S %p");
        text = true;
        break;
      case 'R':
        body = Strftime(tp, "%H:%M");
        text = true;
        break;
      case 'v':
        body = Strftime(tp, "%e-%^b-%Y");
        text = true;
        break;
      case '+':
        body = Strftime(tp, "%a %b %e %H:%M:%S %Z %Y");
        text = true;
        break;
      default:
        out.append(format.substr(start, i - start + 1));
        continue;
    }
    if (upcase) {
      for (char& ch : body) ch = static_cast<char>(AsciiUpper(ch));
    } else if (swapcase) {
      bool all_upper = true;
      for (char ch : body) all_upper = all_upper && !AsciiIsLower(ch);
      for (char& ch : body) {
        ch = static_cast<char>(all_upper ? AsciiLower(ch) : AsciiUpper(ch));
      }
    }
    // Ruby: `-` suppresses padding even when a width is given.
    int w = no_pad ? 0 : (width >= 0 ? width : def_width);
    char p = pad_flag ? pad_flag : (text ? ' ' : def_pad);
    Pad(out, body, w, p);
  }
  return out;
}

namespace {

// Returns 1..12 for an English month name or abbreviation, else 0.
int MonthFromWord(const std::string& w) {
  for (int m = 0; m < 12; ++m) {
    std::string name = kMonths[m];
    for (char& c : name) c = static_cast<char>(AsciiLower(c));
    if (w == name || w == name.substr(0, 3) || (w == "sept" && m == 8)) return m + 1;
  }
  return 0;
}

}  // namespace

// Parses the date/time formats Ruby's Time.parse commonly sees, as UTC.
bool ParseDateTime(std::string_view input, TimePoint& out) {
  std::string s(input);
  for (char& c : s) c = static_cast<char>(AsciiLower(c));
  if (s.size() > 200) return false;
  int64_t year = INT64_MIN;
  int mon = 0, day = 0, hour = 0, min = 0, sec = 0, usec = 0;
  int64_t offset_secs = 0;
  bool have_date = false;
  std::vector<int64_t> loose;  // numbers not yet assigned
  std::vector<int> loose_len;
  size_t i = 0;
  const size_t n = s.size();
  auto digits_at = [&](size_t p, size_t& len) {
    len = 0;
    int64_t v = 0;
    while (p + len < n && AsciiDigit(s[p + len]) && len < 12) {
      v = v * 10 + (s[p + len] - '0');
      ++len;
    }
    return v;
  };
  while (i < n) {
    char c = s[i];
    if (AsciiDigit(c)) {
      size_t len;
      int64_t v = digits_at(i, len);
      size_t j = i + len;
      // YYYY-MM-DD or YYYY/MM/DD
      if (len == 4 && j < n && (s[j] == '-' || s[j] == '/') && !have_date) {
        size_t l2, l3;
        int64_t m = digits_at(j + 1, l2);
        if (l2 >= 1 && l2 <= 2 && j + 1 + l2 < n && s[j + 1 + l2] == s[j]) {
          int64_t d = digits_at(j + 2 + l2, l3);
          if (l3 >= 1 && l3 <= 2) {
            year = v;
            mon = static_cast<int>(m);
            day = static_cast<int>(d);
            have_date = true;
            i = j + 2 + l2 + l3;
            continue;
          }
        }
      }
      // HH:MM[:SS[.frac]]
      if (len <= 2 && j < n && s[j] == ':') {
        size_t l2;
        int64_t m = digits_at(j + 1, l2);
        if (l2 == 2) {
          hour = static_cast<int>(v);
          min = static_cast<int>(m);
          size_t k = j + 1 + l2;
          if (k < n && s[k] == ':') {
            size_t l3;
            int64_t sv = digits_at(k + 1, l3);
            if (l3 == 2) {
              sec = static_cast<int>(sv);
              k += 1 + l3;
              if (k < n && (s[k] == '.' || s[k] == ',')) {
                size_t l4;
                digits_at(k + 1, l4);
                std::string frac = s.substr(k + 1, std::min<size_t>(l4, 6));
                frac.append(6 - frac.size(), '0');
                usec = std::atoi(frac.c_str());
                k += 1 + l4;
              }
            }
          }
          // am/pm
          size_t q = k;
          while (q < n && s[q] == ' ') ++q;
          if (s.compare(q, 2, "pm") == 0 && hour < 12) {
            hour += 12;
            k = q + 2;
          } else if (s.compare(q, 2, "am") == 0) {
            if (hour == 12) hour = 0;
            k = q + 2;
          }
          i = k;
          continue;
        }
      }
      loose.push_back(v);
      loose_len.push_back(static_cast<int>(len));
      i = j;
      // ordinal suffixes: 1st, 2nd, 3rd, 4th
      if (i + 1 < n && (s.compare(i, 2, "st") == 0 || s.compare(i, 2, "nd") == 0 ||
                        s.compare(i, 2, "rd") == 0 || s.compare(i, 2, "th") == 0)) {
        i += 2;
      }
      continue;
    }
    if ((c == '+' || c == '-') && i + 1 < n && AsciiDigit(s[i + 1]) &&
        (have_date || !loose.empty())) {
      size_t len;
      int64_t v = digits_at(i + 1, len);
      int64_t hh, mm = 0;
      size_t k = i + 1 + len;
      if (len == 4) {
        hh = v / 100;
        mm = v % 100;
      } else if (len <= 2) {
        hh = v;
        if (k < n && s[k] == ':') {
          size_t l2;
          mm = digits_at(k + 1, l2);
          k += 1 + l2;
        }
      } else {
        return false;
      }
      offset_secs = (hh * 3600 + mm * 60) * (c == '-' ? -1 : 1);
      i = k;
      continue;
    }
    if (AsciiAlpha(c)) {
      size_t j = i;
      while (j < n && AsciiAlpha(s[j])) ++j;
      std::string w = s.substr(i, j - i);
      int m = MonthFromWord(w);
      if (m && !mon) {
        mon = m;
      } else if (w == "t" || w == "z" || w == "utc" || w == "gmt" || w == "am" || w == "pm" ||
                 w == "of" || w == "at") {
        if (w == "pm" && hour < 12) hour += 12;
      } else {
        bool weekday = false;
        for (const char* d : kDays) {
          std::string dn = d;
          for (char& ch : dn) ch = static_cast<char>(AsciiLower(ch));
          if (w == dn || w == dn.substr(0, 3)) weekday = true;
        }
        if (!weekday) return false;
      }
      i = j;
      continue;
    }
    if (c == ' ' || c == ',' || c == '.' || c == '-' || c == '/' || c == '\t') {
      ++i;
      continue;
    }
    return false;
  }
  if (!have_date) {
    if (!mon) return false;
    // "March 14, 2016", "14 March 2016", "Mar 14 2016"
    for (size_t k = 0; k < loose.size(); ++k) {
      if (loose_len[k] <= 2 && !day && loose[k] >= 1 && loose[k] <= 31) {
        day = static_cast<int>(loose[k]);
      } else if (year == INT64_MIN) {
        year = loose[k];
      } else {
        return false;
      }
    }
    if (year == INT64_MIN) {
      year = 1970;
      int64_t y;
      unsigned mm, dd;
      CivilFromDays(FloorDiv(NowMicros(), kMicrosPerDay), y, mm, dd);
      year = y;
    }
    if (!day) day = 1;
  } else if (!loose.empty()) {
    return false;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 24 || min > 59 || sec > 60) return false;
  // Why a bound: CivilToDays is exact far beyond PostgreSQL's years (5874897
  // AD for dates); past this a "year" is more likely a stray number.
  if (year > 100000000 || year < -100000000) return false;
  int64_t days = CivilToDays(year, static_cast<unsigned>(mon), static_cast<unsigned>(day));
  int64_t secs = int64_t{hour} * 3600 + int64_t{min} * 60 + sec - offset_secs;  // may leave the day
  out.days = days - kUnixToPgEpochDays + FloorDiv(secs, 86400);
  out.micros = FloorMod(secs, 86400) * 1000000 + usec;
  return true;
}

}  // namespace hyperline::liquid
