// shmem.cpp: the registry of our processes, database blocks, launcher notes
// and the wake-at-commit transaction callback (see shmem.hpp).
//
// Plain C style (no C++ objects): every function here may be called from a
// signal-free Postgres context and only raises Postgres errors.
#include "pg/shmem.hpp"

#include "pg/guard.hpp"

#include "pg/guc.hpp"
#include "pg/stats.hpp"

extern "C" {
#include <signal.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace hyperline::pg {
namespace {

constexpr int kMaxNotes = kMaxLauncherNotes;

struct WorkerSlot {
  WorkerKind kind;  // kNone: free
  Oid database;
  int pid;
  Latch* latch;
  TimestampTz started_at;
  pg_atomic_uint64 heartbeat;  // written by the owner without the lock
  int64 upkeep_purged;         // delivery slot: -1 nothing reported since the last take
  bool serving;
};

// Followed in shared memory by WorkerSlot[nslots] and Oid[nblocks] (the
// database each backend blocks, indexed by BackendId - 1).
struct SharedState {
  slock_t mutex;
  Latch* launcher_latch;  // nullptr while no launcher runs
  int launcher_pid;
  int launcher_starts;
  int nslots;
  int nblocks;
  int nblocked;  // entries of the block array in use (fast path when 0)
  int nnotes;
  bool notes_overflow;
  LauncherNote notes[kMaxNotes];
};

SharedState* shared = nullptr;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

// This process's state.
int my_slot = -1;                     // registry index, if registered
int wake_slot_cache = -1;             // backend: last slot that served this database
bool wake_at_commit = false;          // backend: wake the worker at commit
bool note_created_at_commit = false;  // backend: CREATE EXTENSION ran
bool block_active = false;            // backend: blocks a database until the transaction ends

Size HeaderSize() { return MAXALIGN(sizeof(SharedState)); }
Size SlotsSize(int nslots) { return MAXALIGN(sizeof(WorkerSlot) * static_cast<Size>(nslots)); }
Size BlocksSize(int nblocks) { return MAXALIGN(sizeof(Oid) * static_cast<Size>(nblocks)); }

WorkerSlot* Slots() {
  return reinterpret_cast<WorkerSlot*>(reinterpret_cast<char*>(shared) + HeaderSize());
}
Oid* Blocks() {
  return reinterpret_cast<Oid*>(reinterpret_cast<char*>(shared) + HeaderSize() +
                                SlotsSize(shared->nslots));
}

// Why max_worker_processes slots: every registered process holds a background
// worker slot. Why MaxBackends blocks: one per backend that may run the command.
void RequestShmem() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(HeaderSize() + SlotsSize(max_worker_processes) + BlocksSize(MaxBackends));
  stats::RequestShmem();  // hyperline.stats (stats.cpp)
}

void StartupShmem() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  Size size = HeaderSize() + SlotsSize(max_worker_processes) + BlocksSize(MaxBackends);
  shared = static_cast<SharedState*>(ShmemInitStruct("pg_hyperline", size, &found));
  if (!found) {
    memset(shared, 0, size);
    SpinLockInit(&shared->mutex);
    shared->nslots = max_worker_processes;
    shared->nblocks = MaxBackends;
    for (int i = 0; i < shared->nslots; ++i) pg_atomic_init_u64(&Slots()[i].heartbeat, 0);
  }
  stats::StartupShmem();  // hyperline.stats (stats.cpp)
  LWLockRelease(AddinShmemInitLock);
}

// Whether `database` is blocked; caller holds the mutex.
bool BlockedLocked(Oid database) {
  if (shared->nblocked == 0) return false;
  const Oid* blocks = Blocks();
  for (int i = 0; i < shared->nblocks; ++i) {
    if (blocks[i] == database) return true;
  }
  return false;
}

void PostNote(Oid database, LauncherNoteKind kind, TimestampTz at) {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  if (shared->nnotes < kMaxNotes) {
    shared->notes[shared->nnotes++] = LauncherNote{database, kind, at};
  } else {
    shared->notes_overflow = true;
  }
  SpinLockRelease(&shared->mutex);
  WakeLauncher();
}

// Removes this process from the registry when it exits.
void ReleaseSlot(int, Datum) {
  if (shared == nullptr || my_slot < 0) return;
  SpinLockAcquire(&shared->mutex);
  WorkerSlot& s = Slots()[my_slot];
  s.kind = WorkerKind::kNone;
  s.database = InvalidOid;
  s.pid = 0;
  s.latch = nullptr;
  s.serving = false;
  SpinLockRelease(&shared->mutex);
  my_slot = -1;
  WakeLauncher();
}

void WithdrawLauncher(int, Datum) {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  if (shared->launcher_pid == MyProcPid) {
    shared->launcher_latch = nullptr;
    shared->launcher_pid = 0;
  }
  SpinLockRelease(&shared->mutex);
}

// Ends this backend's block, if any.
void EndBlock() {
  if (!block_active) return;
  block_active = false;
  if (shared == nullptr || MyBackendId < 1 || MyBackendId > shared->nblocks) return;
  SpinLockAcquire(&shared->mutex);
  Oid& mine = Blocks()[MyBackendId - 1];
  if (OidIsValid(mine)) {
    mine = InvalidOid;
    shared->nblocked--;
  }
  SpinLockRelease(&shared->mutex);
  WakeLauncher();  // it may start the database's worker again
}

// Sets the latch of this database's delivery worker, if one runs.
void SetWorkerLatch() {
  if (shared == nullptr) return;
  Latch* latch = nullptr;
  SpinLockAcquire(&shared->mutex);
  WorkerSlot* slots = Slots();
  int i = wake_slot_cache;
  if (i < 0 || i >= shared->nslots || slots[i].kind != WorkerKind::kDelivery ||
      slots[i].database != MyDatabaseId) {
    i = -1;
    for (int j = 0; j < shared->nslots; ++j) {
      if (slots[j].kind == WorkerKind::kDelivery && slots[j].database == MyDatabaseId) {
        i = j;
        break;
      }
    }
    wake_slot_cache = i;
  }
  if (i >= 0) latch = slots[i].latch;
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
}

// Why a callback: rows are visible to the worker only after commit, so waking
// it earlier would make it find nothing and go back to sleep. The same holds
// for the launcher and a new extension; a block lasts as long as the command's
// transaction (the database is dropped or renamed only at commit).
void OnXactEvent(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      // Why not when hyperline.enabled is off: the worker would wake at every
      // commit only to go back to sleep (a context switch per transaction);
      // turning it on (a reload) makes it claim at once.
      if (wake_at_commit && guc_enabled) SetWorkerLatch();
      wake_at_commit = false;
      if (note_created_at_commit) {
        note_created_at_commit = false;
        PostNote(MyDatabaseId, LauncherNoteKind::kExtensionCreated, GetCurrentTimestamp());
      }
      EndBlock();
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      wake_at_commit = false;
      note_created_at_commit = false;
      EndBlock();
      break;
    default:
      break;
  }
}

}  // namespace

void InstallShmemHooks() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = RequestShmem;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = StartupShmem;
}

void InstallXactCallbacks() {
  RegisterXactCallback(OnXactEvent, nullptr);
  stats::InstallCallbacks();  // events_enqueued, published at commit (stats.cpp)
}

// ---- Registry ----

bool RegisterWorker(WorkerKind kind, Oid database) {
  if (shared == nullptr || my_slot >= 0) return false;
  TimestampTz now = GetCurrentTimestamp();
  int slot = -1;
  bool refused = false;
  SpinLockAcquire(&shared->mutex);
  WorkerSlot* slots = Slots();
  if (BlockedLocked(database)) refused = true;
  for (int i = 0; i < shared->nslots && !refused; ++i) {
    if (kind == WorkerKind::kDelivery && slots[i].kind == WorkerKind::kDelivery &&
        slots[i].database == database) {
      refused = true;  // another delivery worker serves it
    } else if (slot < 0 && slots[i].kind == WorkerKind::kNone) {
      slot = i;
    }
  }
  if (!refused && slot >= 0) {
    WorkerSlot& s = slots[slot];
    s.kind = kind;
    s.database = database;
    s.pid = MyProcPid;
    s.latch = &MyProc->procLatch;
    s.started_at = now;
    s.upkeep_purged = -1;
    s.serving = false;
    pg_atomic_write_u64(&s.heartbeat, static_cast<uint64>(now));
  }
  SpinLockRelease(&shared->mutex);
  if (refused || slot < 0) return false;
  my_slot = slot;
  before_shmem_exit(ReleaseSlot, 0);
  return true;
}

void WorkerHousekeeping() {
  CHECK_FOR_INTERRUPTS();
  if (shared != nullptr && my_slot >= 0) {
    pg_atomic_write_u64(&Slots()[my_slot].heartbeat, static_cast<uint64>(GetCurrentTimestamp()));
  }
}

void SetServing(bool serving) {
  if (shared == nullptr || my_slot < 0) return;
  SpinLockAcquire(&shared->mutex);
  Slots()[my_slot].serving = serving;
  SpinLockRelease(&shared->mutex);
  WakeLauncher();
}

void NoteExtensionAbsent() {
  if (shared == nullptr || my_slot < 0) return;
  SpinLockAcquire(&shared->mutex);
  Oid database = Slots()[my_slot].database;
  TimestampTz started_at = Slots()[my_slot].started_at;
  Slots()[my_slot].serving = false;
  SpinLockRelease(&shared->mutex);
  PostNote(database, LauncherNoteKind::kExtensionAbsent, started_at);
}

namespace {
WorkerInfo InfoOf(WorkerSlot& s) {
  WorkerInfo info;
  info.kind = s.kind;
  info.database = s.database;
  info.pid = s.pid;
  info.started_at = s.started_at;
  info.heartbeat = static_cast<TimestampTz>(pg_atomic_read_u64(&s.heartbeat));
  info.serving = s.serving;
  return info;
}
}  // namespace

bool FindDeliveryWorker(Oid database, WorkerInfo* info) {
  if (shared == nullptr) return false;
  bool found = false;
  SpinLockAcquire(&shared->mutex);
  WorkerSlot* slots = Slots();
  for (int i = 0; i < shared->nslots && !found; ++i) {
    if (slots[i].kind == WorkerKind::kDelivery && slots[i].database == database) {
      *info = InfoOf(slots[i]);
      found = true;
    }
  }
  SpinLockRelease(&shared->mutex);
  return found;
}

int ListWorkers(WorkerInfo* out, int max) {
  if (shared == nullptr) return 0;
  int n = 0;
  SpinLockAcquire(&shared->mutex);
  WorkerSlot* slots = Slots();
  for (int i = 0; i < shared->nslots && n < max; ++i) {
    if (slots[i].kind != WorkerKind::kNone) out[n++] = InfoOf(slots[i]);
  }
  SpinLockRelease(&shared->mutex);
  return n;
}

int RegistrySize() { return shared == nullptr ? 0 : shared->nslots; }

void ReportUpkeepPurged(int64 purged) {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  WorkerSlot* slots = Slots();
  for (int i = 0; i < shared->nslots; ++i) {
    if (slots[i].kind == WorkerKind::kDelivery && slots[i].database == MyDatabaseId) {
      slots[i].upkeep_purged = purged;
    }
  }
  SpinLockRelease(&shared->mutex);
}

int64 TakeUpkeepPurged() {
  if (shared == nullptr || my_slot < 0) return -1;
  SpinLockAcquire(&shared->mutex);
  int64 purged = Slots()[my_slot].upkeep_purged;
  Slots()[my_slot].upkeep_purged = -1;
  SpinLockRelease(&shared->mutex);
  return purged;
}

// ---- Blocks ----

bool BlockAndStopDatabase(Oid database, int timeout_ms) {
  if (shared == nullptr || !OidIsValid(database)) return true;
  if (MyBackendId >= 1 && MyBackendId <= shared->nblocks) {
    SpinLockAcquire(&shared->mutex);
    Oid& mine = Blocks()[MyBackendId - 1];
    if (!OidIsValid(mine)) shared->nblocked++;
    mine = database;
    SpinLockRelease(&shared->mutex);
    block_active = true;
  }
  // From here no process of ours can register in the database: stop those
  // that did, and wait until they have left the proc array.
  int nslots = shared->nslots;
  int* signalled = static_cast<int*>(palloc0(sizeof(int) * static_cast<Size>(nslots)));
  int* found = static_cast<int*>(palloc0(sizeof(int) * static_cast<Size>(nslots)));
  int nsignalled = 0;
  bool noted = false;
  TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
  bool left = false;
  for (;;) {
    int nfound = 0;
    SpinLockAcquire(&shared->mutex);
    WorkerSlot* slots = Slots();
    for (int i = 0; i < nslots; ++i) {
      if (slots[i].kind != WorkerKind::kNone && slots[i].database == database) {
        found[nfound++] = slots[i].pid;
      }
    }
    SpinLockRelease(&shared->mutex);
    for (int i = 0; i < nfound; ++i) {
      bool done = false;
      for (int j = 0; j < nsignalled && !done; ++j) done = signalled[j] == found[i];
      if (done || nsignalled >= nslots) continue;
      // Why SIGTERM: what pg_terminate_backend sends; the delivery worker
      // finishes its loop iteration, the upkeep worker stops its VACUUM.
      // First a note: the launcher must not take the exit for a crash (it
      // may see the exit only after the command ended).
      if (!noted) {
        PostNote(database, LauncherNoteKind::kStopped, GetCurrentTimestamp());
        noted = true;
      }
      if (kill(found[i], SIGTERM) == 0) signalled[nsignalled++] = found[i];
    }
    bool gone = nfound == 0;
    for (int j = 0; j < nsignalled && gone; ++j) gone = BackendPidGetProc(signalled[j]) == nullptr;
    if (gone) {
      left = true;
      break;
    }
    if (GetCurrentTimestamp() >= deadline) break;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  pfree(signalled);
  pfree(found);
  return left;
}

bool DatabaseBlocked(Oid database) {
  if (shared == nullptr) return false;
  SpinLockAcquire(&shared->mutex);
  bool blocked = BlockedLocked(database);
  SpinLockRelease(&shared->mutex);
  return blocked;
}

// ---- Launcher ----

int PublishLauncher() {
  SpinLockAcquire(&shared->mutex);
  shared->launcher_latch = &MyProc->procLatch;
  shared->launcher_pid = MyProcPid;
  int before = shared->launcher_starts++;
  SpinLockRelease(&shared->mutex);
  before_shmem_exit(WithdrawLauncher, 0);
  return before;
}

int TakeLauncherNotes(LauncherNote* out, int max, bool* overflow) {
  SpinLockAcquire(&shared->mutex);
  int n = 0;
  for (; n < shared->nnotes && n < max; ++n) out[n] = shared->notes[n];
  // Notes that did not fit in `out` count as lost.
  *overflow = shared->notes_overflow || n < shared->nnotes;
  shared->nnotes = 0;
  shared->notes_overflow = false;
  SpinLockRelease(&shared->mutex);
  return n;
}

void WakeLauncher() {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  Latch* latch = shared->launcher_latch;
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
}

// ---- Backends ----

void WakeWorkerAtCommit() { wake_at_commit = true; }

void NoteExtensionCreatedAtCommit() { note_created_at_commit = true; }

namespace {
// SQL hyperline._wake(): wake the worker when this transaction commits.
Datum Wake(FunctionCallInfo) {
  WakeWorkerAtCommit();
  PG_RETURN_VOID();
}
}  // namespace

}  // namespace hyperline::pg

HYPERLINE_SQL_FUNCTION_PG(hyperline_wake, hyperline::pg::Wake)
