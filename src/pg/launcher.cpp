// launcher.cpp: the launcher, the static background worker registered by
// _PG_init (entry hyperline_worker_main).
//
// Why a launcher: a background worker can connect to one database only once,
// and connecting to a database that does not exist is a FATAL error, which
// would make a static worker crash-loop. The launcher connects to the shared
// catalogs only, waits quietly until hyperline.database exists, then starts the
// delivery worker there (delivery_worker.cpp) and restarts it if it exits.
#include <cstring>

#include "pg/guc.hpp"

extern "C" {
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void hyperline_worker_main(Datum arg);
}

namespace hyperline::pg {
namespace {

constexpr int kRestartDelayMs = 5000;  // after the delivery worker exits

// Registers the delivery worker for `dbname`; returns its handle or nullptr.
BackgroundWorkerHandle* StartDeliveryWorker(const char* dbname) {
  BackgroundWorker w = {};
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;  // the launcher restarts it
  snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_hyperline");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "hyperline_delivery_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "pg_hyperline delivery worker for database %s", dbname);
  snprintf(w.bgw_type, BGW_MAXLEN, "pg_hyperline delivery worker");
  strlcpy(w.bgw_extra, dbname, BGW_EXTRALEN);
  w.bgw_notify_pid = MyProcPid;
  BackgroundWorkerHandle* handle = nullptr;
  if (!RegisterDynamicBackgroundWorker(&w, &handle)) return nullptr;
  return handle;
}

// Whether a database of that name exists. Why a heap scan of pg_database: a
// process connected to the shared catalogs only cannot use their indexes (as
// the autovacuum launcher's get_database_list).
bool DatabaseExists(const char* dbname) {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  (void)GetTransactionSnapshot();
  Relation rel = table_open(DatabaseRelationId, AccessShareLock);
  TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
  bool exists = false;
  HeapTuple tuple;
  while (!exists && (tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
    auto* db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
    exists = strcmp(NameStr(db->datname), dbname) == 0;
  }
  table_endscan(scan);
  table_close(rel, AccessShareLock);
  CommitTransactionCommand();
  return exists;
}

}  // namespace
}  // namespace hyperline::pg

using namespace hyperline::pg;

// Launcher: waits for hyperline.database to exist, then keeps one delivery
// worker running in it. Plain C code: its errors are Postgres errors (the
// process exits and the postmaster restarts it after bgw_restart_time).
void hyperline_worker_main(Datum) {
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  // Shared catalogs only: this works whatever databases exist.
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
  char dbname[NAMEDATALEN];
  strlcpy(dbname, guc_database, sizeof dbname);

  BackgroundWorkerHandle* handle = nullptr;
  TimestampTz next_start = 0;
  bool said_waiting = false;
  bool said_no_slot = false;
  while (!ShutdownRequestPending) {
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);  // hyperline.database needs a restart anyway
    }
    if (handle != nullptr) {
      pid_t pid;
      if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED) {
        pfree(handle);
        handle = nullptr;
        next_start = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kRestartDelayMs);
      }
    }
    long timeout = guc_poll_interval_ms < 1000 ? guc_poll_interval_ms : 1000;
    if (handle == nullptr && GetCurrentTimestamp() >= next_start) {
      if (DatabaseExists(dbname)) {
        handle = StartDeliveryWorker(dbname);
        if (handle == nullptr) {
          if (!said_no_slot) {
            ereport(WARNING, (errmsg("pg_hyperline: could not start the delivery worker"),
                              errhint("Raise max_worker_processes.")));
            said_no_slot = true;
          }
          next_start = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kRestartDelayMs);
        } else {
          said_no_slot = false;
          pgstat_report_activity(STATE_RUNNING, "launcher: delivery worker running");
        }
        said_waiting = false;
      } else {
        if (!said_waiting) {
          ereport(LOG, (errmsg("pg_hyperline: waiting for database \"%s\" to be created", dbname)));
          pgstat_report_activity(STATE_RUNNING, "launcher: waiting for hyperline.database");
          said_waiting = true;
        }
      }
    }
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout,
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
  }
  if (handle != nullptr) TerminateBackgroundWorker(handle);
  proc_exit(0);
}
