// outbox.cpp: direct heap + index insertion into hyperline.outbox.
//
// Why not SPI: an INSERT through SPI costs a parse/plan/executor start per row;
// the trigger path must add almost nothing to the user's write, so we form the
// tuple ourselves and let the executor's index code maintain the indexes.
#include "pg/outbox.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace hyperline::pg {
namespace {

// Column numbers of hyperline.outbox, looked up by name once per backend.
struct OutboxLayout {
  Oid relid;
  Oid seqid;
  AttrNumber id, model, event_key, operation, payload, status, attempts, next_attempt_at,
      created_at, last_error, destination;
};
OutboxLayout layout = {};
bool callback_installed = false;

void ResetLayout(Datum, Oid relid) {
  if (relid == InvalidOid || relid == layout.relid || relid == layout.seqid) layout.relid = InvalidOid;
}

AttrNumber Attnum(Oid relid, const char* name) {
  AttrNumber n = get_attnum(relid, name);
  if (n == InvalidAttrNumber) elog(ERROR, "pg_hyperline: hyperline.outbox has no column %s", name);
  return n;
}

void LoadLayout() {
  if (!callback_installed) {
    CacheRegisterRelcacheCallback(ResetLayout, 0);
    callback_installed = true;
  }
  Oid nsp = get_namespace_oid("hyperline", false);
  Oid relid = get_relname_relid("outbox", nsp);
  Oid seqid = get_relname_relid("outbox_id_seq", nsp);
  if (relid == InvalidOid || seqid == InvalidOid) {
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("pg_hyperline: hyperline.outbox does not exist"),
                    errhint("Is the extension installed in this database?")));
  }
  layout.seqid = seqid;
  layout.id = Attnum(relid, "id");
  layout.model = Attnum(relid, "model");
  layout.event_key = Attnum(relid, "event_key");
  layout.operation = Attnum(relid, "operation");
  layout.payload = Attnum(relid, "payload");
  layout.status = Attnum(relid, "status");
  layout.attempts = Attnum(relid, "attempts");
  layout.next_attempt_at = Attnum(relid, "next_attempt_at");
  layout.created_at = Attnum(relid, "created_at");
  layout.last_error = Attnum(relid, "last_error");
  layout.destination = Attnum(relid, "destination");
  layout.relid = relid;
}

}  // namespace

void InsertOutboxRows(const OutboxInsert* rows, int n) {
  if (layout.relid == InvalidOid) LoadLayout();
  Relation rel = table_open(layout.relid, RowExclusiveLock);
  TupleDesc desc = RelationGetDescr(rel);
  ResultRelInfo* rri = makeNode(ResultRelInfo);
  InitResultRelInfo(rri, rel, 1, nullptr, 0);
  ExecOpenIndices(rri, false);
  EState* estate = CreateExecutorState();
  TupleTableSlot* slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
  Datum* values = static_cast<Datum*>(palloc(sizeof(Datum) * desc->natts));
  bool* nulls = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
  TimestampTz now = GetCurrentTransactionStartTimestamp();
  CommandId cid = GetCurrentCommandId(true);
  for (int i = 0; i < n; ++i) {
    const OutboxInsert& r = rows[i];
    for (int a = 0; a < desc->natts; ++a) nulls[a] = true;
    auto set = [&](AttrNumber att, Datum d) {
      values[att - 1] = d;
      nulls[att - 1] = false;
    };
    set(layout.id, Int64GetDatum(nextval_internal(layout.seqid, false)));
    set(layout.model, CStringGetTextDatum(r.model));
    set(layout.event_key, CStringGetTextDatum(r.event_key));
    set(layout.operation, CStringGetTextDatum(r.operation));
    if (r.payload != nullptr) {
      set(layout.payload, DirectFunctionCall1(jsonb_in, CStringGetDatum(r.payload)));
      set(layout.status, CStringGetTextDatum("pending"));
    } else {
      set(layout.status, CStringGetTextDatum("failed"));
    }
    if (r.last_error != nullptr) set(layout.last_error, CStringGetTextDatum(r.last_error));
    set(layout.attempts, Int32GetDatum(0));
    set(layout.next_attempt_at, TimestampTzGetDatum(now));
    set(layout.created_at, TimestampTzGetDatum(now));
    set(layout.destination, CStringGetTextDatum(r.destination));
    HeapTuple tuple = heap_form_tuple(desc, values, nulls);
    ExecStoreHeapTuple(tuple, slot, true);
    table_tuple_insert(rel, slot, cid, 0, nullptr);
    ExecInsertIndexTuples(rri, slot, estate, false, false, nullptr, NIL);
    ExecClearTuple(slot);
    ResetPerTupleExprContext(estate);
  }
  ExecDropSingleTupleTableSlot(slot);
  ExecCloseIndices(rri);
  FreeExecutorState(estate);
  table_close(rel, NoLock);
}

}  // namespace hyperline::pg
