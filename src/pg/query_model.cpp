// query_model.cpp: query models — checking a query model's definition, and
// the run (see query_model.hpp for the vocabulary).
//
// How a run stays set-wise and memory-bounded: the query is read through an
// SPI cursor, 1000 rows at a time, as the model's owner. Each row is rendered
// (the trigger's compiled-template path) and hashed; the row itself goes to a
// temporary file (BufFile) and (key, hash, position in that file) to a
// tuplesort, which spills to disk past work_mem. The sorted keys are then
// merged with the state, read in key order through its primary key index: one
// pass over both, which also finds duplicate keys (they are adjacent). Only
// the changed keys come back to C++, a batch at a time: their rows are read
// back from the file, their events rendered and buffered for the outbox
// (outbox.hpp, as the trigger writes them), and the state updated with one
// statement per batch. Nothing held in memory grows with the result.
//
// Security: the user's query, and every type output function its values go
// through, run as the model's owner, inside a security-restricted operation,
// with the search_path the owner had when creating the model. Everything else
// (the state, the outbox, the model's row) runs as the extension's owner with
// a pinned search_path and qualified names.

// C++ core headers first (core/cpp_only.hpp refuses them after postgres.h).
#include "core/hash.hpp"
#include "core/payload_template.hpp"
#include "core/value_codec.hpp"
#include "pg/model.hpp"
#include "pg/query_model.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "access/genam.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parser.h"
#include "storage/buffile.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"
#include "utils/tuplestore.h"
}

#include "pg/gate.hpp"
#include "pg/guard.hpp"
#include "pg/model_catalog.hpp"
#include "pg/outbox.hpp"
#include "pg/shmem.hpp"

namespace hyperline::pg {
namespace {

constexpr long kFetchRows = 1000;     // rows per cursor fetch
constexpr size_t kBatchChanges = 1000;  // changed keys handled per batch
constexpr int kMergeSteps = 10000;    // merge steps between interrupt checks

// ---------------------------------------------------------------------------
// The query text
// ---------------------------------------------------------------------------

// Raw-tree walker: finds what makes a SELECT write or lock.
bool FindWrite(Node* node, void* what) {
  if (node == nullptr) return false;
  const char** found = static_cast<const char**>(what);
  switch (nodeTag(node)) {
    case T_InsertStmt:
    case T_UpdateStmt:
    case T_DeleteStmt:
    case T_MergeStmt:
      *found = "a data-modifying statement (INSERT, UPDATE, DELETE or MERGE in WITH)";
      return true;
    case T_LockingClause:
      *found = "FOR UPDATE/FOR SHARE (it locks rows)";
      return true;
    case T_IntoClause:
      *found = "SELECT INTO (it creates a table)";
      return true;
    default:
      break;
  }
  // raw_expression_tree_walker takes the walker as bool (*)() (C); the cast
  // goes through void (*)() as the C headers intend.
  return raw_expression_tree_walker(
      node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(FindWrite)), what);
}

// Checks that `query` is one read-only SELECT (Postgres code: ERROR with the
// reason otherwise) and returns the statement's text, without a trailing
// semicolon. Why refuse writes here: a run reads, and so must the validation
// that runs the query at create time; SPI's read-only mode refuses them again
// at run time, with a less telling message.
char* CheckQueryText(const char* query) {
  List* stmts = raw_parser(query, RAW_PARSE_DEFAULT);
  if (list_length(stmts) != 1) {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("query must be one SELECT statement (got %d statements)",
                           list_length(stmts))));
  }
  RawStmt* raw = linitial_node(RawStmt, stmts);
  if (!IsA(raw->stmt, SelectStmt)) {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("query must be a SELECT statement, not %s",
                           GetCommandTagName(CreateCommandTag(raw->stmt))),
                    errhint("A query model reads: SELECT, VALUES, TABLE or WITH ... SELECT.")));
  }
  const char* found = nullptr;
  if (FindWrite(raw->stmt, &found)) {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("query must be read-only: it contains %s", found),
                    errhint("A query model reads; its runs write only their events.")));
  }
  int len = raw->stmt_len > 0 ? raw->stmt_len : static_cast<int>(strlen(query + raw->stmt_location));
  return pnstrdup(query + raw->stmt_location, len);
}

// Sets search_path to `path` at a new GUC nest level (Postgres code); returns
// the level, for AtEOXact_GUC(true, level).
int UseSearchPath(const char* path) {
  int level = NewGUCNestLevel();
  (void)set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                          0, false);
  return level;
}

// ---------------------------------------------------------------------------
// The model's definition
// ---------------------------------------------------------------------------
struct QueryModelDef {
  std::string name;
  std::string query;
  std::string primary_key;
  std::string payload;
  std::string destination;
  std::string search_path;
  Oid owner = InvalidOid;
  int triggers = 0;  // TriggerMask
  bool delete_via_api = false;
  bool send_initial = true;
  bool first_run = false;  // no state and no successful run yet
};

// Reads query model `name`; with `lock`, locks its row first (FOR NO KEY
// UPDATE NOWAIT: held until the end of the transaction, so runs of one model
// never overlap).
QueryModelDef ReadQueryModel(const std::string& name, bool lock) {
  static const char* const kSelect =
      "SELECT m.query, m.primary_key, m.payload, m.destination, m.search_path, "
      "m.owner IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles a "
      "WHERE a.oid OPERATOR(pg_catalog.=) m.owner::pg_catalog.oid), m.owner::pg_catalog.oid, "
      "'insert' OPERATOR(pg_catalog.=) ANY (m.triggers), "
      "'update' OPERATOR(pg_catalog.=) ANY (m.triggers), "
      "'delete' OPERATOR(pg_catalog.=) ANY (m.triggers), "
      "m.delete_mode OPERATOR(pg_catalog.=) 'api', m.send_initial, "
      "NOT EXISTS (SELECT 1 FROM hyperline._query_state s "
      "            WHERE s.model OPERATOR(pg_catalog.=) m.name) "
      "AND NOT EXISTS (SELECT 1 FROM hyperline._sync_runs r "
      "                WHERE r.model OPERATOR(pg_catalog.=) m.name "
      "                  AND r.status OPERATOR(pg_catalog.=) 'succeeded') "
      "FROM hyperline._models m "
      "WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.kind OPERATOR(pg_catalog.=) 'query'";
  std::string sql = std::string(kSelect) + (lock ? " FOR NO KEY UPDATE OF m NOWAIT" : "");
  const char* sql_text = sql.c_str();
  QueryModelDef def;
  def.name = name;
  char* fields[5] = {};
  bool flags[7] = {};
  bool found = false;
  bool owner_gone = false;
  const char* arg_text = name.c_str();
  try {
    PgGuard([&] {
      MemoryContext caller = CurrentMemoryContext;
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
      Oid argtype = TEXTOID;
      Datum arg = CStringGetTextDatum(arg_text);
      int rc = SPI_execute_with_args(sql_text, 1, &argtype, &arg, nullptr, false, 1);
      if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: reading the model failed (%d)", rc);
      if (SPI_processed == 1) {
        found = true;
        HeapTuple t = SPI_tuptable->vals[0];
        TupleDesc d = SPI_tuptable->tupdesc;
        for (int i = 0; i < 5; ++i) {
          bool isnull = false;
          Datum v = SPI_getbinval(t, d, i + 1, &isnull);
          fields[i] = isnull ? nullptr : MemoryContextStrdup(caller, TextDatumGetCString(v));
        }
        bool isnull = false;
        owner_gone = DatumGetBool(SPI_getbinval(t, d, 6, &isnull));
        def.owner = DatumGetObjectId(SPI_getbinval(t, d, 7, &isnull));
        for (int i = 0; i < 6; ++i) {
          Datum v = SPI_getbinval(t, d, 8 + i, &isnull);
          flags[i] = !isnull && DatumGetBool(v);
        }
      }
      SPI_finish();
    });
  } catch (const PgException& e) {
    if (e.sqlstate == ERRCODE_LOCK_NOT_AVAILABLE) {
      Throw(ERRCODE_LOCK_NOT_AVAILABLE,
            "model \"" + name + "\" is being run or changed by another transaction",
            "Runs of one model never overlap; this run was not started.",
            "Try again once that run has finished: hyperline.sync_runs shows a scheduled run in "
            "progress as running.");
    }
    throw;
  }
  if (!found) {
    Throw(ERRCODE_UNDEFINED_OBJECT, "query model \"" + name + "\" does not exist");
  }
  if (owner_gone) {
    Throw(ERRCODE_UNDEFINED_OBJECT,
          "the owner of query model \"" + name + "\" no longer exists",
          "The query runs with its owner's rights.", "Drop the model and create it again.");
  }
  def.query = fields[0] != nullptr ? fields[0] : "";
  def.primary_key = fields[1] != nullptr ? fields[1] : "";
  def.payload = fields[2] != nullptr ? fields[2] : "";
  def.destination = fields[3] != nullptr ? fields[3] : "";
  def.search_path = fields[4] != nullptr ? fields[4] : "";
  def.triggers = (flags[0] ? kOnInsert : 0) | (flags[1] ? kOnUpdate : 0) | (flags[2] ? kOnDelete : 0);
  def.delete_via_api = flags[3];
  def.send_initial = flags[4];
  def.first_run = flags[5];
  return def;
}

// ---------------------------------------------------------------------------
// Canonical rendering and its hash
// ---------------------------------------------------------------------------

// The bytes whose hash stands for a row's rendered payload: the token stream
// (kind, then length and text for keys, strings and numbers), or the JSON
// text for templates without a token program, or the rendering error. The
// same template always takes the same path, so equal payloads hash equal.
void CanonicalBytes(bool ok, const JsonTokens& tokens, const std::string& payload,
                    const std::string& error, std::string& out) {
  out.clear();
  if (!ok) {
    out.push_back('E');
    out.append(error);
    return;
  }
  if (tokens.tokens.empty()) {
    out.push_back('J');
    out.append(payload);
    return;
  }
  out.push_back('T');
  for (const JsonToken& t : tokens.tokens) {
    out.push_back(static_cast<char>(t.kind));
    if (t.kind == JsonTokenKind::Key || t.kind == JsonTokenKind::String ||
        t.kind == JsonTokenKind::Number) {
      uint32_t n = t.length;
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      out.append(tokens.arena.data() + t.offset, t.length);
    }
  }
}

// ---------------------------------------------------------------------------
// The run's scratch space: rows by position, sorted (key, hash, position)
// ---------------------------------------------------------------------------

// A position in the row file: file number and offset (segments are 1 GB).
int64 PackPosition(int fileno, off_t offset) {
  return (static_cast<int64>(fileno) << 32) | static_cast<int64>(offset);
}

// One changed key found by the merge (palloc'd in the batch context).
enum ChangeKind : uint8 { kAdded, kUpdated, kRemoved };
struct Change {
  ChangeKind kind;
  char* key;  // NUL-terminated
  int64 hash;
  int64 pos;         // added/updated: the row in the file
  char* old_row;     // updated/removed: the kept row values (encoded), or null
  int old_row_len;
  HeapTupleData tuple;  // added/updated: read back from the file
};

// State of the merge between the sorted result and the kept state.
struct Merge {
  Tuplesortstate* sort;
  TupleTableSlot* slot;
  Relation state_rel;
  SysScanDesc scan;
  Snapshot snapshot;
  AttrNumber a_key, a_hash, a_row;
  TupleDesc state_desc;
  bool need_old_for_update;  // the template reads `old` and updates are sent
  bool need_old_for_remove;  // removals are sent
  // Current element on each side (valid while have_*).
  bool have_new, new_done;
  const char* new_key;
  int new_len;
  int64 new_hash, new_pos;
  bool have_state, state_done;
  HeapTuple state_tuple;
  char* state_key;  // a copy (the tuple's may be detoasted in a batch's memory)
  int state_len;
  int state_cap;
  int64 state_hash;
  // The previous result key, for finding duplicates.
  char* prev_key;
  int prev_len;
  int prev_cap;
  bool have_prev;
  // Set when the result holds a key twice (palloc'd copy).
  char* duplicate;
  int64 unchanged;
};

int CompareKeys(const char* a, int alen, const char* b, int blen) {
  int c = memcmp(a, b, Min(alen, blen));
  if (c != 0) return c;
  return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

char* CopyKey(const char* key, int len) { return pnstrdup(key, len); }

// Reads the next result element (Postgres code).
void NextNew(Merge* m) {
  if (!tuplesort_gettupleslot(m->sort, true, false, m->slot, nullptr)) {
    m->new_done = true;
    return;
  }
  bool isnull = false;
  text* key = DatumGetTextPP(slot_getattr(m->slot, 1, &isnull));
  m->new_key = VARDATA_ANY(key);
  m->new_len = VARSIZE_ANY_EXHDR(key);
  m->new_hash = DatumGetInt64(slot_getattr(m->slot, 2, &isnull));
  m->new_pos = DatumGetInt64(slot_getattr(m->slot, 3, &isnull));
  m->have_new = true;
  if (m->have_prev && CompareKeys(m->prev_key, m->prev_len, m->new_key, m->new_len) == 0) {
    m->duplicate = CopyKey(m->new_key, m->new_len);
    return;
  }
  if (m->new_len > m->prev_cap) {
    m->prev_cap = Max(m->new_len, 2 * m->prev_cap);
    m->prev_key = static_cast<char*>(repalloc(m->prev_key, m->prev_cap));
  }
  memcpy(m->prev_key, m->new_key, m->new_len);
  m->prev_len = m->new_len;
  m->have_prev = true;
}

// Reads the next kept key (Postgres code).
void NextState(Merge* m) {
  HeapTuple t = systable_getnext(m->scan);
  if (!HeapTupleIsValid(t)) {
    m->state_done = true;
    return;
  }
  bool isnull = false;
  text* key = DatumGetTextPP(heap_getattr(t, m->a_key, m->state_desc, &isnull));
  m->state_tuple = t;
  m->state_len = VARSIZE_ANY_EXHDR(key);
  if (m->state_len > m->state_cap) {
    m->state_cap = Max(m->state_len, 2 * m->state_cap);
    m->state_key = static_cast<char*>(repalloc(m->state_key, m->state_cap));
  }
  memcpy(m->state_key, VARDATA_ANY(key), m->state_len);
  m->state_hash = DatumGetInt64(heap_getattr(t, m->a_hash, m->state_desc, &isnull));
  m->have_state = true;
}

// A copy of the current kept key's row values (Postgres code).
void CopyOldRow(Merge* m, Change* c) {
  bool isnull = false;
  Datum d = heap_getattr(m->state_tuple, m->a_row, m->state_desc, &isnull);
  if (isnull) return;
  bytea* b = DatumGetByteaPP(d);
  c->old_row_len = VARSIZE_ANY_EXHDR(b);
  c->old_row = static_cast<char*>(palloc(c->old_row_len + 1));
  memcpy(c->old_row, VARDATA_ANY(b), c->old_row_len);
}

// Merges until `max` changes are found, the duplicate check fires, or both
// sides end (Postgres code); returns the number of changes put in `out`.
size_t MergeSome(Merge* m, Change* out, size_t max) {
  size_t n = 0;
  int steps = 0;
  while (n < max) {
    if (++steps % kMergeSteps == 0) CHECK_FOR_INTERRUPTS();
    if (!m->have_new && !m->new_done) {
      NextNew(m);
      if (m->duplicate != nullptr) return n;
    }
    if (!m->have_state && !m->state_done) NextState(m);
    if (!m->have_new && !m->have_state) break;
    int cmp = !m->have_new     ? 1
              : !m->have_state ? -1
                               : CompareKeys(m->new_key, m->new_len, m->state_key, m->state_len);
    if (cmp == 0 && m->new_hash == m->state_hash) {
      ++m->unchanged;
      m->have_new = m->have_state = false;
      continue;
    }
    Change* c = &out[n++];
    memset(c, 0, sizeof *c);
    if (cmp < 0) {
      c->kind = kAdded;
      c->key = CopyKey(m->new_key, m->new_len);
      c->hash = m->new_hash;
      c->pos = m->new_pos;
      m->have_new = false;
    } else if (cmp > 0) {
      c->kind = kRemoved;
      c->key = CopyKey(m->state_key, m->state_len);
      if (m->need_old_for_remove) CopyOldRow(m, c);
      m->have_state = false;
    } else {
      c->kind = kUpdated;
      c->key = CopyKey(m->new_key, m->new_len);
      c->hash = m->new_hash;
      c->pos = m->new_pos;
      if (m->need_old_for_update) CopyOldRow(m, c);
      m->have_new = m->have_state = false;
    }
  }
  return n;
}

// Reads back the rows of the added and updated changes (Postgres code).
void ReadRows(BufFile* file, Change* changes, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    Change* c = &changes[i];
    if (c->kind == kRemoved) continue;
    int fileno = static_cast<int>(c->pos >> 32);
    off_t offset = static_cast<off_t>(c->pos & 0xFFFFFFFF);
    uint32 len = 0;
    if (BufFileSeek(file, fileno, offset, SEEK_SET) != 0 ||
        BufFileRead(file, &len, sizeof len) != sizeof len) {
      elog(ERROR, "pg_hyperline: could not read the run's row file");
    }
    c->tuple.t_data = static_cast<HeapTupleHeader>(palloc(len));
    if (BufFileRead(file, c->tuple.t_data, len) != len) {
      elog(ERROR, "pg_hyperline: could not read the run's row file");
    }
    c->tuple.t_len = len;
    ItemPointerSetInvalid(&c->tuple.t_self);
    c->tuple.t_tableOid = InvalidOid;
  }
}

// The state statements, prepared once per backend.
SPIPlanPtr upsert_plan = nullptr;
SPIPlanPtr delete_plan = nullptr;

// Writes a batch of state changes: upserts of (key, hash, row values) and
// deletions of keys (Postgres code, inside an SPI connection).
void WriteState(const char* model, int64 run_id, int nup, Datum* up_keys, Datum* up_hashes,
                Datum* up_rows, int ndel, Datum* del_keys) {
  if (upsert_plan == nullptr) {
    Oid types[5] = {TEXTOID, TEXTARRAYOID, INT8ARRAYOID, BYTEAARRAYOID, INT8OID};
    SPIPlanPtr plan = SPI_prepare(
        "INSERT INTO hyperline._query_state AS s (model, key, hash, row_values, run_id) "
        "SELECT $1, u.key, u.hash, u.row_values, $5 "
        "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4)) "
        "AS u(key, hash, row_values) "
        "ON CONFLICT (model, key) DO UPDATE SET hash = excluded.hash, "
        "row_values = excluded.row_values, run_id = excluded.run_id",
        5, types);
    if (plan == nullptr) elog(ERROR, "pg_hyperline: SPI_prepare failed: %d", SPI_result);
    SPI_keepplan(plan);
    upsert_plan = plan;
  }
  if (delete_plan == nullptr) {
    Oid types[2] = {TEXTOID, TEXTARRAYOID};
    SPIPlanPtr plan = SPI_prepare(
        "DELETE FROM hyperline._query_state s WHERE s.model OPERATOR(pg_catalog.=) $1 "
        "AND s.key OPERATOR(pg_catalog.=) ANY ($2 COLLATE pg_catalog.\"C\")",
        2, types);
    if (plan == nullptr) elog(ERROR, "pg_hyperline: SPI_prepare failed: %d", SPI_result);
    SPI_keepplan(plan);
    delete_plan = plan;
  }
  Datum model_datum = CStringGetTextDatum(model);
  if (nup > 0) {
    Datum args[5] = {
        model_datum,
        PointerGetDatum(construct_array(up_keys, nup, TEXTOID, -1, false, TYPALIGN_INT)),
        PointerGetDatum(construct_array(up_hashes, nup, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
        PointerGetDatum(construct_array(up_rows, nup, BYTEAOID, -1, false, TYPALIGN_INT)),
        Int64GetDatum(run_id)};
    int rc = SPI_execute_plan(upsert_plan, args, nullptr, false, 0);
    if (rc != SPI_OK_INSERT) elog(ERROR, "pg_hyperline: writing the model's state failed (%d)", rc);
  }
  if (ndel > 0) {
    Datum args[2] = {model_datum, PointerGetDatum(construct_array(del_keys, ndel, TEXTOID, -1,
                                                                  false, TYPALIGN_INT))};
    int rc = SPI_execute_plan(delete_plan, args, nullptr, false, 0);
    if (rc != SPI_OK_DELETE) elog(ERROR, "pg_hyperline: writing the model's state failed (%d)", rc);
  }
}

// A bytea of `bytes` (Postgres code).
Datum ByteaOf(const std::string& bytes) {
  bytea* b = static_cast<bytea*>(palloc(VARHDRSZ + bytes.size()));
  SET_VARSIZE(b, VARHDRSZ + bytes.size());
  memcpy(VARDATA(b), bytes.data(), bytes.size());
  return PointerGetDatum(b);
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------
class Run {
 public:
  Run(QueryModelDef def, int64 run_id) : def_(std::move(def)), run_id_(run_id) {}

  RunCounts Execute() {
    PgGuard([&] {
      context_ = AllocSetContextCreate(CurrentMemoryContext, "pg_hyperline query run",
                                       ALLOCSET_DEFAULT_SIZES);
      batch_context_ =
          AllocSetContextCreate(context_, "pg_hyperline query run batch", ALLOCSET_DEFAULT_SIZES);
    });
    ReadResult();
    MergeWithState();
    PgGuard([&] {
      FlushOutbox();
      MemoryContextDelete(context_);
    });
    if (events_ > 0) WakeWorkerAtCommit();
    return counts_;
  }

 private:
  // Phase 1: the query, as the owner; every row rendered, hashed, filed and
  // sorted by key.
  void ReadResult() {
    const char* query = def_.query.c_str();
    const char* path = def_.search_path.c_str();
    char* statement = nullptr;
    Portal portal = nullptr;
    int nest = 0;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(context_);
      statement = CheckQueryText(query);
      file_ = BufFileCreateTemp(false);
      sort_desc_ = CreateTemplateTupleDesc(3);
      TupleDescInitEntry(sort_desc_, 1, "key", TEXTOID, -1, 0);
      TupleDescInitEntryCollation(sort_desc_, 1, C_COLLATION_OID);
      TupleDescInitEntry(sort_desc_, 2, "hash", INT8OID, -1, 0);
      TupleDescInitEntry(sort_desc_, 3, "pos", INT8OID, -1, 0);
      AttrNumber att = 1;
      Oid op = TextLessOperator;
      Oid collation = C_COLLATION_OID;
      bool nulls_first = false;
      sort_ = tuplesort_begin_heap(sort_desc_, 1, &att, &op, &collation, &nulls_first, work_mem,
                                   nullptr, TUPLESORT_NONE);
      put_slot_ = MakeSingleTupleTableSlot(sort_desc_, &TTSOpsVirtual);
      MemoryContextSwitchTo(old);
      nest = UseSearchPath(path);
    });
    {
      // Why restricted: the query may call the owner's functions; in a
      // superuser's session (run_model) or the worker, they must not be able
      // to change the session (SET ROLE, temporary objects) for later code.
      UserScope as_owner(def_.owner, SECURITY_RESTRICTED_OPERATION);
      PgGuard([&] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
        SPIPlanPtr plan = SPI_prepare(statement, 0, nullptr);
        if (plan == nullptr) {
          elog(ERROR, "pg_hyperline: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        }
        portal = SPI_cursor_open(nullptr, plan, nullptr, nullptr, true);
        MemoryContext old = MemoryContextSwitchTo(context_);
        row_desc_ = CreateTupleDescCopy(portal->tupDesc);
        MemoryContextSwitchTo(old);
      });
      model_ = CompileQueryModel(def_.name, row_desc_, def_.primary_key, def_.payload,
                                 def_.destination);
      model_->triggers = def_.triggers;
      model_->delete_via_api = def_.delete_via_api;
      std::vector<std::string> keys(kFetchRows);
      std::vector<int64> hashes(kFetchRows);
      std::string payload;
      std::string error;
      std::string canonical;
      JsonTokens tokens;
      for (;;) {
        uint64 got = 0;
        SPITupleTable* table = nullptr;
        PgGuard([&] {
          CHECK_FOR_INTERRUPTS();
          SPI_cursor_fetch(portal, true, kFetchRows);
          got = SPI_processed;
          table = SPI_tuptable;
        });
        for (uint64 i = 0; i < got; ++i) {
          HeapTuple tuple = table->vals[i];
          if (const ColumnBinding* null_key = NullKeyColumn(*model_, row_desc_, tuple)) {
            Throw(ERRCODE_NOT_NULL_VIOLATION,
                  "query of model \"" + def_.name + "\" returned NULL in key column \"" +
                      null_key->name + "\"",
                  "Each row of the result is one record: its key must not be NULL.",
                  "Filter such rows out in the query (WHERE ... IS NOT NULL).");
          }
          tokens.Clear();
          bool ok = RenderEvent(*model_, row_desc_, tuple, nullptr, "insert", keys[i], payload,
                                &tokens, error);
          CanonicalBytes(ok, tokens, payload, error, canonical);
          hashes[i] = static_cast<int64>(Hash64(canonical));
        }
        PgGuard([&] {
          MemoryContext old = MemoryContextSwitchTo(batch_context_);
          for (uint64 i = 0; i < got; ++i) {
            HeapTuple tuple = table->vals[i];
            // Why flatten: a value still in a table's TOAST would be read
            // back later through a pointer; the file keeps the row whole.
            if (HeapTupleHasExternal(tuple)) tuple = toast_flatten_tuple(tuple, row_desc_);
            int fileno = 0;
            off_t offset = 0;
            BufFileTell(file_, &fileno, &offset);
            uint32 len = tuple->t_len;
            BufFileWrite(file_, &len, sizeof len);
            BufFileWrite(file_, tuple->t_data, len);
            ExecClearTuple(put_slot_);
            put_slot_->tts_values[0] = PointerGetDatum(
                cstring_to_text_with_len(keys[i].data(), static_cast<int>(keys[i].size())));
            put_slot_->tts_values[1] = Int64GetDatum(hashes[i]);
            put_slot_->tts_values[2] = Int64GetDatum(PackPosition(fileno, offset));
            put_slot_->tts_isnull[0] = put_slot_->tts_isnull[1] = put_slot_->tts_isnull[2] = false;
            ExecStoreVirtualTuple(put_slot_);
            tuplesort_puttupleslot(sort_, put_slot_);
          }
          MemoryContextSwitchTo(old);
          MemoryContextReset(batch_context_);
          SPI_freetuptable(table);
        });
        counts_.rows += static_cast<int64_t>(got);
        if (got < static_cast<uint64>(kFetchRows)) break;
      }
      PgGuard([&] {
        SPI_cursor_close(portal);
        SPI_finish();
      });
    }
    PgGuard([&] {
      AtEOXact_GUC(true, nest);
      tuplesort_performsort(sort_);
    });
  }

  // Phase 2: one pass over the sorted result and the state, in key order.
  void MergeWithState() {
    Merge* m = nullptr;
    Change* changes = nullptr;
    const char* name = def_.name.c_str();
    bool send_updates = (def_.triggers & kOnUpdate) != 0;
    bool send_removals = (def_.triggers & kOnDelete) != 0;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(context_);
      m = static_cast<Merge*>(palloc0(sizeof(Merge)));
      m->sort = sort_;
      m->slot = MakeSingleTupleTableSlot(sort_desc_, &TTSOpsMinimalTuple);
      Oid nsp = get_namespace_oid("hyperline", false);
      Oid relid = get_relname_relid("_query_state", nsp);
      if (!OidIsValid(relid)) elog(ERROR, "pg_hyperline: hyperline._query_state does not exist");
      m->state_rel = table_open(relid, AccessShareLock);
      m->state_desc = RelationGetDescr(m->state_rel);
      m->a_key = get_attnum(relid, "key");
      m->a_hash = get_attnum(relid, "hash");
      m->a_row = get_attnum(relid, "row_values");
      AttrNumber a_model = get_attnum(relid, "model");
      Oid index = RelationGetPrimaryKeyIndex(m->state_rel);
      if (!OidIsValid(index) || a_model != 1) {
        elog(ERROR, "pg_hyperline: hyperline._query_state lacks its primary key (model, key)");
      }
      // Why a snapshot of our own: the batches below write the state while
      // this scan reads it; a registered copy keeps the scan on the state as
      // it was before the run.
      m->snapshot = RegisterSnapshot(GetLatestSnapshot());
      ScanKeyData key;
      Relation index_rel = index_open(index, AccessShareLock);
      Oid collation = index_rel->rd_indcollation[0];
      index_close(index_rel, AccessShareLock);
      ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid, collation, F_TEXTEQ,
                             CStringGetTextDatum(name));
      m->scan = systable_beginscan(m->state_rel, index, true, m->snapshot, 1, &key);
      m->need_old_for_update = send_updates && model_->uses_old;
      m->need_old_for_remove = send_removals;
      m->prev_cap = m->state_cap = 64;
      m->prev_key = static_cast<char*>(palloc(m->prev_cap));
      m->state_key = static_cast<char*>(palloc(m->state_cap));
      changes = static_cast<Change*>(palloc(sizeof(Change) * kBatchChanges));
      MemoryContextSwitchTo(old);
    });
    for (;;) {
      size_t n = 0;
      PgGuard([&] {
        MemoryContext old = MemoryContextSwitchTo(batch_context_);
        n = MergeSome(m, changes, kBatchChanges);
        MemoryContextSwitchTo(old);
      });
      if (m->duplicate != nullptr) {
        Throw(ERRCODE_UNIQUE_VIOLATION,
              "query of model \"" + def_.name + "\" returned more than one row with key " +
                  std::string(m->duplicate),
              "Each row of the result is one record: its primary_key (" + def_.primary_key +
                  ") must be unique in the result.",
              "Aggregate the rows of a key in the query (GROUP BY), or name more key columns.");
      }
      if (n == 0) break;
      HandleBatch(changes, n);
    }
    counts_.unchanged = m->unchanged;
    PgGuard([&] {
      systable_endscan(m->scan);
      UnregisterSnapshot(m->snapshot);
      table_close(m->state_rel, AccessShareLock);
      ExecDropSingleTupleTableSlot(m->slot);
      ExecDropSingleTupleTableSlot(put_slot_);
      tuplesort_end(sort_);
      BufFileClose(file_);
    });
  }

  // Renders the events of a batch of changes and writes its state.
  void HandleBatch(Change* changes, size_t n) {
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(batch_context_);
      ReadRows(file_, changes, n);
      MemoryContextSwitchTo(old);
    });
    bool quiet = def_.first_run && !def_.send_initial;  // record the first result only
    std::vector<std::string> rows(n);
    std::string payload;
    std::string error;
    JsonTokens tokens;
    {
      UserScope as_owner(def_.owner, SECURITY_RESTRICTED_OPERATION);
      for (size_t i = 0; i < n; ++i) {
        Change& c = changes[i];
        const char* op = c.kind == kAdded ? "insert" : c.kind == kUpdated ? "update" : "delete";
        int trigger = c.kind == kAdded ? kOnInsert : c.kind == kUpdated ? kOnUpdate : kOnDelete;
        if (c.kind == kAdded) ++counts_.added;
        if (c.kind == kUpdated) ++counts_.updated;
        if (c.kind == kRemoved) ++counts_.removed;
        Value old_row;
        if (c.old_row != nullptr) {
          try {
            old_row = DecodeValue(std::string_view(c.old_row, c.old_row_len));
          } catch (const std::invalid_argument&) {
            old_row = Value::Nil();  // unreadable: rendered as if unknown
          }
        }
        if (c.kind != kRemoved) {
          EncodeValue(RowObject(*model_, row_desc_, &c.tuple), rows[i]);
        }
        if ((def_.triggers & trigger) == 0 || quiet) continue;
        tokens.Clear();
        bool ok = c.kind == kRemoved
                      ? RenderQueryEvent(*model_, row_desc_, nullptr, &old_row, nullptr, op,
                                         payload, &tokens, error)
                      : RenderQueryEvent(*model_, row_desc_, &c.tuple, nullptr,
                                         c.kind == kUpdated ? &old_row : nullptr, op, payload,
                                         &tokens, error);
        Enqueue(c.key, op, ok, tokens, payload, error,
                c.kind == kRemoved && def_.delete_via_api);
      }
    }
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(batch_context_);
      Datum* up_keys = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
      Datum* up_hashes = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
      Datum* up_rows = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
      Datum* del_keys = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
      int nup = 0;
      int ndel = 0;
      for (size_t i = 0; i < n; ++i) {
        const Change& c = changes[i];
        if (c.kind == kRemoved) {
          del_keys[ndel++] = CStringGetTextDatum(c.key);
        } else {
          up_keys[nup] = CStringGetTextDatum(c.key);
          up_hashes[nup] = Int64GetDatum(c.hash);
          up_rows[nup] = ByteaOf(rows[i]);
          ++nup;
        }
      }
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
      WriteState(def_.name.c_str(), run_id_, nup, up_keys, up_hashes, up_rows, ndel, del_keys);
      SPI_finish();
      MemoryContextSwitchTo(old);
      MemoryContextReset(batch_context_);
    });
  }

  // Buffers one event for the outbox, as the trigger does (a rendering error
  // is recorded as a failed event).
  void Enqueue(const char* key, const char* op, bool ok, const JsonTokens& tokens,
               const std::string& payload, const std::string& error, bool via_delete_api) {
    OutboxInsert insert;
    insert.model = def_.name.c_str();
    insert.event_key = key;
    insert.operation = op;
    bool as_tokens = ok && !tokens.tokens.empty();
    insert.payload = ok && !as_tokens ? payload.c_str() : nullptr;
    insert.payload_jsonb = 0;
    insert.last_error = ok ? nullptr : error.c_str();
    insert.destination = def_.destination.c_str();
    insert.via_delete_api = via_delete_api;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(batch_context_);
      if (as_tokens) insert.payload_jsonb = TokensToJsonb(tokens);
      BufferOutboxRow(insert);
      MemoryContextSwitchTo(old);
    });
    ++events_;
  }

  QueryModelDef def_;
  int64 run_id_;
  RunCounts counts_;
  int64_t events_ = 0;
  std::shared_ptr<CompiledModel> model_;
  // Postgres objects, in context_ (freed with it, or with the transaction).
  MemoryContext context_ = nullptr;
  MemoryContext batch_context_ = nullptr;
  BufFile* file_ = nullptr;
  Tuplesortstate* sort_ = nullptr;
  TupleDesc sort_desc_ = nullptr;
  TupleDesc row_desc_ = nullptr;
  TupleTableSlot* put_slot_ = nullptr;
};

// ---------------------------------------------------------------------------
// Validation (create_query_model, alter_model)
// ---------------------------------------------------------------------------
std::string TextArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, std::string(what) + " must not be NULL");
  char* s = nullptr;
  PgGuard([&] { s = text_to_cstring(PG_GETARG_TEXT_PP(n)); });
  return s;
}

// SQL hyperline._validate_query_model(name, query, primary_key, payload,
// owner, search_path): checks a query model's definition as it will run — the
// query one read-only SELECT, run (LIMIT 1) as `owner` with `search_path`;
// the key columns and every row.x in its result; the first row (or a sample
// row when there is none) rendered to an event Hyperline accepts. Raises an
// error naming the problem.
Datum ValidateQueryModel(FunctionCallInfo fcinfo) {
  std::string name = TextArg(fcinfo, 0, "name");
  std::string query = TextArg(fcinfo, 1, "query");
  std::string primary_key = TextArg(fcinfo, 2, "primary_key");
  std::string payload = TextArg(fcinfo, 3, "payload");
  if (PG_ARGISNULL(4)) Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, "owner must not be NULL");
  Oid owner = PG_GETARG_OID(4);
  std::string search_path = TextArg(fcinfo, 5, "search_path");
  std::string sql;
  {
    char* statement = nullptr;
    PgGuard([&] { statement = CheckQueryText(query.c_str()); });
    // On lines of their own: a query ending in a -- comment still closes.
    sql = std::string("SELECT * FROM (\n") + statement + "\n) hyperline_sample LIMIT 1";
  }
  std::shared_ptr<CompiledModel> model;
  std::string key;
  std::string rendered;
  std::string error;
  bool have_row = false;
  bool rendered_ok = false;
  int nest = 0;
  PgGuard([&] { nest = UseSearchPath(search_path.c_str()); });
  {
    UserScope as_owner(owner, SECURITY_RESTRICTED_OPERATION);
    TupleDesc desc = nullptr;
    HeapTuple row = nullptr;
    const char* sql_text = sql.c_str();
    PgGuard([&] {
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
      int rc = SPI_execute(sql_text, true, 1);
      if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: the query did not run as a SELECT");
      desc = SPI_tuptable->tupdesc;
      if (SPI_processed > 0) row = SPI_tuptable->vals[0];
    });
    model = CompileQueryModel(name, desc, primary_key, payload, "");
    if (row != nullptr) {
      have_row = true;
      if (const ColumnBinding* null_key = NullKeyColumn(*model, desc, row)) {
        Throw(ERRCODE_NOT_NULL_VIOLATION,
              "the query's first row has NULL in key column \"" + null_key->name + "\"",
              "Each row of the result is one record: its key must not be NULL.",
              "Filter such rows out in the query (WHERE ... IS NOT NULL).");
      }
      rendered_ok = RenderEvent(*model, desc, row, nullptr, "insert", key, rendered, nullptr, error);
    }
    PgGuard([&] { SPI_finish(); });
  }
  PgGuard([&] { AtEOXact_GUC(true, nest); });
  if (!have_row) {
    try {
      rendered = RenderSynthetic(*model);
      rendered_ok = true;
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  const std::string sample = have_row ? "the first row of the query" : "a sample row";
  if (!rendered_ok) {
    Throw(ERRCODE_DATA_EXCEPTION, "rendering " + sample + " failed: " + error,
          rendered.empty() ? "" : "Rendered: " + rendered);
  }
  size_t first = rendered.find_first_not_of(" \t\r\n");
  size_t last = rendered.find_last_not_of(" \t\r\n");
  if (first != std::string::npos) rendered = rendered.substr(first, last - first + 1);
  EventShapeReport report = CheckEventShape(rendered);
  if (!report.errors.empty()) {
    Throw(ERRCODE_INVALID_PARAMETER_VALUE, "invalid payload: " + report.errors.front(),
          "Rendered from " + sample + ": " + rendered,
          "Hyperline events need customer_id, event_type, timestamp and a record object with "
          "an id.");
  }
  for (const std::string& w : report.warnings) {
    const char* m = w.c_str();
    PgGuard([&] { ereport(WARNING, (errmsg("payload: %s", m))); });
  }
  PG_RETURN_VOID();
}

// SQL hyperline._run_query_model(model, run_id) -> (rows, added, updated,
// removed, unchanged): runs the model in this transaction (RunQueryModel).
Datum RunQueryModelSql(FunctionCallInfo fcinfo) {
  std::string name = TextArg(fcinfo, 0, "model");
  if (PG_ARGISNULL(1)) Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, "run_id must not be NULL");
  int64 run_id = PG_GETARG_INT64(1);
  RunCounts counts = RunQueryModel(name, run_id);
  Datum result = 0;
  PgGuard([&] {
    TupleDesc desc = nullptr;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) {
      elog(ERROR, "pg_hyperline: _run_query_model must return a record");
    }
    desc = BlessTupleDesc(desc);
    Datum values[5] = {Int64GetDatum(counts.rows), Int64GetDatum(counts.added),
                       Int64GetDatum(counts.updated), Int64GetDatum(counts.removed),
                       Int64GetDatum(counts.unchanged)};
    bool nulls[5] = {false, false, false, false, false};
    result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
  });
  return result;
}

// SQL hyperline._render_query_rows(model, sample) -> (key, payload): the
// first rows of the model's query (as it returns them), rendered, the query
// run as the model's owner. No side effects.
Datum RenderQueryRows(FunctionCallInfo fcinfo) {
  std::string name = TextArg(fcinfo, 0, "model");
  int sample = PG_ARGISNULL(1) ? 5 : PG_GETARG_INT32(1);
  QueryModelDef def = ReadQueryModel(name, false);
  PgGuard([&] { InitMaterializedSRF(fcinfo, 0); });
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (sample <= 0) return (Datum)0;
  std::string sql;
  {
    char* statement = nullptr;
    PgGuard([&] { statement = CheckQueryText(def.query.c_str()); });
    sql = std::string("SELECT * FROM (\n") + statement + "\n) hyperline_preview LIMIT " +
          std::to_string(sample);
  }
  int nest = 0;
  PgGuard([&] { nest = UseSearchPath(def.search_path.c_str()); });
  {
    UserScope as_owner(def.owner, SECURITY_RESTRICTED_OPERATION);
    const char* sql_text = sql.c_str();
    TupleDesc desc = nullptr;
    SPITupleTable* table = nullptr;
    uint64 got = 0;
    PgGuard([&] {
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
      int rc = SPI_execute(sql_text, true, 0);
      if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: the query did not run as a SELECT");
      desc = SPI_tuptable->tupdesc;
      table = SPI_tuptable;
      got = SPI_processed;
    });
    std::shared_ptr<CompiledModel> model =
        CompileQueryModel(def.name, desc, def.primary_key, def.payload, def.destination);
    std::string key;
    std::string payload;
    std::string error;
    for (uint64 i = 0; i < got; ++i) {
      if (!RenderEvent(*model, desc, table->vals[i], nullptr, "insert", key, payload, nullptr,
                       error)) {
        Throw(ERRCODE_DATA_EXCEPTION, "rendering the row with key " + key + " failed: " + error);
      }
      PgGuard([&] {
        Datum values[2] = {CStringGetTextDatum(key.c_str()),
                           DirectFunctionCall1(jsonb_in, CStringGetDatum(payload.c_str()))};
        bool nulls[2] = {false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
      });
    }
    PgGuard([&] { SPI_finish(); });
  }
  PgGuard([&] { AtEOXact_GUC(true, nest); });
  return (Datum)0;
}

}  // namespace

RunCounts RunQueryModel(const std::string& name, int64_t run_id) {
  QueryModelDef def = ReadQueryModel(name, true);
  Run run(std::move(def), run_id);
  return run.Execute();
}

}  // namespace hyperline::pg

using hyperline::pg::CppGuard;

extern "C" {
PG_FUNCTION_INFO_V1(hyperline_validate_query_model);
PG_FUNCTION_INFO_V1(hyperline_run_query_model);
PG_FUNCTION_INFO_V1(hyperline_caller_search_path);
PG_FUNCTION_INFO_V1(hyperline_render_query_rows);

// SQL hyperline._render_query_rows(model, sample).
Datum hyperline_render_query_rows(PG_FUNCTION_ARGS) {
  return CppGuard([&] { return hyperline::pg::RenderQueryRows(fcinfo); });
}

// SQL hyperline._validate_query_model(name, query, primary_key, payload, owner, search_path).
Datum hyperline_validate_query_model(PG_FUNCTION_ARGS) {
  return CppGuard([&] { return hyperline::pg::ValidateQueryModel(fcinfo); });
}

// SQL hyperline._run_query_model(model, run_id).
Datum hyperline_run_query_model(PG_FUNCTION_ARGS) {
  return CppGuard([&] { return hyperline::pg::RunQueryModelSql(fcinfo); });
}

// SQL hyperline._caller_search_path(): the search_path of the caller of the
// public function being run (see gate.hpp).
Datum hyperline_caller_search_path(PG_FUNCTION_ARGS) {
  PG_RETURN_TEXT_P(cstring_to_text(hyperline::pg::CallerSearchPath()));
}
}
