// launcher.cpp: the launcher, the static background worker registered by
// _PG_init (entry hyperline_worker_main, bgw_type "pg_hyperline launcher").
//
// Why a launcher: a background worker can connect to one database only once,
// and connecting to a database that does not exist is a FATAL error, which
// would make a static worker crash-loop. The launcher connects to the shared
// catalogs only and keeps one delivery worker (delivery_worker.cpp) in every
// served database (db_lifecycle.hpp) where the extension exists:
//
//   every loop (woken by its latch, at least once a second):
//     read pg_database → take the notes (shmem.hpp) → look at the registry →
//     for each served database without a worker: start one, unless the
//     database is blocked, known to lack the extension, or its worker is
//     waiting out a restart delay.
//
// It cannot see another database's pg_extension, so a database whose state is
// unknown gets a worker that looks: it serves if the extension exists, else it
// leaves a note "absent" and exits; CREATE EXTENSION leaves a note "created"
// at commit. Databases found without the extension are looked at again every
// kReprobeMs (a safety net; the notes make it rarely needed).
//
// Delivery workers outlive the launcher: a restarted launcher finds them in the
// registry. Plain C style (no C++ objects): its errors are Postgres errors (the
// process exits and the postmaster restarts it after bgw_restart_time).
#include <cerrno>
#include <cstring>

#include "pg/db_lifecycle.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include <signal.h>

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
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace hyperline::pg {
namespace {

constexpr long kLoopMs = 1000;             // longest sleep between two looks
constexpr int kRestartDelayMs = 1000;      // before restarting a worker that exited
constexpr int kMaxRestartDelayMs = 60000;  // ... doubling while it keeps exiting quickly
constexpr int kStableMs = 10000;           // a worker that ran this long restarts after 1 s
constexpr int kReprobeMs = 600000;         // look again at databases without the extension
constexpr int kMaxProbes = 2;              // workers looking for the extension at once
constexpr int kNoSlotQuietMs = 2000;       // report a missing slot after this long

enum class Extension : uint8 { kUnknown, kAbsent, kPresent };

// What the launcher knows of one database (hash entry, key `oid`).
struct DbEntry {
  Oid oid;
  char name[NAMEDATALEN];
  bool seen;  // in the last read of pg_database
  ServedState served;
  Extension extension;
  TimestampTz absent_at;           // when a worker found no extension
  TimestampTz created_at;          // the last CREATE EXTENSION note
  bool quiet_exit;                 // the worker's exit is expected (an "absent" or "stopped" note)
  BackgroundWorkerHandle* handle;  // a worker we started, until it stops
  int pid;                         // the registered delivery worker (0: none)
  bool serving;
  bool had_worker;  // a worker existed at the end of the previous loop
  int last_pid;
  TimestampTz worker_since;
  TimestampTz next_start;
  int restart_delay_ms;
  bool stop_sent;  // the database is no longer served: SIGTERM sent
  bool no_slot;    // the last start found no free background worker slot
  TimestampTz no_slot_since;
};

// Who sent SIGTERM: the postmaster (shutdown) or someone else
// (pg_terminate_backend, kill).
volatile sig_atomic_t terminated_by = 0;

// SIGTERM: stop. Why SA_SIGINFO: a launcher terminated by anyone but the
// postmaster must exit with a non-zero code, so that the postmaster starts it
// again; at shutdown it exits quietly with 0.
void OnSigterm(int, siginfo_t* info, void*) {
  int save_errno = errno;
  if (info != nullptr && info->si_pid != PostmasterPid) terminated_by = info->si_pid;
  ShutdownRequestPending = true;
  SetLatch(MyLatch);
  errno = save_errno;
}

void InstallSigterm() {
  struct sigaction act = {};
  act.sa_sigaction = OnSigterm;
  sigemptyset(&act.sa_mask);
  act.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGTERM, &act, nullptr);
}

HTAB* CreateDatabaseTable() {
  HASHCTL ctl = {};
  ctl.keysize = sizeof(Oid);
  ctl.entrysize = sizeof(DbEntry);
  ctl.hcxt = TopMemoryContext;
  return hash_create("pg_hyperline launcher databases", 64, &ctl,
                     HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

// Reads pg_database into the table; returns whether hyperline.database (when
// set) exists. Why a heap scan: a process connected to the shared catalogs
// only cannot use their indexes (as the autovacuum launcher's get_database_list).
bool ReadDatabases(HTAB* dbs) {
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, dbs);
  while (auto* e = static_cast<DbEntry*>(hash_seq_search(&seq))) e->seen = false;
  bool named_exists = false;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  (void)GetTransactionSnapshot();
  Relation rel = table_open(DatabaseRelationId, AccessShareLock);
  TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
  HeapTuple tuple;
  while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
    auto* db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
    bool found = false;
    auto* e = static_cast<DbEntry*>(hash_search(dbs, &db->oid, HASH_ENTER, &found));
    if (!found) {
      memset(reinterpret_cast<char*>(e) + sizeof(Oid), 0, sizeof(DbEntry) - sizeof(Oid));
      e->extension = Extension::kUnknown;
      e->restart_delay_ms = kRestartDelayMs;
    }
    e->seen = true;
    strlcpy(e->name, NameStr(db->datname), sizeof e->name);
    e->served = DatabaseServedState(e->name, db->datistemplate, db->datallowconn,
                                    database_is_invalid_form(db));
    if (guc_database[0] != '\0' && strcmp(e->name, guc_database) == 0) named_exists = true;
  }
  table_endscan(scan);
  table_close(rel, AccessShareLock);
  CommitTransactionCommand();
  return named_exists;
}

// Applies the notes left since the last loop.
void TakeNotes(HTAB* dbs, LauncherNote* notes) {
  bool overflow = false;
  int n = TakeLauncherNotes(notes, kMaxLauncherNotes, &overflow);
  for (int i = 0; i < n; ++i) {
    auto* e = static_cast<DbEntry*>(hash_search(dbs, &notes[i].database, HASH_FIND, nullptr));
    if (e == nullptr) continue;  // a new database: its state is unknown anyway
    if (notes[i].kind == LauncherNoteKind::kStopped) {
      e->quiet_exit = true;
    } else if (notes[i].kind == LauncherNoteKind::kExtensionCreated) {
      e->created_at = notes[i].at;
      e->extension = Extension::kUnknown;
      e->next_start = 0;
      e->restart_delay_ms = kRestartDelayMs;
    } else if (notes[i].at > e->created_at) {
      // Why compare: a worker that looked before a CREATE EXTENSION committed
      // must not hide it (its start time precedes the "created" note).
      e->extension = Extension::kAbsent;
      e->absent_at = GetCurrentTimestamp();
      e->quiet_exit = true;
    }
  }
  if (overflow) {
    // Some notes were lost: look at every database again.
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, dbs);
    while (auto* e = static_cast<DbEntry*>(hash_seq_search(&seq))) {
      if (e->extension == Extension::kAbsent) e->extension = Extension::kUnknown;
      e->quiet_exit = true;  // an exit may have had its note lost
    }
  }
}

// Registers the delivery worker for `e`; returns its handle or nullptr when no
// background worker slot is free.
BackgroundWorkerHandle* StartDeliveryWorker(const DbEntry* e) {
  BackgroundWorker w = {};
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;  // the launcher restarts it
  snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_hyperline");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "hyperline_delivery_main");
  // (A database name of up to 63 bytes is cut to fit the 96 of bgw_name.)
  constexpr char kPrefix[] = "pg_hyperline delivery worker for database ";
  snprintf(w.bgw_name, BGW_MAXLEN, "%s%.*s", kPrefix, static_cast<int>(BGW_MAXLEN - sizeof kPrefix),
           e->name);
  snprintf(w.bgw_type, BGW_MAXLEN, "pg_hyperline delivery worker");
  w.bgw_main_arg = ObjectIdGetDatum(e->oid);
  strlcpy(w.bgw_extra, e->name, BGW_EXTRALEN);
  w.bgw_notify_pid = MyProcPid;  // our latch is set when it starts or stops
  BackgroundWorkerHandle* handle = nullptr;
  MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
  if (!RegisterDynamicBackgroundWorker(&w, &handle)) handle = nullptr;
  MemoryContextSwitchTo(old);
  return handle;
}

// Reports what the launcher does in pg_stat_activity (only when it changes).
void ReportLauncherActivity(const char* what) {
  static char last[256];
  if (strcmp(last, what) == 0) return;
  strlcpy(last, what, sizeof last);
  pgstat_report_activity(STATE_RUNNING, what);
}

// State kept across loops.
struct LauncherState {
  HTAB* dbs;
  WorkerInfo* workers;  // registry snapshot buffer
  LauncherNote* notes;  // notes buffer
  bool said_waiting;    // logged that hyperline.database does not exist
  bool said_no_slot;    // logged that a slot is missing (once per episode)
};

// One look at every database: starts, restarts and stops delivery workers.
void LookAtDatabases(LauncherState* st) {
  bool named_exists = ReadDatabases(st->dbs);
  // The registry before the notes: a worker posts its note before it leaves
  // the registry, so every exit seen here has its note taken below.
  int nworkers = ListWorkers(st->workers, RegistrySize());
  TakeNotes(st->dbs, st->notes);
  TimestampTz now = GetCurrentTimestamp();

  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, st->dbs);
  while (auto* e = static_cast<DbEntry*>(hash_seq_search(&seq))) {
    e->pid = 0;
    e->serving = false;
  }
  for (int i = 0; i < nworkers; ++i) {
    if (st->workers[i].kind != WorkerKind::kDelivery) continue;
    auto* e =
        static_cast<DbEntry*>(hash_search(st->dbs, &st->workers[i].database, HASH_FIND, nullptr));
    if (e == nullptr) continue;
    e->pid = st->workers[i].pid;
    e->serving = st->workers[i].serving;
  }

  int probes = 0;
  hash_seq_init(&seq, st->dbs);
  while (auto* e = static_cast<DbEntry*>(hash_seq_search(&seq))) {
    if (e->handle != nullptr) {
      pid_t pid;
      if (GetBackgroundWorkerPid(e->handle, &pid) == BGWH_STOPPED) {
        pfree(e->handle);
        e->handle = nullptr;
      }
    }
    if (e->serving) e->extension = Extension::kPresent;
    bool running = e->pid != 0 || e->handle != nullptr;
    if (running && e->extension != Extension::kPresent) ++probes;
  }

  int served_count = 0;
  const char* no_slot_db = nullptr;
  TimestampTz no_slot_since = 0;
  hash_seq_init(&seq, st->dbs);
  while (auto* e = static_cast<DbEntry*>(hash_seq_search(&seq))) {
    bool running = e->pid != 0 || e->handle != nullptr;
    bool blocked = DatabaseBlocked(e->oid);
    if (e->pid != 0) e->last_pid = e->pid;
    if (e->had_worker && !running) {
      // The worker exited. Expected: no extension, the database blocked
      // (DROP DATABASE...), dropped or no longer served.
      bool expected =
          e->quiet_exit || blocked || !e->seen || e->served != ServedState::kServed || e->stop_sent;
      if (expected) {
        e->restart_delay_ms = kRestartDelayMs;
        e->next_start = 0;
      } else {
        if (now - e->worker_since >= kStableMs * INT64CONST(1000)) {
          e->restart_delay_ms = kRestartDelayMs;
        }
        e->next_start = TimestampTzPlusMilliseconds(now, e->restart_delay_ms);
        if (e->last_pid != 0) {
          ereport(LOG, (errmsg("pg_hyperline: the delivery worker of database \"%s\" (PID %d) "
                               "exited; starting a new one in %d ms",
                               e->name, e->last_pid, e->restart_delay_ms)));
        }
        e->restart_delay_ms = Min(e->restart_delay_ms * 2, kMaxRestartDelayMs);
      }
      e->stop_sent = false;
      e->quiet_exit = false;
      e->last_pid = 0;
    }
    e->had_worker = running;

    if (!e->seen && !running) {
      (void)hash_search(st->dbs, &e->oid, HASH_REMOVE, nullptr);  // dropped
      continue;
    }
    if (running) {
      if (e->serving) ++served_count;
      // A database that became a template or refuses connections: stop.
      if ((e->served != ServedState::kServed || !e->seen) && e->pid != 0 && !e->stop_sent) {
        (void)kill(e->pid, SIGTERM);
        e->stop_sent = true;
      }
      continue;
    }
    if (e->served != ServedState::kServed || blocked) continue;
    if (e->extension == Extension::kAbsent) {
      if (now < TimestampTzPlusMilliseconds(e->absent_at, kReprobeMs)) continue;
      e->extension = Extension::kUnknown;
    }
    if (now < e->next_start) continue;
    if (e->extension == Extension::kUnknown && probes >= kMaxProbes) continue;
    e->handle = StartDeliveryWorker(e);
    if (e->handle == nullptr) {
      if (!e->no_slot) {
        e->no_slot = true;
        e->no_slot_since = now;
      }
      if (no_slot_db == nullptr || e->no_slot_since < no_slot_since) {
        no_slot_db = e->name;
        no_slot_since = e->no_slot_since;
      }
      continue;
    }
    e->no_slot = false;
    e->quiet_exit = false;
    e->had_worker = true;
    e->worker_since = now;
    if (e->extension != Extension::kPresent) ++probes;
  }

  // Report: a missing slot first (what is wrong and what to change), else
  // waiting for hyperline.database, else how many databases are served.
  char activity[256];
  if (no_slot_db != nullptr) {
    snprintf(activity, sizeof activity,
             "launcher: no free background worker slot for the delivery worker of database "
             "\"%s\"; raise max_worker_processes (now %d)",
             no_slot_db, max_worker_processes);
    if (!st->said_no_slot && now - no_slot_since >= kNoSlotQuietMs * INT64CONST(1000)) {
      ereport(WARNING,
              (errmsg("pg_hyperline: no free background worker slot for the delivery worker of "
                      "database \"%s\"",
                      no_slot_db),
               errdetail("max_worker_processes is %d; pg_hyperline uses one for its launcher, one "
                         "per database where the extension exists (%d running) and, from time to "
                         "time, one more for upkeep.",
                         max_worker_processes, served_count),
               errhint("Raise max_worker_processes (a restart is needed). Delivery starts as soon "
                       "as a slot frees.")));
      st->said_no_slot = true;
    }
  } else {
    if (st->said_no_slot) {
      ereport(LOG, (errmsg("pg_hyperline: no delivery worker waits for a background worker slot "
                           "any more")));
      st->said_no_slot = false;
    }
    if (guc_database[0] != '\0' && !named_exists) {
      snprintf(activity, sizeof activity,
               "launcher: waiting for database \"%s\" (hyperline.database) to be created",
               guc_database);
      if (!st->said_waiting) {
        ereport(LOG,
                (errmsg("pg_hyperline: waiting for database \"%s\" to be created", guc_database)));
        st->said_waiting = true;
      }
    } else {
      st->said_waiting = false;
      snprintf(activity, sizeof activity, "launcher: delivery workers in %d database%s",
               served_count, served_count == 1 ? "" : "s");
    }
  }
  ReportLauncherActivity(activity);
}

}  // namespace
}  // namespace hyperline::pg

using namespace hyperline::pg;

// Launcher main. Why it processes interrupts in its loop: DROP DATABASE and
// DROP TABLESPACE wait until every process has accepted their
// ProcSignalBarrier, which happens in CHECK_FOR_INTERRUPTS.
namespace hyperline::pg {
void LauncherMain(Datum) {
  InstallSigterm();
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGINT, SIG_IGN);  // no statement to cancel
  BackgroundWorkerUnblockSignals();
  // Why not during pg_upgrade: nothing may connect to the databases being
  // upgraded (exit code 0: not restarted).
  if (IsBinaryUpgrade) proc_exit(0);
  // Shared catalogs only: this works whatever databases exist.
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);

  LauncherState st = {};
  st.dbs = CreateDatabaseTable();
  st.workers = static_cast<WorkerInfo*>(
      MemoryContextAllocZero(TopMemoryContext, sizeof(WorkerInfo) * Max(RegistrySize(), 1)));
  st.notes = static_cast<LauncherNote*>(
      MemoryContextAllocZero(TopMemoryContext, sizeof(LauncherNote) * kMaxLauncherNotes));
  if (PublishLauncher() > 0) {
    int n = ListWorkers(st.workers, RegistrySize());
    int kept = 0;
    for (int i = 0; i < n; ++i) kept += st.workers[i].kind == WorkerKind::kDelivery ? 1 : 0;
    ereport(LOG, (errmsg("pg_hyperline: launcher restarted; %d delivery worker%s kept running",
                         kept, kept == 1 ? "" : "s")));
  }

  while (!ShutdownRequestPending) {
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);  // hyperline.database needs a restart anyway
    }
    LookAtDatabases(&st);
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kLoopMs,
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
  }
  // Delivery workers keep running: at shutdown the postmaster stops them, and a
  // restarted launcher finds them in the registry.
  if (terminated_by != 0) {
    ereport(LOG, (errmsg("pg_hyperline: launcher terminated by process %d; the server starts it "
                         "again within seconds",
                         static_cast<int>(terminated_by))));
    proc_exit(1);
  }
  proc_exit(0);
}
}  // namespace hyperline::pg

HYPERLINE_BGWORKER_MAIN(hyperline_worker_main, hyperline::pg::LauncherMain)
