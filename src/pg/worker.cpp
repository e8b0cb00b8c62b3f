// worker.cpp: the background worker processes of pg_hyperline.
//
// Two processes: the launcher (static worker registered by _PG_init, entry
// hyperline_worker_main) and the delivery worker (dynamic, entry
// hyperline_delivery_main). Why two: a background worker can connect to one
// database only once, and connecting to a database that does not exist is a
// FATAL error, which would make a static worker crash-loop. The launcher
// connects to the shared catalogs only, waits quietly until hyperline.database
// exists, then starts the delivery worker there and restarts it if it exits.
// The delivery worker waits quietly for CREATE EXTENSION, then runs the loop:
//   record outcomes → claim due rows → start requests → wait for answers,
// woken by the latch (a commit that wrote outbox rows) or every
// hyperline.poll_interval_ms.
// The delivery worker in turn starts a short-lived upkeep worker (dynamic,
// entry hyperline_upkeep_main) that purges delivered rows and vacuums the
// outbox, so that this runs beside the delivery instead of pausing it.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "pg/delivery.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/vacuum.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "utils/memutils.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void hyperline_worker_main(Datum arg);
PGDLLEXPORT void hyperline_delivery_main(Datum arg);
PGDLLEXPORT void hyperline_upkeep_main(Datum arg);
}

namespace hyperline::pg {
namespace {

using std::chrono::milliseconds;

constexpr int kRestartDelayMs = 5000;         // after the delivery worker exits
constexpr int kPurgeIntervalMs = 10000;       // how often delivered rows are purged ...
constexpr int kIdlePurgeIntervalMs = 300000;  // ... at most, when the last purge found none
constexpr int kRecordDelayMs = 20;            // outcomes wait at most this long
constexpr size_t kRecordBatch = 2000;         // ... or until this many have come
constexpr int kErrorPauseMs = 1000;           // after an error, before trying again
constexpr int kSameErrorQuietMs = 60000;      // the same warning at most once a minute

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
  if (message == last && now - last_at < milliseconds(kSameErrorQuietMs)) return;
  last = message;
  last_at = now;
  const char* text = message.c_str();
  PgGuard([&] { ereport(WARNING, (errmsg("pg_hyperline delivery: %s", text))); });
}

// What an upkeep run is asked to do (its bgw_main_arg).
constexpr uint32 kUpkeepPurge = 1;   // purge delivered rows past the retention
constexpr uint32 kUpkeepVacuum = 2;  // vacuum the outbox

// Vacuums hyperline.outbox in this process, the way a top-level VACUUM runs
// (it commits its own transactions). Why we do it: every event leaves dead row
// versions (status changes, then the purge), and autovacuum, waking every
// autovacuum_naptime, lags behind a busy outbox, which then grows without bound
// (docs/benchmarks.md, "outbox upkeep"). Why during a drain: the space of the
// versions the drain leaves is then reused by the drain itself.
void VacuumOutbox() {
  PgGuard([] {
    MemoryContext saved_portal = PortalContext;
    MemoryContext portal =
        AllocSetContextCreate(TopMemoryContext, "pg_hyperline vacuum", ALLOCSET_DEFAULT_SIZES);
    PortalContext = portal;
    PG_TRY();
    {
      StartTransactionCommand();
      VacuumStmt* stmt = makeNode(VacuumStmt);
      stmt->options = NIL;
      stmt->is_vacuumcmd = true;
      stmt->rels = list_make1(makeVacuumRelation(
          makeRangeVar(pstrdup("hyperline"), pstrdup("outbox"), -1), InvalidOid, NIL));
      ExecVacuum(make_parsestate(nullptr), stmt, true);
      CommitTransactionCommand();
    }
    PG_FINALLY();
    { PortalContext = saved_portal; }
    PG_END_TRY();
    MemoryContextDelete(portal);
  });
}

// How long until the next purge after one that deleted `purged` rows (-1: the
// run did not report). Why back off: finding nothing to purge still reads the
// outbox; with a long retention there is rarely anything, so look less often.
long PurgeInterval(int64_t purged) {
  if (purged != 0) return kPurgeIntervalMs;
  return std::clamp<long>(static_cast<long>(guc_delivered_retention_s) * 250L, kPurgeIntervalMs,
                          kIdlePurgeIntervalMs);
}

// The delivery worker's handle on its upkeep worker (at most one at a time).
class UpkeepRunner {
 public:
  // Whether an upkeep run is in progress.
  bool Running() {
    if (handle_ == nullptr) return false;
    pid_t pid;
    BgwHandleStatus status = BGWH_STOPPED;
    PgGuard([&] { status = GetBackgroundWorkerPid(handle_, &pid); });
    if (status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED) {
      PgGuard([&] { pfree(handle_); });
      handle_ = nullptr;
      finished_ = true;
      if ((what_ & kUpkeepVacuum) != 0) {
        auto end = SteadyClock::now();
        next_vacuum_ = end + (end - started_at_) * kVacuumRestFactor;
      }
    }
    return handle_ != nullptr;
  }

  // Once after a run that purged has stopped: the rows it purged (-1 if it
  // stopped without reporting).
  std::optional<int64_t> Finished() {
    (void)Running();
    if (!finished_) return std::nullopt;
    finished_ = false;
    int64_t purged = TakeUpkeepPurged();
    if ((what_ & kUpkeepPurge) == 0) return std::nullopt;
    return purged;
  }

  // Starts an upkeep run; false if no worker slot is free.
  bool Start(uint32 what) {
    if (SteadyClock::now() < no_slot_until_) return false;
    bool started = false;
    PgGuard([&] {
      (void)TakeUpkeepPurged();  // forget a report nobody took
      BackgroundWorker w = {};
      w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
      w.bgw_start_time = BgWorkerStart_RecoveryFinished;
      w.bgw_restart_time = BGW_NEVER_RESTART;
      snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_hyperline");
      snprintf(w.bgw_function_name, BGW_MAXLEN, "hyperline_upkeep_main");
      snprintf(w.bgw_name, BGW_MAXLEN, "pg_hyperline upkeep for database %s",
               MyBgworkerEntry->bgw_extra);
      snprintf(w.bgw_type, BGW_MAXLEN, "pg_hyperline upkeep");
      strlcpy(w.bgw_extra, MyBgworkerEntry->bgw_extra, BGW_EXTRALEN);
      w.bgw_main_arg = UInt32GetDatum(what);
      w.bgw_notify_pid = MyProcPid;  // our latch is set when it stops
      MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
      started = RegisterDynamicBackgroundWorker(&w, &handle_);
      MemoryContextSwitchTo(old);
      if (!started && !said_no_slot_) {
        ereport(LOG, (errmsg("pg_hyperline: could not start the upkeep worker; the delivery "
                             "worker purges and vacuums between sends instead"),
                      errhint("Raise max_worker_processes.")));
      }
    });
    said_no_slot_ = !started;
    // Without a slot, ask the postmaster again in a second, not at every turn.
    if (!started) no_slot_until_ = SteadyClock::now() + milliseconds(1000);
    if (started) {
      what_ = what;
      finished_ = false;
      started_at_ = SteadyClock::now();
    }
    return started;
  }

  // When the next vacuum may start. Why a rest after each: during a large drain
  // the dead versions pass the threshold again while the vacuum still runs, and
  // back-to-back vacuums of a large outbox would take a core from the delivery
  // (two cores in the benchmarks). Resting kVacuumRestFactor times as long as
  // the last run took keeps vacuuming to a fifth of the time, whatever the
  // outbox's size.
  SteadyClock::time_point NextVacuum() const { return next_vacuum_; }

 private:
  static constexpr int kVacuumRestFactor = 4;
  BackgroundWorkerHandle* handle_ = nullptr;
  SteadyClock::time_point started_at_{};
  SteadyClock::time_point next_vacuum_{};
  SteadyClock::time_point no_slot_until_{};
  uint32 what_ = 0;
  bool finished_ = false;
  bool said_no_slot_ = false;
};

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

// One upkeep run: purge, then vacuum, as asked.
void RunUpkeep(uint32 what) {
  if (!TxnExtensionExists()) return;
  if ((what & kUpkeepPurge) != 0) {
    PgGuard([] { pgstat_report_activity(STATE_RUNNING, "purging delivered events"); });
    int64_t purged = TxnPurgeDelivered();
    ReportUpkeepPurged(purged);
  }
  if ((what & kUpkeepVacuum) != 0) {
    PgGuard([] { pgstat_report_activity(STATE_RUNNING, "vacuuming hyperline.outbox"); });
    VacuumOutbox();
  }
}

// The delivery loop; returns when SIGTERM asks to stop.
void RunDelivery() {
  Delivery d;
  bool ready = false;  // extension present and 'sending' rows reset
  bool wake_pending = true;
  auto now = SteadyClock::now();
  auto next_claim = now;
  auto next_purge = now + milliseconds(kPurgeIntervalMs);
  int64_t dead_since_vacuum = 0;  // events recorded or purged since the last vacuum
  UpkeepRunner upkeep;
  auto first_outcome = now;
  bool had_outcomes = false;

  while (!ShutdownRequestPending) {
    if (!PostmasterIsAlive()) proc_exit(1);
    if (ReloadIfRequested()) {
      d.OnSettingsChanged();
      wake_pending = true;
      // The retention may have changed: purge soon rather than after a backoff.
      next_purge = std::min(next_purge, SteadyClock::now() + milliseconds(1000));
    }
    if (MyLatch->is_set) {
      ResetLatch(MyLatch);
      wake_pending = true;
    }
    std::string error;
    try {
      if (!ready) {
        if (!TxnExtensionExists()) {
          ReportActivity("waiting for CREATE EXTENSION pg_hyperline");
          WaitOnLatch(guc_poll_interval_ms);
          continue;
        }
        d.TxnResetSending();
        ready = true;
        wake_pending = true;
      }
      d.Pump(0);
      now = SteadyClock::now();
      if (d.HasOutcomes() && !had_outcomes) {
        had_outcomes = true;
        first_outcome = now;
      }
      std::optional<SteadyClock::time_point> due = d.NextDue();
      if (due && *due <= now) {
        wake_pending = true;  // a retry (or a paused destination) is due
        d.ClearDue();
      }
      bool want_claim = guc_enabled && (wake_pending || now >= next_claim || d.MoreDue()) &&
                        d.HeldRows() < static_cast<size_t>(guc_claim_batch);
      bool record_now =
          d.HasOutcomes() && (want_claim || d.OutcomeCount() >= kRecordBatch || d.InFlight() == 0 ||
                              now - first_outcome >= milliseconds(kRecordDelayMs));
      if (record_now) {
        ReportActivity("recording results");
        dead_since_vacuum += static_cast<int64_t>(d.OutcomeCount());
        d.TxnRecord();
        had_outcomes = false;
      }
      if (want_claim) {
        ReportActivity("claiming events");
        wake_pending = false;
        if (d.TxnClaim() < 0) {  // the extension was dropped
          d.Reset();
          ready = false;
          continue;
        }
        next_claim = now + milliseconds(guc_poll_interval_ms);
      }
      milliseconds rate_wait = d.StartJobs();
      // Upkeep: purge delivered rows past the retention and vacuum the outbox,
      // in the upkeep worker beside the delivery (inline only when no worker
      // slot is free, and then only between sends).
      if (std::optional<int64_t> purged = upkeep.Finished()) {
        dead_since_vacuum += *purged;
        next_purge = SteadyClock::now() + milliseconds(PurgeInterval(*purged));
      }
      // Enough dead versions since the last vacuum to vacuum again.
      auto vacuum_wanted = [&] {
        return guc_vacuum_threshold > 0 && dead_since_vacuum >= guc_vacuum_threshold;
      };
      bool purge_due = now >= next_purge && guc_delivered_retention_s >= 0;
      bool vacuum_due = vacuum_wanted() && now >= upkeep.NextVacuum();
      if ((purge_due || vacuum_due) && !upkeep.Running()) {
        uint32 what = (purge_due ? kUpkeepPurge : 0) | (vacuum_due ? kUpkeepVacuum : 0);
        if (upkeep.Start(what)) {
          if (vacuum_due) dead_since_vacuum = 0;
          if (purge_due) next_purge = SteadyClock::time_point::max();  // until it reports
        } else if (d.InFlight() == 0) {
          if (purge_due) {
            ReportActivity("purging delivered events");
            int64_t purged = TxnPurgeDelivered();
            dead_since_vacuum += purged;
            next_purge = SteadyClock::now() + milliseconds(PurgeInterval(purged));
          }
          if (vacuum_wanted()) {
            ReportActivity("vacuuming hyperline.outbox");
            dead_since_vacuum = 0;
            VacuumOutbox();
          }
        }
      }

      // Wait for the next thing to do.
      now = SteadyClock::now();
      long wait_ms = std::chrono::duration_cast<milliseconds>(next_claim - now).count();
      if (std::optional<SteadyClock::time_point> next_due = d.NextDue()) {
        wait_ms = std::min<long>(
            wait_ms, std::chrono::duration_cast<milliseconds>(*next_due - now).count() + 1);
      }
      if (d.MoreDue() && d.HeldRows() < static_cast<size_t>(guc_claim_batch)) wait_ms = 0;
      if (rate_wait != milliseconds::max()) wait_ms = std::min<long>(wait_ms, rate_wait.count());
      if (guc_delivered_retention_s >= 0 && next_purge != SteadyClock::time_point::max()) {
        wait_ms = std::min<long>(
            wait_ms, std::chrono::duration_cast<milliseconds>(next_purge - now).count());
      }
      // (A running upkeep worker wakes us when it stops: bgw_notify_pid.)
      if (vacuum_wanted() && !upkeep.Running()) {
        wait_ms = std::min<long>(
            wait_ms, std::chrono::duration_cast<milliseconds>(upkeep.NextVacuum() - now).count());
      }
      if (d.HasOutcomes()) {
        long left =
            kRecordDelayMs - std::chrono::duration_cast<milliseconds>(now - first_outcome).count();
        wait_ms = std::min(wait_ms, left);
      }
      if (!guc_enabled) wait_ms = std::max<long>(wait_ms, guc_poll_interval_ms);
      wait_ms = std::max(0L, wait_ms);
      if (d.InFlight() > 0) {
        ReportActivity("sending events");
        // Why short slices: the latch cannot be polled together with libcurl's
        // sockets, so a commit's wake-up is noticed within a few ms.
        d.Pump(static_cast<int>(std::min(wait_ms, 5L)));
      } else if (wait_ms > 0) {
        if (!d.HasOutcomes() && d.Queued() == 0) {
          ReportActivity(guc_enabled ? "idle" : "disabled (hyperline.enabled = off)");
          // Going to sleep: flush statistics now rather than at the next commit.
          PgGuard([] { (void)pgstat_report_stat(true); });
        }
        WaitOnLatch(wait_ms);
      }
    } catch (const PgException& e) {
      error = e.what();
    } catch (const std::bad_alloc&) {
      error = "out of memory";
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) {
      // Start over from the database: rows left 'sending' are reset and resent
      // (at-least-once; Hyperline is idempotent on record.id).
      AbortAfterError();
      d.Reset();
      ready = false;
      had_outcomes = false;
      WarnThrottled(error);
      WaitOnLatch(kErrorPauseMs);
    }
  }
  // Stopping: keep what is already known, if the database lets us.
  try {
    if (ready && d.HasOutcomes()) d.TxnRecord();
  } catch (...) {
    AbortAfterError();
  }
}

// Withdraws the latch when the delivery worker exits.
void OnDeliveryExit(int, Datum) { WithdrawWorkerLatch(); }

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

// Delivery worker: connects to the database the launcher found and delivers.
void hyperline_delivery_main(Datum) {
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  char dbname[NAMEDATALEN];
  strlcpy(dbname, MyBgworkerEntry->bgw_extra, sizeof dbname);
  BackgroundWorkerInitializeConnection(dbname, nullptr, 0);
  ApplyWorkerSettings();
  PublishWorkerLatch();
  before_shmem_exit(OnDeliveryExit, 0);
  CppGuard([] { RunDelivery(); });
  proc_exit(0);
}

// Upkeep worker: started by the delivery worker, purges and/or vacuums once,
// then exits. Why SIGTERM = die: a VACUUM must stop at once on shutdown.
void hyperline_upkeep_main(Datum arg) {
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  uint32 what = DatumGetUInt32(arg);
  char dbname[NAMEDATALEN];
  strlcpy(dbname, MyBgworkerEntry->bgw_extra, sizeof dbname);
  BackgroundWorkerInitializeConnection(dbname, nullptr, 0);
  ApplyWorkerSettings();
  CppGuard([&] { RunUpkeep(what); });
  proc_exit(0);
}
