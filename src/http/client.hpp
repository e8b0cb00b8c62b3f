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

#include "core/delivery/transport.hpp"

namespace hyperline::http {

// The request and response types are the delivery engine's (the Client is
// its Transport).
using Request = delivery::HttpRequest;
using Response = delivery::HttpResponse;

// Checks that a URL may be used: http or https, and plain http only to a
// loopback host (127.0.0.0/8, ::1, localhost) unless allow_http. Returns an
// empty string when allowed, else why not.
std::string CheckUrl(const std::string& url, bool allow_http);

// Whether a host name (as written in a URL, IPv6 in brackets) is loopback.
bool IsLoopbackHost(const std::string& host);

// Asynchronous client: Start() requests, Poll() to progress them, TakeCompleted().
class Client final : public delivery::Transport {
 public:
  // max_connections bounds the kept-alive connections per host.
  explicit Client(int max_connections = 4);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Begins a request. A refused URL completes at once with an error.
  void Start(Request request) override;
  // Waits up to timeout_ms for network activity, then progresses transfers.
  void Poll(int timeout_ms) override;
  // Moves finished responses into `out` (appending); returns how many.
  size_t TakeCompleted(std::vector<Response>& out) override;
  // Abandons every transfer in progress and forgets unclaimed responses
  // (connections in the middle of a transfer are closed).
  void CancelAll() override;
  // Requests started and not yet taken back.
  size_t InFlight() const;
  // Changes the per-host connection bound.
  void SetMaxConnections(int max_connections) override;

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
