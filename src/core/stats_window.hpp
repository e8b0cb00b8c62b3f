// stats_window.hpp: the time-windowed parts of hyperline.stats, as plain data
// that lives in shared memory (src/pg/stats.cpp): delivery latency as a
// log-scale histogram per minute (percentiles over the last few minutes), and
// failed events per minute (how many in the last hour).
//
// Both are POD: all-zero bytes is the empty state, nothing to construct, no
// pointer inside. Minutes are any monotonic count of minutes (stats.cpp uses
// Postgres timestamps / 60 s); a minute far from the newest one written
// clears the ring.
#pragma once
#include "core/cpp_only.hpp"

#include <cstddef>
#include <cstdint>

namespace hyperline::window {

// Latency buckets: bucket 0 is [0, 0.1 ms); bucket i in 1..kTopBucket-1 is
// [0.1 ms * 2^((i-1)/4), 0.1 ms * 2^(i/4)): a quarter octave, so a percentile
// reported as the bucket's geometric middle is within 9 %; the top bucket
// holds everything from about 7 days up.
constexpr int kTopLatencyBucket = 131;
constexpr int kLatencyBuckets = kTopLatencyBucket + 1;
// Histograms kept: the current minute and the four before.
constexpr int kLatencyWindows = 5;
// Failed-event counts kept: the current minute and the 59 before.
constexpr int kFailureMinutes = 60;

struct LatencyHistogram {
  int64_t newest_minute;
  uint32_t counts[kLatencyWindows][kLatencyBuckets];
};

struct MinuteCounts {
  int64_t newest_minute;
  uint32_t counts[kFailureMinutes];
};

// The bucket of a latency (NaN and negatives: bucket 0).
int LatencyBucket(double ms);
// The value a percentile falling into bucket i reports.
double LatencyBucketValue(int bucket);

// Adds n latencies (ms) seen at `minute`. Latencies of a minute older than the
// ring reaches are dropped.
void AddLatencies(LatencyHistogram& h, const double* ms, size_t n, int64_t minute);

// The percentiles ps[0..n) (each in (0, 1]) of the latencies of the
// kLatencyWindows minutes up to `now_minute`, rounded to 0.01 ms; false (out
// untouched) when there are none.
bool LatencyPercentiles(const LatencyHistogram& h, int64_t now_minute, const double* ps,
                        double* out, int n);

// Adds n to `minute`'s count.
void AddCount(MinuteCounts& c, int64_t n, int64_t minute);

// The counts of the kFailureMinutes minutes up to `now_minute`.
int64_t CountLastHour(const MinuteCounts& c, int64_t now_minute);

}  // namespace hyperline::window
