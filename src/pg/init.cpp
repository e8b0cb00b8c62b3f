// init.cpp: library entry point: settings, shared memory, hooks, the launcher.
#include "pg/extension_guard.hpp"
#include "pg/guc.hpp"
#include "pg/model.hpp"
#include "pg/outbox.hpp"
// After model.hpp: core headers must come before any Postgres header.
#include "pg/db_lifecycle.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

PG_MODULE_MAGIC;
void _PG_init(void);  // NOLINT(bugprone-reserved-identifier): the name Postgres calls
}

namespace hyperline::pg {
namespace {

// Seconds after which the postmaster restarts a launcher that exited with a
// non-zero code (an error, or pg_terminate_backend).
constexpr int kLauncherRestartS = 5;

// Registers the launcher (src/pg/launcher.cpp, hyperline_worker_main; the
// entry keeps the 0.1.0 name).
void RegisterLauncher() {
  BackgroundWorker worker = {};
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = kLauncherRestartS;
  snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_hyperline");
  snprintf(worker.bgw_function_name, BGW_MAXLEN, "hyperline_worker_main");
  snprintf(worker.bgw_name, BGW_MAXLEN, "pg_hyperline launcher");
  snprintf(worker.bgw_type, BGW_MAXLEN, "pg_hyperline launcher");
  RegisterBackgroundWorker(&worker);
}

}  // namespace
}  // namespace hyperline::pg

// Why refuse without preloading: the worker and the shared latch can only be set
// up by the postmaster, and a model whose events are never sent loses nothing
// but silently does nothing — worse than a clear error.
void _PG_init(void) {
  if (!process_shared_preload_libraries_in_progress) {
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("pg_hyperline must be loaded via shared_preload_libraries"),
             errhint("Add pg_hyperline to shared_preload_libraries in postgresql.conf and restart "
                     "the server.")));
  }
  hyperline::pg::DefineSettings();
  hyperline::pg::InstallShmemHooks();
  hyperline::pg::InstallXactCallbacks();
  hyperline::pg::InstallModelCacheCallbacks();
  hyperline::pg::InstallOutboxCallbacks();
  hyperline::pg::InstallExtensionGuard();
  hyperline::pg::InstallDatabaseLifecycleHook();
  hyperline::pg::RegisterLauncher();
}
