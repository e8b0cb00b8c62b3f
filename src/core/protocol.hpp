// protocol.hpp: the Hyperline ingest protocol, without any transport.
//
// Vocabulary: a payload is one rendered event (JSON text, as stored in
// hyperline.outbox.payload). A single request carries one payload
// (POST /v1/events), a batch request a JSON array of them (POST
// /v1/events/batch, 1..5000), a delete request the record ids to remove
// (DELETE /v1/events {"matching":"record_ids","record_ids":[...]}). An answer is
// what the destination said, classified into a verdict for the rows it carried.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cpp_only.hpp"

namespace hyperline {

constexpr size_t kMaxBatchEvents = 5000;

// Body of POST /v1/events/batch: the payloads joined into a JSON array.
std::string BuildBatchBody(const std::vector<std::string_view>& payloads);

// Body of DELETE /v1/events for the given record ids (sent as JSON strings).
std::string BuildDeleteBody(const std::vector<std::string>& record_ids);

// The payload's record.id as text (a string's value, a number's digits), or
// nullopt if the payload is not an object with record.id.
std::optional<std::string> RecordIdOf(std::string_view payload);

// Path part of the request for an operation and batch size.
const char* EndpointPath(bool is_delete, bool batch);

// What to do with the rows a request carried.
enum class Verdict {
  kDelivered,     // accepted (individual events_failed entries aside)
  kRetry,         // try again later (network error, timeout, 408, 429, 5xx)
  kFailNow,       // rejected: mark failed without retrying (other 4xx, bad answers)
  kUnauthorized,  // 401/403: keep the rows, mark the destination unauthorized
  kTooLarge,      // 413: the body was too large; split the request (one event: failed)
};

// One entry of events_failed: which record, and why.
struct FailedEvent {
  std::string record_id;
  std::string error;
};

// A classified answer.
struct Answer {
  Verdict verdict = Verdict::kRetry;
  std::string message;                    // for last_error ("" when delivered)
  std::optional<int64_t> retry_after_ms;  // from Retry-After, when given
  std::vector<FailedEvent> failed;        // events_failed of a batch answer
};

// Classifies a response. status 0 means no answer (transport_error says why).
// `batch` is true for POST /v1/events/batch, whose 2xx body lists events_failed.
Answer Classify(int status, const std::string& body, const std::string& transport_error,
                const std::string& retry_after, bool batch,
                std::chrono::system_clock::time_point now);

// events_failed entries of a batch answer body (empty when none or unparsable).
std::vector<FailedEvent> ParseEventsFailed(const std::string& body);

// Shortens text for last_error (keeps valid UTF-8, marks the cut).
std::string Truncate(const std::string& text, size_t max_bytes);

// Replaces every occurrence of `secret` in `text` (defence in depth: an API key
// must never reach last_error or the log, even if a server echoes it).
std::string Redact(std::string text, const std::string& secret);

}  // namespace hyperline
