// delivery.hpp: the delivery engine run by the background worker.
//
// Vocabulary: a row is one claimed hyperline.outbox row; a key is (model,
// event_key), the unit of ordering; a job is one HTTP request carrying rows of
// one destination (a batch of events, one event, or a delete of record ids);
// an outcome is what a response means for one row, written back in the next
// record transaction.
//
// Life of a row: claimed (status 'sending', in a short transaction) → queued
// in a job → sent (outside any transaction) → outcome → recorded (another
// short transaction: delivered, failed, or pending again with next_attempt_at).
// A key stays "in flight" from claim until its outcome is recorded, so a newer
// row of the same key is never claimed while an older one may still change.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/backoff.hpp"
#include "http/client.hpp"

namespace hyperline::pg {

using SteadyClock = std::chrono::steady_clock;

// A destination's settings (from hyperline._destinations) and the worker's
// memory about it.
struct Destination {
  std::string name;
  std::string base_url;
  std::string api_key;  // secret: only ever put in the Authorization header
  int batch_size = 500;
  double max_rps = 0;  // 0: unlimited
  int timeout_ms = 10000;
  bool allow_http = false;  // a superuser allowed plain http to a remote host
  std::string state;        // 'active' or 'unauthorized', as stored
  std::string last_error;   // as stored
  bool has_last_error = false;
  int key_version = 1;
  TokenBucket bucket;
  SteadyClock::time_point paused_until{};  // 429 with Retry-After: no request before
  SteadyClock::time_point probe_at{};      // unauthorized: next try with the same key
  int probe_key_version = 0;               // key version the 401 was for
  bool seen = false;                       // present in the last load
};

// One claimed outbox row.
struct Row {
  int64_t id = 0;
  std::string model;
  std::string event_key;
  std::string operation;
  std::string payload;
  std::string destination;
  int attempts = 0;
  bool has_payload = false;
};

// One HTTP request to make (or being made).
struct Job {
  uint64_t tag = 0;
  std::string destination;
  int key_version = 0;
  bool is_delete = false;
  bool batch = false;
  std::vector<Row> rows;
};

// What to write for one row.
struct Outcome {
  int64_t id = 0;
  const char* status = "pending";
  int attempts_inc = 0;
  int http_status = 0;  // 0: NULL
  std::string error;
  bool has_error = false;
  int64_t delay_ms = -1;      // -1: keep next_attempt_at; else now() + delay
  int key_version = 0;        // >0: no delay if the destination's key changed since
  bool keep_details = false;  // not sent: keep http_status and last_error
};

// A change of a destination's state/last_error to write.
struct DestinationUpdate {
  std::string state;
  std::string error;
  bool has_error = false;
  int key_version = 0;
};

// Whether the extension exists in this database (short transaction).
bool TxnExtensionExists();

// Deletes delivered (and superseded) rows older than hyperline.delivered_retention,
// in transactions of 10,000 rows, at most 1,000,000 per call. Returns rows
// deleted. Used by the upkeep worker (and by the delivery worker itself when no
// upkeep worker can be started).
int64_t TxnPurgeDelivered();

// The engine. Methods named Txn* run one short transaction each (through
// PgGuard, so Postgres errors arrive as PgException); the others are pure C++.
class Delivery {
 public:
  Delivery();

  // Crash safety at start: rows left 'sending' go back to 'pending'.
  void TxnResetSending();
  // Loads destinations and claims due rows into jobs. Returns rows taken.
  int TxnClaim();
  // Writes the outcomes collected so far and releases their keys.
  void TxnRecord();

  // Starts queued jobs, within the concurrency limit and rate limits.
  // Returns how long until a rate-limited job may start (or max()).
  std::chrono::milliseconds StartJobs();
  // Waits up to timeout_ms for HTTP activity and turns responses into outcomes.
  void Pump(int timeout_ms);
  // When rows this worker set back to pending (or a paused destination) are
  // next due, so that the loop claims then instead of at the next poll.
  std::optional<SteadyClock::time_point> NextDue() const;
  // Forgets the due times that have passed (a claim is about to serve them).
  void ClearDue();
  // Forgets everything in memory (the extension was dropped, or an error).
  void Reset();
  // Applies changed settings (after SIGHUP).
  void OnSettingsChanged();

  size_t InFlight() const { return in_flight_.size(); }
  size_t Queued() const { return queued_.size(); }
  size_t HeldRows() const { return held_rows_; }
  size_t OutcomeCount() const { return outcomes_.size(); }
  bool HasOutcomes() const { return !outcomes_.empty() || !destination_updates_.empty(); }
  // The last claim filled its limit with rows it took: more are probably due.
  bool MoreDue() const { return more_due_ || share_freed_; }
  // Rows were skipped because their key was in flight; releasing keys may free them.
  bool KeysWereBusy() const { return keys_were_busy_; }

 private:
  void ProcessResponse(http::Response& response);
  void AddOutcomesForRetry(const Job& job, const std::string& message,
                           std::optional<int64_t> retry_after_ms, int http_status);
  void NoteDestination(const Job& job, const char* state, const std::string* error);
  // Puts a job's rows back to pending without sending them.
  void Requeue(Job& job, int64_t delay_ms, int key_version = 0);
  static std::string KeyOf(const Row& row);
  void NoteDueAt(SteadyClock::time_point at);

  std::unique_ptr<http::Client> client_;
  std::unordered_map<std::string, Destination> destinations_;
  std::list<Job> queued_;
  std::unordered_map<uint64_t, Job> in_flight_;
  std::unordered_set<std::string> keys_in_flight_;
  std::vector<Outcome> outcomes_;
  std::vector<std::string> keys_to_release_;
  std::unordered_map<std::string, DestinationUpdate> destination_updates_;
  size_t held_rows_ = 0;
  uint64_t next_tag_ = 1;
  bool more_due_ = false;
  bool keys_were_busy_ = false;
  // A request of a destination claimed by share (rate limit, key probe) ended:
  // its share has room again.
  bool share_freed_ = false;
  // Until then rows this worker set back to pending may still wait for a retry.
  SteadyClock::time_point waiting_until_{};
  // Times at which retries or paused destinations become due (earliest first).
  std::priority_queue<SteadyClock::time_point, std::vector<SteadyClock::time_point>,
                      std::greater<SteadyClock::time_point>>
      due_times_;
  std::mt19937_64 rng_;
};

}  // namespace hyperline::pg
