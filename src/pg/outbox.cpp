// outbox.cpp: buffered, batched insertion into hyperline.outbox.
//
// Why not SPI: an INSERT through SPI costs a parse/plan/executor start per row;
// the trigger path must add almost nothing to the user's write. We form the
// tuples ourselves, insert them with table_multi_insert, and let the executor's
// index code maintain the indexes — one EState and one set of open indexes per
// flush, not per row. The indexes' IndexInfo, with their predicates and
// expressions ready to evaluate, is built once per backend and kept until the
// outbox or one of its indexes changes: a flush must not pay a planner pass over
// each partial index's predicate (docs/benchmarks.md, "OLTP").
#include "pg/catalog.hpp"
#include "pg/outbox.hpp"

#include "pg/stats.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/index.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace hyperline::pg {
namespace {

constexpr int kFlushRows = 1000;

// Column numbers of hyperline.outbox, looked up by name once per backend.
struct OutboxLayout {
  Oid relid;
  Oid seqid;
  AttrNumber id, model, event_key, operation, payload, status, attempts, next_attempt_at,
      created_at, last_error, destination;
  AttrNumber method;  // InvalidAttrNumber in the 0.1.0 layout
};
OutboxLayout layout = {};
bool relcache_callback_installed = false;

// The outbox's indexes as the executor needs them to insert (see the file
// comment). Per flush only the locks are taken again and the index AM's
// scratch space (ii_AmCache, ii_Context) is pointed at the flush's memory.
struct OutboxIndexes {
  bool valid;
  MemoryContext context;  // child of CacheMemoryContext, reset on rebuild
  int count;
  Oid* oids;
  IndexInfo** infos;
};
OutboxIndexes indexes = {};
uint64 relcache_generation = 0;  // bumped by every invalidation that concerns us

// A buffered event: datums live in buffer_context.
struct BufferedRow {
  SubTransactionId subxid;
  Datum model, event_key, operation, payload, last_error, destination;
  bool has_payload, has_error, via_delete_api;
};

// Child of TopMemoryContext, made once per backend and reset at the end of
// every transaction that buffered rows. Why not a child of the transaction's
// context: creating and deleting it (a 1 MB block) was measurable in a one-row
// transaction.
MemoryContext buffer_context = nullptr;
BufferedRow* buffer = nullptr;
int buffered = 0;
int buffer_capacity = 0;

// Relcache callback: only flips flags (the next flush reloads).
void ResetLayout(Datum, Oid relid) {
  bool ours = relid == InvalidOid || relid == layout.relid || relid == layout.seqid;
  for (int i = 0; !ours && indexes.valid && i < indexes.count; ++i) ours = indexes.oids[i] == relid;
  if (!ours) return;
  layout.relid = InvalidOid;
  indexes.valid = false;
  ++relcache_generation;
}

AttrNumber Attnum(Oid relid, const char* name) {
  AttrNumber n = get_attnum(relid, name);
  if (n == InvalidAttrNumber) elog(ERROR, "pg_hyperline: hyperline.outbox has no column %s", name);
  return n;
}

void LoadLayout() {
  if (!relcache_callback_installed) {
    CacheRegisterRelcacheCallback(ResetLayout, 0);
    relcache_callback_installed = true;
  }
  Oid nsp = get_namespace_oid(catalog::kSchema, false);
  Oid relid = get_relname_relid(catalog::kOutbox, nsp);
  Oid seqid = get_relname_relid(catalog::kOutboxIdSeq, nsp);
  if (relid == InvalidOid || seqid == InvalidOid) {
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("pg_hyperline: hyperline.outbox does not exist"),
                    errhint("Is the extension installed in this database?")));
  }
  layout.seqid = seqid;
  layout.id = Attnum(relid, catalog::outbox::kId);
  layout.model = Attnum(relid, catalog::outbox::kModel);
  layout.event_key = Attnum(relid, catalog::outbox::kEventKey);
  layout.operation = Attnum(relid, catalog::outbox::kOperation);
  layout.payload = Attnum(relid, catalog::outbox::kPayload);
  layout.status = Attnum(relid, catalog::outbox::kStatus);
  layout.attempts = Attnum(relid, catalog::outbox::kAttempts);
  layout.next_attempt_at = Attnum(relid, catalog::outbox::kNextAttemptAt);
  layout.created_at = Attnum(relid, catalog::outbox::kCreatedAt);
  layout.last_error = Attnum(relid, catalog::outbox::kLastError);
  layout.destination = Attnum(relid, catalog::outbox::kDestination);
  layout.method = get_attnum(relid, catalog::outbox::kMethod);
  layout.relid = relid;
}

// Forgets the buffered rows and frees their memory (keeping the keeper block).
void DropBuffer() {
  if (buffer != nullptr) MemoryContextReset(buffer_context);
  buffer = nullptr;
  buffered = 0;
  buffer_capacity = 0;
}

// Empties the buffer but keeps its memory for the next rows of the transaction.
// Why: freeing and re-allocating the blocks at every flush cost page faults.
void EmptyBuffer() {
  MemoryContextReset(buffer_context);
  buffer_capacity = kFlushRows;
  buffer = static_cast<BufferedRow*>(
      MemoryContextAlloc(buffer_context, sizeof(BufferedRow) * buffer_capacity));
  buffered = 0;
}

// Why flush at pre-commit too: the end-of-statement hooks (below) cover the
// executor and COPY; anything else that fires row triggers (logical
// replication's apply worker) is written here: nothing buffered may be lost at
// commit.
void OnXactEvent(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
      FlushOutbox();
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PREPARE:
      DropBuffer();
      break;
    default:
      break;
  }
}

// Rows buffered by an aborting subtransaction (or its children, whose ids are
// larger) are dropped with it.
void OnSubXactEvent(SubXactEvent event, SubTransactionId my_subid, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  int kept = 0;
  for (int i = 0; i < buffered; ++i) {
    if (buffer[i].subxid < my_subid) buffer[kept++] = buffer[i];
  }
  buffered = kept;
}

Datum CopyText(const char* s) { return s == nullptr ? Datum(0) : CStringGetTextDatum(s); }

// Builds indexes.* from the open, locked outbox: what ExecOpenIndices and the
// first ExecInsertIndexTuples of a statement would build, in a long-lived
// context. Returns the indexes opened (locked) for this flush, palloc'd in the
// caller's context.
Relation* BuildIndexes(Relation rel) {
  if (indexes.context == nullptr) {
    // NOLINTBEGIN(bugprone-implicit-widening-of-multiplication-result): Postgres's macro
    indexes.context = AllocSetContextCreate(CacheMemoryContext, "pg_hyperline outbox indexes",
                                            ALLOCSET_SMALL_SIZES);
    // NOLINTEND(bugprone-implicit-widening-of-multiplication-result)
  }
  MemoryContextReset(indexes.context);
  indexes.valid = false;
  indexes.count = 0;
  uint64 generation = relcache_generation;
  List* oids = RelationGetIndexList(rel);
  int n = list_length(oids);
  Relation* descs = static_cast<Relation*>(palloc0(sizeof(Relation) * (n + 1)));
  MemoryContext old = MemoryContextSwitchTo(indexes.context);
  indexes.oids = static_cast<Oid*>(palloc(sizeof(Oid) * (n + 1)));
  indexes.infos = static_cast<IndexInfo**>(palloc(sizeof(IndexInfo*) * (n + 1)));
  int i = 0;
  ListCell* lc = nullptr;
  foreach (lc, oids) {
    Relation index = index_open(lfirst_oid(lc), RowExclusiveLock);
    IndexInfo* info = BuildIndexInfo(index);
    // As ExecPrepareQual/ExecPrepareExprList do, with no EState: no parent
    // plan (so no JIT), and state that outlives any one statement.
    if (info->ii_Predicate != NIL) {
      info->ii_PredicateState = ExecInitQual(
          reinterpret_cast<List*>(expression_planner(reinterpret_cast<Expr*>(info->ii_Predicate))),
          nullptr);
    }
    if (info->ii_Expressions != NIL) {
      List* states = NIL;
      ListCell* e = nullptr;
      foreach (e, info->ii_Expressions) {
        states = lappend(states,
                         ExecInitExpr(expression_planner(static_cast<Expr*>(lfirst(e))), nullptr));
      }
      info->ii_ExpressionsState = states;
    }
    descs[i] = index;
    indexes.oids[i] = lfirst_oid(lc);
    indexes.infos[i] = info;
    ++i;
  }
  MemoryContextSwitchTo(old);
  indexes.count = n;
  // An invalidation that arrived while the indexes were being opened (a lock
  // taken processes them) may postdate the list: use it for this flush, as
  // ExecOpenIndices would, but build again next time.
  indexes.valid = generation == relcache_generation;
  return descs;
}

}  // namespace

void BufferOutboxRow(const OutboxInsert& row) {
  if (buffer_context == nullptr) {
    // Sized for a full flush batch: one keeper block, reused after each flush.
    buffer_context = AllocSetContextCreate(TopMemoryContext, "pg_hyperline outbox buffer",
                                           Size{1024} * 1024, Size{1024} * 1024,
                                           Size{8} * 1024 * 1024);
  }
  if (buffer == nullptr) EmptyBuffer();
  MemoryContext old = MemoryContextSwitchTo(buffer_context);
  if (buffered == buffer_capacity) {
    buffer_capacity *= 2;
    buffer = static_cast<BufferedRow*>(repalloc(buffer, sizeof(BufferedRow) * buffer_capacity));
  }
  BufferedRow& b = buffer[buffered];
  b.subxid = GetCurrentSubTransactionId();
  b.model = CopyText(row.model);
  b.event_key = CopyText(row.event_key);
  b.operation = CopyText(row.operation);
  b.destination = CopyText(row.destination);
  b.has_payload = row.payload != nullptr || row.payload_jsonb != 0;
  if (row.payload_jsonb != 0) {
    b.payload = datumCopy(row.payload_jsonb, false, -1);
  } else {
    b.payload = b.has_payload ? DirectFunctionCall1(jsonb_in, CStringGetDatum(row.payload)) : 0;
  }
  b.has_error = row.last_error != nullptr;
  b.last_error = CopyText(row.last_error);
  b.via_delete_api = row.via_delete_api;
  MemoryContextSwitchTo(old);
  ++buffered;
  if (buffered >= kFlushRows) FlushOutbox();
}

void FlushOutbox() {
  if (buffered == 0) return;
  if (layout.relid == InvalidOid) LoadLayout();
  Relation rel = table_open(layout.relid, RowExclusiveLock);
  TupleDesc desc = RelationGetDescr(rel);
  EState* estate = CreateExecutorState();
  MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
  ResultRelInfo* rri = makeNode(ResultRelInfo);
  InitResultRelInfo(rri, rel, 1, nullptr, 0);
  // What ExecOpenIndices does, from the cache (see OutboxIndexes).
  Relation* descs = nullptr;
  if (!indexes.valid) {
    descs = BuildIndexes(rel);
  } else {
    descs = static_cast<Relation*>(palloc(sizeof(Relation) * (indexes.count + 1)));
    for (int i = 0; i < indexes.count; ++i)
      descs[i] = index_open(indexes.oids[i], RowExclusiveLock);
  }
  for (int i = 0; i < indexes.count; ++i) {
    indexes.infos[i]->ii_AmCache = nullptr;
    indexes.infos[i]->ii_Context = estate->es_query_cxt;
  }
  rri->ri_NumIndices = indexes.count;
  rri->ri_IndexRelationDescs = descs;
  rri->ri_IndexRelationInfo = indexes.infos;
  // Slots over an unpinned copy of the descriptor: slots on the relation's own
  // (reference-counted) descriptor register with the resource owner one by
  // one (docs/benchmarks.md, "Bulk write path").
  TupleDesc slot_desc = CreateTupleDescCopy(desc);
  TupleTableSlot** slots =
      static_cast<TupleTableSlot**>(palloc(sizeof(TupleTableSlot*) * buffered));
  Datum* values = static_cast<Datum*>(palloc(sizeof(Datum) * desc->natts));
  bool* nulls = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
  TimestampTz now = GetCurrentTransactionStartTimestamp();
  Datum pending = CStringGetTextDatum(catalog::SqlText(catalog::OutboxStatus::kPending));
  Datum failed = CStringGetTextDatum(catalog::SqlText(catalog::OutboxStatus::kFailed));
  Datum post = CStringGetTextDatum("POST");
  Datum del = CStringGetTextDatum("DELETE");
  for (int i = 0; i < buffered; ++i) {
    const BufferedRow& r = buffer[i];
    for (int a = 0; a < desc->natts; ++a) nulls[a] = true;
    auto set = [&](AttrNumber att, Datum d) {
      values[att - 1] = d;
      nulls[att - 1] = false;
    };
    set(layout.id, Int64GetDatum(nextval_internal(layout.seqid, false)));
    set(layout.model, r.model);
    set(layout.event_key, r.event_key);
    set(layout.operation, r.operation);
    if (r.has_payload) set(layout.payload, r.payload);
    set(layout.status, r.has_payload ? pending : failed);
    if (r.has_error) set(layout.last_error, r.last_error);
    set(layout.attempts, Int32GetDatum(0));
    set(layout.next_attempt_at, TimestampTzGetDatum(now));
    set(layout.created_at, TimestampTzGetDatum(now));
    set(layout.destination, r.destination);
    if (layout.method != InvalidAttrNumber) set(layout.method, r.via_delete_api ? del : post);
    slots[i] = MakeSingleTupleTableSlot(slot_desc, &TTSOpsHeapTuple);
    ExecStoreHeapTuple(heap_form_tuple(desc, values, nulls), slots[i], true);
  }
  CommandId cid = GetCurrentCommandId(true);
  if (buffered == 1) {
    table_tuple_insert(rel, slots[0], cid, 0, nullptr);  // a one-row transaction
  } else {
    table_multi_insert(rel, slots, buffered, cid, 0, nullptr);
  }
  for (int i = 0; i < buffered; ++i) {
    ExecInsertIndexTuples(rri, slots[i], estate, false, false, nullptr, NIL);
    ResetPerTupleExprContext(estate);
    ExecDropSingleTupleTableSlot(slots[i]);
  }
  MemoryContextSwitchTo(old);
  ExecCloseIndices(rri);
  FreeExecutorState(estate);  // ii_AmCache now dangles: reset at the next flush's start
  table_close(rel, NoLock);
  // hyperline.stats: events_enqueued (published if the transaction commits).
  for (int i = 0; i < buffered; ++i) {
    stats::NoteEventWritten(buffer[i].model, buffer[i].destination, !buffer[i].has_payload);
  }
  // The rows are written: drop their buffered copies.
  EmptyBuffer();
}

// When the buffer is flushed besides kFlushRows and commit: at the end of
// every statement, so that the statement's own transaction sees its events
// right after it. AFTER ROW triggers fire in ExecutorFinish (the executor
// hook), except under COPY FROM, which fires them itself (the utility hook).
// Why hooks and not a statement trigger: a statement trigger is a second
// trigger call per statement (docs/benchmarks.md, "OLTP"), and a statement
// aimed at a partition fires none of the parent's.
ExecutorFinish_hook_type prev_executor_finish = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

void FlushAfterExecutorFinish(QueryDesc* query_desc) {
  if (prev_executor_finish) {
    prev_executor_finish(query_desc);
  } else {
    standard_ExecutorFinish(query_desc);
  }
  if (buffered > 0) FlushOutbox();
}

void FlushAfterUtility(PlannedStmt* pstmt, const char* query_string, bool read_only_tree,
                       ProcessUtilityContext context, ParamListInfo params,
                       QueryEnvironment* query_env, DestReceiver* dest, QueryCompletion* qc) {
  if (prev_process_utility) {
    prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
  } else {
    standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest,
                            qc);
  }
  if (buffered > 0 && IsTransactionState()) FlushOutbox();
}

void InstallOutboxCallbacks() {
  RegisterXactCallback(OnXactEvent, nullptr);
  RegisterSubXactCallback(OnSubXactEvent, nullptr);
  prev_executor_finish = ExecutorFinish_hook;
  ExecutorFinish_hook = FlushAfterExecutorFinish;
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = FlushAfterUtility;
}

}  // namespace hyperline::pg
