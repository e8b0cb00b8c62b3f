// event_validation.hpp: Hyperline's event rules and the JSON text helpers the
// mock uses to keep events byte-exact "as sent".
//
// Vocabulary: an *event* is one JSON object {customer_id, event_type,
// timestamp, record}; its *key* is the canonical text of record.id (a string
// id as is, a numeric id as its JSON number text), used for idempotency.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace hyperline {
namespace mock {

// Checks one parsed event as Hyperline does; "" when valid, else the reason.
std::string ValidateEvent(const nlohmann::json& event);

// Returns the canonical key of a record id value, or "" if it is not one.
std::string RecordIdKey(const nlohmann::json& id);

// True for an ISO 8601 date-time with seconds and a zone, e.g. 2024-12-20T16:04:11Z.
bool IsIso8601DateTime(const std::string& s);

// Returns valid JSON text without the whitespace outside strings.
std::string CompactJson(const std::string& text);

// Splits compact JSON array text into [begin, end) spans of its elements.
std::vector<std::pair<size_t, size_t>> SplitArrayElements(const std::string& compact);

// Returns the compact event text with "error": reason added (wrapped if not an object).
std::string WithError(const std::string& compact_event, const std::string& reason);

// Returns s as a quoted, escaped JSON string.
std::string JsonString(const std::string& s);

}  // namespace mock
}  // namespace hyperline
