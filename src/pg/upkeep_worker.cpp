// upkeep_worker.cpp: the upkeep worker (see upkeep_worker.hpp).
#include "pg/upkeep_worker.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/worker_common.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"

PGDLLEXPORT void hyperline_upkeep_main(Datum arg);
}

namespace hyperline::pg {
namespace {
constexpr int kIdlePurgeIntervalMs = 300000;  // purge interval at most, when purges find none
}  // namespace

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

}  // namespace hyperline::pg

using namespace hyperline::pg;

// Upkeep worker: started by the delivery worker, purges and/or vacuums once,
// then exits. Why SIGTERM = die: a VACUUM must stop at once on shutdown.
void hyperline_upkeep_main(Datum arg) {
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  uint32 what = DatumGetUInt32(arg);
  Oid database;
  memcpy(&database, MyBgworkerEntry->bgw_extra, sizeof(Oid));
  // In the registry before connecting: DROP DATABASE stops us (see
  // hyperline_delivery_main).
  if (!RegisterWorker(WorkerKind::kUpkeep, database)) proc_exit(0);
  BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
  ApplyWorkerSettings();
  CppGuard([&] { RunUpkeep(what); });
  proc_exit(0);
}
