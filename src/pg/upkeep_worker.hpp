// upkeep_worker.hpp: outbox upkeep — purging delivered events and vacuuming
// hyperline.outbox — run in a short-lived background worker beside the
// delivery (entry hyperline_upkeep_main), or inline by the delivery worker
// when no worker slot is free.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "pg/guard.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
}

namespace hyperline::pg {

using SteadyClock = std::chrono::steady_clock;

// What an upkeep run is asked to do (its bgw_main_arg).
constexpr uint32 kUpkeepPurge = 1;   // purge delivered rows past the retention
constexpr uint32 kUpkeepVacuum = 2;  // vacuum the outbox

// How often delivered rows are purged while purges find some.
constexpr int kPurgeIntervalMs = 10000;

// Vacuums hyperline.outbox in this process (see upkeep_worker.cpp).
void VacuumOutbox();

// How long until the next purge after one that deleted `purged` rows.
long PurgeInterval(int64_t purged);

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
      // (The database name is cut to fit bgw_name.)
      constexpr char kPrefix[] = "pg_hyperline upkeep for database ";
      snprintf(w.bgw_name, BGW_MAXLEN, "%s%.*s", kPrefix,
               static_cast<int>(BGW_MAXLEN - sizeof kPrefix), MyBgworkerEntry->bgw_extra);
      snprintf(w.bgw_type, BGW_MAXLEN, "pg_hyperline upkeep");
      memcpy(w.bgw_extra, &MyDatabaseId, sizeof(Oid));  // it connects by oid
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
    if (!started) no_slot_until_ = SteadyClock::now() + std::chrono::milliseconds(1000);
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

// The delivery worker's upkeep schedule: when to purge delivered rows past the
// retention and when to vacuum the outbox (after hyperline.vacuum_threshold
// dead row versions), in the upkeep worker beside the delivery, or inline
// when no worker slot is free (and then only between sends).
class Upkeep {
 public:
  // Row versions left dead by recorded outcomes (each status change is one).
  void NoteDeadVersions(int64_t n) { dead_since_vacuum_ += n; }
  // The settings changed: the retention may have, so purge soon.
  void SettingsChanged();
  // Starts what is due; `idle`: no request in flight, so the delivery worker
  // may do it itself if no upkeep worker can be started.
  void Tick(bool idle);
  // When Tick next has something to do (a running upkeep worker wakes the
  // delivery worker when it stops: bgw_notify_pid).
  std::optional<SteadyClock::time_point> NextDeadline();

 private:
  bool VacuumWanted() const;

  UpkeepRunner runner_;
  SteadyClock::time_point next_purge_ =
      SteadyClock::now() + std::chrono::milliseconds(kPurgeIntervalMs);
  int64_t dead_since_vacuum_ = 0;  // events recorded or purged since the last vacuum
};

}  // namespace hyperline::pg
