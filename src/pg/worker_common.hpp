// worker_common.hpp: what the background processes of pg_hyperline share
// (launcher.cpp, delivery_worker.cpp, upkeep_worker.cpp).
#pragma once

#include <string>

extern "C" {
#include "postgres.h"
}

namespace hyperline::pg {

// Reports what the process does in pg_stat_activity (only when it changes).
void ReportActivity(const char* what);

// Sleeps on the latch (woken early by SetLatch or postmaster death).
void WaitOnLatch(long timeout_ms);

// Applies a SIGHUP: re-reads postgresql.conf. Returns whether it did.
bool ReloadIfRequested();

// Rolls back whatever a failed step left open.
void AbortAfterError();

// Logs a warning, but the same one at most once a minute.
void WarnThrottled(const std::string& message);

// Makes the current user the worker's session user (the bootstrap superuser)
// whatever `role` the database's settings named, for good (PGC_S_OVERRIDE).
void RunAsSessionUser();

// Settings both database workers (delivery, upkeep) run with: among them a
// search_path pinned to pg_catalog, pg_temp, and RunAsSessionUser.
void ApplyWorkerSettings();

}  // namespace hyperline::pg
