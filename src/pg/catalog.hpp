// catalog.hpp: the names of pg_hyperline's catalog — schemas, tables,
// columns, and the SQL spelling of the statuses — for C++ code that reads or
// writes them (compare TimescaleDB's catalog.h, pg_cron's job_metadata.c).
// The extension is not relocatable, so every name here is fixed.
//
// Pure C++ (no Postgres header); like every header that brings in src/core,
// include it before the Postgres headers. The worker's SQL statements are in
// outbox_store.cpp, written with these names.
#pragma once

#include <optional>
#include <string_view>

#include "core/delivery/types.hpp"

namespace hyperline::pg::catalog {

inline constexpr const char* kExtension = "pg_hyperline";  // pg_extension.extname
inline constexpr const char* kSchema = "hyperline";          // public objects
inline constexpr const char* kPrivateSchema = "_hyperline";  // keys (superusers only)

// Tables (in kSchema unless said otherwise).
inline constexpr const char* kOutbox = "outbox";
inline constexpr const char* kOutboxIdSeq = "outbox_id_seq";
inline constexpr const char* kDestinations = "_destinations";
inline constexpr const char* kModels = "_models";
inline constexpr const char* kApiKeys = "api_keys";  // in kPrivateSchema
inline constexpr const char* kRequests = "_requests";  // the request log (0.2.0)
inline constexpr const char* kSyncRuns = "_sync_runs";  // query model runs (0.2.0)

// Columns of hyperline.outbox that the worker reads or writes (the 0.1.0
// layout; a later column is used only after checking that it exists).
namespace outbox {
inline constexpr const char* kId = "id";
inline constexpr const char* kModel = "model";
inline constexpr const char* kEventKey = "event_key";
inline constexpr const char* kOperation = "operation";  // insert, update, delete
inline constexpr const char* kPayload = "payload";
inline constexpr const char* kStatus = "status";
inline constexpr const char* kAttempts = "attempts";
inline constexpr const char* kNextAttemptAt = "next_attempt_at";
inline constexpr const char* kCreatedAt = "created_at";
inline constexpr const char* kDeliveredAt = "delivered_at";
inline constexpr const char* kHttpStatus = "http_status";
inline constexpr const char* kLastError = "last_error";
inline constexpr const char* kDestination = "destination";
// 0.2.0: 'POST' or 'DELETE' (what a row sends); without it, operation
// 'delete' means DELETE.
inline constexpr const char* kMethod = "method";
// 0.2.0: when the row's transaction committed (set by its first claim).
inline constexpr const char* kCommittedAt = "committed_at";
}  // namespace outbox

using delivery::DestinationState;
using delivery::OutboxStatus;

// hyperline.outbox.status as stored.
constexpr const char* SqlText(OutboxStatus status) {
  switch (status) {
    case OutboxStatus::kPending:
      return "pending";
    case OutboxStatus::kSending:
      return "sending";
    case OutboxStatus::kDelivered:
      return "delivered";
    case OutboxStatus::kFailed:
      return "failed";
    case OutboxStatus::kSuperseded:
      return "superseded";
  }
  return "pending";
}

// The status a stored text names, if any.
inline std::optional<OutboxStatus> OutboxStatusFromSql(std::string_view text) {
  for (OutboxStatus s : {OutboxStatus::kPending, OutboxStatus::kSending, OutboxStatus::kDelivered,
                         OutboxStatus::kFailed, OutboxStatus::kSuperseded}) {
    if (text == SqlText(s)) return s;
  }
  return std::nullopt;
}

// hyperline._destinations.state as stored.
constexpr const char* SqlText(DestinationState state) {
  return state == DestinationState::kUnauthorized ? "unauthorized" : "active";
}

// The state a stored text names, if any.
inline std::optional<DestinationState> DestinationStateFromSql(std::string_view text) {
  if (text == "active") return DestinationState::kActive;
  if (text == "unauthorized") return DestinationState::kUnauthorized;
  return std::nullopt;
}

}  // namespace hyperline::pg::catalog
