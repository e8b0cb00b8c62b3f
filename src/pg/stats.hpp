// stats.hpp: the counters behind hyperline.stats, kept in shared memory, and
// the last alert statuses of each database (health.cpp).
//
// Vocabulary:
//   entry   — one row of hyperline.stats: the counters of one destination or
//             model of one database (plus one entry per database for its
//             stats_reset time and its last alert statuses). Entries live in a
//             shared hash table of hyperline.max_stats_entries, made when a
//             name is first counted and removed by hyperline.reset_stats().
//   window  — the latency percentiles are over the events delivered in the
//             last few minutes: a log-scale histogram per minute, for the
//             current minute and the four before; failed events are counted
//             per minute for the last hour (src/core/stats_window.hpp).
//   publish — who adds to the counters: the delivery worker, after each turn
//             (what the engine saw, stats_publish.hpp), and every backend that
//             wrote events (trigger path, backfill, query runs), when its
//             transaction commits (events_enqueued; events that failed to
//             render also count as failed).
//
// Counters survive the exit of any one process, the delivery worker's
// included; a server restart, or the crash restart that follows the SIGKILL
// of any server process, starts them again from zero (stats_reset then says
// when).
#pragma once

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
}

namespace hyperline::pg::stats {

// Shared memory: called from shmem.cpp's request and startup hooks (the
// startup part with AddinShmemInitLock held).
void RequestShmem();
void StartupShmem();

// Transaction callbacks behind events_enqueued (from shmem.cpp's
// InstallXactCallbacks).
void InstallCallbacks();

// Backend: one event of `model` for `destination` (text datums) was written
// into hyperline.outbox by the current subtransaction; `failed`: it failed to
// render. Counted when the transaction commits, dropped if the subtransaction
// aborts. Postgres-only.
void NoteEventWritten(Datum model, Datum destination, bool failed);

// The last alert status sent for each health check of this database.
constexpr int kMaxAlertChecks = 8;
constexpr int kAlertNameLen = 32;
struct AlertStatus {
  char check_name[kAlertNameLen];
  char status[16];  // ok, warning, critical
};

// Reads them (how many; 0 before the first alert of this database since the
// server started).
int LoadAlertStatuses(AlertStatus* out, int max);

// Replaces them (after the NOTIFY transaction committed).
void StoreAlertStatuses(const AlertStatus* statuses, int n);

// Whether counting lost something since the last call because the table was
// full (the delivery worker logs it).
bool TakeOverflow();

// Removes the entries of databases that no longer exist (DROP DATABASE), so
// their room is used again. Needs a transaction (reads pg_database); the
// delivery workers call it with their health checks.
void ForgetDroppedDatabases();

}  // namespace hyperline::pg::stats
