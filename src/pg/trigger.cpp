// trigger.cpp: the row trigger of every model (hyperline._trigger).
//
// Runs AFTER INSERT/UPDATE/DELETE FOR EACH ROW with the model name as its
// argument. Renders the payload from the tuple (no SPI per row) and buffers the
// event for hyperline.outbox (outbox.hpp: written at the end of the statement,
// in the same transaction), then asks for the worker to be woken at commit. A
// rendering error never fails the user's statement: the event is recorded
// 'failed' with the error.
#include "pg/jsonb_builder.hpp"
#include "pg/model.hpp"
#include <cstring>
#include <string>

extern "C" {
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/rel.h"
}

#include "pg/guard.hpp"
#include "pg/model_catalog.hpp"
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

// What one firing of our trigger is about (its second argument; a trigger
// with only the model name fires for every kind, by its event).
enum class Change { kByEvent, kAdded, kRemoved, kChanged };

Change ChangeOf(const Trigger* trigger) {
  if (trigger->tgnargs < 2) return Change::kByEvent;
  const char* kind = trigger->tgargs[1];
  if (strcmp(kind, "added") == 0) return Change::kAdded;
  if (strcmp(kind, "removed") == 0) return Change::kRemoved;
  if (strcmp(kind, "changed") == 0) return Change::kChanged;
  Throw(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        std::string("hyperline._trigger(): unknown change kind \"") + kind + "\"");
}

// Renders one event and buffers it for the outbox. `row` is what the template
// sees as `row` (the old row for a removal), `old` the old row of an update.
// A rendering error is recorded as a failed event, never raised.
void Emit(const char* model_name, const CompiledModel* model, const std::string& model_error,
          TupleDesc desc, HeapTuple row, HeapTuple old, const char* operation) {
  std::string key;
  std::string payload;
  std::string error = model_error;
  // Per backend, reused row after row: no allocation once warm.
  static JsonTokens tokens;
  tokens.Clear();
  bool ok = model != nullptr &&
            RenderEvent(*model, desc, row, old, operation, key, payload, &tokens, error);
  OutboxInsert insert;
  insert.model = model_name;
  insert.event_key = key.c_str();
  insert.operation = operation;
  bool as_tokens = ok && !tokens.tokens.empty();
  insert.payload = ok && !as_tokens ? payload.c_str() : nullptr;
  insert.payload_jsonb = 0;
  insert.last_error = ok ? nullptr : error.c_str();
  insert.destination = model != nullptr ? model->destination.c_str() : "";
  insert.via_delete_api =
      model != nullptr && model->delete_via_api && strcmp(operation, "delete") == 0;
  PgGuard([&] {
    if (as_tokens) insert.payload_jsonb = TokensToJsonb(tokens);
    BufferOutboxRow(insert);
  });
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
  // Why here: AFTER row triggers run in a loop at the end of the statement
  // that does not look at interrupts; a heavy template over many rows must
  // still let a cancel, statement_timeout or terminate act.
  PgGuard([] { CHECK_FOR_INTERRUPTS(); });
  const char* model_name = td->tg_trigger->tgargs[0];
  Change change = ChangeOf(td->tg_trigger);
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  HeapTuple newrow = nullptr;
  HeapTuple oldrow = nullptr;
  if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) {
    newrow = td->tg_trigtuple;
    if (change == Change::kByEvent) change = Change::kAdded;
  } else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
    newrow = td->tg_newtuple;
    oldrow = td->tg_trigtuple;
    if (change == Change::kByEvent) change = Change::kChanged;
  } else if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) {
    oldrow = td->tg_trigtuple;
    if (change == Change::kByEvent) change = Change::kRemoved;
  } else {
    return PointerGetDatum(nullptr);
  }
  if (change == Change::kChanged) {
    bool unchanged = false;
    PgGuard([&] { unchanged = TuplesEqual(desc, oldrow, newrow); });
    if (unchanged) return PointerGetDatum(nullptr);  // "row changed" only
  }

  std::shared_ptr<const CompiledModel> model;
  std::string model_error;
  try {
    model = GetModel(model_name, RelationGetRelid(td->tg_relation));
  } catch (const PgException& e) {
    // A trigger left behind without its model (hyperline._models edited by
    // hand): the write goes on and the event is recorded failed, visibly. A
    // trigger attached by hand to a table that is not the model's makes no
    // event under the model's name: the write fails.
    if (e.from_postgres || e.sqlstate == ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED) throw;
    model_error = e.what();
  }
  const CompiledModel* m = model.get();
  // Which row changes the model sends; a model that cannot be read records
  // the event of the firing as failed.
  int on = m != nullptr ? m->triggers : (kOnInsert | kOnUpdate | kOnDelete);
  switch (change) {
    case Change::kAdded:
      if (on & kOnInsert) Emit(model_name, m, model_error, desc, newrow, nullptr, "insert");
      break;
    case Change::kRemoved:
      if (on & kOnDelete) Emit(model_name, m, model_error, desc, oldrow, nullptr, "delete");
      break;
    case Change::kChanged: {
      // An update that changes the key is the old key removed and the new key
      // added, in that order (each as its trigger says): sent as an update of
      // the new key, the old record would stay at Hyperline.
      bool same_key = true;
      if (m != nullptr && m->error.empty() && !m->keys.empty()) {
        std::string old_key;
        std::string new_key;
        EventKeyOf(*m, desc, oldrow, old_key);
        EventKeyOf(*m, desc, newrow, new_key);
        same_key = old_key == new_key;
      }
      if (same_key) {
        if (on & kOnUpdate) Emit(model_name, m, model_error, desc, newrow, oldrow, "update");
      } else {
        if (on & kOnDelete) Emit(model_name, m, model_error, desc, oldrow, nullptr, "delete");
        if (on & kOnInsert) Emit(model_name, m, model_error, desc, newrow, nullptr, "insert");
      }
      break;
    }
    case Change::kByEvent:
      break;
  }
  WakeWorkerAtCommit();
  return PointerGetDatum(nullptr);
}

}  // namespace
}  // namespace hyperline::pg

// SQL hyperline._trigger(): see the file comment.
HYPERLINE_SQL_FUNCTION(hyperline_trigger, hyperline::pg::TriggerBody)
