// shmem.hpp: the little shared state of pg_hyperline's processes.
//
// Vocabulary:
//   registry   — one entry per background process of ours connected to a
//                database (delivery worker, upkeep worker): its database, pid,
//                latch, start time and heartbeat. The DROP DATABASE hook reads
//                it to stop them, backends to wake the worker of their
//                database at commit, the launcher to know which databases are
//                served; health checks read it through FindDeliveryWorker.
//   block      — a backend running DROP DATABASE (or another command that
//                needs the database to itself) blocks the database until its
//                transaction ends: no process of ours may register there.
//   note       — a message to the launcher: "the extension was created in
//                database D" (posted at commit) or "the worker of D found no
//                extension and exits".
//
// Backends that wrote outbox rows wake their database's delivery worker when
// their transaction commits (not before: the rows are invisible until then).
#pragma once

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
}

namespace hyperline::pg {

// Requests and initialises the shared memory segment (called from _PG_init).
void InstallShmemHooks();

// Registers the transaction callback behind WakeWorkerAtCommit, the launcher
// notes sent at commit and the end of database blocks (from _PG_init).
void InstallXactCallbacks();

// ---- Registry ----

enum class WorkerKind : uint8 { kNone = 0, kDelivery = 1, kUpkeep = 2, kSync = 3 };

// What the registry knows of one process.
struct WorkerInfo {
  WorkerKind kind = WorkerKind::kNone;
  Oid database = InvalidOid;
  int pid = 0;
  TimestampTz started_at = 0;
  // Delivery worker: its last loop iteration. An idle worker sleeps up to
  // hyperline.poll_interval_ms between iterations, so allow that much.
  TimestampTz heartbeat = 0;
  bool serving = false;  // delivery worker: found the extension, delivers
};

// Worker side, first thing in its main (before connecting): enters this process
// in the registry and arranges its removal at exit. False (the process should
// exit quietly) when the database is blocked, or for a delivery worker when
// another one already serves the database.
bool RegisterWorker(WorkerKind kind, Oid database);

// Delivery worker: housekeeping at the top of every loop iteration: processes
// interrupts and ProcSignalBarriers (DROP DATABASE and DROP TABLESPACE wait
// for every process to accept theirs), and updates the heartbeat. May ereport
// (a cancel request).
void WorkerHousekeeping();

// Delivery worker: says whether it found the extension and delivers.
void SetServing(bool serving);

// Delivery worker: tells the launcher that the extension does not exist (any
// more) in its database, just before exiting.
void NoteExtensionAbsent();

// The delivery worker of `database`, if one is registered.
bool FindDeliveryWorker(Oid database, WorkerInfo* info);

// Copies up to `max` registry entries into `out`; returns how many.
int ListWorkers(WorkerInfo* out, int max);

// Size of the registry (processes of ours that can be registered at once).
int RegistrySize();

// Upkeep worker side: how many events the last purge deleted, reported to the
// delivery worker of its database. Delivery worker side: take that figure (-1
// if no upkeep run reported since the last take).
void ReportUpkeepPurged(int64 purged);
int64 TakeUpkeepPurged();

// ---- Blocks (DROP DATABASE and friends) ----

// Blocks `database` until the current transaction ends, and stops (SIGTERM)
// every registered process of ours connected to it, waiting up to
// `timeout_ms` for them to leave. Returns whether they all left.
bool BlockAndStopDatabase(Oid database, int timeout_ms);

// Whether some backend blocks `database`.
bool DatabaseBlocked(Oid database);

// ---- Launcher ----

// Notes kept until the launcher takes them (more are lost: the launcher then
// looks at every database again).
constexpr int kMaxLauncherNotes = 64;

// What a note tells the launcher.
enum class LauncherNoteKind : uint8 {
  kExtensionCreated = 1,  // CREATE EXTENSION committed in the database
  kExtensionAbsent = 2,   // its worker found no extension and exits
  kStopped = 3,           // a command (DROP DATABASE...) stopped its worker
};

struct LauncherNote {
  Oid database;
  LauncherNoteKind kind;
  TimestampTz at;  // created: the commit; absent: the start of the worker that looked
};

// Launcher side: publishes its latch and pid; returns how many times a launcher
// started before this one since the server started (0: the first).
int PublishLauncher();

// Launcher side: takes the pending notes (at most `max`); *overflow is set when
// some were lost (the launcher then looks at every database again).
int TakeLauncherNotes(LauncherNote* out, int max, bool* overflow);

// Sets the launcher's latch, if it runs.
void WakeLauncher();

// ---- Backends ----

// Wake the worker of this database at commit of the current transaction.
void WakeWorkerAtCommit();

// Tell the launcher at commit that the extension now exists in this database.
void NoteExtensionCreatedAtCommit();

}  // namespace hyperline::pg
