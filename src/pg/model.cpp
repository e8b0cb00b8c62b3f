// model.cpp: loading, compiling and caching models; rendering one event from a
// heap tuple without SPI (columns are read straight from the tuple by
// tuple_value.cpp; the payload's jsonb is built by jsonb_builder.cpp).
// C++ core headers first (core/cpp_only.hpp refuses them after postgres.h).
#include "core/ascii.hpp"
#include "core/names.hpp"
#include "pg/model.hpp"
#include "pg/model_catalog.hpp"
#include "pg/tuple_value.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/syscache.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "pg/guard.hpp"

namespace hyperline::pg {
namespace {

// ---------------------------------------------------------------------------
// Model cache
// ---------------------------------------------------------------------------
std::unordered_map<std::string, std::shared_ptr<const CompiledModel>>* model_cache = nullptr;
bool cache_valid = false;
// Relations whose change invalidates the cache: hyperline._models and the
// sources of cached models. Fixed-size so the callback never allocates.
constexpr int kMaxWatched = 64;
Oid watched[kMaxWatched];
int nwatched = 0;

// Why only a flag: invalidation callbacks run at arbitrary points (inside
// table_open, say); freeing compiled models there could pull them from under
// a caller. The next GetModel clears the cache instead.
void InvalidateCacheCallback(Datum, Oid relid) {
  if (relid == InvalidOid || nwatched >= kMaxWatched) {
    cache_valid = false;
    return;
  }
  for (int i = 0; i < nwatched; ++i) {
    if (watched[i] == relid) {
      cache_valid = false;
      return;
    }
  }
}

void Watch(Oid relid) {
  for (int i = 0; i < nwatched; ++i) {
    if (watched[i] == relid) return;
  }
  if (nwatched < kMaxWatched) watched[nwatched] = relid;
  ++nwatched;  // past the limit every invalidation flushes (see callback)
}

// ---------------------------------------------------------------------------
// Column bindings
// ---------------------------------------------------------------------------
ColumnKind KindOf(Oid typid) {
  switch (typid) {
    case INT2OID:
    case INT4OID:
    case INT8OID:
    case OIDOID:
      return ColumnKind::Int;
    case FLOAT4OID:
    case FLOAT8OID:
      return ColumnKind::Float;
    case NUMERICOID:
      return ColumnKind::Numeric;
    case BOOLOID:
      return ColumnKind::Bool;
    case TEXTOID:
    case VARCHAROID:
    case BPCHAROID:
      return ColumnKind::Text;
    case NAMEOID:
      return ColumnKind::Name;
    case TIMESTAMPTZOID:
    case TIMESTAMPOID:
      return ColumnKind::Time;
    case DATEOID:
      return ColumnKind::Date;
    case JSONOID:
      return ColumnKind::Json;
    case JSONBOID:
      return ColumnKind::Jsonb;
    default:
      return ColumnKind::Other;
  }
}

// The backend's one FmgrInfo for an output function (under PgGuard). Why
// shared: a FmgrInfo per binding in TopMemoryContext leaked, with whatever the
// function cached in its fn_mcxt, each time a model was recompiled (any
// invalidation of its source table, e.g. an autovacuum). Output functions
// check the type they cache against each call's, so sharing is safe.
FmgrInfo* OutputFunction(Oid fn) {
  static HTAB* functions = nullptr;
  struct Entry {
    Oid fn;
    FmgrInfo flinfo;
  };
  if (functions == nullptr) {
    HASHCTL ctl = {};
    ctl.keysize = sizeof(Oid);
    ctl.entrysize = sizeof(Entry);
    ctl.hcxt = TopMemoryContext;
    functions = hash_create("pg_hyperline output functions", 64, &ctl,
                            HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  }
  bool found = false;
  auto* e = static_cast<Entry*>(hash_search(functions, &fn, HASH_ENTER, &found));
  if (!found) {
    // Why filled in two steps: if fmgr_info fails, the entry must not look
    // initialised on the next call.
    e->flinfo.fn_oid = InvalidOid;
  }
  if (e->flinfo.fn_oid != fn) fmgr_info_cxt(fn, &e->flinfo, TopMemoryContext);
  return &e->flinfo;
}

// Fills type information of a binding (catalog lookups; runs under PgGuard).
void ResolveBinding(ColumnBinding* b) {
  Oid base = getBaseType(b->typid);
  b->base_typid = base;
  b->kind = KindOf(base);
  Oid elem = InvalidOid;
  if (b->kind == ColumnKind::Other && (elem = get_element_type(base)) != InvalidOid) {
    b->kind = ColumnKind::Array;
    b->elem_typid = elem;
    get_typlenbyvalalign(elem, &b->elem_len, &b->elem_byval, &b->elem_align);
    Oid elem_base = getBaseType(elem);
    b->elem_base_typid = elem_base;
    b->elem_kind = KindOf(elem_base);
    if (b->elem_kind == ColumnKind::Array) b->elem_kind = ColumnKind::Other;
    Oid out = InvalidOid;
    bool varlena = false;
    getTypeOutputInfo(elem, &out, &varlena);
    b->elem_out = OutputFunction(out);
  }
  Oid out = InvalidOid;
  bool varlena = false;
  getTypeOutputInfo(b->typid, &out, &varlena);
  b->out = OutputFunction(out);
}

// "Did you mean ...?" for a name among the table's columns, or "".
std::string DidYouMean(const std::string& wanted, const std::vector<std::string>& columns) {
  for (const std::string& c : columns) {
    if (AsciiLowerString(c) == AsciiLowerString(wanted)) {
      return "Did you mean \"" + c +
             "\"? Column names are matched exactly, as Postgres stores them.";
    }
  }
  std::vector<std::string_view> names(columns.begin(), columns.end());
  std::string best = ClosestName(wanted, names, true);
  return best.empty() ? "" : "Did you mean \"" + best + "\"?";
}

struct TableColumn {
  std::string name;
  AttrNumber attnum;
  Oid typid;
};

// Non-dropped columns of a relation.
std::vector<TableColumn> ReadColumns(Oid relid, std::string& relname) {
  int natts = 0;
  NameData* names = nullptr;
  AttrNumber* attnums = nullptr;
  Oid* types = nullptr;
  char* rel_display = nullptr;
  PgGuard([&] {
    Relation rel = table_open(relid, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    names = static_cast<NameData*>(palloc(sizeof(NameData) * (desc->natts + 1)));
    attnums = static_cast<AttrNumber*>(palloc(sizeof(AttrNumber) * (desc->natts + 1)));
    types = static_cast<Oid*>(palloc(sizeof(Oid) * (desc->natts + 1)));
    for (int i = 0; i < desc->natts; ++i) {
      Form_pg_attribute att = TupleDescAttr(desc, i);
      if (att->attisdropped) continue;
      names[natts] = att->attname;
      attnums[natts] = att->attnum;
      types[natts] = att->atttypid;
      ++natts;
    }
    rel_display = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                             RelationGetRelationName(rel));
    table_close(rel, AccessShareLock);
  });
  relname = rel_display;
  std::vector<TableColumn> columns;
  columns.reserve(natts);
  for (int i = 0; i < natts; ++i) columns.push_back({NameStr(names[i]), attnums[i], types[i]});
  return columns;
}

const TableColumn* FindColumn(const std::vector<TableColumn>& columns, const std::string& name) {
  for (const TableColumn& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Adds a binding for `column` to `list` unless present.
void AddBinding(std::vector<ColumnBinding>& list, const TableColumn& column) {
  for (const ColumnBinding& b : list) {
    if (b.attnum == column.attnum) return;
  }
  ColumnBinding b;
  b.name = column.name;
  b.attnum = column.attnum;
  b.typid = column.typid;
  list.push_back(std::move(b));
}

// The render's interrupt check (liquid::InterruptCheck): whether a cancel or a
// terminate waits and may be processed. Only those stop a render; a barrier or
// catch-up interrupt is processed by the next CHECK_FOR_INTERRUPTS as usual.
bool CancelOrDiePending(void*) noexcept {
  return (QueryCancelPending || ProcDiePending) && INTERRUPTS_CAN_BE_PROCESSED();
}

}  // namespace

std::vector<std::string> KeyColumnNames(const std::string& primary_key,
                                        const std::vector<std::string>& columns) {
  if (std::find(columns.begin(), columns.end(), primary_key) != columns.end()) return {primary_key};
  std::vector<std::string> names;
  size_t start = 0;
  for (;;) {
    size_t comma = primary_key.find(',', start);
    std::string part =
        primary_key.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t first = part.find_first_not_of(" \t\r\n");
    size_t last = part.find_last_not_of(" \t\r\n");
    names.push_back(first == std::string::npos ? "" : part.substr(first, last - first + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return names;
}

// ---------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------
namespace {

// Binds the model's key and template names to `columns` (the table's, or a
// query result's); `where` names them in messages ("table x", "the query
// result"). Throws PgException naming the problem.
void BindColumns(CompiledModel* model, const std::vector<TableColumn>& columns,
                 const std::string& where, const std::string& primary_key,
                 const std::string& payload) {
  std::vector<std::string> names;
  names.reserve(columns.size());
  for (const TableColumn& c : columns) names.push_back(c.name);

  for (const std::string& key_name : KeyColumnNames(primary_key, names)) {
    const TableColumn* key = FindColumn(columns, key_name);
    if (key == nullptr) {
      std::string message = "primary key column \"";
      message += key_name;
      message += "\" does not exist in ";
      message += where;
      Throw(ERRCODE_UNDEFINED_COLUMN, message, "", DidYouMean(key_name, names));
    }
    for (const ColumnBinding& k : model->keys) {
      if (k.attnum == key->attnum) {
        std::string message = "primary key column \"";
        message += key_name;
        message += "\" is named twice in \"";
        message += primary_key;
        message += "\"";
        Throw(ERRCODE_DUPLICATE_COLUMN, message);
      }
    }
    ColumnBinding b;
    b.name = key->name;
    b.attnum = key->attnum;
    b.typid = key->typid;
    model->keys.push_back(std::move(b));
  }

  try {
    model->tmpl = PayloadTemplate::Compile(payload);
  } catch (const PayloadError& e) {
    Throw(ERRCODE_SYNTAX_ERROR, std::string("invalid payload template: ") + e.what());
  }

  for (const std::vector<std::string>& path : model->tmpl->VariablePaths()) {
    if (!path.empty() && (path[0] == "operation" || path[0] == "*")) model->uses_operation = true;
    if (path.empty() || (path[0] != "row" && path[0] != "old")) continue;
    std::vector<ColumnBinding>& list = path[0] == "row" ? model->row_columns : model->old_columns;
    if (path[0] == "old") model->uses_old = true;
    if (path.size() == 1) {
      for (const TableColumn& c : columns) AddBinding(list, c);
      continue;
    }
    const TableColumn* column = FindColumn(columns, path[1]);
    if (column == nullptr) {
      Throw(ERRCODE_UNDEFINED_COLUMN,
            "payload template uses " + path[0] + "." + path[1] + ", but column \"" + path[1] +
                "\" does not exist in " + where,
            "", DidYouMean(path[1], names));
    }
    AddBinding(list, *column);
  }

  PgGuard([&] {
    for (ColumnBinding& b : model->keys) ResolveBinding(&b);
    for (ColumnBinding& b : model->row_columns) ResolveBinding(&b);
    for (ColumnBinding& b : model->old_columns) ResolveBinding(&b);
  });
}

}  // namespace

std::shared_ptr<CompiledModel> CompileModel(const std::string& name, Oid source,
                                            const std::string& primary_key,
                                            const std::string& payload,
                                            const std::string& destination) {
  auto model = std::make_shared<CompiledModel>();
  model->name = name;
  model->destination = destination;
  model->primary_key = primary_key;
  model->source = source;

  std::string relname;
  std::vector<TableColumn> columns = ReadColumns(source, relname);
  BindColumns(model.get(), columns, "table " + relname, primary_key, payload);
  return model;
}

std::shared_ptr<CompiledModel> CompileQueryModel(const std::string& name, TupleDesc desc,
                                                 const std::string& primary_key,
                                                 const std::string& payload,
                                                 const std::string& destination) {
  auto model = std::make_shared<CompiledModel>();
  model->name = name;
  model->destination = destination;
  model->primary_key = primary_key;
  std::vector<TableColumn> columns;
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attisdropped) continue;
    columns.push_back({NameStr(att->attname), static_cast<AttrNumber>(i + 1), att->atttypid});
  }
  BindColumns(model.get(), columns, "the query result", primary_key, payload);
  // Why every name used must be unique: "row.id" with two columns named id
  // (SELECT * over a join, say) would silently pick the first.
  auto check_unique = [&](const ColumnBinding& b) {
    int count = 0;
    for (const TableColumn& c : columns) count += c.name == b.name ? 1 : 0;
    if (count > 1) {
      Throw(ERRCODE_DUPLICATE_COLUMN,
            "column \"" + b.name + "\" appears " + std::to_string(count) +
                " times in the query result",
            "", "Give the columns distinct names in the query (SELECT a.id AS account_id, ...).");
    }
  };
  for (const ColumnBinding& b : model->keys) check_unique(b);
  for (const ColumnBinding& b : model->row_columns) check_unique(b);
  for (const ColumnBinding& b : model->old_columns) check_unique(b);
  // The row values kept for each key (RowObject) are what `row` and `old`
  // read: a later run renders the key's removal from them, or its update's
  // `old`.
  for (const ColumnBinding& b : model->old_columns) {
    bool present = false;
    for (const ColumnBinding& r : model->row_columns) present = present || r.attnum == b.attnum;
    if (!present) model->row_columns.push_back(b);
  }
  return model;
}

// Binds the key columns of a model that cannot compile, so its failed events
// still carry their key; leaves them unbound when that fails too.
void TryBindKey(CompiledModel& model, const std::string& primary_key) {
  try {
    std::string relname;
    std::vector<TableColumn> columns = ReadColumns(model.source, relname);
    std::vector<std::string> names;
    names.reserve(columns.size());
    for (const TableColumn& c : columns) names.push_back(c.name);
    std::vector<ColumnBinding> keys;
    for (const std::string& key_name : KeyColumnNames(primary_key, names)) {
      const TableColumn* key = FindColumn(columns, key_name);
      if (key == nullptr) return;
      ColumnBinding b;
      b.name = key->name;
      b.attnum = key->attnum;
      b.typid = key->typid;
      keys.push_back(std::move(b));
    }
    PgGuard([&] {
      for (ColumnBinding& b : keys) ResolveBinding(&b);
    });
    model.keys = std::move(keys);
  } catch (const PgException& e) {
    if (e.from_postgres) throw;
    model.keys.clear();
  }
}

std::shared_ptr<const CompiledModel> GetModel(const char* name, Oid relid) {
  if (model_cache == nullptr) {
    model_cache = new std::unordered_map<std::string, std::shared_ptr<const CompiledModel>>();
  }
  // The model of the previous row: a bulk statement asks for the same one
  // row after row, so skip building the cache key and hashing it.
  static std::shared_ptr<const CompiledModel> last_model;
  static Oid last_relid = InvalidOid;
  if (!cache_valid) {
    model_cache->clear();
    last_model.reset();
    nwatched = 0;
    cache_valid = true;
  }
  if (last_model != nullptr && last_relid == relid && last_model->name == name) return last_model;
  std::string cache_key = std::string(name) + "/" + std::to_string(relid);
  auto it = model_cache->find(cache_key);
  if (it != model_cache->end()) {
    last_model = it->second;
    last_relid = relid;
    return it->second;
  }

  ModelDef def;
  Oid models_relid = InvalidOid;
  PgGuard([&] {
    models_relid = ModelsRelid();
    ReadModelDef(name, &def);
  });
  Watch(models_relid);
  if (!def.found) {
    Throw(ERRCODE_UNDEFINED_OBJECT, std::string("model \"") + name + "\" does not exist");
  }
  if (def.is_query) {
    Throw(ERRCODE_WRONG_OBJECT_TYPE, std::string("model \"") + name + "\" is a query model");
  }
  // Why: a trigger of ours produces events only for the model whose trigger we
  // created, on that model's source table (or a partition of it, which clones
  // the parent's triggers). Anything else was attached by hand: refuse.
  if (relid != InvalidOid && relid != def.source) {
    bool partition = false;
    PgGuard([&] { partition = list_member_oid(get_partition_ancestors(relid), def.source); });
    if (!partition) {
      Throw(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            std::string("hyperline._trigger() for model \"") + name +
                "\" fired on a table that is not the model's source",
            "", "pg_hyperline creates a model's trigger itself; drop this one.");
    }
  }
  Oid bound = relid == InvalidOid ? def.source : relid;
  std::shared_ptr<CompiledModel> model;
  try {
    model = CompileModel(name, bound, def.primary_key, def.payload, def.destination);
  } catch (const PgException& e) {
    if (e.from_postgres) throw;
    model = std::make_shared<CompiledModel>();
    model->name = name;
    model->destination = def.destination;
    model->source = bound;
    model->error = std::string("model \"") + name + "\" cannot render: " + e.what();
    TryBindKey(*model, def.primary_key);
  }
  if (def.filter != nullptr) model->filter = def.filter;
  model->delete_via_api = def.delete_via_api;
  model->triggers = def.triggers;
  Watch(def.source);
  Watch(bound);
  if (cache_valid) (*model_cache)[cache_key] = model;
  return model;
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------
namespace {

// The context's `row`, `old`, `model` and `operation` entries, made once per
// compiled model; `operation` set to `operation`.
liquid::Context& PrepareContext(CompiledModel& m, const char* operation) {
  liquid::Context& ctx = m.context;
  if (ctx.Find("operation") == nullptr) {
    ctx.SetInterruptCheck(CancelOrDiePending);
    ctx.Set("row", Value::Nil());
    ctx.Set("old", Value::Nil());
    ctx.Set("model", Value::String(m.name));
    ctx.Set("operation", Value::Nil());
  }
  Value& op = *ctx.FindMutable("operation");
  if (op.kind() != Value::Kind::String || op.as_string() != operation) {
    op = Value::String(operation);
  }
  return ctx;
}

// Renders the model's context (PrepareContext, then row and old set): tokens
// when asked and the template has a token program, else checked JSON text.
// Throws what the template throws.
inline bool RenderFilled(CompiledModel& m, std::string& payload, JsonTokens* tokens,
                         std::string& error) {
  liquid::Context& ctx = m.context;
  payload.clear();
  if (tokens != nullptr && m.tmpl->HasTokenProgram()) {
    // Fixed JSON structure: no text to print, check and parse again.
    tokens->Clear();
    m.tmpl->RenderTokens(ctx, *tokens, m.site_values);
    return true;
  }
  m.tmpl->Render(ctx, payload);
  error = JsonSyntaxError(payload);
  return error.empty();
}

}  // namespace

bool RenderEvent(const CompiledModel& model, TupleDesc desc, HeapTuple tuple, HeapTuple old_tuple,
                 const char* operation, std::string& key, std::string& payload, JsonTokens* tokens,
                 std::string& error) {
  // The bindings' FmgrInfo are used (not changed) by the output calls.
  auto& m = const_cast<CompiledModel&>(model);
  size_t nkey = m.keys.size();
  if (!m.error.empty()) {
    key.clear();
    if (nkey > 0) {
      RawDatum* key_raw = nullptr;
      PgGuard([&] {
        key_raw = static_cast<RawDatum*>(palloc(sizeof(RawDatum) * nkey));
        for (size_t i = 0; i < nkey; ++i) ExtractColumn(&m.keys[i], desc, tuple, &key_raw[i]);
      });
      AppendKey(key_raw, nkey, key);
    }
    error = m.error;
    return false;
  }
  size_t nrow = m.row_columns.size();
  size_t nold = m.old_columns.size();
  RawDatum* raw = nullptr;
  bool have_old = old_tuple != nullptr && m.uses_old;
  PgGuard([&] {
    raw = static_cast<RawDatum*>(palloc(sizeof(RawDatum) * (nrow + nold + nkey)));
    for (size_t i = 0; i < nkey; ++i) ExtractColumn(&m.keys[i], desc, tuple, &raw[nrow + nold + i]);
    for (size_t i = 0; i < nrow; ++i) ExtractColumn(&m.row_columns[i], desc, tuple, &raw[i]);
    if (have_old) {
      for (size_t i = 0; i < nold; ++i) {
        ExtractColumn(&m.old_columns[i], desc, old_tuple, &raw[nrow + i]);
      }
    }
  });
  try {
    key.clear();
    AppendKey(raw + nrow + nold, nkey, key);
    liquid::Context& ctx = PrepareContext(m, operation);
    FillObject(*ctx.FindMutable("row"), m.row_columns, raw);
    Value& old = *ctx.FindMutable("old");
    if (have_old) {
      FillObject(old, m.old_columns, raw + nrow);
    } else if (!old.is_nil()) {
      old = Value::Nil();
    }
    return RenderFilled(m, payload, tokens, error);
  } catch (const liquid::Interrupted&) {
    // A cancel, statement_timeout or terminate arrived during the render: let
    // Postgres raise it (as the error it is), outside the render's frames.
    PgGuard([] { CHECK_FOR_INTERRUPTS(); });
    Throw(ERRCODE_QUERY_CANCELED, "rendering was interrupted");
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

void EventKeyOf(const CompiledModel& model, TupleDesc desc, HeapTuple tuple, std::string& key) {
  auto& m = const_cast<CompiledModel&>(model);  // bindings' FmgrInfo are used, not changed
  size_t n = m.keys.size();
  RawDatum* raw = nullptr;
  PgGuard([&] {
    raw = static_cast<RawDatum*>(palloc(sizeof(RawDatum) * (n + 1)));
    for (size_t i = 0; i < n; ++i) ExtractColumn(&m.keys[i], desc, tuple, &raw[i]);
  });
  key.clear();
  AppendKey(raw, n, key);
}

bool RenderQueryEvent(const CompiledModel& model, TupleDesc desc, HeapTuple tuple,
                      const Value* row, const Value* old, const char* operation,
                      std::string& payload, JsonTokens* tokens, std::string& error) {
  auto& m = const_cast<CompiledModel&>(model);  // bindings' FmgrInfo are used, not changed
  size_t nrow = m.row_columns.size();
  RawDatum* raw = nullptr;
  if (tuple != nullptr) {
    PgGuard([&] {
      raw = static_cast<RawDatum*>(palloc(sizeof(RawDatum) * (nrow + 1)));
      for (size_t i = 0; i < nrow; ++i) ExtractColumn(&m.row_columns[i], desc, tuple, &raw[i]);
    });
  }
  try {
    liquid::Context& ctx = PrepareContext(m, operation);
    Value& row_value = *ctx.FindMutable("row");
    *ctx.FindMutable("old") = old != nullptr && m.uses_old ? *old : Value::Nil();
    if (tuple != nullptr) {
      FillObject(row_value, m.row_columns, raw);
      return RenderFilled(m, payload, tokens, error);
    }
    // Kept values may be laid out as an older template read them: not left in
    // the context, where FillObject would reuse their member names.
    row_value = row != nullptr ? *row : Value::Nil();
    bool ok = false;
    try {
      ok = RenderFilled(m, payload, tokens, error);
    } catch (...) {
      row_value = Value::Nil();
      throw;
    }
    row_value = Value::Nil();
    return ok;
  } catch (const liquid::Interrupted&) {
    PgGuard([] { CHECK_FOR_INTERRUPTS(); });
    Throw(ERRCODE_QUERY_CANCELED, "rendering was interrupted");
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

Value RowObject(const CompiledModel& model, TupleDesc desc, HeapTuple tuple) {
  auto& m = const_cast<CompiledModel&>(model);  // bindings' FmgrInfo are used, not changed
  size_t nrow = m.row_columns.size();
  RawDatum* raw = nullptr;
  PgGuard([&] {
    raw = static_cast<RawDatum*>(palloc(sizeof(RawDatum) * (nrow + 1)));
    for (size_t i = 0; i < nrow; ++i) ExtractColumn(&m.row_columns[i], desc, tuple, &raw[i]);
  });
  Value v;
  FillObject(v, m.row_columns, raw);
  return v;
}

const ColumnBinding* NullKeyColumn(const CompiledModel& model, TupleDesc desc, HeapTuple tuple) {
  for (const ColumnBinding& k : model.keys) {
    if (heap_attisnull(tuple, k.attnum, desc)) return &k;
  }
  return nullptr;
}

std::string RenderSynthetic(const CompiledModel& model) {
  int64_t now = 0;
  PgGuard([&] { now = GetCurrentTimestamp(); });
  liquid::Context ctx;
  Object row;
  for (const ColumnBinding& b : model.row_columns) row.emplace_back(b.name, SyntheticValue(b, now));
  ctx.Set("row", Value::MakeObject(std::move(row)));
  ctx.Set("old", Value::Nil());
  ctx.Set("model", Value::String(model.name));
  ctx.Set("operation", Value::String("insert"));
  std::string out;
  model.tmpl->Render(ctx, out);
  return out;
}

void InstallModelCacheCallbacks() { CacheRegisterRelcacheCallback(InvalidateCacheCallback, 0); }

}  // namespace hyperline::pg
