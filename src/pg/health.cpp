// health.cpp: SQL hyperline.health() and the delivery worker's alerts
// (health.hpp).
//
// health() runs as its caller: the worker check reads shared memory (whether a
// delivery worker serves this database, runs, and has turned its loop
// recently: its heartbeat); the other checks are short statements that row
// level security filters like any of the caller's queries. The delivery
// worker evaluates the same function (seeing everything) for its alerts.
// (Headers that include src/core come before the Postgres ones.)
#include "pg/catalog.hpp"
#include "pg/outbox_store.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "pg/health.hpp"

#include "pg/db_lifecycle.hpp"
#include "pg/gate.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/stats.hpp"
#include "pg/worker_common.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace hyperline::pg {
namespace {

// Heartbeat slack beyond hyperline.poll_interval_ms (an idle worker sleeps that
// long between turns; a turn may also claim, record or purge).
constexpr int64 kHeartbeatWarningMs = 15000;
constexpr int64 kHeartbeatCriticalMs = 60000;
// A worker registered this long without delivering is stuck (a version
// mismatch, or an extension it cannot read).
constexpr int64 kStartingMs = 10000;
// Longest last_error of a destination quoted in the destinations check.
constexpr int kMaxQuotedError = 200;

// The checks' statements, run as the caller (row level security decides what
// they see) with search_path pinned to pg_catalog, pg_temp.
constexpr const char* kOldestPendingSql =
    "SELECT o.created_at FROM hyperline.outbox o"
    " WHERE o.status OPERATOR(pg_catalog.=) 'pending' ORDER BY o.id LIMIT 1";
constexpr const char* kUnauthorizedSql =
    "SELECT d.name, d.last_error FROM hyperline.destinations d"
    " WHERE d.state OPERATOR(pg_catalog.=) 'unauthorized' ORDER BY d.name COLLATE \"C\"";
constexpr const char* kFailedLastHourSql =
    "SELECT COALESCE(pg_catalog.sum(s.failed_last_hour), 0)::pg_catalog.int8"
    " FROM hyperline.stats() s WHERE s.kind OPERATOR(pg_catalog.=) 'destination'";
// Enabled query models: how many, whose last finished run failed, and which
// are overdue (due more than a minute ago, none running). Runs are in
// hyperline.sync_runs (run_id, model, status running|succeeded|failed).
constexpr const char* kQueryModelsSql =
    "SELECT pg_catalog.count(*),"
    " pg_catalog.count(*) FILTER (WHERE l.status OPERATOR(pg_catalog.=) 'failed'),"
    " pg_catalog.count(*) FILTER (WHERE m.schedule IS NOT NULL"
    "   AND m.next_run_at OPERATOR(pg_catalog.<) (pg_catalog.now()"
    "     OPERATOR(pg_catalog.-) '1 minute'::pg_catalog.interval)"
    "   AND NOT EXISTS (SELECT 1 FROM hyperline.sync_runs r"
    "     WHERE r.model OPERATOR(pg_catalog.=) m.name AND r.status OPERATOR(pg_catalog.=) 'running'))"
    " FROM hyperline._models m"
    " LEFT JOIN LATERAL (SELECT r.status FROM hyperline.sync_runs r"
    "   WHERE r.model OPERATOR(pg_catalog.=) m.name AND r.status OPERATOR(pg_catalog.<>) 'running'"
    "   ORDER BY r.run_id DESC LIMIT 1) l ON true"
    " WHERE m.kind OPERATOR(pg_catalog.=) 'query' AND m.enabled";

// Runs a statement of the checks (inside SPI); ERROR if it fails.
void Run(const char* sql) {
  int rc = SPI_execute(sql, true, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
}

// An interval of `us` microseconds as Postgres prints it (e.g. 00:07:12).
char* IntervalText(int64 us) {
  Interval* iv = static_cast<Interval*>(palloc0(sizeof(Interval)));
  iv->time = us - us % USECS_PER_SEC;
  return DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv)));
}

// The worker check: a delivery worker serves this database, runs, delivers,
// and has turned its loop recently.
void WorkerCheck(const char** status, char** detail) {
  *status = "ok";
  ServedState served = CurrentDatabaseServedState();
  WorkerInfo w;
  TimestampTz now = GetCurrentTimestamp();
  if (served != ServedState::kServed) {
    *status = "critical";
    *detail = psprintf("no pg_hyperline worker delivers from this database: %s",
                       NotServedDetail(served));
    return;
  }
  if (!FindDeliveryWorker(MyDatabaseId, &w)) {
    *status = "critical";
    *detail = pstrdup(
        "no delivery worker runs in this database (the launcher starts one within seconds; "
        "see the server log)");
    return;
  }
  int64 age_ms = std::max<int64>(0, (now - w.heartbeat) / 1000);
  int64 up_ms = std::max<int64>(0, (now - w.started_at) / 1000);
  int64 poll = guc_poll_interval_ms;
  if (age_ms > poll + kHeartbeatCriticalMs) {
    *status = "critical";
    *detail = psprintf("the delivery worker (pid %d) has not turned its loop for %lld s", w.pid,
                       static_cast<long long>(age_ms / 1000));
  } else if (!w.serving && up_ms > kStartingMs) {
    *status = "critical";
    *detail = psprintf(
        "the delivery worker (pid %d) runs but does not deliver (its pg_stat_activity.query "
        "says why, e.g. a pending ALTER EXTENSION pg_hyperline UPDATE)",
        w.pid);
  } else if (age_ms > poll + kHeartbeatWarningMs) {
    *status = "warning";
    *detail = psprintf("the delivery worker (pid %d) has not turned its loop for %lld s", w.pid,
                       static_cast<long long>(age_ms / 1000));
  } else if (!guc_enabled) {
    *status = "warning";
    *detail = psprintf("delivery is off (hyperline.enabled = off); delivery worker pid %d", w.pid);
  } else {
    *detail = psprintf("delivery worker pid %d, last turn %lld ms ago", w.pid,
                       static_cast<long long>(age_ms));
  }
}

// SQL hyperline.health() RETURNS TABLE(check_name text, status text, detail
// text): one row per check, as the caller sees things.
Datum Health(FunctionCallInfo fcinfo) {
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  auto put = [rsinfo](const char* name, const char* status, const char* detail) {
    Datum values[3] = {CStringGetTextDatum(name), CStringGetTextDatum(status),
                       CStringGetTextDatum(detail)};
    bool nulls[3] = {false, false, false};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  };
  const char* status = "ok";
  char* detail = nullptr;
  WorkerCheck(&status, &detail);
  put("worker", status, detail);

  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
  int nestlevel = NewGUCNestLevel();
  PinSearchPath();
  TimestampTz now = GetCurrentTimestamp();
  bool isnull = true;

  // backlog: the oldest pending event against hyperline.alert_backlog_age.
  Run(kOldestPendingSql);
  int64 limit_us = static_cast<int64>(guc_alert_backlog_age_s) * USECS_PER_SEC;
  char* limit = IntervalText(limit_us);
  if (SPI_processed == 0) {
    put("backlog", "ok", "no event is pending");
  } else {
    TimestampTz oldest =
        DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    int64 age = std::max<int64>(0, now - oldest);
    status = age > 2 * limit_us ? "critical" : age > limit_us ? "warning" : "ok";
    put("backlog", status,
        psprintf("the oldest pending event waits since %s (%s; hyperline.alert_backlog_age is %s)",
                 timestamptz_to_str(oldest), IntervalText(age), limit));
  }

  // destinations: any unauthorized (a refused key, or none since a restore).
  Run(kUnauthorizedSql);
  if (SPI_processed == 0) {
    put("destinations", "ok", "no destination is unauthorized");
  } else {
    StringInfoData text;
    initStringInfo(&text);
    appendStringInfoString(&text, "unauthorized: ");
    for (uint64 i = 0; i < SPI_processed; ++i) {
      char* name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
      char* error = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
      if (i > 0) appendStringInfoString(&text, "; ");
      appendStringInfoString(&text, name);
      if (error != nullptr) {
        int len = pg_mbcliplen(error, static_cast<int>(strlen(error)), kMaxQuotedError);
        appendStringInfo(&text, " (%.*s%s)", len, error, error[len] != '\0' ? "…" : "");
      }
    }
    put("destinations", "critical", text.data);
  }

  // failed_events: events failed in the last hour (counted in shared memory).
  Run(kFailedLastHourSql);
  int64 failed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  if (failed == 0) {
    put("failed_events", "ok", "no event failed in the last hour");
  } else {
    put("failed_events", "warning",
        psprintf("events failed in the last hour: %lld (hyperline.outbox, status 'failed', "
                 "says why)",
                 static_cast<long long>(failed)));
  }

  // query_models: a query model whose last run failed, or that is overdue.
  Oid schema = get_namespace_oid(catalog::kSchema, false);
  if (!OidIsValid(get_relname_relid("sync_runs", schema))) {
    put("query_models", "ok", "no query models");
  } else {
    Run(kQueryModelsSql);
    HeapTuple t = SPI_tuptable->vals[0];
    int64 models = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull));
    int64 failing = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull));
    int64 overdue = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 3, &isnull));
    if (failing > 0 || overdue > 0) {
      put("query_models", failing > 0 ? "critical" : "warning",
          psprintf("query models whose last run failed: %lld; overdue: %lld (see "
                   "hyperline.sync_runs)",
                   static_cast<long long>(failing), static_cast<long long>(overdue)));
    } else {
      put("query_models", "ok",
          models == 0 ? "no query models"
                      : psprintf("query models: %lld, none failing or overdue",
                                 static_cast<long long>(models)));
    }
  }
  AtEOXact_GUC(true, nestlevel);
  SPI_finish();
  return (Datum)0;
}

}  // namespace

void HealthMonitor::Soon() {
  next_ = std::min(next_, std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
}

void HealthMonitor::Tick() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_) return;
  next_ = now + kInterval;
  std::string error;
  try {
    ReportActivity("checking health");
    std::vector<alerts::CheckStatus> checks = store::BeginHealth();
    stats::AlertStatus saved[stats::kMaxAlertChecks];
    int nsaved = 0;
    char* database = nullptr;
    PgGuard([&] {
      nsaved = stats::LoadAlertStatuses(saved, stats::kMaxAlertChecks);
      database = get_database_name(MyDatabaseId);
      stats::ForgetDroppedDatabases();  // their hyperline.stats entries
    });
    std::vector<alerts::CheckStatus> previous;
    previous.reserve(nsaved);
    for (int i = 0; i < nsaved; ++i) previous.push_back({saved[i].check_name, saved[i].status, ""});
    std::vector<alerts::Alert> changes = alerts::Changes(previous, checks);
    std::vector<std::string> payloads;
    payloads.reserve(changes.size());
    auto at = std::chrono::system_clock::now();
    for (const alerts::Alert& a : changes) {
      payloads.push_back(alerts::Payload(a, database != nullptr ? database : "", at));
    }
    store::FinishHealth(kAlertChannel, payloads);
    PgGuard([] {
      if (stats::TakeOverflow()) {
        ereport(WARNING,
                (errmsg("pg_hyperline: hyperline.stats is full: some destinations or models are "
                        "not counted"),
                 errhint("Raise hyperline.max_stats_entries (takes a restart), or run "
                         "hyperline.reset_stats() in databases with many dropped models.")));
      }
    });
    if (changes.empty() && nsaved == static_cast<int>(checks.size())) return;
    // Sent (committed): remember the statuses.
    stats::AlertStatus current[stats::kMaxAlertChecks];
    int n = 0;
    for (const alerts::CheckStatus& c : checks) {
      if (n == stats::kMaxAlertChecks) break;
      stats::AlertStatus& s = current[n++];
      memset(&s, 0, sizeof s);
      strncpy(s.check_name, c.check_name.c_str(), sizeof s.check_name - 1);
      strncpy(s.status, c.status.c_str(), sizeof s.status - 1);
    }
    for (const alerts::Alert& a : changes) {
      const char* name = a.check_name.c_str();
      const char* status = a.status.c_str();
      const char* was = a.previous_status.c_str();
      const char* detail = a.detail.c_str();
      PgGuard([&] {
        ereport(LOG, (errmsg("pg_hyperline: health check %s is %s (was %s): %s", name, status, was,
                             detail)));
      });
    }
    PgGuard([&] { stats::StoreAlertStatuses(current, n); });
  } catch (const PgException& e) {
    error = e.what();
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) {
    AbortAfterError();
    WarnThrottled("health check failed: " + error);
  }
}

}  // namespace hyperline::pg

HYPERLINE_SQL_FUNCTION_PG(hyperline_health, hyperline::pg::Health)
