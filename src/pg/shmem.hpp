// shmem.hpp: the little shared state between backends and the delivery worker
// (and between the delivery worker and its upkeep worker).
//
// Backends that wrote outbox rows wake the worker when their transaction
// commits (not before: the rows are invisible until then). The worker
// publishes its latch here when it starts.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace hyperline::pg {

// Requests and initialises the shared memory segment (called from _PG_init).
void InstallShmemHooks();

// Worker side: publish/withdraw this process's latch.
void PublishWorkerLatch();
void WithdrawWorkerLatch();

// Upkeep worker side: how many events the last purge deleted. Delivery worker
// side: take that figure (-1 if no upkeep run reported since the last take).
void ReportUpkeepPurged(int64 purged);
int64 TakeUpkeepPurged();

// Backend side: wake the worker at commit of the current transaction.
void WakeWorkerAtCommit();

// Registers the transaction callback behind WakeWorkerAtCommit (from _PG_init).
void InstallXactCallbacks();

}  // namespace hyperline::pg
