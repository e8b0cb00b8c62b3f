// tuple_value.hpp: a heap tuple's columns as core Values and event keys
// (tuple_value.cpp). Vocabulary: a *binding* (ColumnBinding, model.hpp) is a
// column resolved once per compiled model (attnum, kind, output function); a
// *RawDatum* is one column's value copied out of the tuple as plain data, so
// that turning it into a Value needs no Postgres call.
#pragma once

#include "pg/model.hpp"

extern "C" {
#include "utils/array.h"  // MAXDIM
}

namespace hyperline::pg {

// A column value copied out of the tuple (palloc'd, plain data).
struct RawDatum {
  ColumnKind kind;
  bool isnull;
  bool date_only;
  int64_t i;
  double d;
  const char* text;
  size_t len;  // bytes at text
  int nelems;
  int ndim;
  int dims[MAXDIM];
  RawDatum* elems;
};

// Extracts a column of `tuple` per its binding (arrays element by element),
// in the current memory context. Postgres-only: call under PgGuard.
void ExtractColumn(ColumnBinding* b, TupleDesc desc, HeapTuple tuple, RawDatum* r);

// A typical non-null value of a column, for validating on an empty table.
Value SyntheticValue(const ColumnBinding& b, int64_t now_micros);

// Sets `v` to the object of the columns' values (raw[i] for columns[i]),
// reusing its members when it already holds this object from the previous row.
void FillObject(Value& v, const std::vector<ColumnBinding>& columns, const RawDatum* raw);

// The event_key of raw key values: what AppendEventKey makes of their Values.
void AppendKey(const RawDatum* raw, size_t n, std::string& out);

}  // namespace hyperline::pg
