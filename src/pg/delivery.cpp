// delivery.cpp: claim, send, record, purge (see delivery.hpp for the vocabulary).
//
// Why the shape: every Postgres call runs inside PgGuard, one guard per
// transaction step, and only reads C++ containers there (nothing that can throw
// inside PG_TRY). Results leave Postgres as palloc'd C strings and become C++
// objects outside the guard. HTTP runs outside any transaction.
#include "pg/delivery.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>

#include "core/protocol.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

#ifndef HYPERLINE_VERSION
#define HYPERLINE_VERSION "dev"
#endif

namespace hyperline::pg {
namespace {

constexpr const char* kUserAgent = "pg_hyperline/" HYPERLINE_VERSION;
constexpr int kPurgeBatch = 10000;

// --- SQL (every name schema-qualified, values only as $n) -------------------

constexpr const char* kLoadDestinationsSql =
    "SELECT d.name, d.base_url, k.api_key, d.batch_size, d.max_requests_per_second::float8,"
    " d.timeout_ms, d.state, d.last_error, d.key_version, d.allow_http"
    " FROM hyperline._destinations d LEFT JOIN _hyperline.api_keys k ON k.destination = d.name";

// Claims due rows, oldest first, skipping rows someone else has locked, and
// marks them 'sending' in the same statement (rows the worker then decides not
// to send are set back in the same transaction).
constexpr const char* kClaimSql =
    "UPDATE hyperline.outbox o SET status = 'sending'"
    " WHERE o.id = ANY (ARRAY(SELECT p.id FROM hyperline.outbox p"
    "   WHERE p.status = 'pending' AND p.next_attempt_at <= now() AND p.destination = ANY($1)"
    "   ORDER BY p.id LIMIT $2 FOR UPDATE SKIP LOCKED))"
    " RETURNING o.id, o.model, o.event_key, o.operation, o.payload::text, o.destination,"
    " o.attempts";

// Latest next_attempt_at of rows waiting for a retry (read once at start).
constexpr const char* kWaitingSql =
    "SELECT (extract(epoch FROM max(next_attempt_at) - now()) * 1000)::bigint"
    " FROM hyperline.outbox WHERE status IN ('pending', 'sending') AND next_attempt_at > now()";

// Why the statements below are shaped as they are: right after a bulk insert
// the outbox's statistics can be far off, and a join of unnest() with the
// outbox then risks a nested loop comparing every pair (minutes instead of
// milliseconds). Updates by id use "id = ANY($1)" (an index scan on the primary
// key), with the status test written so that no partial index qualifies, and
// per-key lookups are LATERAL so that the key list drives an index lookup.

// Sets the status (and, if given, last_error) of some claimed rows.
constexpr const char* kSetStatusSql =
    "UPDATE hyperline.outbox o SET status = $2, last_error = coalesce($3, o.last_error)"
    " WHERE o.id = ANY ($1)";

// Older rows of a claimed key still waiting (e.g. for a retry) will never be
// sent: the claimed row is newer. Only rows the worker put off can be waiting
// (next_attempt_at > created_at; a fresh older row is claimed with the newer
// one): that is exactly what outbox_key_idx holds.
constexpr const char* kSupersedeOlderSql =
    "UPDATE hyperline.outbox o SET status = 'superseded'"
    " WHERE o.id = ANY (ARRAY("
    "   SELECT q.id FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(model, event_key, id)"
    "   CROSS JOIN LATERAL (SELECT p.id FROM hyperline.outbox p"
    "     WHERE p.model = k.model AND p.event_key = k.event_key AND p.status = 'pending'"
    "     AND p.next_attempt_at > p.created_at AND p.id < k.id) q))";

// Writes one group of outcomes (rows with the same result). $8 keep: the rows
// were not sent (postponed), so their http_status and last_error stay.
constexpr const char* kRecordSql =
    "UPDATE hyperline.outbox o SET status = $2, attempts = o.attempts + $3,"
    " http_status = CASE WHEN $8 THEN o.http_status ELSE $4 END,"
    " last_error = CASE WHEN $8 THEN o.last_error ELSE $5 END,"
    " delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE o.delivered_at END,"
    " next_attempt_at = CASE"
    "   WHEN $6::bigint IS NULL THEN o.next_attempt_at"
    "   WHEN $7::int IS NOT NULL AND $7::int IS DISTINCT FROM"
    "     (SELECT d.key_version FROM hyperline._destinations d WHERE d.name = o.destination)"
    "     THEN now()"
    "   ELSE now() + $6::bigint * interval '1 millisecond' END"
    " WHERE o.id = ANY ($1) AND (o.status = 'sending') IS TRUE";

constexpr const char* kDestinationUpdateSql =
    "UPDATE hyperline._destinations d SET state = $2, last_error = $3"
    " WHERE d.name = $1 AND d.key_version = $4"
    " AND (d.state IS DISTINCT FROM $2 OR d.last_error IS DISTINCT FROM $3)";

constexpr const char* kResetSendingSql =
    "UPDATE hyperline.outbox SET status = 'pending' WHERE status = 'sending'";

constexpr const char* kPurgeSql =
    "DELETE FROM hyperline.outbox o WHERE o.id IN (SELECT p.id FROM hyperline.outbox p"
    " WHERE p.status IN ('delivered', 'superseded')"
    " AND coalesce(p.delivered_at, p.created_at) < now() - $1 * interval '1 second'"
    " LIMIT $2)";

// --- Postgres helpers (call only inside PgGuard) -----------------------------

struct Plans {
  SPIPlanPtr load_destinations = nullptr;
  SPIPlanPtr claim = nullptr;
  SPIPlanPtr set_status = nullptr;
  SPIPlanPtr supersede_older = nullptr;
  SPIPlanPtr record = nullptr;
  SPIPlanPtr destination_update = nullptr;
  SPIPlanPtr purge = nullptr;
};
Plans plans;

// Prepares a statement once and keeps it for the life of the worker.
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

// Runs a prepared statement and checks its result code.
void Execute(SPIPlanPtr plan, Datum* values, const char* nulls, int expected) {
  int rc = SPI_execute_plan(plan, values, nulls, false, 0);
  if (rc != expected) {
    elog(ERROR, "pg_hyperline: statement failed: %s", SPI_result_code_string(rc));
  }
}

// A one-dimensional array from Datums (NULLs allowed).
Datum MakeArray(Datum* elems, bool* nulls, int n, Oid type) {
  int16 typlen;
  bool byval;
  char align;
  get_typlenbyvalalign(type, &typlen, &byval, &align);
  int dims[1] = {n};
  int lbs[1] = {1};
  return PointerGetDatum(
      construct_md_array(elems, nulls, 1, dims, lbs, type, typlen, byval, align));
}

Datum TextDatum(const std::string& s) {
  return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

// Column value as a palloc'd C string, or nullptr for NULL.
char* TextOrNull(HeapTuple tuple, TupleDesc desc, int column) {
  bool isnull = false;
  Datum d = SPI_getbinval(tuple, desc, column, &isnull);
  return isnull ? nullptr : TextDatumGetCString(d);
}

std::string Str(const char* s) { return s == nullptr ? std::string() : std::string(s); }

// Raw claimed row, as copied out of SPI (C strings, palloc'd).
struct RawRow {
  int64 id;
  char* model;
  char* event_key;
  char* operation;
  char* payload;
  char* destination;
  int32 attempts;
};

// Raw destination row.
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

}  // namespace

Delivery::Delivery()
    : client_(std::make_unique<http::Client>(std::max(1, guc_max_concurrent_requests))),
      rng_(static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
           static_cast<uint64_t>(MyProcPid)) {}

std::string Delivery::KeyOf(const Row& row) {
  std::string key;
  key.reserve(row.model.size() + row.event_key.size() + 1);
  key.append(row.model).push_back('\x1f');
  key.append(row.event_key);
  return key;
}

bool TxnExtensionExists() {
  bool exists = false;
  PgGuard([&] {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    exists = OidIsValid(get_extension_oid("pg_hyperline", true));
    CommitTransactionCommand();
  });
  return exists;
}

void Delivery::TxnResetSending() {
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
  waiting_until_ = waiting_ms < 0
                       ? SteadyClock::time_point{}
                       : SteadyClock::now() + std::chrono::milliseconds(waiting_ms + 1000);
}

int Delivery::TxnClaim() {
  auto now = SteadyClock::now();
  RawDestination* raw_dest = nullptr;
  int n_dest = 0;
  bool extension = true;
  // Step 1: the destinations (settings and keys), in a new transaction.
  PgGuard([&] {
    BeginTxn();
    if (!OidIsValid(get_extension_oid("pg_hyperline", true))) {
      extension = false;
      CommitTxn();
      return;
    }
    SPIPlanPtr plan = Prepare(&plans.load_destinations, kLoadDestinationsSql, 0, nullptr);
    Execute(plan, nullptr, nullptr, SPI_OK_SELECT);
    n_dest = static_cast<int>(SPI_processed);
    raw_dest = static_cast<RawDestination*>(palloc0(sizeof(RawDestination) * (n_dest + 1)));
    TupleDesc desc = SPI_tuptable->tupdesc;
    for (int i = 0; i < n_dest; ++i) {
      HeapTuple t = SPI_tuptable->vals[i];
      RawDestination& r = raw_dest[i];
      bool isnull = false;
      r.name = TextOrNull(t, desc, 1);
      r.base_url = TextOrNull(t, desc, 2);
      r.api_key = TextOrNull(t, desc, 3);
      r.batch_size = DatumGetInt32(SPI_getbinval(t, desc, 4, &isnull));
      Datum rps = SPI_getbinval(t, desc, 5, &r.rps_null);
      r.rps = r.rps_null ? 0 : DatumGetFloat8(rps);
      r.timeout_ms = DatumGetInt32(SPI_getbinval(t, desc, 6, &isnull));
      r.state = TextOrNull(t, desc, 7);
      r.last_error = TextOrNull(t, desc, 8);
      r.key_version = DatumGetInt32(SPI_getbinval(t, desc, 9, &isnull));
      Datum allow = SPI_getbinval(t, desc, 10, &isnull);
      r.allow_http = !isnull && DatumGetBool(allow);
    }
  });
  if (!extension) return -1;

  // Step 2 (C++): refresh the destination memory; decide which may be claimed.
  for (auto& [name, d] : destinations_) d.seen = false;
  std::vector<std::string> eligible;
  std::unordered_map<std::string, long> quota;  // rows each destination may take
  for (int i = 0; i < n_dest; ++i) {
    const RawDestination& r = raw_dest[i];
    Destination& d = destinations_[Str(r.name)];
    d.name = Str(r.name);
    d.base_url = Str(r.base_url);
    d.api_key = Str(r.api_key);
    d.batch_size = std::clamp(r.batch_size, 1, static_cast<int>(kMaxBatchEvents));
    d.timeout_ms = r.timeout_ms;
    d.allow_http = r.allow_http;
    d.state = Str(r.state);
    d.has_last_error = r.last_error != nullptr;
    d.last_error = Str(r.last_error);
    if (d.key_version != r.key_version) {
      // A new key: forget the pause an unauthorized answer caused.
      d.key_version = r.key_version;
      d.probe_at = {};
    }
    double rps = r.rps_null ? 0 : r.rps;
    if (rps != d.max_rps || !d.seen) d.bucket.SetRate(rps, std::max(1.0, rps), now);
    d.max_rps = rps;
    d.seen = true;
    bool waiting_for_key = d.probe_key_version == d.key_version && now < d.probe_at;
    if (now < d.paused_until || waiting_for_key || r.api_key == nullptr) continue;
    long limit = -1;                                      // unlimited
    if (d.state == "unauthorized") limit = d.batch_size;  // probe the key with one request
    if (d.max_rps > 0) {
      limit =
          std::max<long>(d.batch_size, static_cast<long>(std::ceil(d.max_rps * 2)) * d.batch_size);
    }
    if (limit >= 0) {
      for (const Job& j : queued_) {
        if (j.destination == d.name) limit -= static_cast<long>(j.rows.size());
      }
      for (const auto& [tag, j] : in_flight_) {
        if (j.destination == d.name) limit -= static_cast<long>(j.rows.size());
      }
      if (limit <= 0) continue;
      quota[d.name] = limit;
    }
    eligible.push_back(d.name);
  }
  for (auto it = destinations_.begin(); it != destinations_.end();) {
    it = it->second.seen ? std::next(it) : destinations_.erase(it);
  }

  long room = 2L * guc_claim_batch - static_cast<long>(held_rows_);
  int limit = static_cast<int>(std::min<long>(guc_claim_batch, room));
  more_due_ = false;
  keys_were_busy_ = false;
  share_freed_ = false;
  if (eligible.empty() || limit <= 0) {
    PgGuard([&] { CommitTxn(); });
    return 0;
  }

  // Step 3: claim due rows, oldest first, skipping rows someone else locked.
  // Why several statements: a destination with a share (rate limit, probe)
  // is claimed with its own LIMIT, so that rows beyond its share are never
  // marked 'sending' only to be set back (churn on every poll).
  struct ClaimGroup {
    std::vector<std::string> names;
    int limit;
  };
  std::vector<ClaimGroup> claim_groups;
  {
    ClaimGroup unlimited{{}, limit};
    for (const std::string& name : eligible) {
      auto q = quota.find(name);
      if (q == quota.end()) {
        unlimited.names.push_back(name);
      } else {
        claim_groups.push_back({{name}, static_cast<int>(std::min<long>(q->second, limit))});
      }
    }
    if (!unlimited.names.empty()) claim_groups.push_back(std::move(unlimited));
  }
  RawRow* raw = nullptr;
  int n = 0;
  bool some_group_full = false;
  PgGuard([&] {
    Oid types[2] = {TEXTARRAYOID, INT4OID};
    SPIPlanPtr plan = Prepare(&plans.claim, kClaimSql, 2, types);
    raw = static_cast<RawRow*>(palloc0(sizeof(RawRow)));
    for (const ClaimGroup& g : claim_groups) {
      int k = static_cast<int>(g.names.size());
      Datum* names = static_cast<Datum*>(palloc(sizeof(Datum) * k));
      for (int i = 0; i < k; ++i) names[i] = TextDatum(g.names[i]);
      Datum values[2] = {MakeArray(names, nullptr, k, TEXTOID), Int32GetDatum(g.limit)};
      Execute(plan, values, nullptr, SPI_OK_UPDATE_RETURNING);
      int got = static_cast<int>(SPI_processed);
      if (got >= g.limit) some_group_full = true;
      raw = static_cast<RawRow*>(repalloc(raw, sizeof(RawRow) * (n + got + 1)));
      TupleDesc desc = SPI_tuptable->tupdesc;
      for (int i = 0; i < got; ++i) {
        HeapTuple t = SPI_tuptable->vals[i];
        RawRow& r = raw[n + i];
        bool isnull = false;
        r.id = DatumGetInt64(SPI_getbinval(t, desc, 1, &isnull));
        r.model = TextOrNull(t, desc, 2);
        r.event_key = TextOrNull(t, desc, 3);
        r.operation = TextOrNull(t, desc, 4);
        r.payload = TextOrNull(t, desc, 5);
        r.destination = TextOrNull(t, desc, 6);
        r.attempts = DatumGetInt32(SPI_getbinval(t, desc, 7, &isnull));
      }
      n += got;
    }
  });

  // Step 4 (C++): per-key order. Only the newest row of a key is sent; older
  // ones are superseded; a key already in flight waits (its newest row stays
  // pending).
  std::sort(raw, raw + n, [](const RawRow& a, const RawRow& b) { return a.id < b.id; });
  std::vector<Row> rows(n);
  std::unordered_map<std::string, int> newest;
  newest.reserve(n);
  std::vector<std::string> keys(n);
  for (int i = 0; i < n; ++i) {
    Row& r = rows[i];
    r.id = raw[i].id;
    r.model = Str(raw[i].model);
    r.event_key = Str(raw[i].event_key);
    r.operation = Str(raw[i].operation);
    r.has_payload = raw[i].payload != nullptr;
    r.payload = Str(raw[i].payload);
    r.destination = Str(raw[i].destination);
    r.attempts = raw[i].attempts;
    keys[i] = KeyOf(r);
    newest[keys[i]] = i;
  }
  std::vector<int64_t> status_ids;
  std::vector<const char*> status_values;
  std::vector<std::string> status_errors;  // "" → NULL
  std::vector<int> taken;
  for (int i = 0; i < n; ++i) {
    if (newest[keys[i]] != i) {
      status_ids.push_back(rows[i].id);
      status_values.push_back("superseded");
      status_errors.emplace_back();
      continue;
    }
    if (keys_in_flight_.count(keys[i]) != 0) {
      keys_were_busy_ = true;
      status_ids.push_back(rows[i].id);
      status_values.push_back("pending");  // waits for the older row in flight
      status_errors.emplace_back();
      continue;
    }
    auto q = quota.find(rows[i].destination);
    if (q != quota.end()) {
      if (q->second <= 0) {
        status_ids.push_back(rows[i].id);
        status_values.push_back("pending");  // over the destination's share
        status_errors.emplace_back();
        continue;
      }
      --q->second;
    }
    if (!rows[i].has_payload) {
      status_ids.push_back(rows[i].id);
      status_values.push_back("failed");
      status_errors.emplace_back("nothing to send: the payload is NULL");
      continue;
    }
    taken.push_back(i);
  }
  more_due_ = some_group_full && !taken.empty();

  // Step 5: mark the rows and commit.
  PgGuard([&] {
    // One statement per (status, error): usually one or two.
    size_t done = 0;
    std::vector<bool> used(status_ids.size(), false);
    while (done < status_ids.size()) {
      size_t first = 0;
      while (used[first]) ++first;
      int m = 0;
      Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * status_ids.size()));
      for (size_t i = first; i < status_ids.size(); ++i) {
        if (used[i] || std::strcmp(status_values[i], status_values[first]) != 0 ||
            status_errors[i] != status_errors[first]) {
          continue;
        }
        used[i] = true;
        ++done;
        ids[m++] = Int64GetDatum(status_ids[i]);
      }
      Oid types[3] = {INT8ARRAYOID, TEXTOID, TEXTOID};
      SPIPlanPtr plan = Prepare(&plans.set_status, kSetStatusSql, 3, types);
      Datum values[3] = {MakeArray(ids, nullptr, m, INT8OID),
                         CStringGetTextDatum(status_values[first]),
                         status_errors[first].empty() ? (Datum)0 : TextDatum(status_errors[first])};
      char nulls[4] = "   ";
      if (status_errors[first].empty()) nulls[2] = 'n';
      Execute(plan, values, nulls, SPI_OK_UPDATE);
    }
    // Why only while retries wait: an older row of a claimed key can be left
    // pending outside this claim only if it waits for a retry (due rows come
    // in id order, so older due rows are in this claim). Skipping the lookup
    // otherwise keeps a plain drain fast.
    if (!taken.empty() && now < waiting_until_) {
      int m = static_cast<int>(taken.size());
      Oid types[3] = {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
      SPIPlanPtr plan = Prepare(&plans.supersede_older, kSupersedeOlderSql, 3, types);
      Datum* models = static_cast<Datum*>(palloc(sizeof(Datum) * m));
      Datum* ekeys = static_cast<Datum*>(palloc(sizeof(Datum) * m));
      Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * m));
      for (int i = 0; i < m; ++i) {
        const Row& r = rows[taken[i]];
        models[i] = TextDatum(r.model);
        ekeys[i] = TextDatum(r.event_key);
        ids[i] = Int64GetDatum(r.id);
      }
      Datum values[3] = {MakeArray(models, nullptr, m, TEXTOID),
                         MakeArray(ekeys, nullptr, m, TEXTOID),
                         MakeArray(ids, nullptr, m, INT8OID)};
      Execute(plan, values, nullptr, SPI_OK_UPDATE);
    }
    CommitTxn();
  });

  // Step 6 (C++): group the taken rows into jobs per destination, in id order.
  std::unordered_map<std::string, Job*> open_post, open_delete;
  for (int i : taken) {
    Row& r = rows[i];
    const Destination& d = destinations_[r.destination];
    bool is_delete = r.operation == "delete";
    auto& open = is_delete ? open_delete : open_post;
    Job*& job = open[r.destination];
    if (job == nullptr || static_cast<int>(job->rows.size()) >= d.batch_size) {
      queued_.emplace_back();
      job = &queued_.back();
      job->destination = r.destination;
      job->key_version = d.key_version;
      job->is_delete = is_delete;
      job->batch = d.batch_size > 1;
      job->rows.reserve(std::min<size_t>(d.batch_size, taken.size()));
    }
    keys_in_flight_.insert(std::move(keys[i]));
    job->rows.push_back(std::move(r));
    ++held_rows_;
  }
  return static_cast<int>(taken.size());
}

void Delivery::Requeue(Job& job, int64_t delay_ms, int key_version) {
  for (const Row& r : job.rows) {
    Outcome o;
    o.id = r.id;
    o.status = "pending";
    o.keep_details = true;  // not sent: the attempt does not count
    o.delay_ms = std::max<int64_t>(0, delay_ms);
    o.key_version = key_version;
    outcomes_.push_back(std::move(o));
    keys_to_release_.push_back(KeyOf(r));
  }
  held_rows_ -= job.rows.size();
}

std::chrono::milliseconds Delivery::StartJobs() {
  using std::chrono::milliseconds;
  auto now = SteadyClock::now();
  auto wait = milliseconds::max();
  size_t max_in_flight = static_cast<size_t>(std::max(1, guc_max_concurrent_requests));
  for (auto it = queued_.begin(); it != queued_.end() && in_flight_.size() < max_in_flight;) {
    Job& job = *it;
    auto d = destinations_.find(job.destination);
    if (d == destinations_.end()) {
      Requeue(job, 1000);  // destination gone from memory: try again later
      it = queued_.erase(it);
      continue;
    }
    Destination& dest = d->second;
    if (now < dest.paused_until) {  // a 429 asked to wait
      Requeue(job, std::chrono::duration_cast<milliseconds>(dest.paused_until - now).count());
      it = queued_.erase(it);
      continue;
    }
    if (dest.probe_key_version == job.key_version && now < dest.probe_at) {
      // This key was just refused: wait for a new key or the next probe.
      Requeue(job, guc_retry_max_ms, job.key_version);
      it = queued_.erase(it);
      continue;
    }
    if (!dest.bucket.TryTake(now)) {
      auto w =
          std::chrono::duration_cast<milliseconds>(dest.bucket.WaitTime(now)) + milliseconds(1);
      wait = std::min(wait, w);
      ++it;
      continue;
    }
    http::Request req;
    req.url = dest.base_url + EndpointPath(job.is_delete, job.batch);
    req.method = job.is_delete ? "DELETE" : "POST";
    if (job.is_delete) {
      std::vector<std::string> ids;
      std::vector<Row> kept;
      for (Row& r : job.rows) {
        std::optional<std::string> id = RecordIdOf(r.payload);
        if (id) {
          ids.push_back(std::move(*id));
          kept.push_back(std::move(r));
          continue;
        }
        Outcome o;
        o.id = r.id;
        o.status = "failed";
        o.error = "cannot delete: the payload has no record.id";
        o.has_error = true;
        outcomes_.push_back(std::move(o));
        keys_to_release_.push_back(KeyOf(r));
        --held_rows_;
      }
      job.rows = std::move(kept);
      if (job.rows.empty()) {
        it = queued_.erase(it);
        continue;
      }
      req.body = BuildDeleteBody(ids);
    } else if (job.batch) {
      std::vector<std::string_view> payloads;
      payloads.reserve(job.rows.size());
      for (const Row& r : job.rows) payloads.emplace_back(r.payload);
      req.body = BuildBatchBody(payloads);
    } else {
      req.body = job.rows.front().payload;
    }
    req.bearer_token = dest.api_key;
    req.user_agent = kUserAgent;
    req.timeout_ms = dest.timeout_ms;
    // Re-checked at send time, not only at create: plain http to a non-loopback
    // host only if a superuser allowed it for this destination, or globally.
    req.allow_http = guc_allow_http || dest.allow_http;
    job.tag = next_tag_++;
    req.tag = job.tag;
    uint64_t tag = job.tag;
    in_flight_.emplace(tag, std::move(job));
    it = queued_.erase(it);
    client_->Start(std::move(req));
  }
  return wait;
}

void Delivery::Pump(int timeout_ms) {
  if (in_flight_.empty()) return;
  client_->Poll(timeout_ms);
  std::vector<http::Response> done;
  client_->TakeCompleted(done);
  for (http::Response& r : done) ProcessResponse(r);
}

void Delivery::NoteDestination(const Job& job, const char* state, const std::string* error) {
  auto d = destinations_.find(job.destination);
  if (d == destinations_.end()) return;
  Destination& dest = d->second;
  bool has_error = error != nullptr;
  std::string text = has_error ? Truncate(*error, 1000) : std::string();
  if (dest.state == state && dest.has_last_error == has_error && dest.last_error == text) return;
  dest.state = state;
  dest.has_last_error = has_error;
  dest.last_error = text;
  DestinationUpdate& u = destination_updates_[dest.name];
  u.state = state;
  u.error = text;
  u.has_error = has_error;
  u.key_version = job.key_version;
}

void Delivery::AddOutcomesForRetry(const Job& job, const std::string& message,
                                   std::optional<int64_t> retry_after_ms, int http_status) {
  // One random draw per request: its rows come back together (and are
  // written by one statement).
  double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  for (const Row& r : job.rows) {
    Outcome o;
    o.id = r.id;
    o.attempts_inc = 1;
    o.http_status = http_status;
    o.has_error = true;
    int attempts = r.attempts + 1;
    if (attempts >= guc_max_attempts) {
      o.status = "failed";
      o.error = "gave up after " + std::to_string(attempts) + " attempts: " + message;
    } else {
      o.status = "pending";
      o.error = message;
      // A Retry-After is honoured in full, even beyond retry_max_ms.
      o.delay_ms = retry_after_ms
                       ? *retry_after_ms
                       : BackoffMs(attempts, guc_retry_base_ms, guc_retry_max_ms, jitter);
    }
    outcomes_.push_back(std::move(o));
  }
}

void Delivery::ProcessResponse(http::Response& response) {
  auto found = in_flight_.find(response.tag);
  if (found == in_flight_.end()) return;
  Job job = std::move(found->second);
  in_flight_.erase(found);
  auto d = destinations_.find(job.destination);
  Destination* dest = d == destinations_.end() ? nullptr : &d->second;
  const std::string no_key;
  const std::string& key = dest != nullptr ? dest->api_key : no_key;
  Answer a = Classify(response.status, response.body, response.error, response.retry_after,
                      job.batch && !job.is_delete, std::chrono::system_clock::now());
  std::string message = Redact(a.message, key);
  auto now = SteadyClock::now();
  switch (a.verdict) {
    case Verdict::kDelivered: {
      std::unordered_map<std::string, std::string> rejected;
      for (FailedEvent& f : a.failed) rejected[f.record_id] = std::move(f.error);
      for (const Row& r : job.rows) {
        Outcome o;
        o.id = r.id;
        o.status = "delivered";
        o.attempts_inc = 1;
        o.http_status = response.status;
        if (!rejected.empty()) {
          std::optional<std::string> id = RecordIdOf(r.payload);
          auto why = id ? rejected.find(*id) : rejected.end();
          if (why != rejected.end()) {
            o.status = "failed";
            o.error = Truncate(Redact("rejected by the destination: " + why->second, key), 2000);
            o.has_error = true;
          }
        }
        outcomes_.push_back(std::move(o));
      }
      NoteDestination(job, "active", nullptr);
      break;
    }
    case Verdict::kRetry: {
      if (response.status == 429 && a.retry_after_ms && dest != nullptr) {
        dest->paused_until = now + std::chrono::milliseconds(*a.retry_after_ms);
        NoteDueAt(dest->paused_until);
      }
      AddOutcomesForRetry(job, message, a.retry_after_ms, response.status);
      if (dest != nullptr) NoteDestination(job, dest->state.c_str(), &message);
      break;
    }
    case Verdict::kFailNow: {
      for (const Row& r : job.rows) {
        Outcome o;
        o.id = r.id;
        o.status = "failed";
        o.attempts_inc = 1;
        o.http_status = response.status;
        o.error = message;
        o.has_error = true;
        outcomes_.push_back(std::move(o));
      }
      break;
    }
    case Verdict::kUnauthorized: {
      // Nothing fails: the rows wait for a working key; the attempt is not counted.
      for (const Row& r : job.rows) {
        Outcome o;
        o.id = r.id;
        o.status = "pending";
        o.http_status = response.status;
        o.error = message;
        o.has_error = true;
        o.delay_ms = guc_retry_max_ms;
        o.key_version = job.key_version;
        outcomes_.push_back(std::move(o));
      }
      if (dest != nullptr && dest->key_version == job.key_version) {
        dest->probe_at = now + std::chrono::milliseconds(guc_retry_max_ms);
        NoteDueAt(dest->probe_at);
        dest->probe_key_version = job.key_version;
      }
      NoteDestination(job, "unauthorized", &message);
      break;
    }
  }
  for (const Row& r : job.rows) keys_to_release_.push_back(KeyOf(r));
  held_rows_ -= job.rows.size();
  if (dest != nullptr && (dest->max_rps > 0 || dest->state == "unauthorized")) share_freed_ = true;
}

void Delivery::TxnRecord() {
  if (outcomes_.empty() && destination_updates_.empty()) return;
  // Outcomes with the same values are written by one statement.
  std::map<std::tuple<std::string, int, int, bool, std::string, int64_t, int, bool>,
           std::vector<int>>
      by_value;
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    const Outcome& o = outcomes_[i];
    by_value[{o.status, o.attempts_inc, o.http_status, o.has_error, o.error, o.delay_ms,
              o.key_version, o.keep_details}]
        .push_back(static_cast<int>(i));
  }
  std::vector<std::vector<int>> groups;
  groups.reserve(by_value.size());
  for (auto& [value, members] : by_value) groups.push_back(std::move(members));
  std::vector<std::pair<std::string, DestinationUpdate>> updates(destination_updates_.begin(),
                                                                 destination_updates_.end());
  PgGuard([&] {
    BeginTxn();
    for (const std::vector<int>& group : groups) {
      const Outcome& o = outcomes_[group.front()];
      int m = static_cast<int>(group.size());
      Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * m));
      for (int i = 0; i < m; ++i) ids[i] = Int64GetDatum(outcomes_[group[i]].id);
      Oid types[8] = {INT8ARRAYOID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT8OID, INT4OID, BOOLOID};
      SPIPlanPtr plan = Prepare(&plans.record, kRecordSql, 8, types);
      Datum values[8] = {MakeArray(ids, nullptr, m, INT8OID),
                         CStringGetTextDatum(o.status),
                         Int32GetDatum(o.attempts_inc),
                         Int32GetDatum(o.http_status),
                         o.has_error ? TextDatum(o.error) : (Datum)0,
                         Int64GetDatum(o.delay_ms),
                         Int32GetDatum(o.key_version),
                         BoolGetDatum(o.keep_details)};
      char nulls[9] = "        ";
      if (o.http_status == 0) nulls[3] = 'n';
      if (!o.has_error) nulls[4] = 'n';
      if (o.delay_ms < 0) nulls[5] = 'n';
      if (o.key_version <= 0) nulls[6] = 'n';
      Execute(plan, values, nulls, SPI_OK_UPDATE);
    }
    for (const auto& [name, u] : updates) {
      Oid types[4] = {TEXTOID, TEXTOID, TEXTOID, INT4OID};
      SPIPlanPtr plan = Prepare(&plans.destination_update, kDestinationUpdateSql, 4, types);
      Datum values[4] = {TextDatum(name), TextDatum(u.state),
                         u.has_error ? TextDatum(u.error) : (Datum)0, Int32GetDatum(u.key_version)};
      char nulls[5] = "    ";
      if (!u.has_error) nulls[2] = 'n';
      Execute(plan, values, nulls, SPI_OK_UPDATE);
    }
    CommitTxn();
  });
  auto now = SteadyClock::now();
  int64_t last_delay = -2;
  for (const Outcome& o : outcomes_) {
    if (std::strcmp(o.status, "pending") == 0 && o.delay_ms >= 0) {
      waiting_until_ = std::max(waiting_until_, now + std::chrono::milliseconds(o.delay_ms + 1000));
      if (o.delay_ms != last_delay) NoteDueAt(now + std::chrono::milliseconds(o.delay_ms));
      last_delay = o.delay_ms;
    }
  }
  for (const std::string& k : keys_to_release_) keys_in_flight_.erase(k);
  if (!keys_to_release_.empty() && keys_were_busy_) more_due_ = true;
  keys_to_release_.clear();
  outcomes_.clear();
  destination_updates_.clear();
}

void Delivery::NoteDueAt(SteadyClock::time_point at) {
  // Bounded: beyond this many distinct times the poll interval takes over.
  if (due_times_.size() < 10000) due_times_.push(at);
}

std::optional<SteadyClock::time_point> Delivery::NextDue() const {
  if (due_times_.empty()) return std::nullopt;
  return due_times_.top();
}

void Delivery::ClearDue() {
  auto now = SteadyClock::now();
  while (!due_times_.empty() && due_times_.top() <= now) due_times_.pop();
}

int64_t TxnPurgeDelivered() {
  if (guc_delivered_retention_s < 0) return 0;
  int64_t total = 0;
  for (int round = 0; round < 100; ++round) {
    uint64 deleted = 0;
    PgGuard([&] {
      BeginTxn();
      Oid types[2] = {INT4OID, INT4OID};
      SPIPlanPtr plan = Prepare(&plans.purge, kPurgeSql, 2, types);
      Datum values[2] = {Int32GetDatum(guc_delivered_retention_s), Int32GetDatum(kPurgeBatch)};
      Execute(plan, values, nullptr, SPI_OK_DELETE);
      deleted = SPI_processed;
      CommitTxn();
    });
    total += static_cast<int64_t>(deleted);
    if (deleted < static_cast<uint64>(kPurgeBatch)) break;
  }
  return total;
}

void Delivery::Reset() {
  queued_.clear();
  in_flight_.clear();
  keys_in_flight_.clear();
  outcomes_.clear();
  keys_to_release_.clear();
  destination_updates_.clear();
  destinations_.clear();
  held_rows_ = 0;
  due_times_ = {};
  more_due_ = false;
  keys_were_busy_ = false;
  // Abandon transfers in progress by replacing the client.
  client_ = std::make_unique<http::Client>(std::max(1, guc_max_concurrent_requests));
}

void Delivery::OnSettingsChanged() { client_->SetMaxConnections(guc_max_concurrent_requests); }

}  // namespace hyperline::pg
