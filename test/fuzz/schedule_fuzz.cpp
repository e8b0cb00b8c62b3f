// schedule_fuzz.cpp: libFuzzer target for query model schedules
// (src/core/schedule). Parses arbitrary bytes as a schedule and, when it
// parses, checks what NextAfter and NextDue promise at instants across
// PostgreSQL's range: strictly later, before kPgTimestampEnd, cron runs on
// whole minutes, intervals exactly one interval (or a whole number of them)
// later. Any crash, sanitizer report, hang, or unexpected exception is a bug.
//
// Build and run (ASan + UBSan, one core):
//   cmake -S . -B /tmp/build-fuzz -DHYPERLINE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
//   cmake --build /tmp/build-fuzz --target schedule_fuzz -j2
//   mkdir -p /tmp/schedule-corpus && /tmp/build-fuzz/schedule_fuzz -max_total_time=300 \
//       -timeout=10 -max_len=256 /tmp/schedule-corpus test/fuzz/corpus/schedule
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/schedule.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<hyperline::Schedule> s;
  try {
    s = hyperline::Schedule::Parse(text);
  } catch (const hyperline::ScheduleError&) {
    return 0;
  }
  constexpr int64_t kMinute = 60000000;
  const int64_t instants[] = {INT64_MIN,
                              -211813488000000000LL,  // 4714 BC
                              -1,
                              0,
                              788025851123456LL,  // 2024-12-20T16:04:11.123456
                              hyperline::kPgTimestampEnd - 3600000000LL,
                              hyperline::kPgTimestampEnd - 1,
                              INT64_MAX};
  for (int64_t after : instants) {
    std::optional<int64_t> next = s->NextAfter(after);
    if (next) {
      if (*next <= after || *next >= hyperline::kPgTimestampEnd) __builtin_trap();
      if (s->is_cron() && (*next % kMinute) != 0) __builtin_trap();
      if (!s->is_cron() && *next - after != s->interval_micros()) __builtin_trap();
    } else if (!s->is_cron() && after < hyperline::kPgTimestampEnd - s->interval_micros()) {
      __builtin_trap();
    }
    std::optional<int64_t> due = s->NextDue(after, 788025851123456LL);
    if (due && (*due <= 788025851123456LL || *due >= hyperline::kPgTimestampEnd)) __builtin_trap();
    if (due && !s->is_cron() &&
        (static_cast<__int128>(*due) - after) % s->interval_micros() != 0) {
      __builtin_trap();
    }
  }
  return 0;
}
