// trigger.cpp: the row trigger of every model (hyperline._trigger).
//
// Runs AFTER INSERT/UPDATE/DELETE FOR EACH ROW with the model name as its
// argument. Renders the payload from the tuple (no SPI per row) and buffers the
// event for hyperline.outbox (outbox.hpp: written at the end of the statement,
// in the same transaction), then asks for the worker to be woken at commit. A
// rendering error never fails the user's statement: the event is recorded
// 'failed' with the error.
#include "pg/model.hpp"
#include <string>

extern "C" {
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/datum.h"
#include "utils/rel.h"
}

#include "pg/guard.hpp"
#include "pg/outbox.hpp"
#include "pg/shmem.hpp"

namespace hyperline::pg {
namespace {

// Whether an UPDATE changed nothing (every column equal, byte for byte).
bool TuplesEqual(TupleDesc desc, HeapTuple a, HeapTuple b) {
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attisdropped) continue;
    bool null_a = false;
    bool null_b = false;
    Datum da = heap_getattr(a, i + 1, desc, &null_a);
    Datum db = heap_getattr(b, i + 1, desc, &null_b);
    if (null_a != null_b) return false;
    if (!null_a && !datumIsEqual(da, db, att->attbyval, att->attlen)) return false;
  }
  return true;
}

Datum TriggerBody(FunctionCallInfo fcinfo) {
  if (!CALLED_AS_TRIGGER(fcinfo)) {
    Throw(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
          "hyperline._trigger() must be called as a trigger");
  }
  TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      td->tg_trigger->tgnargs < 1) {
    Throw(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
          "hyperline._trigger() must be an AFTER ... FOR EACH ROW trigger with the model name "
          "as argument");
  }
  const char* model_name = td->tg_trigger->tgargs[0];
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  HeapTuple row = nullptr;
  HeapTuple old = nullptr;
  const char* operation = nullptr;
  if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) {
    operation = "insert";
    row = td->tg_trigtuple;
  } else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
    operation = "update";
    row = td->tg_newtuple;
    old = td->tg_trigtuple;
    bool unchanged = false;
    PgGuard([&] { unchanged = TuplesEqual(desc, old, row); });
    if (unchanged) return PointerGetDatum(nullptr);  // "row changed" only
  } else if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) {
    operation = "delete";
    row = td->tg_trigtuple;  // `row` is the removed row
  } else {
    return PointerGetDatum(nullptr);
  }

  std::string key;
  std::string payload;
  std::string error;
  std::string destination;
  bool via_delete_api = false;
  // Per backend, reused row after row: no allocation once warm.
  static JsonTokens tokens;
  tokens.Clear();
  bool ok = false;
  try {
    std::shared_ptr<const CompiledModel> model =
        GetModel(model_name, RelationGetRelid(td->tg_relation));
    destination = model->destination;
    via_delete_api = model->delete_via_api && strcmp(operation, "delete") == 0;
    ok = RenderEvent(*model, desc, row, old, operation, key, payload, &tokens, error);
  } catch (const PgException& e) {
    // A trigger left behind without its model (hyperline._models edited by
    // hand): the write goes on and the event is recorded failed, visibly. A
    // trigger attached by hand to a table that is not the model's makes no
    // event under the model's name: the write fails.
    if (e.from_postgres || e.sqlstate == ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED) throw;
    error = e.what();
  }
  OutboxInsert insert;
  insert.model = model_name;
  insert.event_key = key.c_str();
  insert.operation = operation;
  bool as_tokens = ok && !tokens.tokens.empty();
  insert.payload = ok && !as_tokens ? payload.c_str() : nullptr;
  insert.payload_jsonb = 0;
  insert.last_error = ok ? nullptr : error.c_str();
  insert.destination = destination.c_str();
  insert.via_delete_api = via_delete_api;
  PgGuard([&] {
    if (as_tokens) insert.payload_jsonb = TokensToJsonb(tokens);
    BufferOutboxRow(insert);
  });
  WakeWorkerAtCommit();
  return PointerGetDatum(nullptr);
}

}  // namespace
}  // namespace hyperline::pg

extern "C" {
PG_FUNCTION_INFO_V1(hyperline_trigger);
// SQL hyperline._trigger(): see the file comment.
Datum hyperline_trigger(PG_FUNCTION_ARGS) {
  return hyperline::pg::CppGuard([&] { return hyperline::pg::TriggerBody(fcinfo); });
}
}
