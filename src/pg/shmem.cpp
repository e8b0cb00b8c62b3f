// shmem.cpp: shared worker latch and the wake-at-commit transaction callback.
#include "pg/shmem.hpp"

#include "pg/guc.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
}

namespace hyperline::pg {
namespace {

struct SharedState {
  slock_t mutex;
  Latch* worker_latch;  // nullptr while no worker runs
  int64 upkeep_purged;  // -1: nothing reported since the last take
};

SharedState* shared = nullptr;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
bool wake_at_commit = false;

void RequestShmem() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
}

void StartupShmem() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  shared = static_cast<SharedState*>(ShmemInitStruct("pg_hyperline", sizeof(SharedState), &found));
  if (!found) {
    SpinLockInit(&shared->mutex);
    shared->worker_latch = nullptr;
    shared->upkeep_purged = -1;
  }
  LWLockRelease(AddinShmemInitLock);
}

// Sets the worker's latch, if a worker runs.
void SetWorkerLatch() {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  Latch* latch = shared->worker_latch;
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
}

// Why a callback: rows are visible to the worker only after commit, so waking
// it earlier would make it find nothing and go back to sleep.
void OnXactEvent(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      // Why not when hyperline.enabled is off: the worker would wake at every
      // commit only to go back to sleep (a context switch per transaction);
      // turning it on (a reload) makes it claim at once.
      if (wake_at_commit && guc_enabled) SetWorkerLatch();
      wake_at_commit = false;
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
      wake_at_commit = false;
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

void PublishWorkerLatch() {
  SpinLockAcquire(&shared->mutex);
  shared->worker_latch = &MyProc->procLatch;
  SpinLockRelease(&shared->mutex);
}

void WithdrawWorkerLatch() {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  if (shared->worker_latch == &MyProc->procLatch) shared->worker_latch = nullptr;
  SpinLockRelease(&shared->mutex);
}

void WakeWorkerAtCommit() { wake_at_commit = true; }

void ReportUpkeepPurged(int64 purged) {
  SpinLockAcquire(&shared->mutex);
  shared->upkeep_purged = purged;
  SpinLockRelease(&shared->mutex);
}

int64 TakeUpkeepPurged() {
  SpinLockAcquire(&shared->mutex);
  int64 purged = shared->upkeep_purged;
  shared->upkeep_purged = -1;
  SpinLockRelease(&shared->mutex);
  return purged;
}

void InstallXactCallbacks() { RegisterXactCallback(OnXactEvent, nullptr); }

}  // namespace hyperline::pg

extern "C" {
PG_FUNCTION_INFO_V1(hyperline_wake);
// SQL hyperline._wake(): wake the worker when this transaction commits.
Datum hyperline_wake(PG_FUNCTION_ARGS) {
  hyperline::pg::WakeWorkerAtCommit();
  PG_RETURN_VOID();
}
}
