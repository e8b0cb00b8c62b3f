// outbox.hpp: writing events into hyperline.outbox from the trigger path.
//
// Vocabulary: the trigger renders each row's event and *buffers* it (rendered
// payload already converted to jsonb); the buffer is *flushed* — written with
// one multi-insert and the executor's index code — at the end of each
// statement (executor and utility hooks), when it reaches kFlushRows, and
// before commit/prepare as a safety net. Rows buffered by a subtransaction that
// aborts are dropped with it. The writes are in the user's transaction, so an
// event exists iff that transaction commits.
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
  Datum payload_jsonb;  // or the payload already as jsonb (0 when not)
  const char* last_error;
  const char* destination;
  bool via_delete_api;  // sent as DELETE /v1/events (outbox.method)
};

// Copies the row into the transaction's buffer (a text payload is parsed as
// jsonb now, so a bad payload fails here, not at flush). Postgres-only: call
// under PgGuard.
void BufferOutboxRow(const OutboxInsert& row);

// Writes every buffered row into hyperline.outbox (id from its sequence,
// status pending — or failed when payload is null —, timestamps now()).
// Postgres-only: call under PgGuard.
void FlushOutbox();

// Registers the transaction callbacks and end-of-statement hooks behind the
// buffer (from _PG_init).
void InstallOutboxCallbacks();

}  // namespace hyperline::pg
