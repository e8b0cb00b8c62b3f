// upkeep_worker.cpp: the upkeep worker (see upkeep_worker.hpp).
// (Headers that include src/core come before the Postgres ones.)
#include "pg/catalog.hpp"
#include "pg/outbox_store.hpp"
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
        // NOLINTNEXTLINE(bugprone-implicit-widening-of-multiplication-result): Postgres's macro
        AllocSetContextCreate(TopMemoryContext, "pg_hyperline vacuum", ALLOCSET_DEFAULT_SIZES);
    PortalContext = portal;
    PG_TRY();
    {
      StartTransactionCommand();
      VacuumStmt* stmt = makeNode(VacuumStmt);
      stmt->options = NIL;
      stmt->is_vacuumcmd = true;
      stmt->rels = list_make1(makeVacuumRelation(
          makeRangeVar(pstrdup(catalog::kSchema), pstrdup(catalog::kOutbox), -1), InvalidOid, NIL));
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

void Upkeep::SettingsChanged() {
  next_purge_ = std::min(next_purge_, SteadyClock::now() + std::chrono::milliseconds(1000));
}

bool Upkeep::VacuumWanted() const {
  return guc_vacuum_threshold > 0 && dead_since_vacuum_ >= guc_vacuum_threshold;
}

void Upkeep::Tick(bool idle) {
  if (std::optional<int64_t> purged = runner_.Finished()) {
    if (*purged > 0) dead_since_vacuum_ += *purged;
    next_purge_ = SteadyClock::now() + std::chrono::milliseconds(PurgeInterval(*purged));
  }
  auto now = SteadyClock::now();
  bool purge_due = now >= next_purge_ && guc_delivered_retention_s >= 0;
  bool vacuum_due = VacuumWanted() && now >= runner_.NextVacuum();
  if (!(purge_due || vacuum_due) || runner_.Running()) return;
  uint32 what = (purge_due ? kUpkeepPurge : 0) | (vacuum_due ? kUpkeepVacuum : 0);
  if (runner_.Start(what)) {
    if (vacuum_due) dead_since_vacuum_ = 0;
    if (purge_due) next_purge_ = SteadyClock::time_point::max();  // until it reports
    return;
  }
  if (!idle) return;
  if (purge_due) {
    ReportActivity("purging delivered events");
    int64_t purged = store::TxnPurgeDelivered(guc_delivered_retention_s);
    (void)store::TxnPurgeRequests(guc_delivered_retention_s);  // hyperline.requests
    (void)store::TxnPurgeSyncRuns();                             // hyperline.sync_runs
    dead_since_vacuum_ += purged;
    next_purge_ = SteadyClock::now() + std::chrono::milliseconds(PurgeInterval(purged));
  }
  if (VacuumWanted()) {
    ReportActivity("vacuuming hyperline.outbox");
    dead_since_vacuum_ = 0;
    VacuumOutbox();
  }
}

std::optional<SteadyClock::time_point> Upkeep::NextDeadline() {
  std::optional<SteadyClock::time_point> deadline;
  if (guc_delivered_retention_s >= 0 && next_purge_ != SteadyClock::time_point::max()) {
    deadline = next_purge_;
  }
  if (VacuumWanted() && !runner_.Running()) {
    if (!deadline || runner_.NextVacuum() < *deadline) deadline = runner_.NextVacuum();
  }
  return deadline;
}

// One upkeep run: purge, then vacuum, as asked. Nothing unless the extension
// is installed at the library's version (a mismatch leaves the schema alone).
void RunUpkeep(uint32 what) {
  if (store::TxnCheckExtension().state != store::ExtensionState::kReady) return;
  if ((what & kUpkeepPurge) != 0) {
    PgGuard([] { pgstat_report_activity(STATE_RUNNING, "purging delivered events"); });
    int64_t purged = store::TxnPurgeDelivered(guc_delivered_retention_s);
    (void)store::TxnPurgeRequests(guc_delivered_retention_s);  // hyperline.requests
    (void)store::TxnPurgeSyncRuns();                             // hyperline.sync_runs
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
namespace hyperline::pg {
void UpkeepMain(Datum arg) {
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
}  // namespace hyperline::pg

HYPERLINE_BGWORKER_MAIN(hyperline_upkeep_main, hyperline::pg::UpkeepMain)
