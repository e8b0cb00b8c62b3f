// worker_common.cpp: helpers shared by the background processes (see
// worker_common.hpp).
// (Headers that include src/core come before the Postgres ones.)
#include "pg/delivery_settings.hpp"
#include "pg/outbox_store.hpp"
#include "pg/worker_common.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "pg/guard.hpp"
#include "pg/guc.hpp"

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
  static char last[256];
  if (strncmp(last, what, sizeof last - 1) == 0) return;
  strlcpy(last, what, sizeof last);
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
void RunAsSessionUser() {
  // Why: a database owner may ALTER DATABASE ... SET role = 'any_role' (Postgres
  // checks the role only when a session applies it, and the workers' session
  // user, the bootstrap superuser, may become anyone), which made every worker
  // of that database run as that role, failing on permission errors in a loop.
  // PGC_S_OVERRIDE: no later SET changes it.
  SetConfigOption("role", "none", PGC_SUSET, PGC_S_OVERRIDE);
}

void ApplyWorkerSettings() {
  RunAsSessionUser();
  // Why: the workers run as the bootstrap superuser, and the database's or
  // role's settings (ALTER DATABASE/ROLE ... SET search_path, which a database
  // owner may change) were applied at connection. With pg_catalog first and
  // nothing writable by others in the path, no function or operator of
  // another role can ever be resolved, on top of the statements' own
  // qualified names (outbox_store.cpp). PGC_S_OVERRIDE: nothing later in this
  // process (a function's SET clause included) can change it.
  SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
  // Why asynchronous commit: losing the last few ms of status updates in a
  // crash only means those events are sent again, which is idempotent.
  SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
  SetConfigOption("application_name", "pg_hyperline", PGC_SUSET, PGC_S_OVERRIDE);
  // (Planner settings for the claim and record statements are set per
  // transaction where they are needed: outbox_store.cpp, IndexLookupsOnly.)
  // Why no JIT: the workers' statements are small index-driven updates that JIT
  // cannot speed up, yet over a large outbox their estimated cost passes
  // jit_above_cost, and loading LLVM makes the worker much larger
  // (docs/benchmarks.md, "Memory").
  SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
  pgstat_report_appname("pg_hyperline");
}

// The delivery settings from the hyperline.* GUCs.
delivery::Settings DeliverySettings() {
  delivery::Settings s;
  s.max_attempts = guc_max_attempts;
  s.retry_base_ms = guc_retry_base_ms;
  s.retry_max_ms = guc_retry_max_ms;
  s.max_concurrent_requests = std::max(1, guc_max_concurrent_requests);
  s.claim_batch = std::max(1, guc_claim_batch);
  s.max_request_bytes = guc_max_request_bytes;
  s.allow_http = guc_allow_http;
  s.user_agent = std::string("pg_hyperline/") + store::LibraryVersion();
  return s;
}

}  // namespace hyperline::pg
