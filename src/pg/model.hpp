// model.hpp: compiled models — what the trigger needs to render one event.
//
// Vocabulary: a CompiledModel is a model's definition (hyperline._models row)
// plus its compiled payload template and the bindings of the template's
// `row.x` / `old.x` names to the source table's columns. Compiled once per
// backend; the cache is invalidated by relcache callbacks that only set a flag
// (hyperline._models_changed() sends one at commit of every model change).
#pragma once

// C++ headers first: core/cpp_only.hpp refuses to compile after postgres.h.
#include "core/payload_template.hpp"
#include "core/value.hpp"
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"
}

namespace hyperline::pg {

// How a column's datum becomes a Value.
enum class ColumnKind : uint8_t {
  Int,
  Float,
  Numeric,
  Bool,
  Text,
  Name,
  Time,
  Date,
  Json,
  Jsonb,
  Array,
  Other
};

struct ColumnBinding {
  std::string name;
  AttrNumber attnum = 0;
  Oid typid = InvalidOid;
  Oid base_typid = InvalidOid;  // typid, or the base type of a domain
  ColumnKind kind = ColumnKind::Other;
  // Output function, for Numeric/Other: shared by every binding of the same
  // function in this backend, so that recompiling a model allocates nothing
  // that outlives it (an output function may cache state in its fn_mcxt).
  FmgrInfo* out = nullptr;
  // Arrays: element type.
  Oid elem_typid = InvalidOid;
  Oid elem_base_typid = InvalidOid;
  ColumnKind elem_kind = ColumnKind::Other;
  int16 elem_len = 0;
  bool elem_byval = false;
  char elem_align = 'i';
  FmgrInfo* elem_out = nullptr;
};

struct CompiledModel {
  std::string name;
  std::string destination;
  std::string primary_key;
  Oid source = InvalidOid;
  std::unique_ptr<PayloadTemplate> tmpl;
  std::vector<ColumnBinding> row_columns;  // columns the template reads from `row`
  std::vector<ColumnBinding> old_columns;  // columns read from `old`
  bool uses_old = false;
  // The template reads `operation`, or a variable chosen at render time
  // (`[x]`): an update then renders differently from an insert.
  bool uses_operation = false;
  // The key columns, in the order primary_key names them: one, or several
  // (event_key is then the JSON array of their values as text).
  std::vector<ColumnBinding> keys;
  // Settings of the model's row (hyperline._models), as GetModel read them.
  std::string filter;           // normalized filter expression, "" when none
  bool delete_via_api = false;  // delete_mode 'api': removals go to DELETE /v1/events
  int triggers = 0;             // TriggerMask bits (model_catalog.hpp)
  // Set when the model cannot be compiled any more (e.g. a column it uses was
  // dropped): every event then fails with this error instead of blocking writes.
  std::string error;
  // Reused from one RenderEvent to the next, so that a row costs no allocation
  // for them: the Liquid context (row, old, model, operation; the row object
  // keeps its column names and storage) and the output sites' values. Safe
  // because a backend renders one event at a time, and RenderEvent fills them
  // only after reading the tuple (the one step that may run other code).
  mutable liquid::Context context;
  mutable std::vector<Value> site_values;
};

// Returns the compiled model `name` bound to relation `relid` (the model's
// source, or one of its partitions; InvalidOid = the source), loading and
// compiling it on first use in this backend. Template and column errors are
// kept in CompiledModel::error; throws PgException when the model is unknown.
std::shared_ptr<const CompiledModel> GetModel(const char* name, Oid relid);

// The columns a primary_key setting names: the whole string when it is a
// column's name, else the comma-separated names, trimmed. Empty names are
// kept (so that the caller reports them).
std::vector<std::string> KeyColumnNames(const std::string& primary_key,
                                        const std::vector<std::string>& columns);

// The event_key of key values: the value as text for one key column, the JSON
// array of the values as text for several (NULL as null).
void AppendEventKey(const std::vector<Value>& values, std::string& out);

// Compiles a definition without caching it; throws PgException naming the
// problem (create_model's validation).
std::shared_ptr<CompiledModel> CompileModel(const std::string& name, Oid source,
                                            const std::string& primary_key,
                                            const std::string& payload,
                                            const std::string& destination);

// Renders one event. `tuple`/`old_tuple` may be null (insert has no old row;
// delete renders the old row as `row`). Returns true and sets the payload, or
// false and sets `error` (a rendering error the user must see, never thrown).
// `key` receives the primary key value as text. When `tokens` is given and the
// template has a token program, the payload goes there (see jsonb_builder.hpp)
// and `payload` stays empty; otherwise `payload` receives validated JSON text.
bool RenderEvent(const CompiledModel& model, TupleDesc desc, HeapTuple tuple, HeapTuple old_tuple,
                 const char* operation, std::string& key, std::string& payload, JsonTokens* tokens,
                 std::string& error);

// The event_key of a row (the key columns' values, see AppendEventKey).
void EventKeyOf(const CompiledModel& model, TupleDesc desc, HeapTuple tuple, std::string& key);

// Compiles a query model against the TupleDesc of its query's result, binding
// key and template names to result columns by name (attnum = position in
// `desc`). Throws PgException naming the problem (a missing or repeated
// column, a template error). `row_columns` then covers `old`'s columns too:
// RowObject keeps what a later render of `row` or `old` reads.
std::shared_ptr<CompiledModel> CompileQueryModel(const std::string& name, TupleDesc desc,
                                                 const std::string& primary_key,
                                                 const std::string& payload,
                                                 const std::string& destination);

// Renders one event of a query model: `row` from `tuple` (a row of the
// compiled result), or from the kept `row` values when `tuple` is null;
// `old` the kept values of the key's previous row, or null. Like RenderEvent,
// returns false with `error` for a rendering error (never thrown).
bool RenderQueryEvent(const CompiledModel& model, TupleDesc desc, HeapTuple tuple,
                      const Value* row, const Value* old, const char* operation,
                      std::string& payload, JsonTokens* tokens, std::string& error);

// The object of the row's `row_columns` values (name -> value), as the
// template sees `row`.
Value RowObject(const CompiledModel& model, TupleDesc desc, HeapTuple tuple);

// The first key column that is NULL in the row, or null.
const ColumnBinding* NullKeyColumn(const CompiledModel& model, TupleDesc desc, HeapTuple tuple);

// Renders with a synthetic row of typical values (numbers 1, text "sample",
// now, true, empty arrays) for validating a model on an empty table.
std::string RenderSynthetic(const CompiledModel& model);

// Registers the relcache callback that invalidates the cache (from _PG_init).
void InstallModelCacheCallbacks();

}  // namespace hyperline::pg
