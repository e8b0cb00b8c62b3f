// outbox.hpp: writing events into hyperline.outbox from the trigger path.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace hyperline::pg {

// One event row; strings are NUL-terminated, payload/last_error may be null.
struct OutboxInsert {
  const char* model;
  const char* event_key;
  const char* operation;
  const char* payload;  // JSON text (validated), or null when rendering failed
  const char* last_error;
  const char* destination;
};

// Inserts rows straight into the heap and indexes of hyperline.outbox (no SPI,
// no executor per row) with the table's defaults (id from its sequence,
// status pending — or failed when payload is null —, timestamps now()).
// Postgres-only code: call it under PgGuard.
void InsertOutboxRows(const OutboxInsert* rows, int n);

}  // namespace hyperline::pg
