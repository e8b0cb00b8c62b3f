// backoff.cpp: retry delays, Retry-After parsing and the token bucket.
#include "core/backoff.hpp"

#include "core/value.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>

namespace hyperline {

int64_t BackoffCeilingMs(int attempt, int64_t base_ms, int64_t max_ms) {
  if (base_ms < 0) base_ms = 0;
  if (max_ms < 0) max_ms = 0;
  if (attempt < 1) attempt = 1;
  int64_t delay = base_ms;
  for (int i = 1; i < attempt && delay < max_ms; ++i) {
    delay = delay > max_ms / 2 ? max_ms : delay * 2;
  }
  return std::min(delay, max_ms);
}

int64_t BackoffMs(int attempt, int64_t base_ms, int64_t max_ms, double unit) {
  int64_t ceiling = BackoffCeilingMs(attempt, base_ms, max_ms);
  unit = std::clamp(unit, 0.0, 1.0);
  int64_t half = ceiling / 2;
  return half + static_cast<int64_t>(std::llround(static_cast<double>(ceiling - half) * unit));
}

namespace {

int MonthIndex(const char* m) {
  static const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                  "jul", "aug", "sep", "oct", "nov", "dec"};
  for (int i = 0; i < 12; ++i) {
    if (strncasecmp(m, kMonths[i], 3) == 0) return i;
  }
  return -1;
}

// Parses the three HTTP-date forms into seconds since the epoch.
std::optional<int64_t> ParseHttpDate(const std::string& s) {
  char wday[16] = {0}, mon[4] = {0}, zone[8] = {0};
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0, n = 0;
  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
  if (std::sscanf(s.c_str(), "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d %7s%n", wday, &day, mon, &year,
                  &hh, &mm, &ss, zone, &n) == 8 &&
      static_cast<size_t>(n) == s.size()) {
  } else if (std::sscanf(s.c_str(), "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %7s%n", wday, &day, mon,
                         &year, &hh, &mm, &ss, zone, &n) == 8 &&
             static_cast<size_t>(n) == s.size()) {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit year).
    year += year < 70 ? 2000 : 1900;
  } else if (std::sscanf(s.c_str(), "%15[A-Za-z] %3s %2d %2d:%2d:%2d %4d%n", wday, mon, &day, &hh,
                         &mm, &ss, &year, &n) == 7 &&
             static_cast<size_t>(n) == s.size()) {
    // asctime: Sun Nov  6 08:49:37 1994
    std::strcpy(zone, "GMT");
  } else {
    return std::nullopt;
  }
  int month = MonthIndex(mon);
  if (month < 0 || strcasecmp(zone, "GMT") != 0 || day < 1 || day > 31 || hh > 23 || mm > 59 ||
      ss > 60 || hh < 0 || mm < 0 || ss < 0) {
    return std::nullopt;
  }
  int64_t days = CivilToDays(year, static_cast<unsigned>(month + 1), static_cast<unsigned>(day));
  return days * 86400 + int64_t{hh} * 3600 + int64_t{mm} * 60 + ss;
}

}  // namespace

std::optional<int64_t> ParseRetryAfterMs(const std::string& raw,
                                         std::chrono::system_clock::time_point now) {
  size_t b = raw.find_first_not_of(" \t");
  if (b == std::string::npos) return std::nullopt;
  size_t e = raw.find_last_not_of(" \t\r\n");
  std::string value = raw.substr(b, e - b + 1);
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return int64_t{999999999} * 1000;  // absurdly long: clamp
    return static_cast<int64_t>(std::stoll(value)) * 1000;
  }
  std::optional<int64_t> at = ParseHttpDate(value);
  if (!at) return std::nullopt;
  int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  return std::max<int64_t>(0, *at * 1000 - now_ms);
}

TokenBucket::TokenBucket(double rate, double burst)
    : rate_(rate), burst_(std::max(1.0, burst)), tokens_(std::max(1.0, burst)) {}

void TokenBucket::SetRate(double rate, double burst, Clock::time_point now) {
  Refill(now);
  rate_ = rate;
  burst_ = std::max(1.0, burst);
  tokens_ = std::min(tokens_, burst_);
}

void TokenBucket::Refill(Clock::time_point now) {
  if (!started_) {
    started_ = true;
    last_ = now;
    return;
  }
  if (now <= last_) return;
  double seconds = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + seconds * rate_);
  last_ = now;
}

bool TokenBucket::TryTake(Clock::time_point now) {
  if (rate_ <= 0) return true;
  Refill(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  return false;
}

std::chrono::microseconds TokenBucket::WaitTime(Clock::time_point now) {
  if (rate_ <= 0) return std::chrono::microseconds(0);
  Refill(now);
  if (tokens_ >= 1.0) return std::chrono::microseconds(0);
  double seconds = (1.0 - tokens_) / rate_;
  return std::chrono::microseconds(static_cast<int64_t>(std::ceil(seconds * 1e6)));
}

}  // namespace hyperline
