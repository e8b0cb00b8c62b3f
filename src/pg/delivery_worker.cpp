// delivery_worker.cpp: the delivery worker, one per database it serves
// (dynamic, entry hyperline_delivery_main, started by the launcher).
//
// The recipe: leave when the extension is not installed (telling the launcher,
// which starts the worker again after CREATE EXTENSION); wait quietly while it
// is installed at another version than the library's; put rows left 'sending'
// back to pending; then, each turn,
//   record outcomes → claim due rows → start requests → upkeep → wait,
// woken by the latch (a commit that wrote outbox rows), by an HTTP answer, or
// when the engine, the poll interval or the upkeep next has something to do.
// Every decision is the engine's (src/core/delivery); every SQL statement is
// in outbox_store.cpp; purge and vacuum are in upkeep_worker.cpp.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "core/delivery/engine.hpp"
#include "http/client.hpp"
#include "pg/delivery_settings.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/health.hpp"
#include "pg/outbox_store.hpp"
#include "pg/shmem.hpp"
#include "pg/stats_publish.hpp"
#include "pg/sync_worker.hpp"
#include "pg/upkeep_worker.hpp"
#include "pg/worker_common.hpp"

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
}

namespace hyperline::pg {
namespace {

using delivery::Engine;
using std::chrono::milliseconds;
using TimePoint = delivery::TimePoint;

constexpr int kErrorPauseMs = 1000;    // after an error, before trying again
constexpr int kMismatchPollMs = 1000;  // how often a version mismatch is checked again
constexpr long kSendingSliceMs = 5;    // longest libcurl wait while requests are in flight

long MsUntil(TimePoint t, TimePoint now) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(t - now).count());
}

// What the worker knows about the extension, and says about it once.
class ExtensionWatch {
 public:
  // Checks the extension. kReady: go; kAbsent: the worker leaves; another
  // version: it has waited a moment and said why (pg_stat_activity, and once
  // in the log).
  store::ExtensionState Check() {
    store::ExtensionCheck check = store::TxnCheckExtension();
    Note(check);
    if (check.state == store::ExtensionState::kOtherVersion) {
      WaitOnLatch(std::min(guc_poll_interval_ms, kMismatchPollMs));
    }
    return check.state;
  }

  // Logs a change of version state (a claim found it too).
  void Note(const store::ExtensionCheck& check) {
    bool mismatch = check.state == store::ExtensionState::kOtherVersion;
    if (mismatch && (!mismatch_ || check.installed_version != said_version_)) {
      said_version_ = check.installed_version;
      activity_ = "waiting for ALTER EXTENSION pg_hyperline UPDATE (installed " + said_version_ +
                  ", library " + store::LibraryVersion() + ")";
      const char* installed = said_version_.c_str();
      PgGuard([&] {
        ereport(LOG, (errmsg("pg_hyperline: extension pg_hyperline %s in database \"%s\" does not "
                             "match the library (%s); nothing is delivered until you run ALTER "
                             "EXTENSION pg_hyperline UPDATE in database \"%s\"",
                             installed, MyBgworkerEntry->bgw_extra, store::LibraryVersion(),
                             MyBgworkerEntry->bgw_extra)));
      });
    } else if (!mismatch && mismatch_ && check.state == store::ExtensionState::kReady) {
      PgGuard([] {
        ereport(LOG, (errmsg("pg_hyperline: extension pg_hyperline in database \"%s\" is now "
                             "version %s; delivery resumes",
                             MyBgworkerEntry->bgw_extra, store::LibraryVersion())));
      });
    }
    mismatch_ = mismatch;
    if (mismatch) ReportActivity(activity_.c_str());
  }

 private:
  bool mismatch_ = false;
  std::string said_version_;
  std::string activity_;
};

// One claim transaction: destinations → plan → claim → admit → commit.
// False if the extension is gone or of another version (nothing claimed).
bool Claim(Engine& engine, ExtensionWatch& watch) {
  ReportActivity("claiming events");
  store::ExtensionCheck check;
  std::optional<std::vector<delivery::DestinationConfig>> destinations = store::BeginClaim(&check);
  if (!destinations) {
    watch.Note(check);
    return false;
  }
  delivery::ClaimPlan plan = engine.PlanClaim(std::move(*destinations));
  if (plan.groups.empty()) {
    store::CommitClaim();
    return true;
  }
  delivery::Claimed claimed = store::ClaimRows(plan);
  for (const store::Superseded& s : store::FinishClaim(engine.Admit(std::move(claimed)))) {
    stats::PublishSuperseded(s.model, s.destination, s.n);  // hyperline.stats
  }
  return true;
}

// One record transaction: outcomes, destination changes, the request log.
void Record(Engine& engine, Upkeep& upkeep, HealthMonitor& health) {
  ReportActivity("recording results");
  upkeep.NoteDeadVersions(static_cast<int64_t>(engine.OutcomeCount()));
  delivery::Records records = engine.TakeRecords();
  bool destinations_changed = !records.destinations.empty();
  store::TxnRecord(records);
  engine.Recorded();
  if (destinations_changed) health.Soon();  // alerts: a destination turned (un)authorized
}

// Waits until the next thing to do: answers while requests are in flight
// (short slices, because the latch cannot be polled together with libcurl's
// sockets, so a commit's wake-up is noticed within a few ms), else the latch.
void Wait(Engine& engine, Upkeep& upkeep, const HealthMonitor& health,
          const delivery::Clock& clock, TimePoint next_poll) {
  TimePoint now = clock.Now();
  // The poll matters only while a claim could take rows.
  long wait_ms = engine.HasRoom() ? MsUntil(next_poll, now) : guc_poll_interval_ms;
  if (std::optional<TimePoint> wake = engine.NextWake()) {
    wait_ms = std::min(wait_ms, MsUntil(*wake, now));
  }
  if (std::optional<SteadyClock::time_point> due = upkeep.NextDeadline()) {
    wait_ms = std::min(wait_ms, MsUntil(*due, now));
  }
  wait_ms = std::min(wait_ms, MsUntil(health.NextDeadline(), now));
  if (!guc_enabled) wait_ms = std::max<long>(wait_ms, guc_poll_interval_ms);
  wait_ms = std::max(0L, wait_ms);
  wait_ms = std::min<long>(wait_ms, TickSyncScheduler().count());  // query models' schedule
  if (engine.InFlight() > 0) {
    ReportActivity("sending events");
    engine.Pump(static_cast<int>(std::min(wait_ms, kSendingSliceMs)));
  } else if (wait_ms > 0) {
    if (!engine.HasOutcomes() && engine.Queued() == 0) {
      ReportActivity(guc_enabled ? "idle" : "disabled (hyperline.enabled = off)");
      // Going to sleep: flush statistics now rather than at the next commit.
      PgGuard([] { (void)pgstat_report_stat(true); });
    }
    WaitOnLatch(wait_ms);
  }
}

// The delivery loop; returns when SIGTERM asks to stop.
void RunDelivery() {
  delivery::SystemClock clock;
  http::Client client(std::max(1, guc_max_concurrent_requests));
  Engine engine(DeliverySettings(), clock, client,
                static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
                    static_cast<uint64_t>(MyProcPid));
  ExtensionWatch watch;
  Upkeep upkeep;
  HealthMonitor health;
  bool ready = false;  // extension ready and 'sending' rows reset
  bool wake = true;    // a commit, a due retry or a setting asks for a claim
  TimePoint next_poll = clock.Now();

  while (!ShutdownRequestPending) {
    // Housekeeping, once per turn.
    if (!PostmasterIsAlive()) proc_exit(1);
    if (ReloadIfRequested()) {
      engine.SetSettings(DeliverySettings());
      upkeep.SettingsChanged();
      wake = true;
    }
    if (MyLatch->is_set) {
      ResetLatch(MyLatch);
      wake = true;
    }

    std::string error;
    try {
      PgGuard([] { WorkerHousekeeping(); });  // interrupts, barriers, heartbeat
      if (!ready) {
        store::ExtensionState state = watch.Check();
        if (state == store::ExtensionState::kAbsent) {
          NoteExtensionAbsent();  // the launcher starts us again at CREATE EXTENSION
          break;
        }
        if (state != store::ExtensionState::kReady) continue;
        engine.NoteWaiting(store::TxnResetSending());
        SetServing(true);
        ready = true;
        wake = true;
      }
      engine.Pump(0);
      if (engine.HasStats()) stats::Publish(engine.TakeStats());  // hyperline.stats
      wake |= engine.TakeDue();
      bool claim =
          guc_enabled && engine.HasRoom() && (wake || clock.Now() >= next_poll || engine.MoreDue());
      if (engine.RecordDue(claim)) Record(engine, upkeep, health);
      if (claim) {
        wake = false;
        if (!Claim(engine, watch)) {  // the extension was dropped, or updated
          engine.Reset();
          ready = false;  // the next turn's check leaves, or waits for the update
          continue;
        }
        next_poll = clock.Now() + milliseconds(guc_poll_interval_ms);
      }
      engine.StartRequests();
      upkeep.Tick(engine.InFlight() == 0);
      health.Tick();  // hyperline.health() and NOTIFY hyperline_alerts
      Wait(engine, upkeep, health, clock, next_poll);
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
      engine.Reset();
      ready = false;
      WarnThrottled(error);
      WaitOnLatch(kErrorPauseMs);
    }
  }
  // Stopping: keep what is already known, if the database lets us.
  try {
    if (engine.HasStats()) stats::Publish(engine.TakeStats());
    if (ready && engine.HasOutcomes()) {
      store::TxnRecord(engine.TakeRecords());
      engine.Recorded();
    }
  } catch (...) {
    AbortAfterError();
  }
}

}  // namespace
}  // namespace hyperline::pg

using namespace hyperline::pg;

// Delivery worker: connects to the database the launcher found (by oid: a
// rename does not matter) and delivers. Why register before connecting: a DROP
// DATABASE that started meanwhile either sees us in the registry and stops us,
// or has blocked the database and we leave at once.
namespace hyperline::pg {
void DeliveryMain(Datum arg) {
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  if (!RegisterWorker(WorkerKind::kDelivery, DatumGetObjectId(arg))) proc_exit(0);
  BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
  ApplyWorkerSettings();
  CppGuard([] { RunDelivery(); });
  proc_exit(0);
}
}  // namespace hyperline::pg

HYPERLINE_BGWORKER_MAIN(hyperline_delivery_main, hyperline::pg::DeliveryMain)
