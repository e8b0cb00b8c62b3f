// guc.cpp: definitions of the hyperline.* settings.
#include "pg/guc.hpp"

#include <climits>

extern "C" {
#include "postgres.h"

#include "utils/guc.h"
}

namespace hyperline::pg {

char* guc_database = nullptr;
bool guc_enabled = true;
int guc_max_attempts = 12;
int guc_retry_base_ms = 1000;
int guc_retry_max_ms = 300000;
int guc_delivered_retention_s = 7 * 24 * 3600;
int guc_poll_interval_ms = 1000;
int guc_max_concurrent_requests = 4;
bool guc_allow_http = false;
int guc_claim_batch = 5000;
int guc_vacuum_threshold = 50000;
char* guc_admin_role = nullptr;
int guc_max_request_bytes = 5 * 1024 * 1024;
int guc_max_sync_workers = 2;
int guc_alert_backlog_age_s = 300;
int guc_max_stats_entries = 1000;

void DefineSettings() {
  DefineCustomStringVariable(
      "hyperline.database", "The only database served by a delivery worker; empty: every database.",
      "A delivery worker runs in each served database where the extension "
      "exists.",
      &guc_database, "", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("hyperline.enabled", "Whether the delivery worker sends events.",
                           "When off, events stay pending in hyperline.outbox.", &guc_enabled, true,
                           PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("hyperline.max_attempts",
                          "Requests that may carry an event before it is marked failed.",
                          "401/403 answers do not count.", &guc_max_attempts, 12, 1, 1000,
                          PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("hyperline.retry_base_ms", "First retry delay (doubles each attempt).",
                          nullptr, &guc_retry_base_ms, 1000, 1, 3600000, PGC_SIGHUP, GUC_UNIT_MS,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("hyperline.retry_max_ms", "Longest retry delay.",
                          "A Retry-After from the destination is honoured even if longer.",
                          &guc_retry_max_ms, 300000, 1, 86400000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
                          nullptr, nullptr);
  DefineCustomIntVariable("hyperline.delivered_retention",
                          "How long delivered events are kept in hyperline.outbox.",
                          "-1 keeps them forever.", &guc_delivered_retention_s, 7 * 24 * 3600, -1,
                          INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("hyperline.poll_interval_ms",
                          "How often the worker looks for due events when not woken.", nullptr,
                          &guc_poll_interval_ms, 1000, 10, 3600000, PGC_SIGHUP, GUC_UNIT_MS,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "hyperline.max_concurrent_requests", "HTTP requests the worker keeps in flight at once.",
      nullptr, &guc_max_concurrent_requests, 4, 1, 256, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("hyperline.allow_http",
                           "Allow plain http:// destinations on non-loopback hosts.",
                           "Superusers only; off by default.", &guc_allow_http, false, PGC_SUSET, 0,
                           nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "hyperline.claim_batch", "Most events the worker claims in one transaction.", nullptr,
      &guc_claim_batch, 5000, 1, 100000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "hyperline.vacuum_threshold",
      "Events delivered or purged after which the upkeep worker vacuums hyperline.outbox.",
      "0 leaves vacuuming to autovacuum alone.", &guc_vacuum_threshold, 50000, 0, INT_MAX,
      PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomStringVariable(
      "hyperline.admin_role",
      "Role whose members see every model, event and run, as superusers do.",
      "Empty: only superusers. Members may not change others' models.", &guc_admin_role, "",
      PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "hyperline.max_request_bytes", "Largest body of one HTTP request the worker sends.",
      "Batches are cut to fit; an event larger than this fails without being sent. The "
      "worker also reads at most twice this many bytes of events per claim.",
      &guc_max_request_bytes, 5 * 1024 * 1024, 1024, INT_MAX, PGC_SIGHUP, GUC_UNIT_BYTE, nullptr,
      nullptr, nullptr);
  DefineCustomIntVariable(
      "hyperline.max_sync_workers",
      "Background workers per database that run query models on their schedule.",
      "Runs due at once beyond this number wait for a worker. 0 stops scheduled runs "
      "(run_model still runs a model).",
      &guc_max_sync_workers, 2, 0, 64, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "hyperline.alert_backlog_age",
      "Age of the oldest pending event above which hyperline.health() reports the backlog.",
      "warning above it, critical above twice it. The delivery worker's alerts use the "
      "server's setting; a superuser may SET another for a session's own health() calls.",
      &guc_alert_backlog_age_s, 300, 1, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "hyperline.max_stats_entries",
      "Destinations and models (of all databases) whose counters hyperline.stats keeps.",
      "Shared memory, about 3.5 kB each; a name beyond it is not counted until "
      "hyperline.reset_stats() frees entries.",
      &guc_max_stats_entries, 1000, 16, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  MarkGUCPrefixReserved("hyperline");
}

}  // namespace hyperline::pg
