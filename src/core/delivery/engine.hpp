// engine.hpp: the delivery engine — every decision of the delivery worker,
// with no SQL and no Postgres in it (README.md in this folder has the state
// diagram).
//
// Vocabulary (types.hpp has the data): a *job* is one HTTP request carrying
// rows of one destination (a batch of events, one event, or a delete of record
// ids). A key stays *in flight* from the claim that took its row until that
// row's outcome is recorded, so a newer row of the key is never claimed while
// the older one may still change; older rows of a key claimed together with a
// newer one are *superseded*. A destination's *share* bounds the rows it may
// hold (rate-limited: two seconds of requests; unauthorized: one probe).
//
// The worker drives it, one transaction per step:
//   PlanClaim → (claim SQL) → Admit → (write decisions, commit)
//   StartRequests / Pump (HTTP, outside any transaction)
//   TakeRecords → (write outcomes, commit) → Recorded
// and sleeps until NextWake(). Time comes from a Clock and HTTP goes through a
// Transport, both given from outside: tests use fakes.
#pragma once
#include "core/cpp_only.hpp"

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/backoff.hpp"
#include "core/delivery/clock.hpp"
#include "core/delivery/transport.hpp"
#include "core/delivery/types.hpp"
#include "core/protocol.hpp"

namespace hyperline::delivery {

using TimePoint = Clock::TimePoint;

class Engine {
 public:
  // Outcomes wait at most this long before they are recorded ...
  static constexpr std::chrono::milliseconds kRecordDelay{20};
  // ... or until this many have come.
  static constexpr size_t kRecordBatch = 2000;

  // `seed` seeds the jitter (tests pass a fixed one).
  Engine(Settings settings, const Clock& clock, Transport& transport, uint64_t seed);

  // Applies changed settings (after SIGHUP).
  void SetSettings(const Settings& settings);
  const Settings& settings() const { return settings_; }

  // --- claim ---------------------------------------------------------------
  // At start: rows waiting for a retry may be due up to `ms` from now (nullopt:
  // none wait), so that older rows of a claimed key are looked for until then.
  void NoteWaiting(std::optional<int64_t> ms);
  // Refreshes the destinations (as stored now) and decides what to claim:
  // which destinations, how many rows each (shares), how many bytes.
  ClaimPlan PlanClaim(std::vector<DestinationConfig> destinations);
  // Takes the claimed rows: per key only the newest is sent (older ones are
  // superseded), a key in flight waits, shares are kept, rows that cannot be
  // sent fail; the rest are queued in jobs. Returns what the claim
  // transaction writes for the rows not taken.
  ClaimDecisions Admit(Claimed claimed);

  // --- send ----------------------------------------------------------------
  // Starts queued jobs within the concurrency limit, pauses and rate limits.
  void StartRequests();
  // Waits up to timeout_ms for HTTP activity and turns responses into outcomes.
  void Pump(int timeout_ms);

  // --- record --------------------------------------------------------------
  // Whether outcomes should be written now (`claiming`: a claim transaction
  // is about to start anyway).
  bool RecordDue(bool claiming) const;
  // Hands out the outcomes and destination changes collected so far.
  Records TakeRecords();
  // The records were committed: releases their keys, notes when their rows
  // are due again.
  void Recorded();

  // --- timing --------------------------------------------------------------
  // Whether a retry or a paused destination became due since the last call.
  bool TakeDue();
  // The last claim filled a limit with rows it took (or freed a share):
  // more rows are probably due now.
  bool MoreDue() const { return more_due_ || share_freed_; }
  // Whether the engine can take more rows (rows and bytes held below limits).
  bool HasRoom() const;
  // When the engine next has something to do by itself (a retry, a rate
  // limit, outcomes to record), if ever.
  std::optional<TimePoint> NextWake() const;

  // Forgets everything (the extension was dropped, or an error): requests in
  // progress are abandoned, and their rows stay 'sending' in the outbox until
  // the worker resets them.
  void Reset();

  size_t InFlight() const { return in_flight_.size(); }
  size_t Queued() const { return queued_.size(); }
  size_t HeldRows() const { return held_rows_; }
  int64_t HeldBytes() const { return held_bytes_; }
  size_t OutcomeCount() const { return outcome_count_; }
  bool HasOutcomes() const { return outcome_count_ > 0 || !destination_changes_.empty(); }
  // Bytes of payload one claim may read, and the engine may hold before it
  // stops claiming: twice the largest request.
  int64_t ClaimByteBudget() const { return 2 * settings_.max_request_bytes; }

 private:
  // A row the engine holds.
  struct Row {
    int64_t id = 0;
    std::string model;
    std::string event_key;
    std::string payload;
    int attempts = 0;  // as stored
    int sent = 0;      // requests that carried it since it was claimed (413 splits)
    std::string key;   // KeyOf(model, event_key)
  };
  struct Job {
    uint64_t tag = 0;
    std::string destination;
    int key_version = 0;
    RequestKind kind = RequestKind::kPost;
    bool batch = false;
    int64_t body_bytes = 0;
    std::vector<Row> rows;
  };
  // A destination's settings and the engine's memory about it.
  struct Destination {
    DestinationConfig config;
    int key_version = 0;
    double max_rps = 0;  // 0: unlimited
    TokenBucket bucket;
    TimePoint paused_until{};  // a 429 asked to wait until then
    TimePoint probe_at{};      // unauthorized: next try with the same key
    int probe_key_version = 0;  // the key version that was refused
    bool seen = false;          // present in the last load
  };
  using OutcomeValues = std::tuple<OutboxStatus, int, Details, std::optional<int>,
                                   std::optional<std::string>, std::optional<int64_t>,
                                   std::optional<int>>;

  static std::string KeyOf(const std::string& model, const std::string& event_key);
  // Rows of destination `name` queued or in flight.
  long RowsHeldBy(const std::string& name) const;
  void ProcessResponse(HttpResponse& response);
  // Adds an outcome for each row (one group lookup per distinct attempts_inc).
  void AddOutcomes(const std::vector<Row>& rows, OutboxStatus status, Details details,
                   std::optional<int> http_status, const std::optional<std::string>& error,
                   std::optional<int64_t> delay_ms, std::optional<int> unless_key_version,
                   int extra_attempt);
  void AddOutcome(const Row& row, OutboxStatus status, Details details,
                  std::optional<int> http_status, const std::optional<std::string>& error,
                  std::optional<int64_t> delay_ms, std::optional<int> unless_key_version,
                  int attempts_inc);
  void RetryOutcomes(const Job& job, const std::string& message,
                     std::optional<int64_t> retry_after_ms, int http_status);
  void NoteDestination(const Job& job, DestinationState state,
                       const std::optional<std::string>& error);
  // Puts a job's rows back to pending without sending them.
  void Requeue(const Job& job, int64_t delay_ms, std::optional<int> unless_key_version = {});
  // Forgets the rows of a job whose outcomes are decided.
  void Release(const std::vector<Row>& rows);
  // Splits a job answered 413 into halves sent next.
  void Bisect(Job job);
  void NoteDueAt(TimePoint at);

  Settings settings_;
  const Clock& clock_;
  Transport& transport_;
  std::mt19937_64 rng_;

  std::unordered_map<std::string, Destination> destinations_;
  std::unordered_map<std::string, long> shares_;  // rows each shared destination may still take
  std::list<Job> queued_;
  std::unordered_map<uint64_t, Job> in_flight_;
  std::unordered_set<std::string> keys_in_flight_;
  size_t held_rows_ = 0;
  int64_t held_bytes_ = 0;
  uint64_t next_tag_ = 1;

  // Outcomes collected since the last TakeRecords, grouped by value.
  std::map<OutcomeValues, size_t> group_index_;
  std::vector<OutcomeGroup> groups_;
  size_t outcome_count_ = 0;
  TimePoint first_outcome_{};
  std::vector<std::string> keys_to_release_;
  std::unordered_map<std::string, DestinationChange> destination_changes_;
  // Handed out by TakeRecords, applied by Recorded.
  std::vector<std::string> releasing_;
  std::vector<int64_t> recorded_delays_;

  bool more_due_ = false;
  bool keys_were_busy_ = false;
  // A request of a destination with a share ended: its share has room again.
  bool share_freed_ = false;
  // Until then rows set back to pending may still wait for a retry.
  TimePoint waiting_until_{};
  // A rate-limited job can start then.
  std::optional<TimePoint> rate_ready_;
  // Times at which retries or paused destinations become due (earliest first).
  std::priority_queue<TimePoint, std::vector<TimePoint>, std::greater<TimePoint>> due_times_;
};

}  // namespace hyperline::delivery
