// types.hpp: the vocabulary of the delivery engine (engine.hpp), shared with
// the Postgres glue that feeds it (src/pg/outbox_store.cpp).
//
// A row is one hyperline.outbox row; a key is (model, event_key), the unit of
// ordering; a destination is where rows go (base URL, key, batch size, rate
// limit). A claim takes due rows out of the outbox (status 'sending'); the
// engine admits them (or sets them back, supersedes or fails them), sends them
// in requests, and hands back outcomes: what to write for each row.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hyperline::delivery {

// Status of an outbox row (hyperline.outbox.status). The SQL spelling is in
// src/pg/catalog.hpp.
enum class OutboxStatus { kPending, kSending, kDelivered, kFailed, kSuperseded };

// State of a destination (hyperline._destinations.state).
enum class DestinationState { kActive, kUnauthorized };

// What a row asks of the destination: POST the event, or DELETE its record id.
enum class RequestKind { kPost, kDelete };

// The worker's settings (the hyperline.* GUCs that delivery reads).
struct Settings {
  int max_attempts = 12;             // requests that may carry a row before it fails
  int64_t retry_base_ms = 1000;      // first backoff delay
  int64_t retry_max_ms = 300000;     // longest backoff delay; also the unauthorized probe
  int max_concurrent_requests = 4;   // requests in flight at once
  int claim_batch = 5000;            // rows claimed per claim transaction
  int64_t max_request_bytes = 5 << 20;  // largest request body
  bool allow_http = false;           // plain http to non-loopback hosts, for every destination
  std::string user_agent = "pg_hyperline";
};

// A destination as stored (hyperline._destinations with its key).
struct DestinationConfig {
  std::string name;
  std::string base_url;
  std::optional<std::string> api_key;  // secret; nullopt: no key stored, nothing is sent
  int batch_size = 500;                // 1: POST /v1/events per event; more: /v1/events/batch
  std::optional<double> max_requests_per_second;  // nullopt: unlimited
  int timeout_ms = 10000;
  bool allow_http = false;  // a superuser allowed plain http to a remote host
  DestinationState state = DestinationState::kActive;
  std::optional<std::string> last_error;
  int key_version = 1;  // bumped by alter_destination(api_key => ...)
};

// One row returned by a claim (its status is already 'sending').
struct ClaimedRow {
  int64_t id = 0;
  std::string model;
  std::string event_key;
  RequestKind kind = RequestKind::kPost;
  std::optional<std::string> payload;  // nullopt: NULL in the outbox (rendering failed)
  // Not read: the claim's byte budget was spent before this row. It goes back
  // to pending and is claimed again once memory is free.
  bool deferred = false;
  std::string destination;
  int attempts = 0;
};

// One claim statement: due rows of these destinations, at most `limit` rows.
struct ClaimGroup {
  std::vector<std::string> destinations;
  int limit = 0;
};

// What to claim now. No groups: nothing (every destination is paused, full or
// waiting for a key, or the engine holds enough rows).
struct ClaimPlan {
  std::vector<ClaimGroup> groups;
  // Payload bytes one claim may read (the first row is read whatever its size).
  int64_t byte_budget = 0;
};

// The rows of one claim, in any order; `filled`: a group reached its limit or
// the byte budget was spent, so more rows are probably due.
struct Claimed {
  std::vector<ClaimedRow> rows;
  bool filled = false;
};

// Rows not taken by a claim: written with this status in the claim transaction.
struct StatusChange {
  OutboxStatus status = OutboxStatus::kPending;
  std::optional<std::string> error;  // nullopt: last_error unchanged
  std::vector<int64_t> ids;
};

// A taken row; older rows of its key that wait for a retry are superseded.
struct KeyRef {
  std::string model;
  std::string event_key;
  int64_t id = 0;
};

// What the claim transaction writes after the engine admitted the claimed rows.
struct ClaimDecisions {
  std::vector<StatusChange> changes;
  std::vector<KeyRef> supersede_older;  // empty unless retries may be waiting
  size_t taken = 0;
};

// Whether an outcome replaces the row's http_status and last_error (a request
// carried it) or keeps them (the row was put back without being sent).
enum class Details { kReplace, kKeep };

// Outcomes with the same values, written by one statement.
struct OutcomeGroup {
  OutboxStatus status = OutboxStatus::kPending;
  int attempts_inc = 0;
  Details details = Details::kReplace;
  std::optional<int> http_status;   // nullopt: NULL (no answer)
  std::optional<std::string> error;  // nullopt: NULL
  std::optional<int64_t> delay_ms;   // nullopt: keep next_attempt_at; else due now + delay
  // Set for rows held back by a refused key: due at once instead if the
  // destination's key_version is no longer this one (the key was changed).
  std::optional<int> unless_key_version;
  std::vector<int64_t> ids;
};

// A destination's new state and last_error, written only if its key_version
// is still `key_version` (a newer key makes the answer stale).
struct DestinationChange {
  std::string name;
  DestinationState state = DestinationState::kActive;
  std::optional<std::string> last_error;
  int key_version = 0;
};

// Everything the record transaction writes.
struct Records {
  std::vector<OutcomeGroup> outcomes;
  std::vector<DestinationChange> destinations;
};

}  // namespace hyperline::delivery
