// jsonb_builder.hpp: the jsonb value of a rendered payload, built straight
// from its JSON tokens (no text round trip through jsonb_in).
#pragma once

#include "core/json_tokens.hpp"

extern "C" {
#include "postgres.h"
}

namespace hyperline::pg {

// Builds the jsonb value of rendered tokens, in the current memory context;
// objects not marked keys_sorted are sorted as jsonb sorts them (the last of
// repeated keys wins). Postgres-only: call under PgGuard.
Datum TokensToJsonb(const JsonTokens& tokens);

}  // namespace hyperline::pg
