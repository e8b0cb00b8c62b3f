// model_catalog.hpp: reading a model's definition from hyperline._models.
//
// Why not SPI: the trigger reads the definition as whoever writes to the source
// table, and SPI would parse `name = $1` with that session's search_path, so a
// role could put its own `=` operator in front of pg_catalog's and have it run
// with the extension owner's rights. This reads the row through the table's
// primary key index with a built-in comparison: no name, function or operator is
// looked up, and no privilege or row level security of the writer applies.
//
// The reader accepts the layout of every released schema: columns added in a
// later version read as their default when absent (a library newer than the
// installed extension keeps recording events until ALTER EXTENSION UPDATE).
#pragma once

extern "C" {
#include "postgres.h"
}

namespace hyperline::pg {

// Which row changes a model sends (its `triggers`).
enum TriggerMask : int { kOnInsert = 1, kOnUpdate = 2, kOnDelete = 4 };

// A model's definition; strings palloc'd in the caller's memory context.
struct ModelDef {
  bool found;
  bool is_query;      // kind = 'query'
  Oid source;         // table models: the source table
  char* primary_key;  // as given: one column, or several separated by commas
  char* payload;      // the template
  char* destination;
  char* filter;         // normalized filter expression, or nullptr
  bool delete_via_api;  // delete_mode = 'api' (0.1.0 schema: always)
  int triggers;         // TriggerMask bits
  bool enabled;
  Oid owner;  // query models' owner (InvalidOid for table models)
};

// Reads model `name` (Postgres code: call under PgGuard). def->found is false
// when there is no such model.
void ReadModelDef(const char* name, ModelDef* def);

// The OID of hyperline._models, or InvalidOid when the extension is not
// installed in this database (Postgres code).
Oid ModelsRelid();

}  // namespace hyperline::pg
