// sync_worker.cpp: running query models on their schedule.
//
// Vocabulary: the *scheduler* (TickSyncScheduler, called by the delivery
// worker's loop) looks once a second for query models whose next_run_at has
// come, and starts *sync workers* — dynamic background workers (entry
// hyperline_sync_main, type "pg_hyperline sync") — when models are due and
// fewer than hyperline.max_sync_workers run in this database. A sync worker
// claims due models one after another (hyperline._claim_due_run: FOR NO KEY
// UPDATE SKIP LOCKED, so two workers never take the same model, and a model
// that run_model is running is left alone), moves the model's next_run_at on
// and records the run as running, commits, runs the model in a transaction of
// its own (query_model.hpp) and records how it ended. It exits when no model
// is due.
//
// Why separate processes: a run may take minutes; delivery must go on
// meanwhile, and runs of different models must not wait for each other
// beyond the workers available. Why next_run_at in hyperline._models: the
// schedule survives restarts, and a run due while the server was down starts
// as soon as it is up.
#include "pg/sync_worker.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "pg/query_model.hpp"

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

#include "pg/gate.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/worker_common.hpp"

namespace hyperline::pg {
namespace {

using std::chrono::milliseconds;
using SyncClock = std::chrono::steady_clock;

constexpr int kLookIntervalMs = 1000;  // the scheduler looks at least this often
constexpr int kErrorPauseMs = 10000;   // after a failed look
constexpr int kMaxWorkers = 64;        // hyperline.max_sync_workers' upper bound

// ---------------------------------------------------------------------------
// Transactions of the scheduler and the sync workers
// ---------------------------------------------------------------------------

// Runs `fn` (Postgres code) in a transaction of its own with a snapshot and
// the search_path pinned to pg_catalog, pg_temp (under PgGuard).
template <typename Fn>
void InTransaction(Fn&& fn) {
  PgGuard([&] {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    int nest = NewGUCNestLevel();
    PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
    fn();
    SPI_finish();
    AtEOXact_GUC(true, nest);
    PopActiveSnapshot();
    CommitTransactionCommand();
  });
}

// Whether this database has pg_hyperline at this library's version (Postgres
// code, inside InTransaction). Why: with an older schema installed the
// library touches nothing until ALTER EXTENSION ... UPDATE.
bool ExtensionReady() {
  int rc = SPI_execute(
      "SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) "
      "'pg_hyperline' AND e.extversion OPERATOR(pg_catalog.=) '" HYPERLINE_VERSION "'",
      true, 1);
  return rc == SPI_OK_SELECT && SPI_processed == 1;
}

// ---------------------------------------------------------------------------
// The scheduler (in the delivery worker)
// ---------------------------------------------------------------------------
struct Scheduler {
  BackgroundWorkerHandle* handles[kMaxWorkers];
  int running = 0;
  SyncClock::time_point next_look{};
  bool said_no_slot = false;
};
Scheduler scheduler;

// Forgets the workers that have stopped.
void Reap() {
  int kept = 0;
  for (int i = 0; i < scheduler.running; ++i) {
    pid_t pid;
    BgwHandleStatus status = GetBackgroundWorkerPid(scheduler.handles[i], &pid);
    if (status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED) {
      pfree(scheduler.handles[i]);
    } else {
      scheduler.handles[kept++] = scheduler.handles[i];
    }
  }
  scheduler.running = kept;
}

// Starts one sync worker for this database; false if no slot is free.
bool StartSyncWorker() {
  BackgroundWorker w = {};
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;
  snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_hyperline");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "hyperline_sync_main");
  snprintf(w.bgw_name, BGW_MAXLEN, "pg_hyperline sync for database %u", MyDatabaseId);
  snprintf(w.bgw_type, BGW_MAXLEN, "pg_hyperline sync");
  w.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
  w.bgw_notify_pid = MyProcPid;
  BackgroundWorkerHandle* handle = nullptr;
  MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
  bool started = RegisterDynamicBackgroundWorker(&w, &handle);
  MemoryContextSwitchTo(old);
  if (!started) return false;
  scheduler.handles[scheduler.running++] = handle;
  return true;
}

milliseconds UntilNextLook() {
  auto left = scheduler.next_look - SyncClock::now();
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(left));
}

}  // namespace

milliseconds TickSyncScheduler() {
  if (SyncClock::now() < scheduler.next_look) return UntilNextLook();
  scheduler.next_look = SyncClock::now() + milliseconds(kLookIntervalMs);
  int max_workers = std::min(guc_max_sync_workers, kMaxWorkers);
  int64 due = 0;
  long next_in_ms = -1;  // until the next model falls due, when within a look
  try {
    PgGuard([] { Reap(); });
    if (max_workers <= 0 || IsTransactionState()) return UntilNextLook();
    InTransaction([&] {
      if (!ExtensionReady()) return;
      int rc = SPI_execute(
          "SELECT pg_catalog.count(*) FILTER (WHERE m.next_run_at OPERATOR(pg_catalog.<=) "
          "pg_catalog.now()), pg_catalog.min(m.next_run_at) "
          "FROM hyperline._models m WHERE m.kind OPERATOR(pg_catalog.=) 'query' AND m.enabled "
          "AND m.next_run_at IS NOT NULL",
          true, 1);
      if (rc != SPI_OK_SELECT || SPI_processed != 1) return;
      bool isnull = false;
      due = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
      Datum next = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
      if (!isnull) {
        TimestampTz at = DatumGetTimestampTz(next);
        TimestampTz now = GetCurrentTimestamp();
        if (at > now) next_in_ms = static_cast<long>((at - now) / 1000) + 1;
      }
    });
    // Workers loop until nothing is due: start more only while models wait.
    int wanted = static_cast<int>(std::min<int64>(due, max_workers)) - scheduler.running;
    for (int i = 0; i < wanted; ++i) {
      bool started = false;
      PgGuard([&] { started = StartSyncWorker(); });
      if (!started) {
        if (!scheduler.said_no_slot) {
          PgGuard([] {
            ereport(LOG, (errmsg("pg_hyperline: could not start a sync worker for scheduled "
                                 "query model runs; they wait for a free worker slot"),
                          errhint("Raise max_worker_processes.")));
          });
          scheduler.said_no_slot = true;
        }
        break;
      }
      scheduler.said_no_slot = false;
    }
  } catch (const PgException& e) {
    AbortAfterError();
    WarnThrottled(std::string("scheduling query models: ") + e.what());
    scheduler.next_look = SyncClock::now() + milliseconds(kErrorPauseMs);
    return UntilNextLook();
  }
  if (next_in_ms >= 0 && next_in_ms < kLookIntervalMs) {
    scheduler.next_look =
        std::min(scheduler.next_look, SyncClock::now() + milliseconds(next_in_ms));
  }
  return UntilNextLook();
}

namespace {

// ---------------------------------------------------------------------------
// The sync worker
// ---------------------------------------------------------------------------

// Claims the query model due first (see the file comment); false when none.
bool ClaimDueRun(std::string& model, int64& run_id) {
  bool claimed = false;
  char* name = nullptr;
  InTransaction([&] {
    if (!ExtensionReady()) return;
    // Why not wait for the WAL flush: a claim lost in a crash is claimed
    // again (the run it announced was rolled back with everything else).
    (void)set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_LOCAL, true, 0, false);
    int rc = SPI_execute("SELECT c.model, c.run_id FROM hyperline._claim_due_run() c", false, 0);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) return;
    bool isnull = false;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    if (isnull) return;
    name = MemoryContextStrdup(TopMemoryContext, TextDatumGetCString(d));
    run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
    claimed = true;
  });
  if (claimed) {
    model = name;
    PgGuard([&] { pfree(name); });
  }
  return claimed;
}

// Records the end of run `run_id` (Postgres code, inside InTransaction).
void FinishRun(int64 run_id, const RunCounts* counts, const char* error) {
  Oid types[7] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID};
  Datum values[7] = {Int64GetDatum(run_id), 0, 0, 0, 0, 0, 0};
  char nulls[8] = "       ";
  if (counts != nullptr) {
    values[1] = Int64GetDatum(counts->rows);
    values[2] = Int64GetDatum(counts->added);
    values[3] = Int64GetDatum(counts->updated);
    values[4] = Int64GetDatum(counts->removed);
    values[5] = Int64GetDatum(counts->unchanged);
  } else {
    for (int i = 1; i <= 5; ++i) nulls[i] = 'n';
  }
  if (error != nullptr) {
    values[6] = CStringGetTextDatum(error);
  } else {
    nulls[6] = 'n';
  }
  int rc = SPI_execute_with_args("SELECT hyperline._finish_run($1, $2, $3, $4, $5, $6, $7)", 7,
                                 types, values, nulls, false, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: recording the run failed (%d)", rc);
}

// Runs one claimed model in a transaction of its own; a failure rolls it back
// and is recorded in the run's row.
void RunClaimed(const std::string& model, int64 run_id) {
  std::string activity = "running query model " + model;
  const char* what = activity.c_str();
  PgGuard([&] { pgstat_report_activity(STATE_RUNNING, what); });
  std::string error;
  try {
    RunCounts counts;
    PgGuard([] {
      SetCurrentStatementStartTimestamp();
      StartTransactionCommand();
      PushActiveSnapshot(GetTransactionSnapshot());
      // A run is the worker's one statement: statement_timeout (as set for
      // the server or the database) bounds it.
      if (StatementTimeout > 0) enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
    });
    int nest = 0;
    PgGuard([&] {
      nest = NewGUCNestLevel();
      PinSearchPath();
    });
    counts = RunQueryModel(model, run_id, true);
    PgGuard([&] {
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
      FinishRun(run_id, &counts, nullptr);
      SPI_finish();
      disable_timeout(STATEMENT_TIMEOUT, false);
      AtEOXact_GUC(true, nest);
      PopActiveSnapshot();
      CommitTransactionCommand();
    });
  } catch (const PgException& e) {
    error = e.what();
  } catch (const std::bad_alloc&) {
    error = "out of memory";
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (error.empty()) return;
  PgGuard([] { disable_timeout(STATEMENT_TIMEOUT, false); });
  AbortAfterError();
  const char* message = error.c_str();
  InTransaction([&] { FinishRun(run_id, nullptr, message); });
  const char* name = model.c_str();
  PgGuard([&] {
    ereport(LOG, (errmsg("pg_hyperline: run %lld of query model \"%s\" failed: %s",
                         static_cast<long long>(run_id), name, message)));
  });
}

// The sync worker's work: runs due models until none is due.
void RunDueModels() {
  InTransaction([] {
    if (!ExtensionReady()) return;
    (void)SPI_execute("SELECT hyperline._fail_interrupted_runs()", false, 0);
  });
  std::string model;
  int64 run_id = 0;
  while (ClaimDueRun(model, run_id)) {
    RunClaimed(model, run_id);
    PgGuard([] {
      CHECK_FOR_INTERRUPTS();
      pgstat_report_activity(STATE_IDLE, nullptr);
    });
  }
}

}  // namespace
}  // namespace hyperline::pg

// Sync worker: started by the scheduler for database `arg`; runs the query
// models that are due, then exits. Why SIGTERM = die: a run stops at once on
// shutdown or DROP DATABASE (its transaction rolls back; the next run redoes
// the whole diff). Why register before connecting: see DeliveryMain.
namespace hyperline::pg {
void SyncMain(Datum arg) {
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  if (!RegisterWorker(WorkerKind::kSync, DatumGetObjectId(arg))) proc_exit(0);
  BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
  // Not ApplyWorkerSettings: a run sets the model owner's search_path, which
  // an overriding one would silently ignore (InTransaction pins it instead).
  RunAsSessionUser();
  SetConfigOption("application_name", "pg_hyperline sync", PGC_SUSET, PGC_S_OVERRIDE);
  pgstat_report_appname("pg_hyperline sync");
  CppGuard([] { RunDueModels(); });
  proc_exit(0);
}
}  // namespace hyperline::pg

HYPERLINE_BGWORKER_MAIN(hyperline_sync_main, hyperline::pg::SyncMain)
