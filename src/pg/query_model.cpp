// query_model.cpp: query models — checking a query model's definition, and
// the run (see query_model.hpp for the vocabulary).
//
// How a run stays set-wise and memory-bounded: the query is read through an
// SPI cursor, 1000 rows at a time, as the model's owner. Each row's key is
// computed and hashed, and so are its bytes (the *input hash*); the row goes
// to a temporary file (BufFile) and a record (key hash, input hash, position)
// to a *partition* chosen by the key hash's leading bits: a tape of one
// logical tape set (utils/logtape.h, as hash aggregation spills), so that all
// partitions share one temporary file instead of creating one each. The
// result's *digest* (StateDigest: the count and two order-independent sums of
// its (key hash, input hash) pairs) is computed on the way; when it equals
// the one recorded with the state, nothing changed and the run ends there.
// Otherwise the model's recorded keys (the state) are read the same way, by
// one scan (of the table, or of the model's part of its primary key when the
// model is small), into partitions of their own. Each pair of partitions is
// then compared: the result's in a hash table in memory (one larger than
// work_mem splits again), the state's streamed past it — a hash lookup per
// key and one pass over both sides, which also finds a duplicate key. Only
// the keys that need work come back to C++, a batch at a time: added keys and
// keys whose input changed are read back from the file and rendered (a
// changed input that renders the same payload sends nothing), their events
// buffered for the outbox (outbox.hpp, as the trigger writes them), and the
// state written with one statement per batch and kind (changed and removed
// keys by their row's position). Nothing held in memory grows with the
// result.
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
#include "pg/jsonb_builder.hpp"
#include "pg/model.hpp"
#include "pg/query_model.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "access/genam.h"
#include "access/heaptoast.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/htup_details.h"
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
#include "storage/bufmgr.h"
#include "storage/buffile.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/logtape.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include "pg/gate.hpp"
#include "pg/guard.hpp"
#include "pg/model_catalog.hpp"
#include "pg/outbox.hpp"
#include "pg/shmem.hpp"

namespace hyperline::pg {
namespace {

constexpr long kFetchRows = 1000;       // rows per cursor fetch
constexpr size_t kBatchChanges = 1000;  // changed keys handled per batch
constexpr int kMergeSteps = 10000;      // state keys compared between interrupt checks

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
    ereport(ERROR,
            (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
             errmsg("query must be one SELECT statement (got %d statements)", list_length(stmts))));
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
  int len =
      raw->stmt_len > 0 ? raw->stmt_len : static_cast<int>(strlen(query + raw->stmt_location));
  return pnstrdup(query + raw->stmt_location, len);
}

// Sets search_path to `path` at a new GUC nest level (Postgres code); returns
// the level, for AtEOXact_GUC(true, level).
int UseSearchPath(const char* path) {
  int level = NewGUCNestLevel();
  (void)set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                          false);
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
  bool first_run = false;      // no state and no successful run yet
  int64_t previous_rows = -1;  // rows of the last successful run, -1 if unknown
  bool state_exists = false;   // the state holds at least one key of the model
  std::string state_digest;    // _models.state_digest: the state's digest, "" if unknown
};

// How a run locks its model's row (FOR NO KEY UPDATE, held until the end of
// the transaction, so runs of one model never overlap).
enum class Lock { kNone, kNoWait, kWait };

// Reads query model `name`, locking its row as `lock` says.
QueryModelDef ReadQueryModel(const std::string& name, Lock lock) {
  static const char* const kSelect =
      "SELECT m.query, m.primary_key, m.payload, m.destination, m.search_path, "
      "m.owner IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles a "
      "WHERE a.oid OPERATOR(pg_catalog.=) m.owner::pg_catalog.oid), m.owner::pg_catalog.oid, "
      "'insert' OPERATOR(pg_catalog.=) ANY (m.triggers), "
      "'update' OPERATOR(pg_catalog.=) ANY (m.triggers), "
      "'delete' OPERATOR(pg_catalog.=) ANY (m.triggers), "
      "m.delete_mode OPERATOR(pg_catalog.=) 'api', m.send_initial, "
      // $1, not m.name: the planner then knows the model (a correlated
      // subquery over a state table that other models fill would be planned
      // as a scan of all of it).
      "NOT EXISTS (SELECT 1 FROM hyperline._sync_runs r "
      "            WHERE r.model OPERATOR(pg_catalog.=) $1 "
      "              AND r.status OPERATOR(pg_catalog.=) 'succeeded'), "
      "(SELECT r.rows FROM hyperline._sync_runs r WHERE r.model OPERATOR(pg_catalog.=) $1 "
      "   AND r.status OPERATOR(pg_catalog.=) 'succeeded' ORDER BY r.run_id DESC LIMIT 1), "
      "m.state_digest, "
      "EXISTS (SELECT 1 FROM hyperline._query_state s WHERE s.model OPERATOR(pg_catalog.=) $1) "
      "FROM hyperline._models m "
      "WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.kind OPERATOR(pg_catalog.=) 'query'";
  std::string sql = std::string(kSelect) + (lock == Lock::kNoWait ? " FOR NO KEY UPDATE OF m NOWAIT"
                                            : lock == Lock::kWait ? " FOR NO KEY UPDATE OF m"
                                                                  : "");
  const char* sql_text = sql.c_str();
  QueryModelDef def;
  def.name = name;
  char* fields[5] = {};
  bool flags[7] = {};
  bool found = false;
  bool owner_gone = false;
  char* digest_bytes = nullptr;
  size_t digest_len = 0;
  const char* arg_text = name.c_str();
  try {
    PgGuard([&] {
      MemoryContext caller = CurrentMemoryContext;
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
      Oid argtype = TEXTOID;
      Datum arg = CStringGetTextDatum(arg_text);
      // Why wait, and only so long: another sync worker's claim may hold the
      // row for a moment (it locks a row it then finds not due any more); a
      // run_model holding it longer is not waited for past this.
      int nest = NewGUCNestLevel();
      if (lock == Lock::kWait) {
        (void)set_config_option("lock_timeout", "10s", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
                                true, 0, false);
      }
      int rc = SPI_execute_with_args(sql_text, 1, &argtype, &arg, nullptr, false, 1);
      AtEOXact_GUC(true, nest);
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
        Datum previous = SPI_getbinval(t, d, 14, &isnull);
        def.previous_rows = isnull ? -1 : DatumGetInt64(previous);
        Datum digest = SPI_getbinval(t, d, 15, &isnull);
        if (!isnull) {
          bytea* b = DatumGetByteaPP(digest);
          digest_bytes = static_cast<char*>(MemoryContextAlloc(caller, VARSIZE_ANY_EXHDR(b)));
          digest_len = VARSIZE_ANY_EXHDR(b);
          memcpy(digest_bytes, VARDATA_ANY(b), digest_len);
        }
        def.state_exists = DatumGetBool(SPI_getbinval(t, d, 16, &isnull));
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
    Throw(ERRCODE_UNDEFINED_OBJECT, "the owner of query model \"" + name + "\" no longer exists",
          "The query runs with its owner's rights.", "Drop the model and create it again.");
  }
  def.query = fields[0] != nullptr ? fields[0] : "";
  def.primary_key = fields[1] != nullptr ? fields[1] : "";
  def.payload = fields[2] != nullptr ? fields[2] : "";
  def.destination = fields[3] != nullptr ? fields[3] : "";
  def.search_path = fields[4] != nullptr ? fields[4] : "";
  def.triggers =
      (flags[0] ? kOnInsert : 0) | (flags[1] ? kOnUpdate : 0) | (flags[2] ? kOnDelete : 0);
  def.delete_via_api = flags[3];
  def.send_initial = flags[4];
  def.first_run = flags[5] && !def.state_exists;  // no successful run and no state
  if (digest_bytes != nullptr) def.state_digest.assign(digest_bytes, digest_len);
  return def;
}

// ---------------------------------------------------------------------------
// Hashes: of a key, of a row's values, of a rendered payload
// ---------------------------------------------------------------------------
//
// Why two hashes per row: rendering is the costly part of a run, and most rows
// do not change between runs. A run first compares the *input hash* of each
// row — its bytes as Postgres holds them, seeded with a fingerprint of the
// template and of the result's columns — with the one recorded for its key;
// only rows whose input changed are rendered, and their *payload hash* (of the
// canonical rendering) compared with the recorded one: equal bytes render
// equal payloads, and a changed input that renders the same payload sends
// nothing.

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

// The fingerprint that seeds every input hash of a run: the template and the
// result's column names and types. A new template or query changes it, so
// every row is rendered again and compared by payload.
uint64_t InputSeed(const std::string& payload, TupleDesc desc) {
  std::string bytes = payload;
  bytes.push_back('\0');
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    bytes.append(NameStr(att->attname));
    bytes.push_back('\0');
    bytes.append(reinterpret_cast<const char*>(&att->atttypid), sizeof att->atttypid);
    bytes.append(reinterpret_cast<const char*>(&att->atttypmod), sizeof att->atttypmod);
  }
  return Hash64(bytes);
}

// The input hash of a result row: its null bitmap and data bytes (a tuple
// formed from the same values holds the same bytes). Pure; no Postgres call.
int64 InputHash(HeapTuple tuple, uint64_t seed) {
  const size_t from = offsetof(HeapTupleHeaderData, t_bits);
  const char* start = reinterpret_cast<const char*>(tuple->t_data) + from;
  return static_cast<int64>(Hash64Bytes(start, tuple->t_len - from, seed));
}

// The digest of a set of keys with their input hashes: how many, and two sums
// (mod 2^64) of independent 64-bit hashes of each (key hash, input hash)
// pair. It does not depend on the order the pairs come in, so a run computes
// the result's while reading it, and the state's is kept in _models
// (state_digest), written by the run that wrote the state. Equal digests
// mean, but for a chance of 2^-128, the same keys with the same inputs: an
// unchanged result, which the run then does not compare key by key. A
// duplicate key in the result cannot match (the state's keys are unique).
// Stored as a version byte and the three numbers, so that a change of
// hashing in a later version reads as unknown.
class StateDigest {
 public:
  // Why a finalizer and not a full hash of the pair: both halves are
  // already hashes; each sum only needs its own strong mix of the two.
  void Add(int64 key_hash, int64 input_hash) {
    const auto k = static_cast<uint64_t>(key_hash);
    const auto i = static_cast<uint64_t>(input_hash);
    ++count_;
    sum1_ += Mix(k ^ Mix(i ^ kSeed1));
    sum2_ += Mix(i ^ Mix(k ^ kSeed2));
  }

  std::string Encode() const {
    std::string out(1, static_cast<char>(kVersion));
    for (uint64_t v : {static_cast<uint64_t>(count_), sum1_, sum2_}) {
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    }
    return out;
  }

  int64 count() const { return count_; }

 private:
  // MurmurHash3's 64-bit finalizer.
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    x ^= x >> 33;
    return x;
  }

  static constexpr uint8 kVersion = 1;
  static constexpr uint64_t kSeed1 = 0x9E3779B97F4A7C15ULL;
  static constexpr uint64_t kSeed2 = 0xC2B2AE3D27D4EB4FULL;
  int64 count_ = 0;
  uint64_t sum1_ = 0;
  uint64_t sum2_ = 0;
};

// ---------------------------------------------------------------------------
// The run's scratch space
// ---------------------------------------------------------------------------
//
// Vocabulary: the *row file* keeps every result row (the heap tuple as SPI
// returned it) at a *position*; rows are read back only for the keys that
// need rendering. Every row also gives a *record* — (key hash, input hash,
// position) — written to one of the *partitions*: tapes that split the key
// hashes into consecutive ranges by their leading bits. The state's keys give
// records too (with their heap position), in partitions of the same ranges.
// A pair of partitions (result, state) of one range is compared with the
// result's loaded in a hash table (bounded by work_mem: a larger one splits,
// with the state's, by the next bits) and the state's streamed: a key in both
// is unchanged (equal input hash) or changed, a key only in the state
// removed, a key only in the result added. No sort: each record is written
// once and read once. Keys are compared by their 64-bit hash: equal key and
// input hashes are the same row of the same key (but for a chance of
// 2^-128); a changed key's row is checked against the state's key when read
// back, and two rows of one key hash in the result are read back to tell a
// duplicate key from two keys of one hash (KeyHashCollision: the run stops).

// A position in the row file: file number and offset (segments are 1 GB).
int64 PackPosition(int fileno, off_t offset) {
  return (static_cast<int64>(fileno) << 32) | static_cast<int64>(offset);
}

// A key hash as an unsigned number in the state index's order (signed int8).
inline uint64_t Ordered(int64 key_hash) {
  return static_cast<uint64_t>(key_hash) ^ 0x8000000000000000ULL;
}

// The leading `bits` bits of a key hash in index order (0 when bits is 0).
inline uint64_t Prefix(int64 key_hash, int bits) {
  return bits == 0 ? 0 : Ordered(key_hash) >> (64 - bits);
}

// A record: a key by its hash (the key itself is in the row at `pos`, or in
// the state's row). Why no key text: the records are most of what a run
// writes and reads. Two records of one key hash are told apart, or found to
// be one key, by reading their rows (see KeyHashCollision).
struct Record {
  int64 key_hash;
  int64 input_hash;
  int64 pos;
};

constexpr int kSplitBits = 4;                  // a partition too large for memory splits into 16
constexpr int kMaxBits = 8;                    // partitions of the first level at most 256
constexpr int64 kRecordsPerPartition = 16384;  // the aim, sizing the first level

constexpr size_t kTapeReadBuffer = size_t{4} * BLCKSZ;  // read-ahead of a partition being read

// A partition: its tape in `tapes` (created at its first record), its size.
// A partition is written, then read once from its start (destructively: the
// set reuses the blocks read), then closed. Every tape call runs in `context`
// (the run's), as a tape allocates its buffers lazily in the current one.
struct Partition {
  LogicalTape* tape;
  int64 bytes;
  int64 records;
  MemoryContext context;
  LogicalTapeSet* tapes;
};

Partition EmptyPartition(MemoryContext context, LogicalTapeSet* tapes) {
  return Partition{nullptr, 0, 0, context, tapes};
}

// Appends a record to partition `p` (Postgres code).
void WriteRecord(Partition* p, const Record& r) {
  MemoryContext old = MemoryContextSwitchTo(p->context);
  if (p->tape == nullptr) p->tape = LogicalTapeCreate(p->tapes);
  LogicalTapeWrite(p->tape, const_cast<Record*>(&r), sizeof r);
  MemoryContextSwitchTo(old);
  p->bytes += static_cast<int64>(sizeof r);
  ++p->records;
}

// Ends partition `p`'s writing: it is read from its start next (Postgres code).
void StartReading(Partition* p) {
  MemoryContext old = MemoryContextSwitchTo(p->context);
  LogicalTapeRewindForRead(p->tape, kTapeReadBuffer);
  MemoryContextSwitchTo(old);
}

// Reads up to `size` bytes of partition `p`; how many (Postgres code).
size_t ReadBytes(Partition* p, void* into, size_t size) {
  MemoryContext old = MemoryContextSwitchTo(p->context);
  size_t got = LogicalTapeRead(p->tape, into, size);
  MemoryContextSwitchTo(old);
  return got;
}

// Closes partition `p`'s tape, if it has one (Postgres code).
void ClosePartition(Partition* p) {
  if (p->tape == nullptr) return;
  LogicalTapeClose(p->tape);
  p->tape = nullptr;
}

// Reads partition `p` whole into a palloc'd buffer (Postgres code).
char* LoadPartition(Partition* p) {
  char* data = static_cast<char*>(palloc(p->bytes + 1));
  if (p->bytes == 0) return data;
  StartReading(p);
  if (ReadBytes(p, data, p->bytes) != static_cast<size_t>(p->bytes)) {
    elog(ERROR, "pg_hyperline: could not read a partition of the run");
  }
  return data;
}

// Splits partition `p` (of prefix length `bits`) into 2^kSplitBits children
// by the next bits (Postgres code); closes `p`'s tape.
void SplitPartition(Partition* p, int bits, Partition* children) {
  const int n = 1 << kSplitBits;
  for (int i = 0; i < n; ++i) children[i] = EmptyPartition(p->context, p->tapes);
  StartReading(p);
  for (int64 i = 0; i < p->records; ++i) {
    Record r;
    if (ReadBytes(p, &r, sizeof r) != sizeof r) {
      elog(ERROR, "pg_hyperline: could not read a partition of the run");
    }
    uint64_t child = Prefix(r.key_hash, bits + kSplitBits) & (n - 1);
    WriteRecord(&children[child], r);
  }
  ClosePartition(p);
}

// One key that needs work (palloc'd in the batch context).
enum ChangeKind : uint8 {
  kAdded,    // not recorded before
  kChanged,  // recorded, and its row's input hash differs (rendered to know)
  kRemoved,  // recorded, gone from the result
};
struct Change {
  ChangeKind kind;
  char* key;  // NUL-terminated: the state's (changed, removed), or the row's (added)
  int64 key_hash;
  int64 input_hash;
  int64 pos;       // added/changed: the row in the file
  int64 state_pos;  // changed/removed: the state's row (PackTid)
  int64 old_hash;  // changed: the recorded payload hash
  char* old_row;   // changed/removed: the recorded row values (encoded), or null
  int old_row_len;
  HeapTupleData tuple;  // added/changed: read back from the file
};

// Reads the next record of partition `p` into `r`; false at its end
// (Postgres code).
bool ReadRecord(Partition* p, Record* r) {
  size_t got = ReadBytes(p, r, sizeof *r);
  if (got == 0) return false;
  if (got != sizeof *r) elog(ERROR, "pg_hyperline: could not read a partition of the run");
  return true;
}

// A heap position as a record's `pos`, and back.
int64 PackTid(ItemPointer tid) {
  return (static_cast<int64>(ItemPointerGetBlockNumber(tid)) << 16) |
         ItemPointerGetOffsetNumber(tid);
}
void UnpackTid(int64 pos, ItemPointer tid) {
  ItemPointerSet(tid, static_cast<BlockNumber>(pos >> 16), static_cast<OffsetNumber>(pos & 0xFFFF));
}
// A palloc'd tid Datum of a packed position (Postgres code).
Datum TidDatum(int64 pos) {
  auto* tid = static_cast<ItemPointer>(palloc(sizeof(ItemPointerData)));
  UnpackTid(pos, tid);
  return PointerGetDatum(tid);
}

// A partition loaded for comparison: its records, found by key hash in an
// open-addressing table. Pure C++ over the loaded bytes (nothing here calls
// Postgres or throws while probing).
class PartitionTable {
 public:
  struct Entry {
    Record record;  // copied: records in the file are not aligned
    bool seen;
  };

  // Indexes the records of `data` (`count` of them). Returns the position
  // (in the row file) of the first record whose key hash an earlier one
  // has, and sets `earlier` to that one's; -1 when none repeats.
  int64 Build(const char* data, int64 count, int64* earlier) {
    entries_.clear();
    entries_.reserve(count);
    size_t capacity = 16;
    while (capacity < static_cast<size_t>(count) * 2) capacity <<= 1;
    slots_.assign(capacity, -1);
    mask_ = capacity - 1;
    const char* p = data;
    for (int64 i = 0; i < count; ++i) {
      Entry e;
      memcpy(&e.record, p, sizeof(Record));
      e.seen = false;
      p += sizeof(Record);
      int64 found = Find(e.record.key_hash);
      if (found >= 0) {
        *earlier = entries_[found].record.pos;
        return e.record.pos;
      }
      entries_.push_back(e);
      size_t slot = static_cast<uint64_t>(e.record.key_hash) & mask_;
      while (slots_[slot] >= 0) slot = (slot + 1) & mask_;
      slots_[slot] = static_cast<int64>(entries_.size()) - 1;
    }
    return -1;
  }

  // The entry of a key hash, or -1.
  int64 Find(int64 key_hash) const {
    for (size_t slot = static_cast<uint64_t>(key_hash) & mask_; slots_[slot] >= 0;
         slot = (slot + 1) & mask_) {
      if (entries_[slots_[slot]].record.key_hash == key_hash) return slots_[slot];
    }
    return -1;
  }

  Entry& at(int64 i) { return entries_[i]; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<Entry> entries_;
  std::vector<int64> slots_;
  size_t mask_ = 0;
};

// Reads back the row at `pos` of the row file into `tuple`, palloc'd
// (Postgres code).
void ReadRow(BufFile* file, int64 pos, HeapTupleData* tuple) {
  int fileno = static_cast<int>(pos >> 32);
  off_t offset = static_cast<off_t>(pos & 0xFFFFFFFF);
  uint32 len = 0;
  if (BufFileSeek(file, fileno, offset, SEEK_SET) != 0 ||
      BufFileRead(file, &len, sizeof len) != sizeof len) {
    elog(ERROR, "pg_hyperline: could not read the run's row file");
  }
  tuple->t_data = static_cast<HeapTupleHeader>(palloc(len));
  if (BufFileRead(file, tuple->t_data, len) != len) {
    elog(ERROR, "pg_hyperline: could not read the run's row file");
  }
  tuple->t_len = len;
  ItemPointerSetInvalid(&tuple->t_self);
  tuple->t_tableOid = InvalidOid;
}

// Reads back the rows of changes `order[0..n)` (added and changed keys, in
// the order of the file) (Postgres code).
void ReadRows(BufFile* file, Change* changes, const size_t* order, size_t n) {
  for (size_t i = 0; i < n; ++i) ReadRow(file, changes[order[i]].pos, &changes[order[i]].tuple);
}

// The state statements, prepared once per backend.
SPIPlanPtr insert_plan = nullptr;
SPIPlanPtr update_plan = nullptr;
SPIPlanPtr delete_plan = nullptr;
SPIPlanPtr digest_plan = nullptr;

// One batch of state writes: inserts (added keys) of (key hash, key, input
// hash, payload hash, row values), updates (changed keys) of (state row,
// input hash, payload hash, row values), deletions (removed keys) of (state
// row). Why the state's rows by their heap position (TID scans) and not by
// key: no index descent per key. The positions are those the run read with
// its snapshot, after locking the model; only this run writes these rows
// until it ends, each once.
struct StateWrites {
  int nins, nupd, ndel;
  Datum *ins_key_hashes, *ins_keys, *ins_input_hashes, *ins_hashes, *ins_rows;
  Datum *upd_tids, *upd_input_hashes, *upd_hashes, *upd_rows;
  Datum* del_tids;
};

SPIPlanPtr KeepPlan(const char* sql, int nargs, Oid* types) {
  SPIPlanPtr plan = SPI_prepare(sql, nargs, types);
  if (plan == nullptr) elog(ERROR, "pg_hyperline: SPI_prepare failed: %d", SPI_result);
  SPI_keepplan(plan);
  return plan;
}

// Writes a batch (Postgres code, inside an SPI connection).
void WriteState(const char* model, int64 run_id, const StateWrites& w) {
  Oid row_types[7] = {TEXTOID,      INT8ARRAYOID,  TEXTARRAYOID, INT8ARRAYOID,
                      INT8ARRAYOID, BYTEAARRAYOID, INT8OID};
  if (insert_plan == nullptr) {
    insert_plan = KeepPlan(
        "INSERT INTO hyperline._query_state (model, key_hash, key, input_hash, hash, row_values, "
        "run_id) SELECT $1, u.key_hash, u.key, u.input_hash, u.hash, u.row_values, $7 "
        "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), "
        "pg_catalog.unnest($5), pg_catalog.unnest($6)) AS u(key_hash, key, input_hash, hash, "
        "row_values)",
        7, row_types);
  }
  if (update_plan == nullptr) {
    Oid types[6] = {TEXTOID, TIDARRAYOID, INT8ARRAYOID, INT8ARRAYOID, BYTEAARRAYOID, INT8OID};
    update_plan = KeepPlan(
        "UPDATE hyperline._query_state s SET input_hash = u.input_hash, hash = u.hash, "
        "row_values = u.row_values, run_id = $6 "
        "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), "
        "pg_catalog.unnest($5)) AS u(tid, input_hash, hash, row_values) "
        "WHERE s.ctid OPERATOR(pg_catalog.=) u.tid AND s.model OPERATOR(pg_catalog.=) $1",
        6, types);
  }
  if (delete_plan == nullptr) {
    Oid types[2] = {TEXTOID, TIDARRAYOID};
    delete_plan = KeepPlan(
        "DELETE FROM hyperline._query_state s USING pg_catalog.unnest($2) AS d(tid) "
        "WHERE s.ctid OPERATOR(pg_catalog.=) d.tid AND s.model OPERATOR(pg_catalog.=) $1",
        2, types);
  }
  auto int8s = [](Datum* elems, int n) {
    return PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  };
  auto texts = [](Datum* elems, int n) {
    return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
  };
  auto tids = [](Datum* elems, int n) {
    return PointerGetDatum(
        construct_array(elems, n, TIDOID, sizeof(ItemPointerData), false, TYPALIGN_SHORT));
  };
  auto byteas = [](Datum* elems, int n) {
    return PointerGetDatum(construct_array(elems, n, BYTEAOID, -1, false, TYPALIGN_INT));
  };
  Datum model_datum = CStringGetTextDatum(model);
  if (w.nins > 0) {
    Datum args[7] = {model_datum,
                     int8s(w.ins_key_hashes, w.nins),
                     texts(w.ins_keys, w.nins),
                     int8s(w.ins_input_hashes, w.nins),
                     int8s(w.ins_hashes, w.nins),
                     byteas(w.ins_rows, w.nins),
                     Int64GetDatum(run_id)};
    int rc = SPI_execute_plan(insert_plan, args, nullptr, false, 0);
    if (rc != SPI_OK_INSERT) elog(ERROR, "pg_hyperline: writing the model's state failed (%d)", rc);
  }
  if (w.nupd > 0) {
    Datum args[6] = {model_datum,
                     tids(w.upd_tids, w.nupd),
                     int8s(w.upd_input_hashes, w.nupd),
                     int8s(w.upd_hashes, w.nupd),
                     byteas(w.upd_rows, w.nupd),
                     Int64GetDatum(run_id)};
    int rc = SPI_execute_plan(update_plan, args, nullptr, false, 0);
    if (rc != SPI_OK_UPDATE || SPI_processed != static_cast<uint64>(w.nupd)) {
      elog(ERROR, "pg_hyperline: updating the model's state failed (%d)", rc);
    }
  }
  if (w.ndel > 0) {
    Datum args[2] = {model_datum, tids(w.del_tids, w.ndel)};
    int rc = SPI_execute_plan(delete_plan, args, nullptr, false, 0);
    if (rc != SPI_OK_DELETE || SPI_processed != static_cast<uint64>(w.ndel)) {
      elog(ERROR, "pg_hyperline: writing the model's state failed (%d)", rc);
    }
  }
}

// A bytea of `bytes` (Postgres code).
Datum ByteaOf(const std::string& bytes) {
  bytea* b = static_cast<bytea*>(palloc(VARHDRSZ + bytes.size()));
  SET_VARSIZE(b, VARHDRSZ + bytes.size());
  memcpy(VARDATA(b), bytes.data(), bytes.size());
  return PointerGetDatum(b);
}

// While alive, CurrentMemoryContext is `context` (what rendering pallocs goes
// there, to be reset per batch); the previous one comes back when it goes.
class ContextScope {
 public:
  explicit ContextScope(MemoryContext context) : old_(MemoryContextSwitchTo(context)) {}
  ~ContextScope() { MemoryContextSwitchTo(old_); }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  MemoryContext old_;
};

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------
class Run {
 public:
  Run(QueryModelDef def, int64 run_id) : def_(std::move(def)), run_id_(run_id) {}

  RunCounts Execute() {
    // NOLINTBEGIN(bugprone-implicit-widening-of-multiplication-result): Postgres's macro
    PgGuard([&] {
      context_ = AllocSetContextCreate(CurrentMemoryContext, "pg_hyperline query run",
                                       ALLOCSET_DEFAULT_SIZES);
      batch_context_ =
          AllocSetContextCreate(context_, "pg_hyperline query run batch", ALLOCSET_DEFAULT_SIZES);
      partition_context_ = AllocSetContextCreate(context_, "pg_hyperline query run partition",
                                                 ALLOCSET_DEFAULT_SIZES);
    });
    // NOLINTEND(bugprone-implicit-widening-of-multiplication-result)
    TimestampTz started = GetCurrentTimestamp();
    ReadResult();
    TimestampTz read = GetCurrentTimestamp();
    // An unchanged result (the state's digest, and some state if it counts
    // keys: a digest restored without its state is not trusted) needs no
    // comparison: every key is unchanged, nothing is sent or written.
    std::string digest = digest_.Encode();
    bool same = !def_.first_run && !def_.state_digest.empty() && def_.state_digest == digest &&
                def_.state_exists == (digest_.count() > 0);
    if (same) {
      counts_.unchanged = counts_.rows;
      PgGuard([&] {
        BufFileClose(file_);
        LogicalTapeSetClose(tapes_);
      });
    } else {
      Compare();
      WriteDigest(digest);
    }
    TimestampTz compared = GetCurrentTimestamp();
    PgGuard([&] {
      FlushOutbox();
      MemoryContextDelete(context_);
      elog(DEBUG1,
           "pg_hyperline: run %lld of query model \"%s\": %lld rows read and filed in %.3f s "
           "(%d partitions), %s in %.3f s, of which %.3f s for the %lld "
           "keys that needed work (%.3f s reading and rendering them, %.3f s writing the state)",
           static_cast<long long>(run_id_), def_.name.c_str(), static_cast<long long>(counts_.rows),
           (read - started) / 1e6, nparts_,
           same      ? "found unchanged by the state's digest"
           : by_index_ ? "compared with the state (read by its primary key)"
                       : "compared with the state",
           (compared - read) / 1e6, (render_us_ + write_us_) / 1e6,
           static_cast<long long>(worked_), render_us_ / 1e6, write_us_ / 1e6);
    });
    if (events_ > 0) WakeWorkerAtCommit();
    return counts_;
  }

 private:
  // Phase 1: the query, as the owner; every row keyed, hashed, filed and its
  // record written to its partition.
  void ReadResult() {
    const char* query = def_.query.c_str();
    const char* path = def_.search_path.c_str();
    char* statement = nullptr;
    Portal portal = nullptr;
    int nest = 0;
    // The first level of partitions, sized from the previous run's rows (a
    // first run starts with one: a partition too large for memory splits
    // while compared, and a small result keeps to one temporary file).
    bits_ = 0;
    while (bits_ < kMaxBits && (def_.previous_rows >> bits_) > kRecordsPerPartition) ++bits_;
    nparts_ = 1 << bits_;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(context_);
      statement = CheckQueryText(query);
      file_ = BufFileCreateTemp(false);
      tapes_ = LogicalTapeSetCreate(false, nullptr, -1);
      parts_ = static_cast<Partition*>(palloc0(sizeof(Partition) * nparts_));
      for (int p = 0; p < nparts_; ++p) parts_[p] = EmptyPartition(context_, tapes_);
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
      model_ =
          CompileQueryModel(def_.name, row_desc_, def_.primary_key, def_.payload, def_.destination);
      model_->triggers = def_.triggers;
      model_->delete_via_api = def_.delete_via_api;
      uint64_t seed = InputSeed(def_.payload, row_desc_);
      std::string key;
      std::vector<int64> key_hashes(kFetchRows);
      for (;;) {
        uint64 got = 0;
        SPITupleTable* table = nullptr;
        PgGuard([&] {
          CHECK_FOR_INTERRUPTS();
          SPI_cursor_fetch(portal, true, kFetchRows);
          got = SPI_processed;
          table = SPI_tuptable;
        });
        {
          // Why: reading the key pallocs per row (column values) in the
          // current context, which is SPI's until the cursor closes.
          ContextScope in_batch(batch_context_);
          for (uint64 i = 0; i < got; ++i) {
            HeapTuple tuple = table->vals[i];
            if (const ColumnBinding* null_key = NullKeyColumn(*model_, row_desc_, tuple)) {
              Throw(ERRCODE_NOT_NULL_VIOLATION,
                    "query of model \"" + def_.name + "\" returned NULL in key column \"" +
                        null_key->name + "\"",
                    "Each row of the result is one record: its key must not be NULL.",
                    "Filter such rows out in the query (WHERE ... IS NOT NULL).");
            }
            key.clear();
            EventKeyOf(*model_, row_desc_, tuple, key);
            key_hashes[i] = static_cast<int64>(Hash64(key));
          }
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
            Record r;
            r.key_hash = key_hashes[i];
            r.input_hash = InputHash(tuple, seed);
            r.pos = PackPosition(fileno, offset);
            digest_.Add(r.key_hash, r.input_hash);
            WriteRecord(&parts_[Prefix(r.key_hash, bits_)], r);
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
    PgGuard([&] { AtEOXact_GUC(true, nest); });
  }

  // Phase 2: the recorded keys partitioned like the result's, then each
  // pair of partitions compared.
  void Compare() {
    const char* name = def_.name.c_str();
    need_old_for_change_ = (def_.triggers & kOnUpdate) != 0 && model_->uses_old;
    need_old_for_remove_ = (def_.triggers & kOnDelete) != 0;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(context_);
      Oid nsp = get_namespace_oid("hyperline", false);
      Oid relid = get_relname_relid("_query_state", nsp);
      if (!OidIsValid(relid)) elog(ERROR, "pg_hyperline: hyperline._query_state does not exist");
      state_rel_ = table_open(relid, AccessShareLock);
      a_hash_ = get_attnum(relid, "hash");
      a_row_ = get_attnum(relid, "row_values");
      a_key_ = get_attnum(relid, "key");
      heap_slot_ = table_slot_create(state_rel_, nullptr);
      // Why a snapshot of our own: the batches below write the state while
      // its keys are compared; rows are fetched as they were before the run
      // (the run's writes are invisible to it).
      snapshot_ = RegisterSnapshot(GetLatestSnapshot());
      state_parts_ = static_cast<Partition*>(palloc0(sizeof(Partition) * nparts_));
      for (int p = 0; p < nparts_; ++p) state_parts_[p] = EmptyPartition(context_, tapes_);
      changes_ = static_cast<Change*>(palloc(sizeof(Change) * kBatchChanges));
      MemoryContextSwitchTo(old);
    });
    // A model without state (its first run) has nothing to read.
    if (def_.state_exists) ReadState(name);
    for (int p = 0; p < nparts_; ++p) {
      ComparePair(&parts_[p], &state_parts_[p], static_cast<uint64_t>(p), bits_);
    }
    if (nchanges_ > 0) HandleBatch();
    PgGuard([&] {
      ExecDropSingleTupleTableSlot(heap_slot_);
      UnregisterSnapshot(snapshot_);
      table_close(state_rel_, AccessShareLock);
      BufFileClose(file_);
      LogicalTapeSetClose(tapes_);
    });
  }

  // Writes a record (key hash, input hash, heap position) of every key the
  // state holds for the model into the partition of its key hash. Why a
  // plain scan and not the primary key's order: it reads the heap's pages in
  // order, whatever the visibility map says. Why the table access method and
  // not SPI: no executor, no copy of every tuple into a tuple table; the scan
  // sees the state as of the run's snapshot (the run's own writes, later, are
  // invisible to it). Why the model is compared here and not by a scan key:
  // a byte comparison of the deformed column instead of a call of texteq per
  // row. Row level security does not apply: a run reads only its own model's
  // rows.
  void ReadState(const char* name) {
    PgGuard([&] {
      Oid relid = RelationGetRelid(state_rel_);
      AttrNumber a_model = get_attnum(relid, "model");
      AttrNumber a_key_hash = get_attnum(relid, "key_hash");
      AttrNumber a_input_hash = get_attnum(relid, "input_hash");
      if (a_model == InvalidAttrNumber || a_key_hash == InvalidAttrNumber ||
          a_input_hash == InvalidAttrNumber || a_key_ == InvalidAttrNumber ||
          a_hash_ == InvalidAttrNumber || a_row_ == InvalidAttrNumber) {
        elog(ERROR, "pg_hyperline: hyperline._query_state lacks a column");
      }
      AttrNumber last = std::max({a_model, a_key_hash, a_input_hash});
      const size_t name_len = strlen(name);
      TupleTableSlot* slot = heap_slot_;
      uint32 n = 0;
      auto file = [&]() {
        if ((++n & 1023U) == 0) CHECK_FOR_INTERRUPTS();
        slot_getsomeattrs(slot, last);
        Datum raw_model = slot->tts_values[a_model - 1];
        text* model = DatumGetTextPP(raw_model);  // a copy only if compressed or toasted
        bool ours = VARSIZE_ANY_EXHDR(model) == name_len &&
                    memcmp(VARDATA_ANY(model), name, name_len) == 0;
        if (PointerGetDatum(model) != raw_model) pfree(model);
        if (!ours) return;
        Record r;
        r.pos = PackTid(&slot->tts_tid);
        r.key_hash = DatumGetInt64(slot->tts_values[a_key_hash - 1]);
        r.input_hash = DatumGetInt64(slot->tts_values[a_input_hash - 1]);
        WriteRecord(&state_parts_[Prefix(r.key_hash, bits_)], r);
      };
      // Why by the primary key when the model had fewer keys than the table
      // has pages: the table holds every query model's state (and the dead
      // rows of models dropped since the last vacuum); a small model's run
      // must not read all of it.
      BlockNumber pages = RelationGetNumberOfBlocks(state_rel_);
      by_index_ = def_.previous_rows >= 0 && def_.previous_rows < static_cast<int64_t>(pages);
      if (by_index_) {
        Relation index = index_open(RelationGetPrimaryKeyIndex(state_rel_), AccessShareLock);
        ScanKeyData key;
        ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
                               index->rd_indcollation[0], F_TEXTEQ, CStringGetTextDatum(name));
        IndexScanDesc scan = index_beginscan(state_rel_, index, snapshot_, 1, 0);
        index_rescan(scan, &key, 1, nullptr, 0);
        while (index_getnext_slot(scan, ForwardScanDirection, slot)) file();
        index_endscan(scan);
        index_close(index, AccessShareLock);
      } else {
        TableScanDesc scan = table_beginscan(state_rel_, snapshot_, 0, nullptr);
        while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) file();
        table_endscan(scan);
      }
      ExecClearTuple(slot);
    });
  }

  // A new change in the batch; its key is read later, from its row or its
  // state (Postgres code).
  Change* NewChange(ChangeKind kind, int64 key_hash) {
    Change* c = &changes_[nchanges_++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->key_hash = key_hash;
    return c;
  }

  // Copies the recorded key, payload hash and (when `row`) row values of the
  // state row at `pos` into `c` (Postgres code).
  void FetchRecorded(int64 pos, Change* c, bool row) {
    ItemPointerData tid;
    UnpackTid(pos, &tid);
    c->state_pos = pos;
    if (!table_tuple_fetch_row_version(state_rel_, &tid, snapshot_, heap_slot_)) {
      elog(ERROR, "pg_hyperline: a key of hyperline._query_state vanished during a run");
    }
    bool isnull = false;
    c->old_hash = DatumGetInt64(slot_getattr(heap_slot_, a_hash_, &isnull));
    MemoryContext old = MemoryContextSwitchTo(batch_context_);
    c->key = TextDatumGetCString(slot_getattr(heap_slot_, a_key_, &isnull));
    MemoryContextSwitchTo(old);
    if (!row) return;
    Datum d = slot_getattr(heap_slot_, a_row_, &isnull);
    if (isnull) return;
    old = MemoryContextSwitchTo(batch_context_);
    bytea* b = DatumGetByteaPP(d);
    c->old_row_len = VARSIZE_ANY_EXHDR(b);
    c->old_row = static_cast<char*>(palloc(c->old_row_len + 1));
    memcpy(c->old_row, VARDATA_ANY(b), c->old_row_len);
    MemoryContextSwitchTo(old);
  }

  // Compares the result's and the state's keys whose hashes begin with
  // `prefix` (`bits` long): the result's partition in memory, the state's
  // streamed past it.
  void ComparePair(Partition* part, Partition* state, uint64_t prefix, int bits) {
    const int64 budget = static_cast<int64>(work_mem) * 1024L / 2;
    if (part->bytes > budget && bits + kSplitBits <= 64) {
      Partition children[1 << kSplitBits];
      Partition state_children[1 << kSplitBits];
      PgGuard([&] {
        MemoryContext old = MemoryContextSwitchTo(context_);
        SplitPartition(part, bits, children);
        if (state->tape != nullptr) {
          SplitPartition(state, bits, state_children);
        } else {
          for (Partition& c : state_children) c = EmptyPartition(state->context, state->tapes);
        }
        MemoryContextSwitchTo(old);
      });
      for (int c = 0; c < (1 << kSplitBits); ++c) {
        ComparePair(&children[c], &state_children[c],
                    (prefix << kSplitBits) | static_cast<uint64_t>(c), bits + kSplitBits);
      }
      return;
    }
    char* data = nullptr;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(partition_context_);
      if (part->tape != nullptr) {
        data = LoadPartition(part);
        ClosePartition(part);
      }
      if (state->tape != nullptr) StartReading(state);
      MemoryContextSwitchTo(old);
    });
    int64 earlier = -1;
    int64 later = table_.Build(data, part->records, &earlier);
    if (later >= 0) RepeatedKeyHash(earlier, later);
    // The state's keys: unchanged, changed or removed.
    for (bool more = state->tape != nullptr; more;) {
      more = false;
      PgGuard([&] {
        MemoryContext old = MemoryContextSwitchTo(partition_context_);
        Record r;
        for (int steps = 1; ReadRecord(state, &r); ++steps) {
          if (steps % kMergeSteps == 0) CHECK_FOR_INTERRUPTS();
          int64 found = table_.Find(r.key_hash);
          if (found >= 0) {
            // Equal key hashes and equal input hashes (of the row's bytes,
            // which hold the key): the same key, unchanged, but for a chance
            // of 2^-128. A changed input is checked against the state's key
            // when its row is read back (HandleBatch).
            PartitionTable::Entry& e = table_.at(found);
            e.seen = true;
            if (e.record.input_hash == r.input_hash) {
              ++counts_.unchanged;
              continue;
            }
            Change* c = NewChange(kChanged, r.key_hash);
            c->input_hash = e.record.input_hash;
            c->pos = e.record.pos;
            FetchRecorded(r.pos, c, need_old_for_change_);
          } else {
            Change* c = NewChange(kRemoved, r.key_hash);
            FetchRecorded(r.pos, c, need_old_for_remove_);
          }
          if (nchanges_ == static_cast<int>(kBatchChanges)) {
            more = true;
            break;
          }
        }
        MemoryContextSwitchTo(old);
      });
      if (more) HandleBatch();
    }
    // The result's keys the state did not have: added.
    for (size_t i = 0; i < table_.size(); ++i) {
      PartitionTable::Entry& e = table_.at(static_cast<int64>(i));
      if (e.seen) continue;
      Change* c = NewChange(kAdded, e.record.key_hash);
      c->input_hash = e.record.input_hash;
      c->pos = e.record.pos;
      if (nchanges_ == static_cast<int>(kBatchChanges)) HandleBatch();
    }
    PgGuard([&] {
      ClosePartition(state);
      MemoryContextReset(partition_context_);
    });
  }

  // Renders what the batch of changes needs, buffers its events and writes
  // its state; empties the batch.
  void HandleBatch() {
    TimestampTz started = GetCurrentTimestamp();
    Change* changes = changes_;
    size_t n = static_cast<size_t>(nchanges_);
    worked_ += static_cast<int64_t>(n);
    // The rows of added and changed keys, read back in the file's order.
    std::vector<size_t> order;
    order.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (changes[i].kind != kRemoved) order.push_back(i);
    }
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return changes[a].pos < changes[b].pos; });
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(batch_context_);
      ReadRows(file_, changes, order.data(), order.size());
      MemoryContextSwitchTo(old);
    });
    // Their keys: an added key's is its row's; a changed key's row must have
    // the state's key (equal key hashes of two keys are told apart here).
    {
      std::string key;
      for (size_t i : order) {
        Change& c = changes[i];
        KeyOfRow(&c.tuple, key);
        if (c.kind == kChanged && key != c.key) KeyHashCollision(c.key, key);
        if (c.kind == kAdded) {
          PgGuard([&] { c.key = MemoryContextStrdup(batch_context_, key.c_str()); });
        }
      }
    }
    bool quiet = def_.first_run && !def_.send_initial;  // record the first result only
    std::vector<std::string> rows(n);
    std::vector<int64> hashes(n);
    std::string payload;
    std::string error;
    std::string canonical;
    JsonTokens tokens;
    {
      UserScope as_owner(def_.owner, SECURITY_RESTRICTED_OPERATION);
      ContextScope in_batch(batch_context_);
      for (size_t i = 0; i < n; ++i) {
        Change& c = changes[i];
        if (c.kind == kRemoved) {
          ++counts_.removed;
          if ((def_.triggers & kOnDelete) == 0) continue;
          Value old_row = Decoded(c);
          tokens.Clear();
          bool ok = RenderQueryEvent(*model_, row_desc_, nullptr, &old_row, nullptr, "delete",
                                     payload, &tokens, error);
          Enqueue(c.key, "delete", ok, tokens, payload, error, def_.delete_via_api);
          continue;
        }
        // The canonical rendering: its hash is what decides a change.
        tokens.Clear();
        bool ok = RenderQueryEvent(*model_, row_desc_, &c.tuple, nullptr, nullptr, "insert",
                                   payload, &tokens, error);
        CanonicalBytes(ok, tokens, payload, error, canonical);
        hashes[i] = static_cast<int64>(Hash64(canonical));
        EncodeValue(RowObject(*model_, row_desc_, &c.tuple), rows[i]);
        if (c.kind == kAdded) {
          ++counts_.added;
          if ((def_.triggers & kOnInsert) != 0 && !quiet) {
            Enqueue(c.key, "insert", ok, tokens, payload, error, false);
          }
          continue;
        }
        // Changed input: an update only if what Hyperline receives changed.
        if (hashes[i] == c.old_hash) {
          ++counts_.unchanged;
          continue;
        }
        ++counts_.updated;
        if ((def_.triggers & kOnUpdate) == 0) continue;
        if (!model_->uses_old && !model_->uses_operation) {
          // What the update renders is the canonical rendering.
          Enqueue(c.key, "update", ok, tokens, payload, error, false);
          continue;
        }
        Value old_row = Decoded(c);
        tokens.Clear();
        ok = RenderQueryEvent(*model_, row_desc_, &c.tuple, nullptr, &old_row, "update", payload,
                              &tokens, error);
        Enqueue(c.key, "update", ok, tokens, payload, error, false);
      }
    }
    TimestampTz rendered = GetCurrentTimestamp();
    render_us_ += rendered - started;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(batch_context_);
      StateWrites w;
      memset(&w, 0, sizeof w);
      auto array = [&]() { return static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1))); };
      w.ins_key_hashes = array();
      w.ins_keys = array();
      w.ins_input_hashes = array();
      w.ins_hashes = array();
      w.ins_rows = array();
      w.upd_tids = array();
      w.upd_input_hashes = array();
      w.upd_hashes = array();
      w.upd_rows = array();
      w.del_tids = array();
      for (size_t i = 0; i < n; ++i) {
        const Change& c = changes[i];
        if (c.kind == kRemoved) {
          w.del_tids[w.ndel++] = TidDatum(c.state_pos);
        } else if (c.kind == kAdded) {
          w.ins_key_hashes[w.nins] = Int64GetDatum(c.key_hash);
          w.ins_keys[w.nins] = CStringGetTextDatum(c.key);
          w.ins_input_hashes[w.nins] = Int64GetDatum(c.input_hash);
          w.ins_hashes[w.nins] = Int64GetDatum(hashes[i]);
          w.ins_rows[w.nins++] = ByteaOf(rows[i]);
        } else {
          w.upd_tids[w.nupd] = TidDatum(c.state_pos);
          w.upd_input_hashes[w.nupd] = Int64GetDatum(c.input_hash);
          w.upd_hashes[w.nupd] = Int64GetDatum(hashes[i]);
          w.upd_rows[w.nupd++] = ByteaOf(rows[i]);
        }
      }
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
      WriteState(def_.name.c_str(), run_id_, w);
      SPI_finish();
      MemoryContextSwitchTo(old);
      MemoryContextReset(batch_context_);
    });
    nchanges_ = 0;
    write_us_ += GetCurrentTimestamp() - rendered;
  }

  // The event key of a result row into `key`.
  void KeyOfRow(HeapTuple tuple, std::string& key) {
    ContextScope in_batch(batch_context_);  // what reading the key pallocs
    key.clear();
    EventKeyOf(*model_, row_desc_, tuple, key);
  }

  // Two rows of the result whose keys hash alike, at `earlier` and `later` in
  // the row file: one key twice (the query's error), or two keys of one hash.
  [[noreturn]] void RepeatedKeyHash(int64 earlier, int64 later) {
    HeapTupleData first;
    HeapTupleData second;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(batch_context_);
      ReadRow(file_, earlier, &first);
      ReadRow(file_, later, &second);
      MemoryContextSwitchTo(old);
    });
    std::string a;
    std::string b;
    KeyOfRow(&first, a);
    KeyOfRow(&second, b);
    if (a != b) KeyHashCollision(a, b);
    Throw(ERRCODE_UNIQUE_VIOLATION,
          "query of model \"" + def_.name + "\" returned more than one row with key " + a,
          "Each row of the result is one record: its primary_key (" + def_.primary_key +
              ") must be unique in the result.",
          "Aggregate the rows of a key in the query (GROUP BY), or name more key columns.");
  }

  // Two different keys with one 64-bit key hash: a run tells keys apart by
  // it, so it stops rather than take one for the other (nothing is sent or
  // recorded). The chance is about n^2 / 2^65 for n keys.
  [[noreturn]] void KeyHashCollision(const std::string& a, const std::string& b) const {
    Throw(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
          "keys " + a + " and " + b + " of query model \"" + def_.name +
              "\" have the same 64-bit hash",
          "A run tells keys apart by their hash and cannot tell these two apart; the run "
          "stopped and nothing was sent or recorded.",
          "Please report it to the pg_hyperline developers. Changing how the query shapes the "
          "key (another column or form in primary_key) avoids it.");
  }

  // Records `digest` as the digest of the model's state, which the run has
  // just made equal to its result (Postgres: SPI, as the extension's owner).
  void WriteDigest(const std::string& digest) {
    if (digest == def_.state_digest) return;
    const char* name = def_.name.c_str();
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(batch_context_);
      if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
      if (digest_plan == nullptr) {
        Oid types[2] = {TEXTOID, BYTEAOID};
        digest_plan = KeepPlan(
            "UPDATE hyperline._models m SET state_digest = $2 "
            "WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.kind OPERATOR(pg_catalog.=) 'query'",
            2, types);
      }
      Datum args[2] = {CStringGetTextDatum(name), ByteaOf(digest)};
      int rc = SPI_execute_plan(digest_plan, args, nullptr, false, 0);
      if (rc != SPI_OK_UPDATE || SPI_processed != 1) {
        elog(ERROR, "pg_hyperline: recording the digest of the model's state failed (%d)", rc);
      }
      SPI_finish();
      MemoryContextSwitchTo(old);
      MemoryContextReset(batch_context_);
    });
  }

  // The recorded row values of a change (nil when unreadable).
  static Value Decoded(const Change& c) {
    if (c.old_row == nullptr) return Value::Nil();
    try {
      return DecodeValue(std::string_view(c.old_row, c.old_row_len));
    } catch (const std::invalid_argument&) {
      return Value::Nil();
    }
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
  StateDigest digest_;  // of the result's keys and input hashes
  int64_t events_ = 0;
  int64_t worked_ = 0;   // keys that needed work (added, changed input, removed)
  int64 render_us_ = 0;  // time reading back and rendering them
  int64 write_us_ = 0;   // time writing their state
  std::shared_ptr<CompiledModel> model_;
  PartitionTable table_;              // the partition being compared
  bool need_old_for_change_ = false;  // updates are sent and the template reads `old`
  bool need_old_for_remove_ = false;  // removals are sent
  int bits_ = 0;
  int nparts_ = 0;
  int nchanges_ = 0;
  // Postgres objects, in context_ (freed with it, or with the transaction).
  MemoryContext context_ = nullptr;
  MemoryContext batch_context_ = nullptr;      // reset after each batch of changes
  MemoryContext partition_context_ = nullptr;  // the partition being compared
  BufFile* file_ = nullptr;                    // the row file
  LogicalTapeSet* tapes_ = nullptr;            // every partition's tape
  Partition* parts_ = nullptr;                 // the first level of partitions
  TupleDesc row_desc_ = nullptr;
  Partition* state_parts_ = nullptr;  // the state's keys, partitioned like parts_
  Relation state_rel_ = nullptr;
  TupleTableSlot* heap_slot_ = nullptr;
  Snapshot snapshot_ = nullptr;
  AttrNumber a_hash_ = 0;
  AttrNumber a_row_ = 0;
  AttrNumber a_key_ = 0;
  bool by_index_ = false;  // the state was read by its primary key
  Change* changes_ = nullptr;  // the batch: up to kBatchChanges
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
      rendered_ok =
          RenderEvent(*model, desc, row, nullptr, "insert", key, rendered, nullptr, error);
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
  RunCounts counts = RunQueryModel(name, run_id, false);
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
  QueryModelDef def = ReadQueryModel(name, Lock::kNone);
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
        std::string message = "rendering the row with key ";
        message.append(key).append(" failed: ").append(error);
        Throw(ERRCODE_DATA_EXCEPTION, message);
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

RunCounts RunQueryModel(const std::string& name, int64_t run_id, bool wait) {
  QueryModelDef def = ReadQueryModel(name, wait ? Lock::kWait : Lock::kNoWait);
  Run run(std::move(def), run_id);
  return run.Execute();
}

}  // namespace hyperline::pg

namespace hyperline::pg {
namespace {

// SQL hyperline._caller_search_path(): the search_path of the caller of the
// public function being run (see gate.hpp). Postgres code.
Datum CallerSearchPathSql(FunctionCallInfo) {
  PG_RETURN_TEXT_P(cstring_to_text(CallerSearchPath()));
}

}  // namespace
}  // namespace hyperline::pg

HYPERLINE_SQL_FUNCTION(hyperline_validate_query_model, hyperline::pg::ValidateQueryModel)
HYPERLINE_SQL_FUNCTION(hyperline_run_query_model, hyperline::pg::RunQueryModelSql)
HYPERLINE_SQL_FUNCTION(hyperline_render_query_rows, hyperline::pg::RenderQueryRows)
HYPERLINE_SQL_FUNCTION_PG(hyperline_caller_search_path, hyperline::pg::CallerSearchPathSql)
