// value_codec.hpp: a Value as bytes and back, exactly (kinds kept).
//
// Why: a query model keeps, for every key it sent, the row values its template
// reads, so that a key that leaves the result can be rendered once more as a
// removal (and an update can see the previous row as `old`). JSON would lose
// what the template sees: a timestamp would come back as a string, a float as
// a decimal. These bytes give back the same Value: its kind, exact numbers,
// times with their date flag, nested arrays and objects in order.
//
// Format (version 1): a version byte, then one value: a tag byte and its data.
// Integers are LEB128 varints (signed ones zigzag-encoded), doubles their 8
// IEEE bytes little-endian, strings a varint length and the bytes, times the
// day since 2000-01-01 and the microseconds into it.
#pragma once
#include "core/cpp_only.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

#include "core/value.hpp"

namespace hyperline {

// Appends the encoding of `v` to `out`.
void EncodeValue(const Value& v, std::string& out);

// Decodes what EncodeValue wrote. Throws std::invalid_argument on anything
// else (truncated, unknown version or tag, nesting deeper than 512).
Value DecodeValue(std::string_view bytes);

}  // namespace hyperline
