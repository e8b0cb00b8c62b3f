// stats.cpp: the counters of hyperline.stats in shared memory (see stats.hpp
// for the vocabulary), the backends' events_enqueued, the SQL functions
// hyperline.stats() and hyperline.reset_stats(), and the last alert statuses.
//
// Why a pool of entries, an index and a per-process cache: counting is on the
// hot paths (every commit that wrote events, every answered request). The
// entries are a fixed array in shared memory, each with its spinlock; a shared
// hash table (under one LWLock) maps a name to its entry, and each process
// remembers the entries it used with their incarnation (bumped when an entry
// is freed or reused). A count is then a lookup in a small local array and a
// few additions under the entry's spinlock; only a process's first count of a
// name reads the index, and only the first count of a name ever takes the
// lock exclusively. Nothing here writes a table.
// (Headers that include src/core come before the Postgres ones.)
#include "core/stats_window.hpp"
#include "pg/stats_publish.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "pg/stats.hpp"

#include "pg/gate.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/unix_time.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace hyperline::pg::stats {
namespace {

// The counters, in the order of hyperline.stats's columns.
enum Counter {
  kEnqueued,
  kDelivered,
  kFailed,
  kSuperseded,
  kRequests,
  k2xx,
  k4xx,
  k429,
  k5xx,
  kTransportErrors,
  kRetries,
  kBytesSent,
  kNumCounters
};

enum class Kind : uint32 { kDatabase = 0, kDestination = 1, kModel = 2 };

constexpr const char* kTrancheName = "pg_hyperline stats";

struct EntryKey {
  Oid database;
  Kind kind;
  char name[NAMEDATALEN];  // zero-padded: the key is hashed as bytes
};

struct Entry {
  EntryKey key;
  slock_t mutex;  // guards everything below (and key while live)
  bool live;      // in use (false: on the free list)
  uint64 incarnation;  // bumped when the entry is taken or freed
  int next_free;       // free list (under the LWLock)
  int64 counters[kNumCounters];
  TimestampTz last_success_at;  // 0: never
  TimestampTz last_failure_at;
  window::LatencyHistogram latency;  // commit-to-2xx, per minute (core/stats_window)
  window::MinuteCounts failures;      // events failed, per minute
  // Kind::kDatabase only.
  TimestampTz stats_reset;
  int nalerts;
  AlertStatus alerts[kMaxAlertChecks];
};

// The index: name → entry.
struct IndexItem {
  EntryKey key;  // first: dynahash's key
  int slot;
};

struct Header {
  LWLock* lock;  // the index, the free list, taking and freeing entries
  TimestampTz created_at;  // stats_reset of a database never reset
  pg_atomic_uint32 overflow;  // a name could not be counted: the pool is full
  int nslots;
  int free_head;  // -1: none free
};

Header* header = nullptr;
Entry* slots = nullptr;
HTAB* index_table = nullptr;

int64 MinuteOf(TimestampTz t) { return t / USECS_PER_MINUTE; }

void MakeKey(EntryKey* key, Oid database, Kind kind, const char* name, size_t len) {
  memset(key, 0, sizeof *key);
  key->database = database;
  key->kind = kind;
  memcpy(key->name, name, std::min(len, static_cast<size_t>(NAMEDATALEN - 1)));
}

// Zeroes what an entry counts (caller holds its spinlock).
void ClearCounts(Entry* e) {
  memset(e->counters, 0, sizeof e->counters);
  e->last_success_at = 0;
  e->last_failure_at = 0;
  memset(&e->latency, 0, sizeof e->latency);
  memset(&e->failures, 0, sizeof e->failures);
}

// Frees entry `slot` (caller holds the LWLock exclusively).
void FreeSlot(int slot) {
  Entry* e = &slots[slot];
  SpinLockAcquire(&e->mutex);
  e->live = false;
  e->incarnation++;
  SpinLockRelease(&e->mutex);
  (void)hash_search(index_table, &e->key, HASH_REMOVE, nullptr);
  e->next_free = header->free_head;
  header->free_head = slot;
}

// This process's memory of the entries it counted into: their slot and
// incarnation. Why: a count is then no index lookup and no LWLock.
struct CachedEntry {
  EntryKey key;
  int slot;
  uint64 incarnation;
};
constexpr int kCacheSize = 16;
CachedEntry cache[kCacheSize];
int cache_used = 0;
int cache_next = 0;  // the next one replaced when full

// The entry of `key` from the index, taking a free one for a new name; false
// when the pool is full. Never raises an error: it runs in commit callbacks.
bool LookUp(const EntryKey& key, int* slot, uint64* incarnation) {
  LWLockAcquire(header->lock, LW_SHARED);
  auto* item = static_cast<IndexItem*>(hash_search(index_table, &key, HASH_FIND, nullptr));
  if (item == nullptr) {
    LWLockRelease(header->lock);
    LWLockAcquire(header->lock, LW_EXCLUSIVE);
    bool found = false;
    item = header->free_head < 0
               ? nullptr
               : static_cast<IndexItem*>(hash_search(index_table, &key, HASH_ENTER_NULL, &found));
    if (item == nullptr) {
      LWLockRelease(header->lock);
      pg_atomic_write_u32(&header->overflow, 1);
      return false;
    }
    if (!found) {
      int s = header->free_head;
      Entry* e = &slots[s];
      header->free_head = e->next_free;
      SpinLockAcquire(&e->mutex);
      e->key = key;
      e->live = true;
      e->incarnation++;
      ClearCounts(e);
      e->stats_reset = 0;
      e->nalerts = 0;
      SpinLockRelease(&e->mutex);
      item->slot = s;
    }
  }
  *slot = item->slot;
  SpinLockAcquire(&slots[*slot].mutex);
  *incarnation = slots[*slot].incarnation;
  SpinLockRelease(&slots[*slot].mutex);
  LWLockRelease(header->lock);
  return true;
}

// Runs `fn(Entry*)` on the entry of `key` under its spinlock, making the entry
// if there is none (false if the pool is full). Never raises an error: it runs
// in commit callbacks.
template <typename Fn>
bool WithEntry(const EntryKey& key, Fn&& fn) {
  if (header == nullptr) return false;
  int c = 0;
  while (c < cache_used && memcmp(&cache[c].key, &key, sizeof key) != 0) ++c;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (c == cache_used || attempt > 0) {
      int slot = 0;
      uint64 incarnation = 0;
      if (!LookUp(key, &slot, &incarnation)) return false;
      if (c == cache_used) {
        c = cache_used < kCacheSize ? cache_used++ : (cache_next++ % kCacheSize);
      }
      cache[c] = CachedEntry{key, slot, incarnation};
    }
    Entry* e = &slots[cache[c].slot];
    SpinLockAcquire(&e->mutex);
    // The entry is still the one remembered (not reset or reused since).
    if (e->live && e->incarnation == cache[c].incarnation) {
      fn(e);
      SpinLockRelease(&e->mutex);
      return true;
    }
    SpinLockRelease(&e->mutex);
  }
  return false;
}

// --- events_enqueued: counted by the writing backend, published at commit ---

struct Pending {
  SubTransactionId subid;
  int64 events;
  int64 failed;
  char model[NAMEDATALEN];
  char destination[NAMEDATALEN];
};

Pending* pending = nullptr;  // in TopMemoryContext
int npending = 0;
int pending_capacity = 0;

bool SameName(const char* stored, const char* data, int len) {
  int n = std::min(len, NAMEDATALEN - 1);
  return strncmp(stored, data, n) == 0 && stored[n] == '\0';
}

void PublishPending() {
  int64 minute = 0;
  for (int i = 0; i < npending; ++i) {
    const Pending& p = pending[i];
    if (p.failed > 0 && minute == 0) minute = MinuteOf(GetCurrentTimestamp());
    EntryKey key;
    for (Kind kind : {Kind::kModel, Kind::kDestination}) {
      const char* name = kind == Kind::kModel ? p.model : p.destination;
      MakeKey(&key, MyDatabaseId, kind, name, strlen(name));
      (void)WithEntry(key, [&](Entry* e) {
        e->counters[kEnqueued] += p.events;
        e->counters[kFailed] += p.failed;
        window::AddCount(e->failures, p.failed, minute);
      });
    }
  }
}

// Why at commit and not per row: the events exist only if the transaction
// commits; one lookup per model and transaction, none per row.
void OnXactEvent(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_COMMIT:
      PublishPending();
      npending = 0;
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:  // counted by no one: COMMIT PREPARED runs elsewhere
      npending = 0;
      break;
    default:
      break;
  }
}

// Events written by an aborting subtransaction (or its children, whose ids
// are larger) are dropped with it.
void OnSubXactEvent(SubXactEvent event, SubTransactionId my_subid, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  int kept = 0;
  for (int i = 0; i < npending; ++i) {
    if (pending[i].subid < my_subid) pending[kept++] = pending[i];
  }
  npending = kept;
}

// --- reading ---------------------------------------------------------------

TimestampTz DatabaseResetTime(const Entry* entries, int n) {
  for (int i = 0; i < n; ++i) {
    if (entries[i].key.kind == Kind::kDatabase && entries[i].stats_reset != 0) {
      return entries[i].stats_reset;
    }
  }
  return header != nullptr ? header->created_at : 0;
}

// Copies the entries of this database (palloc'd array; *n how many).
Entry* SnapshotDatabase(int* n) {
  *n = 0;
  if (header == nullptr) return nullptr;
  int capacity = 16;
  auto* out = static_cast<Entry*>(palloc(sizeof(Entry) * capacity));
  for (int i = 0; i < header->nslots; ++i) {
    Entry* e = &slots[i];
    if (*n == capacity) {
      capacity *= 2;
      out = static_cast<Entry*>(repalloc(out, sizeof(Entry) * capacity));
    }
    SpinLockAcquire(&e->mutex);
    bool mine = e->live && e->key.database == MyDatabaseId;
    if (mine) memcpy(&out[*n], e, sizeof(Entry));
    SpinLockRelease(&e->mutex);
    if (mine) ++*n;
  }
  return out;
}

int CompareEntries(const void* a, const void* b) {
  const auto* x = static_cast<const Entry*>(a);
  const auto* y = static_cast<const Entry*>(b);
  if (x->key.kind != y->key.kind) return x->key.kind < y->key.kind ? -1 : 1;
  return strcmp(x->key.name, y->key.name);
}

// The destinations and models the current user may see, as SQL decides them
// (row level security on hyperline._models; destinations: superusers, members
// of hyperline.admin_role and the roles granted one), run as the current user
// with a pinned search_path: (kind, name) rows in SPI_tuptable.
constexpr const char* kVisibleSql =
    "SELECT v.kind, v.name FROM ("
    " SELECT 'destination'::pg_catalog.text AS kind, d.name FROM hyperline._destinations d"
    " WHERE $1 OR EXISTS (SELECT 1 FROM hyperline._destination_grants g"
    "   WHERE g.destination OPERATOR(pg_catalog.=) d.name"
    "   AND pg_catalog.pg_has_role(g.grantee::pg_catalog.oid, 'USAGE'))"
    " UNION ALL"
    " SELECT 'model'::pg_catalog.text, m.name FROM hyperline._models m) v"
    " ORDER BY v.kind COLLATE \"C\", v.name COLLATE \"C\"";

// Whether the current user sees every destination: a superuser, or a member
// of the role named by hyperline.admin_role.
bool SeesEverything() {
  if (superuser()) return true;
  if (guc_admin_role == nullptr || guc_admin_role[0] == '\0') return false;
  Oid admin = get_role_oid(guc_admin_role, true);
  return OidIsValid(admin) && is_member_of_role(GetUserId(), admin);
}

// SQL hyperline.stats(): one row per destination and model the current user
// may see, with its counters (zero for a name never counted), latency
// percentiles, times, the database's stats_reset, and the events failed in the
// last hour (for health()).
Datum StatsRows(FunctionCallInfo fcinfo) {
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  int n = 0;
  Entry* entries = SnapshotDatabase(&n);
  if (n > 1) qsort(entries, n, sizeof(Entry), CompareEntries);
  TimestampTz now = GetCurrentTimestamp();
  int64 minute = MinuteOf(now);
  TimestampTz reset = DatabaseResetTime(entries, n);

  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
  int nestlevel = NewGUCNestLevel();
  PinSearchPath();
  Oid types[1] = {BOOLOID};
  Datum args[1] = {BoolGetDatum(SeesEverything())};
  int rc = SPI_execute_with_args(kVisibleSql, 1, types, args, nullptr, true, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
  AtEOXact_GUC(true, nestlevel);

  constexpr int kColumns = 2 + kNumCounters + 3 + 3 + 1;
  for (uint64 row = 0; row < SPI_processed; ++row) {
    HeapTuple t = SPI_tuptable->vals[row];
    TupleDesc desc = SPI_tuptable->tupdesc;
    char* kind_text = SPI_getvalue(t, desc, 1);
    char* name = SPI_getvalue(t, desc, 2);
    Entry probe;
    MakeKey(&probe.key, MyDatabaseId, strcmp(kind_text, "model") == 0 ? Kind::kModel : Kind::kDestination,
            name, strlen(name));
    const Entry* e = n > 0 ? static_cast<const Entry*>(
                                 bsearch(&probe, entries, n, sizeof(Entry), CompareEntries))
                           : nullptr;
    Datum values[kColumns];
    bool nulls[kColumns];
    memset(nulls, 0, sizeof nulls);
    int c = 0;
    values[c++] = CStringGetTextDatum(kind_text);
    values[c++] = CStringGetTextDatum(name);
    for (int k = 0; k < kNumCounters; ++k) values[c++] = Int64GetDatum(e ? e->counters[k] : 0);
    double ps[3] = {0.5, 0.9, 0.99};
    double pv[3];
    bool have = e != nullptr && window::LatencyPercentiles(e->latency, minute, ps, pv, 3);
    for (int k = 0; k < 3; ++k) {
      nulls[c] = !have;
      values[c++] = Float8GetDatum(have ? pv[k] : 0);
    }
    nulls[c] = e == nullptr || e->last_success_at == 0;
    values[c++] = TimestampTzGetDatum(e ? e->last_success_at : 0);
    nulls[c] = e == nullptr || e->last_failure_at == 0;
    values[c++] = TimestampTzGetDatum(e ? e->last_failure_at : 0);
    values[c++] = TimestampTzGetDatum(reset);
    values[c++] = Int64GetDatum(e ? window::CountLastHour(e->failures, minute) : 0);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  SPI_finish();
  return (Datum)0;
}

// SQL hyperline.reset_stats(): zeroes every counter of this database
// (removing its entries) and sets its stats_reset to now. Alert statuses stay.
Datum ResetStats(FunctionCallInfo) {
  if (header == nullptr) PG_RETURN_VOID();
  TimestampTz now = GetCurrentTimestamp();
  LWLockAcquire(header->lock, LW_EXCLUSIVE);
  for (int i = 0; i < header->nslots; ++i) {
    Entry* e = &slots[i];
    if (e->live && e->key.database == MyDatabaseId && e->key.kind != Kind::kDatabase) FreeSlot(i);
  }
  LWLockRelease(header->lock);
  EntryKey key;
  MakeKey(&key, MyDatabaseId, Kind::kDatabase, "", 0);
  if (!WithEntry(key, [now](Entry* e) { e->stats_reset = now; })) {
    ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                    errmsg("pg_hyperline: no room left for the statistics of this database"),
                    errhint("Raise hyperline.max_stats_entries (takes a restart).")));
  }
  PG_RETURN_VOID();
}

}  // namespace

// --- shared memory -----------------------------------------------------------

void RequestShmem() {
  RequestAddinShmemSpace(MAXALIGN(sizeof(Header)) +
                         MAXALIGN(sizeof(Entry) * static_cast<Size>(guc_max_stats_entries)) +
                         hash_estimate_size(guc_max_stats_entries, sizeof(IndexItem)));
  RequestNamedLWLockTranche(kTrancheName, 1);
}

void StartupShmem() {
  bool found = false;
  Size size = MAXALIGN(sizeof(Header)) +
              MAXALIGN(sizeof(Entry) * static_cast<Size>(guc_max_stats_entries));
  header = static_cast<Header*>(ShmemInitStruct("pg_hyperline stats", size, &found));
  slots = reinterpret_cast<Entry*>(reinterpret_cast<char*>(header) + MAXALIGN(sizeof(Header)));
  if (!found) {
    memset(header, 0, size);
    header->lock = &(GetNamedLWLockTranche(kTrancheName))->lock;
    header->created_at = GetCurrentTimestamp();
    pg_atomic_init_u32(&header->overflow, 0);
    header->nslots = guc_max_stats_entries;
    // Every entry free, its spinlock made once and for all (entries are reused,
    // never made again: a process may hold a freed entry's spinlock).
    for (int i = 0; i < header->nslots; ++i) {
      SpinLockInit(&slots[i].mutex);
      slots[i].next_free = i + 1 < header->nslots ? i + 1 : -1;
    }
    header->free_head = header->nslots > 0 ? 0 : -1;
  }
  HASHCTL info;
  memset(&info, 0, sizeof info);
  info.keysize = sizeof(EntryKey);
  info.entrysize = sizeof(IndexItem);
  index_table = ShmemInitHash("pg_hyperline stats index", guc_max_stats_entries,
                              guc_max_stats_entries, &info, HASH_ELEM | HASH_BLOBS);
}

void InstallCallbacks() {
  RegisterXactCallback(OnXactEvent, nullptr);
  RegisterSubXactCallback(OnSubXactEvent, nullptr);
}

// --- backends --------------------------------------------------------------

void NoteEventWritten(Datum model, Datum destination, bool failed) {
  text* m = DatumGetTextPP(model);
  text* d = DatumGetTextPP(destination);
  const char* mdata = VARDATA_ANY(m);
  const char* ddata = VARDATA_ANY(d);
  int mlen = static_cast<int>(VARSIZE_ANY_EXHDR(m));
  int dlen = static_cast<int>(VARSIZE_ANY_EXHDR(d));
  SubTransactionId subid = GetCurrentSubTransactionId();
  // Most rows of a flush are of the model counted last: look there first.
  for (int i = npending - 1; i >= 0; --i) {
    Pending& p = pending[i];
    if (p.subid == subid && SameName(p.model, mdata, mlen) &&
        SameName(p.destination, ddata, dlen)) {
      p.events++;
      if (failed) p.failed++;
      return;
    }
  }
  if (npending == pending_capacity) {
    pending_capacity = std::max(8, pending_capacity * 2);
    pending = static_cast<Pending*>(
        pending == nullptr ? MemoryContextAlloc(TopMemoryContext, sizeof(Pending) * pending_capacity)
                           : repalloc(pending, sizeof(Pending) * pending_capacity));
  }
  Pending& p = pending[npending++];
  p.subid = subid;
  p.events = 1;
  p.failed = failed ? 1 : 0;
  memset(p.model, 0, sizeof p.model);
  memset(p.destination, 0, sizeof p.destination);
  memcpy(p.model, mdata, std::min(mlen, NAMEDATALEN - 1));
  memcpy(p.destination, ddata, std::min(dlen, NAMEDATALEN - 1));
}

// --- the delivery worker -------------------------------------------------------

void Publish(const delivery::StatsDelta& delta) {
  if (delta.empty()) return;
  PgGuard([&] {
    TimestampTz now = GetCurrentTimestamp();
    int64 minute = MinuteOf(now);
    for (Kind kind : {Kind::kDestination, Kind::kModel}) {
      const auto& counters = kind == Kind::kDestination ? delta.destinations : delta.models;
      for (const auto& entry : counters) {
        // (Not a structured binding: C++17 lambdas cannot capture one.)
        const auto& name = entry.first;
        const auto& c = entry.second;
        EntryKey key;
        MakeKey(&key, MyDatabaseId, kind, name.data(), name.size());
        (void)WithEntry(key, [&](Entry* e) {
          e->counters[kDelivered] += c.events_delivered;
          e->counters[kFailed] += c.events_failed;
          e->counters[kSuperseded] += c.events_superseded;
          e->counters[kRequests] += c.requests;
          e->counters[k2xx] += c.responses_2xx;
          e->counters[k4xx] += c.responses_4xx;
          e->counters[k429] += c.responses_429;
          e->counters[k5xx] += c.responses_5xx;
          e->counters[kTransportErrors] += c.transport_errors;
          e->counters[kRetries] += c.retries;
          e->counters[kBytesSent] += c.bytes_sent;
          // Wall-clock µs since the Unix epoch → TimestampTz.
          if (c.last_success_us > 0) {
            e->last_success_at =
                std::max(e->last_success_at, FromUnixMicros(c.last_success_us));
          }
          if (c.last_failure_us > 0) {
            e->last_failure_at =
                std::max(e->last_failure_at, FromUnixMicros(c.last_failure_us));
          }
          window::AddCount(e->failures, c.events_failed, minute);
          window::AddLatencies(e->latency, c.latencies_ms.data(), c.latencies_ms.size(), minute);
        });
      }
    }
  });
}

void PublishSuperseded(const std::string& model, const std::string& destination, int64_t n) {
  if (n <= 0) return;
  PgGuard([&] {
    EntryKey key;
    MakeKey(&key, MyDatabaseId, Kind::kModel, model.data(), model.size());
    (void)WithEntry(key, [&](Entry* e) { e->counters[kSuperseded] += n; });
    MakeKey(&key, MyDatabaseId, Kind::kDestination, destination.data(), destination.size());
    (void)WithEntry(key, [&](Entry* e) { e->counters[kSuperseded] += n; });
  });
}

// --- alerts ------------------------------------------------------------------

int LoadAlertStatuses(AlertStatus* out, int max) {
  if (header == nullptr) return 0;
  EntryKey key;
  MakeKey(&key, MyDatabaseId, Kind::kDatabase, "", 0);
  int n = 0;
  LWLockAcquire(header->lock, LW_SHARED);
  auto* item = static_cast<IndexItem*>(hash_search(index_table, &key, HASH_FIND, nullptr));
  if (item != nullptr) {
    Entry* e = &slots[item->slot];
    SpinLockAcquire(&e->mutex);
    n = std::min(e->nalerts, max);
    memcpy(out, e->alerts, sizeof(AlertStatus) * n);
    SpinLockRelease(&e->mutex);
  }
  LWLockRelease(header->lock);
  return n;
}

void StoreAlertStatuses(const AlertStatus* statuses, int n) {
  EntryKey key;
  MakeKey(&key, MyDatabaseId, Kind::kDatabase, "", 0);
  (void)WithEntry(key, [&](Entry* e) {
    e->nalerts = std::min(n, kMaxAlertChecks);
    memcpy(e->alerts, statuses, sizeof(AlertStatus) * e->nalerts);
  });
}

void ForgetDroppedDatabases() {
  if (header == nullptr) return;
  // The databases that have entries (few), then which of them are gone.
  constexpr int kMaxDatabases = 256;
  Oid seen[kMaxDatabases];
  int nseen = 0;
  LWLockAcquire(header->lock, LW_SHARED);
  for (int i = 0; i < header->nslots; ++i) {
    if (!slots[i].live) continue;
    Oid db = slots[i].key.database;
    bool known = false;
    for (int j = 0; j < nseen && !known; ++j) known = seen[j] == db;
    if (!known && nseen < kMaxDatabases) seen[nseen++] = db;
  }
  LWLockRelease(header->lock);
  Oid gone[kMaxDatabases];
  int ngone = 0;
  for (int i = 0; i < nseen; ++i) {
    if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(seen[i]))) gone[ngone++] = seen[i];
  }
  if (ngone == 0) return;
  // Why this is safe for the per-process caches: no process is connected to a
  // dropped database, so none remembers these entries.
  LWLockAcquire(header->lock, LW_EXCLUSIVE);
  for (int i = 0; i < header->nslots; ++i) {
    if (!slots[i].live) continue;
    for (int j = 0; j < ngone; ++j) {
      if (slots[i].key.database == gone[j]) {
        FreeSlot(i);
        break;
      }
    }
  }
  LWLockRelease(header->lock);
}

bool TakeOverflow() {
  return header != nullptr && pg_atomic_exchange_u32(&header->overflow, 0) != 0;
}

}  // namespace hyperline::pg::stats

HYPERLINE_SQL_FUNCTION_PG(hyperline_stats, hyperline::pg::stats::StatsRows)
HYPERLINE_SQL_FUNCTION_PG(hyperline_reset_stats, hyperline::pg::stats::ResetStats)
