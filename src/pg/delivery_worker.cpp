// delivery_worker.cpp: the delivery worker, one per database it serves
// (dynamic, entry hyperline_delivery_main, started by the launcher). It waits
// quietly for CREATE EXTENSION, then runs the loop:
//   record outcomes → claim due rows → start requests → wait for answers,
// woken by the latch (a commit that wrote outbox rows) or every
// hyperline.poll_interval_ms. It starts the upkeep worker (upkeep_worker.hpp)
// from time to time. The engine itself is in delivery.hpp.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "pg/delivery.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
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

PGDLLEXPORT void hyperline_delivery_main(Datum arg);
}

namespace hyperline::pg {
namespace {

using std::chrono::milliseconds;

constexpr int kRecordDelayMs = 20;     // outcomes wait at most this long
constexpr size_t kRecordBatch = 2000;  // ... or until this many have come
constexpr int kErrorPauseMs = 1000;    // after an error, before trying again

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
      wait_ms = std::min<long>(wait_ms, TickSyncScheduler().count());  // query models' schedule
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

}  // namespace
}  // namespace hyperline::pg

using namespace hyperline::pg;

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
