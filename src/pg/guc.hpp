// guc.hpp: every configuration setting of pg_hyperline (all named hyperline.*).
#pragma once

namespace hyperline::pg {

extern char* guc_database;             // hyperline.database: the only database served ("" = all)
extern bool guc_enabled;               // hyperline.enabled: worker delivers at all
extern int guc_max_attempts;           // hyperline.max_attempts
extern int guc_retry_base_ms;          // hyperline.retry_base_ms
extern int guc_retry_max_ms;           // hyperline.retry_max_ms
extern int guc_delivered_retention_s;  // hyperline.delivered_retention (seconds; -1 keeps forever)
extern int guc_poll_interval_ms;       // hyperline.poll_interval_ms
extern int guc_max_concurrent_requests;  // hyperline.max_concurrent_requests
extern bool guc_allow_http;              // hyperline.allow_http (superuser only)
extern int guc_claim_batch;              // hyperline.claim_batch: rows claimed per transaction
extern char* guc_admin_role;       // hyperline.admin_role: sees every model (superuser-set)
extern int guc_vacuum_threshold;  // hyperline.vacuum_threshold: purged rows per worker VACUUM
extern int guc_max_request_bytes;  // hyperline.max_request_bytes: largest request body
extern int guc_max_sync_workers;  // hyperline.max_sync_workers: per database, for query models
extern int guc_alert_backlog_age_s;  // hyperline.alert_backlog_age: health()'s backlog threshold
extern int guc_max_stats_entries;    // hyperline.max_stats_entries: rows of hyperline.stats kept

// Defines the settings; called once from _PG_init.
void DefineSettings();

}  // namespace hyperline::pg
