// json_check.hpp: a fast JSON syntax check (RFC 8259), no allocation.
//
// Why our own: the trigger checks every rendered payload before Postgres parses
// it as jsonb, so it must be cheap; and numbers of any size are valid JSON
// (Postgres numeric holds 1e999), which general-purpose parsers reject.
#pragma once
#include "core/cpp_only.hpp"

#include <cstddef>
#include <string_view>

namespace hyperline {

struct JsonCheckResult {
  bool ok = true;
  size_t offset = 0;             // byte where the error was found
  const char* reason = nullptr;  // static text, e.g. "expected ',' or '}'"
};

// Checks that `text` is exactly one JSON value (with surrounding whitespace).
// Nesting deeper than kMaxJsonDepth is reported as an error.
JsonCheckResult CheckJsonSyntax(std::string_view text);

constexpr int kMaxJsonDepth = 512;

}  // namespace hyperline
