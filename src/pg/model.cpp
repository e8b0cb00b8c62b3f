// model.cpp: loading, compiling and caching models; rendering one event from a
// heap tuple without SPI (columns are read straight from the tuple).
// C++ core headers first (core/cpp_only.hpp refuses them after postgres.h).
#include "core/ascii.hpp"
#include "core/names.hpp"
#include "pg/model.hpp"
#include "pg/model_catalog.hpp"

extern "C" {
#include "access/htup_details.h"
#include "common/shortest_dec.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/syscache.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/hsearch.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include <algorithm>
#include <charconv>
#include <cmath>
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

// ---------------------------------------------------------------------------
// Tuple -> Value, in two phases (Postgres extraction, then C++ conversion)
// ---------------------------------------------------------------------------
// A column value copied out of the tuple (palloc'd, plain data).
struct RawDatum {
  ColumnKind kind;
  bool isnull;
  bool date_only;
  int64_t i;
  double d;
  const char* text;
  int len;
  int nelems;
  int ndim;
  int dims[MAXDIM];
  RawDatum* elems;
};

void ExtractScalar(ColumnKind kind, FmgrInfo* out, Datum value, RawDatum* r) {
  r->kind = kind;
  switch (kind) {
    case ColumnKind::Bool:
      r->i = DatumGetBool(value) ? 1 : 0;
      break;
    case ColumnKind::Name:
      r->text = NameStr(*DatumGetName(value));
      r->len = strlen(r->text);
      break;
    case ColumnKind::Text:
    case ColumnKind::Json: {  // json is stored as its text
      text* t = DatumGetTextPP(value);
      r->text = VARDATA_ANY(t);
      r->len = VARSIZE_ANY_EXHDR(t);
      break;
    }
    case ColumnKind::Jsonb: {
      Jsonb* jb = DatumGetJsonbP(value);
      r->text = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
      r->len = strlen(r->text);
      break;
    }
    default: {
      r->text = OutputFunctionCall(out, value);
      r->len = strlen(r->text);
      break;
    }
  }
}

// A real (float4) as the double nearest to its shortest round-trip decimal,
// which is what float4out prints: 0.1 stays 0.1, not 0.10000000149011612 (the
// float4's exact value). A double prints its shortest digits too, and every
// such decimal of at most 9 digits is read back exactly by a double.
double Float4AsDouble(float f) {
  if (std::isnan(f) || std::isinf(f)) return static_cast<double>(f);
  char buf[32];
  float_to_shortest_decimal_buf(f, buf);
  return strtod(buf, nullptr);
}

// Copies one datum of type `typid` (already classified) into `r`.
void ExtractValue(Oid typid, ColumnKind kind, FmgrInfo* out, Datum value, RawDatum* r) {
  r->isnull = false;
  r->kind = kind;
  switch (kind) {
    case ColumnKind::Int: {
      Oid base = typid;
      if (base == INT2OID) {
        r->i = DatumGetInt16(value);
      } else if (base == INT4OID) {
        r->i = DatumGetInt32(value);
      } else if (base == OIDOID) {
        r->i = DatumGetObjectId(value);
      } else {
        r->i = DatumGetInt64(value);
      }
      return;
    }
    case ColumnKind::Float:
      r->d = typid == FLOAT4OID ? Float4AsDouble(DatumGetFloat4(value)) : DatumGetFloat8(value);
      return;
    case ColumnKind::Time: {
      Timestamp ts = DatumGetTimestamp(value);
      if (TIMESTAMP_NOT_FINITE(ts)) {
        r->kind = ColumnKind::Other;
        r->text = TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity";
        r->len = strlen(r->text);
        return;
      }
      // timestamp without time zone: the wall-clock time, read as UTC.
      r->i = ts;  // microseconds since 2000-01-01, PostgreSQL's epoch
      r->date_only = false;
      return;
    }
    case ColumnKind::Date: {
      DateADT date = DatumGetDateADT(value);
      if (DATE_NOT_FINITE(date)) {
        r->kind = ColumnKind::Other;
        r->text = DATE_IS_NOBEGIN(date) ? "-infinity" : "infinity";
        r->len = strlen(r->text);
        return;
      }
      r->kind = ColumnKind::Time;
      r->i = date;  // days since 2000-01-01
      r->date_only = true;
      return;
    }
    default:
      ExtractScalar(kind, out, value, r);
      return;
  }
}

// Extracts a column of `tuple` per its binding (arrays element by element).
void ExtractColumn(ColumnBinding* b, TupleDesc desc, HeapTuple tuple, RawDatum* r) {
  memset(r, 0, sizeof(RawDatum));
  bool isnull = false;
  Datum value = heap_getattr(tuple, b->attnum, desc, &isnull);
  if (isnull) {
    r->isnull = true;
    return;
  }
  if (b->kind != ColumnKind::Array) {
    ExtractValue(b->base_typid, b->kind, b->out, value, r);
    return;
  }
  ArrayType* arr = DatumGetArrayTypeP(value);
  Datum* elems = nullptr;
  bool* nulls = nullptr;
  int n = 0;
  deconstruct_array(arr, b->elem_typid, b->elem_len, b->elem_byval, b->elem_align, &elems, &nulls,
                    &n);
  r->kind = ColumnKind::Array;
  r->nelems = n;
  r->ndim = ARR_NDIM(arr);
  for (int d = 0; d < r->ndim && d < MAXDIM; ++d) r->dims[d] = ARR_DIMS(arr)[d];
  r->elems = static_cast<RawDatum*>(palloc0(sizeof(RawDatum) * (n > 0 ? n : 1)));
  for (int i = 0; i < n; ++i) {
    if (nulls[i]) {
      r->elems[i].isnull = true;
    } else {
      ExtractValue(b->elem_base_typid, b->elem_kind, b->elem_out, elems[i], &r->elems[i]);
    }
  }
}

Value ScalarToValue(const RawDatum& r) {
  if (r.isnull) return Value::Nil();
  switch (r.kind) {
    case ColumnKind::Int:
      return Value::Int(r.i);
    case ColumnKind::Float:
      return Value::Float(r.d);
    case ColumnKind::Numeric:
      return Value::Decimal(std::string(r.text, r.len));
    case ColumnKind::Bool:
      return Value::Bool(r.i != 0);
    case ColumnKind::Time:
      return r.date_only ? Value::DateFromPgDays(static_cast<int32_t>(r.i))
                         : Value::TimeFromPgMicros(r.i);
    case ColumnKind::Json:
    case ColumnKind::Jsonb:
      return ParseJsonValue(std::string_view(r.text, r.len));
    default:
      return Value::String(std::string(r.text, r.len));
  }
}

// Builds nested arrays for multi-dimensional Postgres arrays.
Value ArrayLevel(const RawDatum& r, int dim, int& pos) {
  Array out;
  int count = r.ndim == 0 ? 0 : r.dims[dim];
  out.reserve(count);
  for (int i = 0; i < count; ++i) {
    if (dim + 1 < r.ndim) {
      out.push_back(ArrayLevel(r, dim + 1, pos));
    } else {
      out.push_back(ScalarToValue(r.elems[pos++]));
    }
  }
  return Value::MakeArray(std::move(out));
}

Value RawToValue(const RawDatum& r) {
  if (r.isnull) return Value::Nil();
  if (r.kind == ColumnKind::Array) {
    int pos = 0;
    return ArrayLevel(r, 0, pos);
  }
  return ScalarToValue(r);
}

// A typical non-null value of a column, for validating on an empty table.
Value SyntheticValue(const ColumnBinding& b, int64_t now_micros) {
  switch (b.kind) {
    case ColumnKind::Int:
      return Value::Int(1);
    case ColumnKind::Float:
      return Value::Float(1);
    case ColumnKind::Numeric:
      return Value::Decimal("1");
    case ColumnKind::Bool:
      return Value::Bool(true);
    case ColumnKind::Time:
      return Value::TimeFromPgMicros(now_micros);
    case ColumnKind::Date:
      return Value::DateFromPgDays(static_cast<int32_t>(FloorDiv(now_micros, kMicrosPerDay)));
    case ColumnKind::Json:
    case ColumnKind::Jsonb:
      return Value::MakeObject({});
    case ColumnKind::Array:
      return Value::MakeArray({});
    default:
      return Value::String("sample");
  }
}

// The render's interrupt check (liquid::InterruptCheck): whether a cancel or a
// terminate waits and may be processed. Only those stop a render; a barrier or
// catch-up interrupt is processed by the next CHECK_FOR_INTERRUPTS as usual.
bool CancelOrDiePending(void*) noexcept {
  return (QueryCancelPending || ProcDiePending) && INTERRUPTS_CAN_BE_PROCESSED();
}

// Sets `v` to the object of the columns' values, reusing its members (names
// and storage) when it already holds this object from the previous row.
void FillObject(Value& v, const std::vector<ColumnBinding>& columns, const RawDatum* raw) {
  if (v.kind() != Value::Kind::Object || v.as_object().size() != columns.size()) {
    Object obj;
    obj.reserve(columns.size());
    for (const ColumnBinding& c : columns) obj.emplace_back(c.name, Value::Nil());
    v = Value::MakeObject(std::move(obj));
  }
  Object& obj = v.mutable_object();  // copied only if a previous render kept it
  for (size_t i = 0; i < columns.size(); ++i) obj[i].second = RawToValue(raw[i]);
}

// Appends Liquid's text form of a raw value (AppendLiquidString of its
// Value), without building a Value for the kinds keys usually have.
void AppendRawText(const RawDatum& r, std::string& out) {
  if (r.isnull) return;
  switch (r.kind) {
    case ColumnKind::Int: {
      char buf[24];
      auto res = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(r.i));
      out.append(buf, static_cast<size_t>(res.ptr - buf));
      return;
    }
    case ColumnKind::Bool:
      out += r.i != 0 ? "true" : "false";
      return;
    case ColumnKind::Text:
    case ColumnKind::Name:
    case ColumnKind::Numeric:
    case ColumnKind::Other:
      out.append(r.text, r.len);
      return;
    default:
      AppendLiquidString(RawToValue(r), out);
      return;
  }
}

// The event_key of raw key values: what AppendEventKey makes of their Values.
void AppendKey(const RawDatum* raw, size_t n, std::string& out) {
  if (n == 1) {
    AppendRawText(raw[0], out);
    return;
  }
  thread_local std::string text;
  out.push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    if (raw[i].isnull) {
      out.append("null");
      continue;
    }
    text.clear();
    AppendRawText(raw[i], text);
    out.push_back('"');
    AppendJsonEscaped(text, out);
    out.push_back('"');
  }
  out.push_back(']');
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

void AppendEventKey(const std::vector<Value>& values, std::string& out) {
  if (values.size() == 1) {
    AppendLiquidString(values[0], out);
    return;
  }
  std::string text;
  out.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    if (values[i].is_nil()) {
      out.append("null");
      continue;
    }
    text.clear();
    AppendLiquidString(values[i], text);
    out.push_back('"');
    AppendJsonEscaped(text, out);
    out.push_back('"');
  }
  out.push_back(']');
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
  for (const TableColumn& c : columns) names.push_back(c.name);

  for (const std::string& key_name : KeyColumnNames(primary_key, names)) {
    const TableColumn* key = FindColumn(columns, key_name);
    if (key == nullptr) {
      Throw(ERRCODE_UNDEFINED_COLUMN,
            "primary key column \"" + key_name + "\" does not exist in " + where, "",
            DidYouMean(key_name, names));
    }
    for (const ColumnBinding& k : model->keys) {
      if (k.attnum == key->attnum) {
        Throw(ERRCODE_DUPLICATE_COLUMN,
              "primary key column \"" + key_name + "\" is named twice in \"" + primary_key + "\"");
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

namespace {

// Whether `text` is an optional '-' and 1 to 18 digits; sets *value.
bool SmallInteger(const char* text, size_t length, int64* value) {
  size_t i = text[0] == '-' ? 1 : 0;
  if (length <= i || length - i > 18) return false;
  int64 v = 0;
  for (size_t k = i; k < length; ++k) {
    if (text[k] < '0' || text[k] > '9') return false;
    v = v * 10 + (text[k] - '0');
  }
  *value = i == 1 ? -v : v;
  return true;
}

// jsonb's key order (lengthCompareJsonbStringValue in jsonb_util.c).
int CompareKeys(const JsonbValue* a, const JsonbValue* b) {
  return CompareJsonbKeys({a->val.string.val, static_cast<size_t>(a->val.string.len)},
                          {b->val.string.val, static_cast<size_t>(b->val.string.len)});
}

// jsonb's pair order (lengthCompareJsonbPair): by key, and among equal keys
// the later pair first, so that deduplication keeps the last one.
int ComparePairs(const void* a, const void* b, void* has_duplicates) {
  const JsonbPair* pa = static_cast<const JsonbPair*>(a);
  const JsonbPair* pb = static_cast<const JsonbPair*>(b);
  int res = CompareKeys(&pa->key, &pb->key);
  if (res == 0) {
    *static_cast<bool*>(has_duplicates) = true;
    res = pa->order > pb->order ? -1 : 1;
  }
  return res;
}

// Sorts an object's pairs and drops repeated keys, the last value winning:
// what pushJsonbValue does at WJB_END_OBJECT (uniqueifyJsonbObject, static
// in jsonb_util.c), step for step.
void UniqueifyObject(JsonbValue* object) {
  JsonbPair* pairs = object->val.object.pairs;
  int n = object->val.object.nPairs;
  bool has_duplicates = false;
  if (n > 1) qsort_arg(pairs, n, sizeof(JsonbPair), ComparePairs, &has_duplicates);
  if (!has_duplicates) return;
  JsonbPair* res = pairs;
  for (JsonbPair* ptr = pairs + 1; ptr < pairs + n; ++ptr) {
    if (CompareKeys(&ptr->key, &res->key) != 0) {
      ++res;
      if (ptr != res) *res = *ptr;
    }
  }
  object->val.object.nPairs = static_cast<int>(res + 1 - pairs);
}

}  // namespace

// Why not pushJsonbValue: it sorts every object's keys when it closes, even
// those the token program already sorted at compile time (keys_sorted), and
// grows its arrays as it goes. Here the JsonbValue tree is built with arrays of
// their final size and only objects not known sorted are sorted, exactly as
// pushJsonbValue would; the jsonb is byte for byte the same.
Datum TokensToJsonb(const JsonTokens& tokens) {
  const std::vector<JsonToken>& ts = tokens.tokens;
  size_t n = ts.size();
  // Pass 1: the number of members (object values, array elements) of every
  // container, stored at its Begin token. Nesting cannot exceed n.
  int* members = static_cast<int*>(palloc0(sizeof(int) * (n + 1)));
  size_t* open = static_cast<size_t*>(palloc(sizeof(size_t) * (n + 1)));
  int depth = 0;
  for (size_t i = 0; i < n; ++i) {
    JsonTokenKind kind = ts[i].kind;
    if (kind == JsonTokenKind::EndObject || kind == JsonTokenKind::EndArray) {
      --depth;
      continue;
    }
    if (kind == JsonTokenKind::Key) continue;
    if (depth > 0) ++members[open[depth - 1]];
    if (kind == JsonTokenKind::BeginObject || kind == JsonTokenKind::BeginArray) open[depth++] = i;
  }
  // Pass 2: the tree. Arrays never grow, so pointers to their slots hold.
  JsonbValue root;
  root.type = jbvNull;  // replaced by the first token
  JsonbValue key;
  key.type = jbvString;
  key.val.string.val = nullptr;
  key.val.string.len = 0;
  JsonbValue** stack = static_cast<JsonbValue**>(palloc(sizeof(JsonbValue*) * (n + 1)));
  bool* sorted = static_cast<bool*>(palloc(n + 1));
  depth = 0;
  for (size_t i = 0; i < n; ++i) {
    const JsonToken& t = ts[i];
    switch (t.kind) {
      case JsonTokenKind::EndObject:
      case JsonTokenKind::EndArray:
        --depth;
        if (t.kind == JsonTokenKind::EndObject && !sorted[depth]) UniqueifyObject(stack[depth]);
        continue;
      case JsonTokenKind::Key:
        key.val.string.val = const_cast<char*>(tokens.arena.data() + t.offset);
        key.val.string.len = static_cast<int>(t.length);
        continue;
      default:
        break;
    }
    JsonbValue* slot = &root;
    if (depth > 0) {
      JsonbValue* parent = stack[depth - 1];
      if (parent->type == jbvObject) {
        JsonbPair* pair = &parent->val.object.pairs[parent->val.object.nPairs];
        pair->key = key;
        pair->order = static_cast<uint32>(parent->val.object.nPairs++);
        slot = &pair->value;
      } else {
        slot = &parent->val.array.elems[parent->val.array.nElems++];
      }
    }
    switch (t.kind) {
      case JsonTokenKind::BeginObject:
        slot->type = jbvObject;
        slot->val.object.nPairs = 0;
        slot->val.object.pairs =
            static_cast<JsonbPair*>(palloc(sizeof(JsonbPair) * Max(members[i], 1)));
        sorted[depth] = t.keys_sorted;
        stack[depth++] = slot;
        break;
      case JsonTokenKind::BeginArray:
        slot->type = jbvArray;
        slot->val.array.nElems = 0;
        slot->val.array.rawScalar = false;
        slot->val.array.elems =
            static_cast<JsonbValue*>(palloc(sizeof(JsonbValue) * Max(members[i], 1)));
        sorted[depth] = true;
        stack[depth++] = slot;
        break;
      case JsonTokenKind::String:
        slot->type = jbvString;
        slot->val.string.val = const_cast<char*>(tokens.arena.data() + t.offset);
        slot->val.string.len = static_cast<int>(t.length);
        break;
      case JsonTokenKind::Number: {
        slot->type = jbvNumeric;
        const char* text = tokens.arena.data() + t.offset;
        int64 small = 0;
        // Integers of up to 18 digits (most numbers in an event) skip
        // numeric_in's parser; int64_to_numeric gives the same value and scale.
        if (SmallInteger(text, t.length, &small)) {
          slot->val.numeric = int64_to_numeric(small);
        } else {
          slot->val.numeric = DatumGetNumeric(DirectFunctionCall3(
              numeric_in, CStringGetDatum(text), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
        }
        break;
      }
      case JsonTokenKind::True:
      case JsonTokenKind::False:
        slot->type = jbvBool;
        slot->val.boolean = t.kind == JsonTokenKind::True;
        break;
      default:  // Null
        slot->type = jbvNull;
        break;
    }
  }
  return JsonbPGetDatum(JsonbValueToJsonb(&root));
}

void InstallModelCacheCallbacks() { CacheRegisterRelcacheCallback(InvalidateCacheCallback, 0); }

}  // namespace hyperline::pg
