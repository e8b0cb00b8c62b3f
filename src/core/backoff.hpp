// backoff.hpp: when to try again, and how fast to send.
//
// Vocabulary: an attempt is one request that carried an event (1 for the first
// send). The backoff delay after attempt n is retry_base_ms * 2^(n-1), capped at
// retry_max_ms, with jitter so that many failed events do not come back at the
// same instant. A Retry-After header (delta seconds or an HTTP-date) overrides
// the computed delay, even beyond the cap. The token bucket bounds a
// destination's requests per second.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "core/cpp_only.hpp"

namespace hyperline {

// Delay before the next attempt after `attempt` failed ones, in ms, without
// jitter: base * 2^(attempt-1), capped at max_ms (and at least 0).
int64_t BackoffCeilingMs(int attempt, int64_t base_ms, int64_t max_ms);

// Backoff with "equal jitter": uniform in [ceiling/2, ceiling]. `unit` is a
// random number in [0, 1).
int64_t BackoffMs(int attempt, int64_t base_ms, int64_t max_ms, double unit);

// Parses a Retry-After value: delta seconds ("120") or an HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT", also RFC 850 and asctime forms). Returns the
// wait in ms from `now` (0 for a date in the past), or nullopt if malformed.
std::optional<int64_t> ParseRetryAfterMs(const std::string& raw,
                                         std::chrono::system_clock::time_point now);

// Token bucket: `rate` tokens per second, holding at most `burst`. Time is
// passed in so that tests control it.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // rate <= 0 means unlimited.
  explicit TokenBucket(double rate = 0, double burst = 0);
  // Changes the rate (keeps the tokens, clipped to the new burst).
  void SetRate(double rate, double burst, Clock::time_point now);
  // Takes a token if one is available now.
  bool TryTake(Clock::time_point now);
  // Time until a token is available (zero if one is).
  std::chrono::microseconds WaitTime(Clock::time_point now);

 private:
  void Refill(Clock::time_point now);
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
  bool started_ = false;
};

}  // namespace hyperline
