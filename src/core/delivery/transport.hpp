// transport.hpp: HTTP as the delivery engine sees it. A Transport starts
// requests, progresses them when polled and hands back responses; it never
// calls back into the engine. http::Client (src/http) is the real one; the
// unit tests use a fake that answers what each test wants.
#pragma once
#include "core/cpp_only.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hyperline::delivery {

// One HTTP exchange to make.
struct HttpRequest {
  std::string method = "POST";  // POST, DELETE or GET
  std::string url;
  std::string body;
  std::string bearer_token;  // secret: sent as Authorization, never logged or echoed
  std::string user_agent;
  long timeout_ms = 10000;
  bool allow_http = false;  // allow plain http:// to non-loopback hosts
  uint64_t tag = 0;         // caller's id, copied into the response
};

// What came back for one request.
struct HttpResponse {
  uint64_t tag = 0;
  int status = 0;  // HTTP status; 0 when no answer arrived
  std::string body;
  std::string retry_after;  // value of the Retry-After header, if any
  std::string error;        // transport error (empty when an answer arrived)
  bool timed_out = false;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Begins a request. A refused URL completes at once with an error.
  virtual void Start(HttpRequest request) = 0;
  // Waits up to timeout_ms for activity, then progresses transfers.
  virtual void Poll(int timeout_ms) = 0;
  // Moves finished responses into `out` (appending); returns how many.
  virtual size_t TakeCompleted(std::vector<HttpResponse>& out) = 0;
  // Abandons every request in progress and forgets unclaimed responses.
  virtual void CancelAll() = 0;
  // Changes the per-host connection bound.
  virtual void SetMaxConnections(int max_connections) = 0;
};

}  // namespace hyperline::delivery
