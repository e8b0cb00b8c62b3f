// mock_service.hpp: the behaviour of hyperline-mock, independent of sockets.
//
// Vocabulary: *API requests* are those under /v1 (and unknown paths); they are
// counted, subject to *faults* (drop, delay, 429, injected failures) and to the
// Bearer check. *Control requests* under /_mock/ are never faulted nor counted.
// The *config* is what flags set at start and POST /_mock/config changes live.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "event_store.hpp"
#include "http_server.hpp"

namespace hyperline {
namespace mock {

// Live settings; force_429 is kept apart because requests consume it.
struct MockConfig {
  double fail_rate = 0.0;
  int fail_status = 503;
  int64_t delay_ms = 0;
  double drop_rate = 0.0;
  std::string drop_mode = "before";  // "before": not processed; "after": stored, then dropped
  int64_t rate_limit = 0;            // requests per sliding second; 0 = unlimited
  int64_t retry_after = 1;           // seconds, in Retry-After of every 429
  int64_t max_body_bytes = 0;        // larger request bodies get 413; 0 = no limit of ours
  std::vector<std::string> reject_ids;
  std::vector<std::string> api_keys{"test_key"};
};

class MockService {
 public:
  MockService(MockConfig config, int64_t force_429, uint64_t seed, bool verbose, bool quiet);

  // Answers one HTTP request (called concurrently by the server's workers).
  void Handle(const HttpRequest& req, HttpResponse& res);

  // Wakes delayed requests and makes new ones drop: the server is stopping.
  void Shutdown();

  // Applies the JSON object `patch` to the live config; "" or the reason it was refused.
  std::string PatchConfig(const std::string& patch_json);
  // Returns the live config as a JSON object.
  std::string ConfigJson() const;

 private:
  struct Snapshot {
    MockConfig config;
    std::unordered_set<std::string> reject_ids;
    std::unordered_set<std::string> api_keys;
  };

  // Returns the config in force now (an immutable snapshot, cheap to share).
  std::shared_ptr<const Snapshot> Current() const;
  // Returns a uniform random number in [0, 1) from the seeded generator.
  double Roll();
  // Serves /_mock/... (no faults, no auth, not counted).
  void HandleControl(const HttpRequest& req, HttpResponse& res);
  // Serves an API request: faults, routing, Bearer check; *dropped = close unanswered.
  void HandleApi(const HttpRequest& req, HttpResponse& res, bool* dropped);
  // POST /v1/events: one event.
  void PostEvent(const Snapshot& s, const HttpRequest& req, HttpResponse& res);
  // POST /v1/events/batch: 1..5000 events, each accepted or failed alone.
  void PostBatch(const Snapshot& s, const HttpRequest& req, HttpResponse& res);
  // DELETE /v1/events: {"matching":"record_ids","record_ids":[...]}.
  void DeleteEvents(const HttpRequest& req, HttpResponse& res);
  // GET /v1/events (api: take <= 100) and GET /_mock/events (no take limit).
  void ListEvents(const HttpRequest& req, HttpResponse& res, bool api);
  // Returns true (and fills res) if the rate limiter refuses this request.
  bool RateLimited(const Snapshot& s, HttpResponse& res);
  // Returns the counters of GET /_mock/stats.
  std::string StatsJson() const;
  // Forgets events, log, counters and the rate window (POST /_mock/reset).
  void Reset();

  mutable std::mutex config_mutex_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::atomic<int64_t> force_429_;

  std::mutex rng_mutex_;
  std::mt19937_64 rng_;

  std::mutex rate_mutex_;
  std::deque<int64_t> window_ms_;  // arrival times of allowed requests in the last second

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;

  EventStore store_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> events_failed_{0};
  std::array<std::atomic<uint64_t>, 600> by_status_{};

  bool verbose_;
  bool quiet_;
};

// Milliseconds since the Unix epoch, from the system clock.
int64_t NowMs();

}  // namespace mock
}  // namespace hyperline
