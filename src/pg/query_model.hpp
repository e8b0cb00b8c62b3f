// query_model.hpp: query models — a model over a SQL query, run now and then
// (on a schedule, or with hyperline.run_model) and diffed by key against what
// its earlier runs sent.
//
// Vocabulary: a *run* evaluates the model's query and compares each key of
// the result with the model's *state* (hyperline._query_state: one row per key
// recorded, with the hash of its row as the query returned it, the hash of its
// rendered payload and the row values the template read). A key not in the
// state is *added*, a key whose payload hash differs is *updated* (only rows
// whose own hash differs are rendered to know), a key of the state missing
// from the result is *removed*, the rest are *unchanged*. Added, updated and
// removed keys produce events when their trigger (insert, update, delete) is
// on; the state follows the result either way. A run's events and its new
// state are written in its transaction: they commit together or not at all.
//
// The *canonical rendering* of a row, whose hash is compared, is the template
// rendered as for an insert (operation 'insert', `old` nil): what Hyperline
// would receive for that row. Events themselves are rendered for their
// operation: an update sees the key's previous row as `old`, a removal renders
// the kept row values with operation 'delete'.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
}

namespace hyperline::pg {

// What a run found.
struct RunCounts {
  int64_t rows = 0;  // rows of the query result
  int64_t added = 0;
  int64_t updated = 0;
  int64_t removed = 0;
  int64_t unchanged = 0;
};

// Runs query model `name` in the current transaction, as run `run_id`: locks
// the model (when another transaction runs or changes it: an ERROR at once,
// or with `wait` after waiting for it up to lock_timeout),
// evaluates its query as the model's owner with its search_path, diffs and
// writes events and state. The current user must be one who may write
// hyperline's tables (the extension owner in a gate, the worker's superuser);
// the search_path must be pinned. Throws PgException (the transaction must
// then abort: nothing of the run remains).
RunCounts RunQueryModel(const std::string& name, int64_t run_id, bool wait);

// The next run time of a model with schedule `schedule_text` whose run due at
// `last_due` started at `now` (intervals keep their phase; see
// core/schedule.hpp), or nullopt for no schedule. Throws PgException for a
// schedule that does not parse.
std::optional<TimestampTz> NextDue(const std::string& schedule_text, TimestampTz last_due,
                                   TimestampTz now);

}  // namespace hyperline::pg
