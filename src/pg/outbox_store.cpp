// outbox_store.cpp: the workers' SQL (see outbox_store.hpp).
//
// Why the shape: every Postgres call runs inside PgGuard, one guard per step,
// and only reads C++ containers there (no C++ allocation inside PG_TRY).
// Results leave Postgres as palloc'd C strings and become C++ objects outside
// the guard.
#include "pg/outbox_store.hpp"

#include <algorithm>
#include <cstring>

#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/unix_time.hpp"

extern "C" {
#include "access/commit_ts.h"
#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#ifndef HYPERLINE_VERSION
#define HYPERLINE_VERSION "dev"
#endif

namespace hyperline::pg::store {
namespace {

using delivery::ClaimDecisions;
using delivery::ClaimedRow;
using delivery::ClaimPlan;
using delivery::DestinationConfig;
using delivery::OutboxStatus;
using delivery::Records;

constexpr int kPurgeBatch = 10000;
constexpr int kPurgeRounds = 100;

// --- SQL ---------------------------------------------------------------------
// Names as in catalog.hpp; values only as $n; statuses as literals so that the
// partial indexes (WHERE status = 'pending') match. Mind the precedence: every
// OPERATOR(...) binds alike, left to right, so parentheses group them.

constexpr const char* kLoadDestinationsSql =
    "SELECT d.name, d.base_url, k.api_key, d.batch_size,"
    " d.max_requests_per_second::pg_catalog.float8, d.timeout_ms, d.state, d.last_error,"
    " d.key_version, d.allow_http"
    " FROM hyperline._destinations d LEFT JOIN _hyperline.api_keys k"
    " ON k.destination OPERATOR(pg_catalog.=) d.name";

// The same columns for one model's destination (test_delivery).
constexpr const char* kModelDestinationSql =
    "SELECT d.name, d.base_url, k.api_key, d.batch_size,"
    " d.max_requests_per_second::pg_catalog.float8, d.timeout_ms, d.state, d.last_error,"
    " d.key_version, d.allow_http"
    " FROM hyperline._models m JOIN hyperline._destinations d"
    " ON d.name OPERATOR(pg_catalog.=) m.destination"
    " LEFT JOIN _hyperline.api_keys k ON k.destination OPERATOR(pg_catalog.=) d.name"
    " WHERE m.name OPERATOR(pg_catalog.=) $1";

// Claims due rows, oldest first, skipping rows someone else has locked, and
// marks them 'sending' in the same statement (rows the engine then decides not
// to send are set back in the same transaction). At most $2 rows, and rows
// only while the stored size of the payloads before them is under $3 bytes
// (the first row whatever its size), so that one claim never reads more than
// about $3 bytes. The RETURNING columns: id, model, event_key, whether the row
// is a DELETE, payload, destination, attempts, stored payload size, and when
// the row's transaction committed (hyperline.stats's latency; COMMITTED).
// SET_EXTRA adds assignments to the UPDATE.
#define HYPERLINE_CLAIM_SQL(IS_DELETE, SET_EXTRA, COMMITTED)                                  \
  "UPDATE hyperline.outbox o SET status = 'sending'" SET_EXTRA                                \
  " WHERE o.id OPERATOR(pg_catalog.=) ANY (ARRAY("                                            \
  "   SELECT c.id FROM ("                                                                     \
  "     SELECT l.id, l.size,"                                                                 \
  "       pg_catalog.sum(l.size) OVER (ORDER BY l.id ROWS UNBOUNDED PRECEDING) AS running"    \
  "     FROM (SELECT p.id, COALESCE(pg_catalog.pg_column_size(p.payload), 0) AS size"         \
  "       FROM hyperline.outbox p"                                                            \
  "       WHERE p.status OPERATOR(pg_catalog.=) 'pending'"                                    \
  "       AND p.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.now()"                     \
  "       AND p.destination OPERATOR(pg_catalog.=) ANY ($1)"                                  \
  "       ORDER BY p.id LIMIT $2 FOR UPDATE SKIP LOCKED) l) c"                                \
  "   WHERE c.running OPERATOR(pg_catalog.-) c.size OPERATOR(pg_catalog.<) $3))"              \
  " RETURNING o.id, o.model, o.event_key, " IS_DELETE ", o.payload, o.destination,"           \
  " o.attempts, COALESCE(pg_catalog.pg_column_size(o.payload), 0), " COMMITTED

// The 0.1.0 layout: operation 'delete' is a DELETE request; the latency is
// measured from created_at (the start of the row's transaction).
constexpr const char* kClaimByOperationSql =
    HYPERLINE_CLAIM_SQL("(o.operation OPERATOR(pg_catalog.=) 'delete')", "", "o.created_at");
// With the method column (0.2.0): what each row sends (a row without one, as
// the 0.1.0 layout wrote it, by its operation).
#define HYPERLINE_BY_METHOD \
  "COALESCE(o.method OPERATOR(pg_catalog.=) 'DELETE', o.operation OPERATOR(pg_catalog.=) 'delete')"
constexpr const char* kClaimByMethodSql =
    HYPERLINE_CLAIM_SQL(HYPERLINE_BY_METHOD, "", "o.created_at");
// With committed_at (0.2.0, hyperline.stats): the first claim of a row records
// when its transaction committed, read from its xmin while that is still the
// inserting transaction's (track_commit_timestamp on). Rows put back keep it,
// so a retried event's latency still starts at its commit.
constexpr const char* kClaimTrackedSql = HYPERLINE_CLAIM_SQL(
    HYPERLINE_BY_METHOD,
    ", committed_at = COALESCE(o.committed_at, pg_catalog.pg_xact_commit_timestamp(o.xmin))",
    "COALESCE(o.committed_at, o.created_at)");
// The same with track_commit_timestamp off: created_at (a committed_at kept
// from when it was on still counts).
constexpr const char* kClaimUntrackedSql =
    HYPERLINE_CLAIM_SQL(HYPERLINE_BY_METHOD, "", "COALESCE(o.committed_at, o.created_at)");
#undef HYPERLINE_BY_METHOD
#undef HYPERLINE_CLAIM_SQL

// Latest next_attempt_at of rows waiting for a retry, in ms from now (read
// once at start).
constexpr const char* kWaitingSql =
    "SELECT (pg_catalog.date_part('epoch', pg_catalog.max(o.next_attempt_at)"
    " OPERATOR(pg_catalog.-) pg_catalog.now()) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8"
    " FROM hyperline.outbox o"
    " WHERE o.status OPERATOR(pg_catalog.=) ANY ('{pending,sending}'::pg_catalog.text[])"
    " AND o.next_attempt_at OPERATOR(pg_catalog.>) pg_catalog.now()";

constexpr const char* kResetSendingSql =
    "UPDATE hyperline.outbox o SET status = 'pending'"
    " WHERE o.status OPERATOR(pg_catalog.=) 'sending'";

// Why the statements below are shaped as they are: right after a bulk insert
// the outbox's statistics can be far off, and a join of unnest() with the
// outbox then risks a nested loop comparing every pair (minutes instead of
// milliseconds). Updates by id use "id = ANY($1)" (an index scan on the primary
// key), with the status test written so that no partial index qualifies, and
// per-key lookups are LATERAL so that the key list drives an index lookup.

// Sets the status (and, if given, last_error) of claimed rows not taken.
constexpr const char* kSetStatusSql =
    "UPDATE hyperline.outbox o SET status = $2, last_error = COALESCE($3, o.last_error)"
    " WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)";

// Older rows of a taken key still waiting (e.g. for a retry) will never be
// sent: the taken row is newer. Only rows the worker put off can be waiting
// (next_attempt_at > created_at; a fresh older row is claimed with the newer
// one): that is exactly what outbox_key_idx holds.
constexpr const char* kSupersedeOlderSql =
    "UPDATE hyperline.outbox o SET status = 'superseded'"
    " WHERE o.id OPERATOR(pg_catalog.=) ANY (ARRAY("
    "   SELECT q.id FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]),"
    "     pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.int8[]))"
    "     AS k(model, event_key, id)"
    "   CROSS JOIN LATERAL (SELECT p.id FROM hyperline.outbox p"
    "     WHERE p.model OPERATOR(pg_catalog.=) k.model"
    "     AND p.event_key OPERATOR(pg_catalog.=) k.event_key"
    "     AND p.status OPERATOR(pg_catalog.=) 'pending'"
    "     AND p.next_attempt_at OPERATOR(pg_catalog.>) p.created_at"
    "     AND p.id OPERATOR(pg_catalog.<) k.id) q))"
    " RETURNING o.model, o.destination";

// Writes one group of outcomes (rows with the same result). $8 keep: the rows
// were not sent, so their http_status and last_error stay. $6 delay (NULL:
// keep next_attempt_at); $7 the key version a refused key had: due at once if
// the destination's key changed since.
constexpr const char* kRecordSql =
    "UPDATE hyperline.outbox o SET status = $2, attempts = o.attempts OPERATOR(pg_catalog.+) $3,"
    " http_status = CASE WHEN $8 THEN o.http_status ELSE $4 END,"
    " last_error = CASE WHEN $8 THEN o.last_error ELSE $5 END,"
    " delivered_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'delivered' THEN pg_catalog.now()"
    "   ELSE o.delivered_at END,"
    " next_attempt_at = CASE"
    "   WHEN $6::pg_catalog.int8 IS NULL THEN o.next_attempt_at"
    "   WHEN $7::pg_catalog.int4 IS NOT NULL AND NOT COALESCE((SELECT d.key_version"
    "     OPERATOR(pg_catalog.=) $7::pg_catalog.int4 FROM hyperline._destinations d"
    "     WHERE d.name OPERATOR(pg_catalog.=) o.destination), false)"
    "     THEN pg_catalog.now()"
    "   ELSE pg_catalog.now() OPERATOR(pg_catalog.+) ($6::pg_catalog.float8"
    "     OPERATOR(pg_catalog.*) '1 millisecond'::pg_catalog.interval) END"
    " WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)"
    " AND (o.status OPERATOR(pg_catalog.=) 'sending') IS TRUE";

// A destination's state and last_error, unless its key changed since the
// answer (then the answer is about an old key).
constexpr const char* kDestinationUpdateSql =
    "UPDATE hyperline._destinations d SET state = $2, last_error = $3"
    " WHERE d.name OPERATOR(pg_catalog.=) $1 AND d.key_version OPERATOR(pg_catalog.=) $4"
    " AND NOT (d.state OPERATOR(pg_catalog.=) $2"
    "   AND COALESCE(d.last_error OPERATOR(pg_catalog.=) $3, d.last_error IS NULL AND $3 IS NULL))";

// The request log (hyperline.requests): one row per answered request.
constexpr const char* kLogRequestsSql =
    "INSERT INTO hyperline._requests (destination, sent_at, duration_ms, events, http_status, error)"
    " SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]),"
    " pg_catalog.unnest($2::pg_catalog.timestamptz[]), pg_catalog.unnest($3::pg_catalog.float8[]),"
    " pg_catalog.unnest($4::pg_catalog.int4[]), pg_catalog.unnest($5::pg_catalog.int4[]),"
    " pg_catalog.unnest($6::pg_catalog.text[]))";

// Deletes the oldest requests past the retention ($1 seconds), at most $2,
// found through the sent_at index.
constexpr const char* kPurgeRequestsSql =
    "DELETE FROM hyperline._requests r WHERE r.id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT p.id"
    " FROM hyperline._requests p"
    " WHERE p.sent_at OPERATOR(pg_catalog.<) (pg_catalog.now()"
    "   OPERATOR(pg_catalog.-) ($1::pg_catalog.float8"
    "   OPERATOR(pg_catalog.*) '1 second'::pg_catalog.interval))"
    " ORDER BY p.sent_at LIMIT $2))";

// hyperline.health(), as the delivery worker evaluates it for its alerts.
constexpr const char* kHealthSql =
    "SELECT h.check_name, h.status, h.detail FROM hyperline.health() h";

constexpr const char* kNotifySql = "SELECT pg_catalog.pg_notify($1, $2)";

// Why two scans: the rows to purge are found by a sequential scan that stops
// at the batch size (delivered rows have no index; the oldest come first),
// and deleted by id through the primary key ("id = ANY (ARRAY(...))" keeps
// the planner from joining with a second sequential scan).
constexpr const char* kPurgeSql =
    "DELETE FROM hyperline.outbox o WHERE o.id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT p.id"
    " FROM hyperline.outbox p"
    " WHERE p.status OPERATOR(pg_catalog.=) ANY ('{delivered,superseded}'::pg_catalog.text[])"
    " AND COALESCE(p.delivered_at, p.created_at) OPERATOR(pg_catalog.<) (pg_catalog.now()"
    "   OPERATOR(pg_catalog.-) ($1::pg_catalog.float8"
    "   OPERATOR(pg_catalog.*) '1 second'::pg_catalog.interval))"
    " LIMIT $2))";

// --- Postgres helpers (call only inside PgGuard) -----------------------------

// Prepared statements, kept for the life of the worker while the extension
// stays the same (same pg_extension row and version).
struct Plans {
  Oid extension = InvalidOid;
  char version[64] = {0};
  bool has_method = false;
  bool has_committed_at = false;  // outbox.committed_at (0.2.0)
  bool has_request_log = false;   // hyperline._requests (0.2.0)
  SPIPlanPtr load_destinations = nullptr;
  SPIPlanPtr claim = nullptr;
  SPIPlanPtr set_status = nullptr;
  SPIPlanPtr supersede_older = nullptr;
  SPIPlanPtr record = nullptr;
  SPIPlanPtr destination_update = nullptr;
  SPIPlanPtr purge = nullptr;
  SPIPlanPtr log_requests = nullptr;
  SPIPlanPtr purge_requests = nullptr;
};
Plans plans;

// Frees every prepared statement (the extension was re-created or updated).
void ForgetPlans() {
  for (SPIPlanPtr* p : {&plans.load_destinations, &plans.claim, &plans.set_status,
                        &plans.supersede_older, &plans.record, &plans.destination_update,
                        &plans.purge, &plans.log_requests, &plans.purge_requests}) {
    if (*p != nullptr) SPI_freeplan(*p);
    *p = nullptr;
  }
}

// Prepares a statement once and keeps it.
SPIPlanPtr Prepare(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types) {
  if (*slot == nullptr) {
    SPIPlanPtr plan = SPI_prepare(sql, nargs, types);
    if (plan == nullptr) {
      elog(ERROR, "pg_hyperline: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    }
    if (SPI_keepplan(plan) != 0) elog(ERROR, "pg_hyperline: SPI_keepplan failed");
    *slot = plan;
  }
  return *slot;
}

// Starts a short transaction with SPI and a snapshot.
void BeginTxn() {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
  PushActiveSnapshot(GetTransactionSnapshot());
}

// Commits the transaction begun by BeginTxn.
void CommitTxn() {
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  // Why: a background worker must flush its statistics itself (a backend does
  // it when idle). Without them autovacuum would never see the dead rows the
  // worker's updates leave in the outbox. Rate-limited inside Postgres.
  pgstat_report_stat(false);
}

// Why: right after a bulk insert the outbox's statistics can be far off, and
// the planner may then sort every pending row to claim a few thousand, or read
// the whole outbox to update a few ids. The claim and record statements are
// index lookups by design, so for their transactions (only) sequential scans,
// sorts and bitmap scans are off; the reset at start and the purge keep the
// planner's choice (a sequential scan is right for them). Like SET LOCAL: the
// settings end with the transaction.
void IndexLookupsOnly() {
  for (const char* name : {"enable_seqscan", "enable_sort", "enable_bitmapscan"}) {
    (void)set_config_option(name, "off", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
                            false);
  }
}

// Runs a prepared statement and checks its result code.
void Execute(SPIPlanPtr plan, Datum* values, const char* nulls, int expected) {
  int rc = SPI_execute_plan(plan, values, nulls, false, 0);
  if (rc != expected) {
    elog(ERROR, "pg_hyperline: statement failed: %s", SPI_result_code_string(rc));
  }
}

// A one-dimensional array from Datums, some NULL (`nulls` may be null: none).
Datum MakeArrayWithNulls(Datum* elems, bool* nulls, int n, Oid type) {
  int16 typlen;
  bool byval;
  char align;
  get_typlenbyvalalign(type, &typlen, &byval, &align);
  int dims[1] = {n};
  int lbs[1] = {1};
  return PointerGetDatum(
      construct_md_array(elems, nulls, 1, dims, lbs, type, typlen, byval, align));
}

// A one-dimensional array from Datums.
Datum MakeArray(Datum* elems, int n, Oid type) { return MakeArrayWithNulls(elems, nullptr, n, type); }

Datum TextDatum(const std::string& s) {
  return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

// An int8[] of ids.
Datum IdArray(const std::vector<int64_t>& ids) {
  int n = static_cast<int>(ids.size());
  Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * std::max(1, n)));
  for (int i = 0; i < n; ++i) elems[i] = Int64GetDatum(ids[i]);
  return MakeArray(elems, n, INT8OID);
}

// Column value as a palloc'd C string, or nullptr for NULL.
char* TextOrNull(HeapTuple tuple, TupleDesc desc, int column) {
  bool isnull = false;
  Datum d = SPI_getbinval(tuple, desc, column, &isnull);
  return isnull ? nullptr : TextDatumGetCString(d);
}



// Inserts the request log entries (in the record transaction).
void LogRequests(const std::vector<delivery::RequestLogEntry>& entries) {
  int n = static_cast<int>(entries.size());
  Datum* dest = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  Datum* sent = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  Datum* duration = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  Datum* events = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  Datum* status = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  bool* status_null = static_cast<bool*>(palloc(sizeof(bool) * n));
  Datum* error = static_cast<Datum*>(palloc(sizeof(Datum) * n));
  bool* error_null = static_cast<bool*>(palloc(sizeof(bool) * n));
  for (int i = 0; i < n; ++i) {
    const delivery::RequestLogEntry& e = entries[i];
    dest[i] = PointerGetDatum(
        cstring_to_text_with_len(e.destination.data(), static_cast<int>(e.destination.size())));
    sent[i] = TimestampTzGetDatum(FromUnixMicros(e.sent_at_us));
    duration[i] = Float8GetDatum(e.duration_ms);
    events[i] = Int32GetDatum(e.events);
    status_null[i] = !e.http_status.has_value();
    status[i] = Int32GetDatum(e.http_status.value_or(0));
    error_null[i] = !e.error.has_value();
    error[i] = e.error ? PointerGetDatum(cstring_to_text_with_len(
                             e.error->data(), static_cast<int>(e.error->size())))
                       : (Datum)0;
  }
  Oid types[6] = {TEXTARRAYOID, TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID,
                  INT4ARRAYOID, INT4ARRAYOID,        TEXTARRAYOID};
  SPIPlanPtr plan = Prepare(&plans.log_requests, kLogRequestsSql, 6, types);
  Datum values[6] = {MakeArray(dest, n, TEXTOID),
                     MakeArray(sent, n, TIMESTAMPTZOID),
                     MakeArray(duration, n, FLOAT8OID),
                     MakeArray(events, n, INT4OID),
                     MakeArrayWithNulls(status, status_null, n, INT4OID),
                     MakeArrayWithNulls(error, error_null, n, TEXTOID)};
  Execute(plan, values, nullptr, SPI_OK_INSERT);
}

std::string Str(const char* s) { return s == nullptr ? std::string() : std::string(s); }
std::optional<std::string> OptStr(const char* s) {
  if (s == nullptr) return std::nullopt;
  return std::string(s);
}

// A destination row as read (palloc'd C strings).
struct RawDestination {
  char* name;
  char* base_url;
  char* api_key;
  int32 batch_size;
  double rps;
  bool rps_null;
  int32 timeout_ms;
  char* state;
  char* last_error;
  int32 key_version;
  bool allow_http;
};

// Reads the columns of kLoadDestinationsSql / kModelDestinationSql.
void ReadDestination(HeapTuple t, TupleDesc desc, RawDestination* r) {
  bool isnull = false;
  r->name = TextOrNull(t, desc, 1);
  r->base_url = TextOrNull(t, desc, 2);
  r->api_key = TextOrNull(t, desc, 3);
  r->batch_size = DatumGetInt32(SPI_getbinval(t, desc, 4, &isnull));
  Datum rps = SPI_getbinval(t, desc, 5, &r->rps_null);
  r->rps = r->rps_null ? 0 : DatumGetFloat8(rps);
  r->timeout_ms = DatumGetInt32(SPI_getbinval(t, desc, 6, &isnull));
  r->state = TextOrNull(t, desc, 7);
  r->last_error = TextOrNull(t, desc, 8);
  r->key_version = DatumGetInt32(SPI_getbinval(t, desc, 9, &isnull));
  Datum allow = SPI_getbinval(t, desc, 10, &isnull);
  r->allow_http = !isnull && DatumGetBool(allow);
}

// Wipes the key's copy in backend memory (it has been copied to C++).
void WipeKey(RawDestination* r) {
  if (r->api_key != nullptr) memset(r->api_key, 0, strlen(r->api_key));
}

DestinationConfig ToConfig(const RawDestination& r) {
  DestinationConfig d;
  d.name = Str(r.name);
  d.base_url = Str(r.base_url);
  d.api_key = OptStr(r.api_key);
  d.batch_size = r.batch_size;
  if (!r.rps_null) d.max_requests_per_second = r.rps;
  d.timeout_ms = r.timeout_ms;
  d.allow_http = r.allow_http;
  d.state =
      catalog::DestinationStateFromSql(Str(r.state)).value_or(delivery::DestinationState::kActive);
  d.last_error = OptStr(r.last_error);
  d.key_version = r.key_version;
  return d;
}

// Reads pg_extension (inside a transaction). *version: palloc'd, or nullptr.
Oid FindExtension(char** version) {
  Relation rel = table_open(ExtensionRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
              CStringGetDatum(catalog::kExtension));
  SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, nullptr, 1, &key);
  HeapTuple tuple = systable_getnext(scan);
  Oid oid = InvalidOid;
  *version = nullptr;
  if (HeapTupleIsValid(tuple)) {
    oid = reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->oid;
    bool isnull = true;
    Datum v = heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);
    if (!isnull) *version = text_to_cstring(DatumGetTextPP(v));
  }
  systable_endscan(scan);
  table_close(rel, AccessShareLock);
  return oid;
}

ExtensionState StateOf(Oid oid, const char* version) {
  if (!OidIsValid(oid)) return ExtensionState::kAbsent;
  if (version == nullptr || strcmp(version, HYPERLINE_VERSION) != 0) {
    return ExtensionState::kOtherVersion;
  }
  return ExtensionState::kReady;
}

// A claimed row as read (palloc'd C strings).
struct RawRow {
  int64 id;
  char* model;
  char* event_key;
  bool is_delete;
  char* payload;  // nullptr: NULL, or not read (deferred)
  size_t payload_len;
  bool deferred;
  char* destination;
  int32 attempts;
  TimestampTz committed_at;  // 0: unknown
};

// The text of a jsonb payload (as jsonb_out writes it), copied into the
// current context; *len its length. Why a scratch context, reset per row: the
// conversion leaves garbage (a copy of every string it escapes) that would
// otherwise pile up for the whole claim, and memory reused while it is still
// in the CPU cache is what keeps a claim of 5,000 rows fast.
char* PayloadText(Datum d, MemoryContext scratch, size_t* len) {
  MemoryContext keep = MemoryContextSwitchTo(scratch);
  Jsonb* jb = DatumGetJsonbP(d);
  StringInfoData text;
  initStringInfo(&text);
  (void)JsonbToCString(&text, &jb->root, static_cast<int>(VARSIZE(jb)));
  MemoryContextSwitchTo(keep);
  char* copy = static_cast<char*>(palloc(text.len + 1));
  memcpy(copy, text.data, text.len + 1);
  *len = static_cast<size_t>(text.len);
  MemoryContextReset(scratch);
  return copy;
}

}  // namespace

const char* LibraryVersion() { return HYPERLINE_VERSION; }

ExtensionCheck TxnCheckExtension() {
  char* version = nullptr;
  Oid oid = InvalidOid;
  PgGuard([&] {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    oid = FindExtension(&version);
    if (version != nullptr) version = MemoryContextStrdup(TopMemoryContext, version);
    CommitTransactionCommand();
  });
  ExtensionCheck check;
  check.state = StateOf(oid, version);
  check.installed_version = Str(version);
  if (version != nullptr) PgGuard([&] { pfree(version); });
  return check;
}

std::optional<int64_t> TxnResetSending() {
  int64 waiting_ms = -1;
  PgGuard([&] {
    BeginTxn();
    int rc = SPI_execute(kResetSendingSql, false, 0);
    if (rc != SPI_OK_UPDATE) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
    if (SPI_processed > 0) {
      elog(LOG, "pg_hyperline: %llu events left in sending state are pending again",
           static_cast<unsigned long long>(SPI_processed));
    }
    rc = SPI_execute(kWaitingSql, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
    bool isnull = true;
    Datum ms = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    waiting_ms = isnull ? -1 : DatumGetInt64(ms);
    CommitTxn();
  });
  if (waiting_ms < 0) return std::nullopt;
  return waiting_ms;
}

std::optional<std::vector<DestinationConfig>> BeginClaim(ExtensionCheck* check) {
  RawDestination* raw = nullptr;
  int n = 0;
  Oid extension = InvalidOid;
  char* version = nullptr;
  PgGuard([&] {
    BeginTxn();
    extension = FindExtension(&version);
    if (StateOf(extension, version) != ExtensionState::kReady) {
      if (version != nullptr) version = MemoryContextStrdup(TopMemoryContext, version);
      CommitTxn();
      return;
    }
    if (extension != plans.extension || strcmp(version, plans.version) != 0) {
      // Created again, or updated: the statements are prepared afresh, for
      // the columns the outbox has now.
      ForgetPlans();
      plans.extension = extension;
      strlcpy(plans.version, version, sizeof plans.version);
      Oid outbox = get_relname_relid(catalog::kOutbox, get_namespace_oid(catalog::kSchema, false));
      plans.has_method =
          OidIsValid(outbox) && get_attnum(outbox, catalog::outbox::kMethod) != InvalidAttrNumber;
      plans.has_committed_at =
          OidIsValid(outbox) &&
          get_attnum(outbox, catalog::outbox::kCommittedAt) != InvalidAttrNumber;
      plans.has_request_log = OidIsValid(
          get_relname_relid(catalog::kRequests, get_namespace_oid(catalog::kSchema, false)));
    }
    SPIPlanPtr plan = Prepare(&plans.load_destinations, kLoadDestinationsSql, 0, nullptr);
    Execute(plan, nullptr, nullptr, SPI_OK_SELECT);
    n = static_cast<int>(SPI_processed);
    raw = static_cast<RawDestination*>(palloc0(sizeof(RawDestination) * (n + 1)));
    for (int i = 0; i < n; ++i) ReadDestination(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &raw[i]);
    IndexLookupsOnly();
  });
  ExtensionState state = StateOf(extension, version);
  if (state != ExtensionState::kReady) {
    if (check != nullptr) {
      check->state = state;
      check->installed_version = Str(version);
    }
    if (version != nullptr) PgGuard([&] { pfree(version); });
    return std::nullopt;
  }
  if (check != nullptr) {
    check->state = state;
    check->installed_version = plans.version;
  }
  std::vector<DestinationConfig> destinations;
  destinations.reserve(n);
  for (int i = 0; i < n; ++i) destinations.push_back(ToConfig(raw[i]));
  PgGuard([&] {
    for (int i = 0; i < n; ++i) WipeKey(&raw[i]);
  });
  return destinations;
}

delivery::Claimed ClaimRows(const ClaimPlan& plan) {
  // Flattened groups for the guard (no C++ allocation inside it).
  std::vector<const std::vector<std::string>*> names;
  std::vector<int> limits;
  for (const delivery::ClaimGroup& g : plan.groups) {
    names.push_back(&g.destinations);
    limits.push_back(g.limit);
  }
  RawRow* raw = nullptr;
  int n = 0;
  bool filled = false;
  const int64 budget = plan.byte_budget;
  PgGuard([&] {
    Oid types[3] = {TEXTARRAYOID, INT4OID, INT8OID};
    const char* sql = !plans.has_method         ? kClaimByOperationSql
                      : !plans.has_committed_at ? kClaimByMethodSql
                      : track_commit_timestamp  ? kClaimTrackedSql
                                                : kClaimUntrackedSql;
    SPIPlanPtr claim = Prepare(&plans.claim, sql, 3, types);
    raw = static_cast<RawRow*>(palloc0(sizeof(RawRow)));
    MemoryContext scratch =
        // NOLINTNEXTLINE(bugprone-implicit-widening-of-multiplication-result): Postgres's macro
        AllocSetContextCreate(CurrentMemoryContext, "pg_hyperline payload", ALLOCSET_DEFAULT_SIZES);
    int64 read_bytes = 0;  // uncompressed payload bytes read in this claim
    for (size_t g = 0; g < names.size(); ++g) {
      const std::vector<std::string>& group = *names[g];
      int k = static_cast<int>(group.size());
      Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * k));
      for (int i = 0; i < k; ++i) elems[i] = TextDatum(group[i]);
      Datum values[3] = {MakeArray(elems, k, TEXTOID), Int32GetDatum(limits[g]),
                         Int64GetDatum(budget)};
      Execute(claim, values, nullptr, SPI_OK_UPDATE_RETURNING);
      int got = static_cast<int>(SPI_processed);
      if (got >= limits[g]) filled = true;
      SPITupleTable* table = SPI_tuptable;
      TupleDesc desc = table->tupdesc;
      // In id order, so that the byte budget keeps the oldest rows.
      struct ById {
        int64 id;
        HeapTuple tuple;
      };
      ById* order = static_cast<ById*>(palloc(sizeof(ById) * (got + 1)));
      for (int i = 0; i < got; ++i) {
        bool isnull = false;
        order[i] = {DatumGetInt64(SPI_getbinval(table->vals[i], desc, 1, &isnull)), table->vals[i]};
      }
      std::sort(order, order + got, [](const ById& a, const ById& b) { return a.id < b.id; });
      raw = static_cast<RawRow*>(repalloc(raw, sizeof(RawRow) * (n + got + 1)));
      int64 stored = 0;
      for (int i = 0; i < got; ++i) {
        HeapTuple t = order[i].tuple;
        RawRow& r = raw[n + i];
        bool isnull = false;
        r.id = order[i].id;
        r.model = TextOrNull(t, desc, 2);
        r.event_key = TextOrNull(t, desc, 3);
        r.is_delete = DatumGetBool(SPI_getbinval(t, desc, 4, &isnull)) && !isnull;
        r.destination = TextOrNull(t, desc, 6);
        r.attempts = DatumGetInt32(SPI_getbinval(t, desc, 7, &isnull));
        stored += DatumGetInt32(SPI_getbinval(t, desc, 8, &isnull));
        Datum committed = SPI_getbinval(t, desc, 9, &isnull);
        r.committed_at = isnull ? 0 : DatumGetTimestampTz(committed);
        bool payload_null = true;
        Datum payload = SPI_getbinval(t, desc, 5, &payload_null);
        r.payload = nullptr;
        r.deferred = false;
        if (payload_null) continue;
        // Why a second budget here: a compressed payload is small as stored
        // but large once read; the rows beyond the budget stay unread.
        auto bytes = static_cast<int64>(toast_raw_datum_size(payload));
        if (read_bytes >= budget && n + i > 0) {
          r.deferred = true;
          filled = true;
          continue;
        }
        read_bytes += bytes;
        r.payload = PayloadText(payload, scratch, &r.payload_len);
      }
      if (stored >= budget) filled = true;
      n += got;
    }
  });
  delivery::Claimed claimed;
  claimed.filled = filled;
  claimed.rows.resize(n);
  for (int i = 0; i < n; ++i) {
    ClaimedRow& r = claimed.rows[i];
    r.id = raw[i].id;
    r.model = Str(raw[i].model);
    r.event_key = Str(raw[i].event_key);
    r.kind = raw[i].is_delete ? delivery::RequestKind::kDelete : delivery::RequestKind::kPost;
    if (raw[i].payload != nullptr) r.payload.emplace(raw[i].payload, raw[i].payload_len);
    r.deferred = raw[i].deferred;
    r.destination = Str(raw[i].destination);
    r.attempts = raw[i].attempts;
    if (raw[i].committed_at != 0) r.committed_at_us = UnixMicros(raw[i].committed_at);
  }
  return claimed;
}

std::vector<Superseded> FinishClaim(const ClaimDecisions& decisions) {
  // (model, destination, count) of the rows superseded by SQL, palloc'd.
  struct RawSuperseded {
    char* model;
    char* destination;
    int64 n;
  };
  RawSuperseded* sup = nullptr;
  int nsup = 0;
  PgGuard([&] {
    for (const delivery::StatusChange& c : decisions.changes) {
      Oid types[3] = {INT8ARRAYOID, TEXTOID, TEXTOID};
      SPIPlanPtr plan = Prepare(&plans.set_status, kSetStatusSql, 3, types);
      Datum values[3] = {IdArray(c.ids), CStringGetTextDatum(catalog::SqlText(c.status)),
                         c.error ? TextDatum(*c.error) : (Datum)0};
      char nulls[4] = "   ";
      if (!c.error) nulls[2] = 'n';
      Execute(plan, values, nulls, SPI_OK_UPDATE);
    }
    if (!decisions.supersede_older.empty()) {
      int m = static_cast<int>(decisions.supersede_older.size());
      Oid types[3] = {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
      SPIPlanPtr plan = Prepare(&plans.supersede_older, kSupersedeOlderSql, 3, types);
      Datum* models = static_cast<Datum*>(palloc(sizeof(Datum) * m));
      Datum* keys = static_cast<Datum*>(palloc(sizeof(Datum) * m));
      Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * m));
      for (int i = 0; i < m; ++i) {
        const delivery::KeyRef& k = decisions.supersede_older[i];
        models[i] = TextDatum(k.model);
        keys[i] = TextDatum(k.event_key);
        ids[i] = Int64GetDatum(k.id);
      }
      Datum values[3] = {MakeArray(models, m, TEXTOID), MakeArray(keys, m, TEXTOID),
                         MakeArray(ids, m, INT8OID)};
      Execute(plan, values, nullptr, SPI_OK_UPDATE_RETURNING);
      // hyperline.stats: events_superseded per model and destination.
      int got = static_cast<int>(SPI_processed);
      sup = static_cast<RawSuperseded*>(palloc0(sizeof(RawSuperseded) * (got + 1)));
      for (int i = 0; i < got; ++i) {
        char* model = TextOrNull(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        char* dest = TextOrNull(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
        if (model == nullptr || dest == nullptr) continue;
        int j = 0;
        while (j < nsup && !(strcmp(sup[j].model, model) == 0 && strcmp(sup[j].destination, dest) == 0)) ++j;
        if (j == nsup) sup[nsup++] = RawSuperseded{model, dest, 0};
        sup[j].n++;
      }
    }
  });
  // Copied before the commit: `sup` and its strings live in SPI's memory,
  // which SPI_finish (in CommitTxn) frees.
  std::vector<Superseded> out;
  out.reserve(nsup);
  for (int i = 0; i < nsup; ++i) out.push_back(Superseded{sup[i].model, sup[i].destination, sup[i].n});
  PgGuard([] { CommitTxn(); });
  return out;
}

void CommitClaim() {
  PgGuard([] { CommitTxn(); });
}

void TxnRecord(const Records& records) {
  if (records.outcomes.empty() && records.destinations.empty() && records.requests.empty()) return;
  PgGuard([&] {
    BeginTxn();
    IndexLookupsOnly();
    for (const delivery::OutcomeGroup& o : records.outcomes) {
      Oid types[8] = {INT8ARRAYOID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT8OID, INT4OID, BOOLOID};
      SPIPlanPtr plan = Prepare(&plans.record, kRecordSql, 8, types);
      Datum values[8] = {IdArray(o.ids),
                         CStringGetTextDatum(catalog::SqlText(o.status)),
                         Int32GetDatum(o.attempts_inc),
                         Int32GetDatum(o.http_status.value_or(0)),
                         o.error ? TextDatum(*o.error) : (Datum)0,
                         Int64GetDatum(o.delay_ms.value_or(0)),
                         Int32GetDatum(o.unless_key_version.value_or(0)),
                         BoolGetDatum(o.details == delivery::Details::kKeep)};
      char nulls[9] = "        ";
      if (!o.http_status) nulls[3] = 'n';
      if (!o.error) nulls[4] = 'n';
      if (!o.delay_ms) nulls[5] = 'n';
      if (!o.unless_key_version) nulls[6] = 'n';
      Execute(plan, values, nulls, SPI_OK_UPDATE);
    }
    for (const delivery::DestinationChange& u : records.destinations) {
      Oid types[4] = {TEXTOID, TEXTOID, TEXTOID, INT4OID};
      SPIPlanPtr plan = Prepare(&plans.destination_update, kDestinationUpdateSql, 4, types);
      Datum values[4] = {TextDatum(u.name), CStringGetTextDatum(catalog::SqlText(u.state)),
                         u.last_error ? TextDatum(*u.last_error) : (Datum)0,
                         Int32GetDatum(u.key_version)};
      char nulls[5] = "    ";
      if (!u.last_error) nulls[2] = 'n';
      Execute(plan, values, nulls, SPI_OK_UPDATE);
    }
    if (!records.requests.empty() && plans.has_request_log) LogRequests(records.requests);
    CommitTxn();
  });
}

int64_t TxnPurgeDelivered(int retention_s) {
  if (retention_s < 0) return 0;
  int64_t total = 0;
  for (int round = 0; round < kPurgeRounds; ++round) {
    uint64 deleted = 0;
    PgGuard([&] {
      BeginTxn();
      Oid types[2] = {INT4OID, INT4OID};
      SPIPlanPtr plan = Prepare(&plans.purge, kPurgeSql, 2, types);
      Datum values[2] = {Int32GetDatum(retention_s), Int32GetDatum(kPurgeBatch)};
      Execute(plan, values, nullptr, SPI_OK_DELETE);
      deleted = SPI_processed;
      CommitTxn();
    });
    total += static_cast<int64_t>(deleted);
    if (deleted < static_cast<uint64>(kPurgeBatch)) break;
  }
  return total;
}

int64_t TxnPurgeRequests(int retention_s) {
  if (retention_s < 0) return 0;
  int64_t total = 0;
  for (int round = 0; round < kPurgeRounds; ++round) {
    uint64 deleted = 0;
    bool exists = true;
    PgGuard([&] {
      BeginTxn();
      exists = OidIsValid(
          get_relname_relid(catalog::kRequests, get_namespace_oid(catalog::kSchema, false)));
      if (!exists) {
        CommitTxn();
        return;
      }
      Oid types[2] = {INT4OID, INT4OID};
      SPIPlanPtr plan = Prepare(&plans.purge_requests, kPurgeRequestsSql, 2, types);
      Datum values[2] = {Int32GetDatum(retention_s), Int32GetDatum(kPurgeBatch)};
      Execute(plan, values, nullptr, SPI_OK_DELETE);
      deleted = SPI_processed;
      CommitTxn();
    });
    total += static_cast<int64_t>(deleted);
    if (!exists || deleted < static_cast<uint64>(kPurgeBatch)) break;
  }
  return total;
}

int64_t TxnPurgeSyncRuns() {
  int64_t purged = 0;
  PgGuard([&] {
    BeginTxn();
    if (OidIsValid(get_relname_relid(catalog::kSyncRuns,
                                     get_namespace_oid(catalog::kSchema, false)))) {
      int rc = SPI_execute("SELECT hyperline._purge_sync_runs()", false, 1);
      if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
      bool isnull = true;
      Datum n = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
      if (!isnull) purged = DatumGetInt64(n);
    }
    CommitTxn();
  });
  return purged;
}

std::vector<alerts::CheckStatus> BeginHealth() {
  struct RawCheck {
    char* name;
    char* status;
    char* detail;
  };
  RawCheck* raw = nullptr;
  int n = 0;
  PgGuard([&] {
    BeginTxn();
    int rc = SPI_execute(kHealthSql, true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
    n = static_cast<int>(SPI_processed);
    raw = static_cast<RawCheck*>(palloc0(sizeof(RawCheck) * (n + 1)));
    for (int i = 0; i < n; ++i) {
      raw[i].name = TextOrNull(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
      raw[i].status = TextOrNull(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
      raw[i].detail = TextOrNull(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
    }
  });
  std::vector<alerts::CheckStatus> checks;
  checks.reserve(n);
  for (int i = 0; i < n; ++i) {
    checks.push_back(alerts::CheckStatus{Str(raw[i].name), Str(raw[i].status), Str(raw[i].detail)});
  }
  return checks;
}

void FinishHealth(const char* channel, const std::vector<std::string>& payloads) {
  PgGuard([&] {
    for (const std::string& p : payloads) {
      Oid types[2] = {TEXTOID, TEXTOID};
      Datum values[2] = {CStringGetTextDatum(channel), TextDatum(p)};
      int rc = SPI_execute_with_args(kNotifySql, 2, types, values, nullptr, false, 1);
      if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
    }
    CommitTxn();
  });
}

DestinationConfig LoadModelDestination(const std::string& model) {
  RawDestination raw = {};
  bool found = false;
  PgGuard([&] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
    Oid types[1] = {TEXTOID};
    Datum values[1] = {TextDatum(model)};
    int rc = SPI_execute_with_args(kModelDestinationSql, 1, types, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
    if (SPI_processed == 1) {
      found = true;
      ReadDestination(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &raw);
      // Copied into the caller's context: SPI_finish frees SPI's own.
      for (char** s : {&raw.name, &raw.base_url, &raw.api_key, &raw.state, &raw.last_error}) {
        if (*s == nullptr) continue;
        char* copy = static_cast<char*>(SPI_palloc(strlen(*s) + 1));
        strcpy(copy, *s);
        if (s == &raw.api_key) memset(*s, 0, strlen(*s));
        *s = copy;
      }
    }
    SPI_finish();
  });
  if (!found) Throw(ERRCODE_UNDEFINED_OBJECT, "model \"" + model + "\" does not exist");
  DestinationConfig d = ToConfig(raw);
  PgGuard([&] { WipeKey(&raw); });
  return d;
}

}  // namespace hyperline::pg::store
