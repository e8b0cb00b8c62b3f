// client.hpp: a small asynchronous HTTP client over libcurl multi.
//
// Vocabulary: a Request is one HTTP exchange to make; a Response is what came
// back (an HTTP status and body, or a transport error with status 0). The
// Client keeps many requests in flight over kept-alive connections and is
// driven by Poll(); it never blocks longer than asked and never calls back into
// the caller, so the caller (the Postgres worker) stays in control of signals,
// interrupts and memory.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cpp_only.hpp"

namespace hyperline::http {

// One HTTP exchange to make.
struct Request {
  std::string method = "POST";  // POST, DELETE or GET
  std::string url;
  std::string body;
  std::string bearer_token;  // secret: sent as Authorization, never logged or echoed
  std::string user_agent;
  long timeout_ms = 10000;
  bool allow_http = false;  // allow plain http:// to non-loopback hosts
  uint64_t tag = 0;         // caller's id, copied into the Response
};

// What came back for one Request.
struct Response {
  uint64_t tag = 0;
  int status = 0;  // HTTP status; 0 when no answer arrived
  std::string body;
  std::string retry_after;  // value of the Retry-After header, if any
  std::string error;        // transport error (empty when an answer arrived)
  bool timed_out = false;
  double elapsed_ms = 0;
};

// Checks that a URL may be used: http or https, and plain http only to a
// loopback host (127.0.0.0/8, ::1, localhost) unless allow_http. Returns an
// empty string when allowed, else why not.
std::string CheckUrl(const std::string& url, bool allow_http);

// Whether a host name (as written in a URL, IPv6 in brackets) is loopback.
bool IsLoopbackHost(const std::string& host);

// Asynchronous client: Start() requests, Poll() to progress them, TakeCompleted().
class Client {
 public:
  // max_connections bounds the kept-alive connections per host.
  explicit Client(int max_connections = 4);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Begins a request. A refused URL completes at once with an error.
  void Start(Request request);
  // Waits up to timeout_ms for network activity, then progresses transfers.
  void Poll(int timeout_ms);
  // Moves finished responses into `out` (appending); returns how many.
  size_t TakeCompleted(std::vector<Response>& out);
  // Requests started and not yet taken back.
  size_t InFlight() const;
  // Changes the per-host connection bound.
  void SetMaxConnections(int max_connections);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sends one request and waits for its response, calling `between_waits` every
// `slice_ms` while waiting (the caller checks for interrupts there; it may throw,
// which abandons the request).
template <typename Fn>
Response Perform(Client& client, Request request, Fn&& between_waits, int slice_ms = 50) {
  std::vector<Response> done;
  client.Start(std::move(request));
  while (client.TakeCompleted(done) == 0) {
    between_waits();
    client.Poll(slice_ms);
  }
  return std::move(done.front());
}

}  // namespace hyperline::http
