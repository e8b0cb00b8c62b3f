// worker_common.cpp: helpers shared by the background processes (see
// worker_common.hpp).
#include "pg/worker_common.hpp"

#include <chrono>

#include "pg/guard.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/wait_event.h"
}

namespace hyperline::pg {

namespace {
constexpr int kSameErrorQuietMs = 60000;  // the same warning at most once a minute
}  // namespace

// Reports what the worker does in pg_stat_activity (only when it changes).
void ReportActivity(const char* what) {
  static const char* last = nullptr;
  if (last == what) return;
  last = what;
  pgstat_report_activity(STATE_RUNNING, what);
}

// Sleeps on the latch (woken early by SetLatch or postmaster death).
void WaitOnLatch(long timeout_ms) {
  PgGuard([&] {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                    std::max(0L, timeout_ms), PG_WAIT_EXTENSION);
  });
}

// Applies a SIGHUP: re-reads postgresql.conf.
bool ReloadIfRequested() {
  if (!ConfigReloadPending) return false;
  ConfigReloadPending = false;
  PgGuard([] { ProcessConfigFile(PGC_SIGHUP); });
  return true;
}

// Rolls back whatever a failed step left open.
void AbortAfterError() {
  PgGuard([] {
    HOLD_INTERRUPTS();
    AbortCurrentTransaction();
    RESUME_INTERRUPTS();
  });
}

// Logs a warning, but the same one at most once a minute (no log spam when,
// say, the outbox is unreadable for a while).
void WarnThrottled(const std::string& message) {
  static std::string last;
  static auto last_at = std::chrono::steady_clock::time_point{};
  auto now = std::chrono::steady_clock::now();
  if (message == last && now - last_at < std::chrono::milliseconds(kSameErrorQuietMs)) return;
  last = message;
  last_at = now;
  const char* text = message.c_str();
  PgGuard([&] { ereport(WARNING, (errmsg("pg_hyperline delivery: %s", text))); });
}

// Settings both database workers run with.
void ApplyWorkerSettings() {
  // Why asynchronous commit: losing the last few ms of status updates in a
  // crash only means those events are sent again, which is idempotent.
  SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
  SetConfigOption("application_name", "pg_hyperline", PGC_SUSET, PGC_S_OVERRIDE);
  // Why: right after a bulk insert the outbox's statistics are stale and the
  // planner may sort every pending row to claim a few thousand. The workers'
  // statements are all index lookups by design.
  SetConfigOption("enable_bitmapscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
  SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
  SetConfigOption("enable_sort", "off", PGC_SUSET, PGC_S_OVERRIDE);
  // Why no JIT: the workers' statements are small index-driven updates that JIT
  // cannot speed up, yet over a large outbox their estimated cost passes
  // jit_above_cost, and loading LLVM alone added 55 MB to the worker.
  SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
  pgstat_report_appname("pg_hyperline");
}

}  // namespace hyperline::pg
