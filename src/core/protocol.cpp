// protocol.cpp: request bodies and answer classification for Hyperline ingest.
#include "core/protocol.hpp"

#include <nlohmann/json.hpp>

#include "core/backoff.hpp"

namespace hyperline {

using nlohmann::json;

namespace {

// Longest response body kept in last_error.
constexpr size_t kMaxErrorBytes = 2000;

// Whether a batch answer can have failures: a quick scan, so that the common
// answer ({"events_created":[...],"events_failed":[]}) is not parsed at all.
bool MayHaveFailures(const std::string& body) {
  size_t at = body.find("\"events_failed\"");
  if (at == std::string::npos) return false;
  size_t i = at + 15;
  auto skip = [&] {
    while (i < body.size() &&
           (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
      ++i;
  };
  skip();
  if (i >= body.size() || body[i] != ':') return true;
  ++i;
  skip();
  if (i >= body.size() || body[i] != '[') return true;
  ++i;
  skip();
  return i >= body.size() || body[i] != ']';
}

std::string IdText(const json& id) {
  if (id.is_string()) return id.get<std::string>();
  return id.dump();
}

// "HTTP 400: <body>" (or just the status when the body is empty).
std::string StatusMessage(int status, const std::string& body) {
  std::string text = "HTTP " + std::to_string(status);
  if (!body.empty()) text += ": " + body;
  return Truncate(text, kMaxErrorBytes);
}

}  // namespace

std::string BuildBatchBody(const std::vector<std::string_view>& payloads) {
  size_t size = 2;
  for (auto p : payloads) size += p.size() + 1;
  std::string body;
  body.reserve(size);
  body.push_back('[');
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (i > 0) body.push_back(',');
    body.append(payloads[i]);
  }
  body.push_back(']');
  return body;
}

std::string BuildDeleteBody(const std::vector<std::string>& record_ids) {
  json body = {{"matching", "record_ids"}, {"record_ids", record_ids}};
  return body.dump();
}

std::optional<std::string> RecordIdOf(std::string_view payload) {
  json event = json::parse(payload.begin(), payload.end(), nullptr, false);
  if (!event.is_object()) return std::nullopt;
  auto record = event.find("record");
  if (record == event.end() || !record->is_object()) return std::nullopt;
  auto id = record->find("id");
  if (id == record->end() || id->is_null() || id->is_object() || id->is_array()) {
    return std::nullopt;
  }
  return IdText(*id);
}

const char* EndpointPath(bool is_delete, bool batch) {
  if (is_delete) return "/v1/events";
  return batch ? "/v1/events/batch" : "/v1/events";
}

std::vector<FailedEvent> ParseEventsFailed(const std::string& body) {
  std::vector<FailedEvent> failed;
  if (!MayHaveFailures(body)) return failed;
  json answer = json::parse(body, nullptr, false);
  if (!answer.is_object()) return failed;
  auto list = answer.find("events_failed");
  if (list == answer.end() || !list->is_array()) return failed;
  for (const json& entry : *list) {
    FailedEvent f;
    if (entry.is_object()) {
      auto record = entry.find("record");
      if (record != entry.end() && record->is_object()) {
        auto id = record->find("id");
        if (id != record->end() && !id->is_null()) f.record_id = IdText(*id);
      }
      auto error = entry.find("error");
      if (error != entry.end())
        f.error = error->is_string() ? error->get<std::string>() : error->dump();
    }
    if (f.error.empty()) f.error = "rejected by the destination";
    failed.push_back(std::move(f));
  }
  return failed;
}

Answer Classify(int status, const std::string& body, const std::string& transport_error,
                const std::string& retry_after, bool batch,
                std::chrono::system_clock::time_point now) {
  Answer a;
  if (status == 0) {
    a.verdict = Verdict::kRetry;
    a.message = transport_error.empty() ? "no answer from the destination" : transport_error;
    return a;
  }
  if (status >= 200 && status < 300) {
    a.verdict = Verdict::kDelivered;
    if (batch) a.failed = ParseEventsFailed(body);
    return a;
  }
  a.message = StatusMessage(status, body);
  if (status == 401 || status == 403) {
    a.verdict = Verdict::kUnauthorized;
  } else if (status == 413) {
    a.verdict = Verdict::kTooLarge;
  } else if (status == 408 || status == 429 || status >= 500) {
    a.verdict = Verdict::kRetry;
    if (!retry_after.empty()) a.retry_after_ms = ParseRetryAfterMs(retry_after, now);
  } else {
    // Other 4xx, and 1xx/3xx (redirects are not followed): retrying cannot help.
    a.verdict = Verdict::kFailNow;
  }
  return a;
}

std::string Truncate(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  // Do not split a UTF-8 sequence: back up to a lead byte.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "…";
}

std::string Redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  size_t at = 0;
  while ((at = text.find(secret, at)) != std::string::npos) {
    text.replace(at, secret.size(), "[redacted]");
    at += 10;
  }
  return text;
}

}  // namespace hyperline
