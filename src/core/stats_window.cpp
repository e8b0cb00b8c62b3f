// stats_window.cpp: latency histograms and per-minute counts (stats_window.hpp).
#include "core/stats_window.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hyperline::window {
namespace {

constexpr double kFirstEdgeMs = 0.1;

// Moves a ring of N minutes forward to `minute` (clearing the minutes it
// passes); returns the slot of `minute`, or -1 when it is older than the ring
// reaches.
template <int N, typename Clear>
int AdvanceRing(int64_t* newest, int64_t minute, Clear&& clear) {
  if (minute - *newest >= N) {
    for (int i = 0; i < N; ++i) clear(i);
    *newest = minute;
  } else if (minute > *newest) {
    for (int64_t m = *newest + 1; m <= minute; ++m) clear(static_cast<int>(m % N));
    *newest = minute;
  } else if (*newest - minute >= N) {
    return -1;  // the clock went back further than the ring reaches
  }
  return static_cast<int>(((minute % N) + N) % N);
}

int Slot(int64_t minute, int n) { return static_cast<int>(((minute % n) + n) % n); }

}  // namespace

int LatencyBucket(double ms) {
  if (!(ms >= kFirstEdgeMs)) return 0;
  double i = std::floor(4.0 * std::log2(ms / kFirstEdgeMs)) + 1;
  if (i >= kTopLatencyBucket) return kTopLatencyBucket;
  return std::max(1, static_cast<int>(i));
}

double LatencyBucketValue(int bucket) {
  if (bucket <= 0) return kFirstEdgeMs / 2;
  if (bucket >= kTopLatencyBucket) return kFirstEdgeMs * std::exp2((kTopLatencyBucket - 1) / 4.0);
  return kFirstEdgeMs * std::exp2((bucket - 0.5) / 4.0);
}

void AddLatencies(LatencyHistogram& h, const double* ms, size_t n, int64_t minute) {
  if (n == 0) return;
  int slot = AdvanceRing<kLatencyWindows>(&h.newest_minute, minute, [&h](int i) {
    std::memset(h.counts[i], 0, sizeof h.counts[i]);
  });
  if (slot < 0) return;
  for (size_t i = 0; i < n; ++i) h.counts[slot][LatencyBucket(ms[i])]++;
}

bool LatencyPercentiles(const LatencyHistogram& h, int64_t now_minute, const double* ps,
                        double* out, int n) {
  uint64_t merged[kLatencyBuckets] = {0};
  uint64_t total = 0;
  for (int k = 0; k < kLatencyWindows; ++k) {
    int64_t m = h.newest_minute - k;
    if (m > now_minute || m <= now_minute - kLatencyWindows) continue;
    const uint32_t* w = h.counts[Slot(m, kLatencyWindows)];
    for (int b = 0; b < kLatencyBuckets; ++b) {
      merged[b] += w[b];
      total += w[b];
    }
  }
  if (total == 0) return false;
  for (int j = 0; j < n; ++j) {
    auto rank = static_cast<uint64_t>(std::ceil(ps[j] * static_cast<double>(total)));
    rank = std::clamp<uint64_t>(rank, 1, total);
    uint64_t seen = 0;
    int b = 0;
    for (; b < kTopLatencyBucket; ++b) {
      seen += merged[b];
      if (seen >= rank) break;
    }
    out[j] = std::round(LatencyBucketValue(b) * 100.0) / 100.0;
  }
  return true;
}

void AddCount(MinuteCounts& c, int64_t n, int64_t minute) {
  if (n <= 0) return;
  int slot = AdvanceRing<kFailureMinutes>(&c.newest_minute, minute, [&c](int i) { c.counts[i] = 0; });
  if (slot >= 0) c.counts[slot] += static_cast<uint32_t>(n);
}

int64_t CountLastHour(const MinuteCounts& c, int64_t now_minute) {
  int64_t sum = 0;
  for (int k = 0; k < kFailureMinutes; ++k) {
    int64_t m = c.newest_minute - k;
    if (m <= now_minute && m > now_minute - kFailureMinutes) sum += c.counts[Slot(m, kFailureMinutes)];
  }
  return sum;
}

}  // namespace hyperline::window
