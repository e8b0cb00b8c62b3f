// tuple_value.cpp: a column of a heap tuple as a core Value, in two phases:
// extraction (Postgres: detoast, output functions, array deconstruction) into
// a RawDatum of plain palloc'd data, then conversion to a Value (C++ only),
// and the event_key text of key columns. The model cache (model.cpp) binds the
// columns (ColumnBinding); rendering calls ExtractColumn under PgGuard for a
// row's bound columns, then FillObject and AppendKey outside it.
// C++ core headers first (core/cpp_only.hpp refuses them after postgres.h).
#include "core/ascii.hpp"
#include "pg/tuple_value.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

#include <charconv>
#include <cmath>
#include <cstring>

namespace hyperline::pg {
namespace {

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

// Appends the text form of a date (days since 2000-01-01), remembering the
// last 64 dates formatted: a key's date column repeats a few days over many
// rows (a query model's key is read for every row of every run). Why static
// and not thread_local: a backend runs one thread, and a thread_local in a
// shared library costs a call per use.
void AppendDate(int64_t days, std::string& out) {
  struct Memo {
    int64_t days = INT64_MIN;
    uint8_t len = 0;
    char text[23] = {};
  };
  static Memo memo[64];
  Memo& m = memo[static_cast<uint64_t>(days) & 63];
  if (m.days != days) {
    std::string text;
    AppendLiquidString(Value::DateFromPgDays(static_cast<int32_t>(days)), text);
    if (text.size() > sizeof m.text) {
      out += text;
      return;
    }
    memcpy(m.text, text.data(), text.size());
    m.len = static_cast<uint8_t>(text.size());
    m.days = days;
  }
  out.append(m.text, m.len);
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
    case ColumnKind::Time:
      if (r.date_only) {
        AppendDate(r.i, out);
        return;
      }
      AppendLiquidString(RawToValue(r), out);
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

}  // namespace

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

// The event_key of raw key values: what AppendEventKey makes of their Values.
void AppendKey(const RawDatum* raw, size_t n, std::string& out) {
  if (n == 1) {
    AppendRawText(raw[0], out);
    return;
  }
  static std::string text;  // reused (one thread per backend)
  out.push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    if (raw[i].isnull) {
      out.append("null");
      continue;
    }
    out.push_back('"');
    switch (raw[i].kind) {
      case ColumnKind::Int:
      case ColumnKind::Bool:
        AppendRawText(raw[i], out);  // digits and signs, or true/false: nothing to escape
        break;
      case ColumnKind::Time:
        if (raw[i].date_only) {
          AppendRawText(raw[i], out);  // digits, signs and dashes
          break;
        }
        text.clear();
        AppendRawText(raw[i], text);
        AppendJsonEscaped(text, out);
        break;
      case ColumnKind::Text:
      case ColumnKind::Name:
      case ColumnKind::Numeric:
      case ColumnKind::Other:
        AppendJsonEscaped(std::string_view(raw[i].text, raw[i].len), out);
        break;
      default:
        text.clear();
        AppendRawText(raw[i], text);
        AppendJsonEscaped(text, out);
        break;
    }
    out.push_back('"');
  }
  out.push_back(']');
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

}  // namespace hyperline::pg
