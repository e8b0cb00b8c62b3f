// request.hpp: how rows become an HTTP request to a destination, shared by the
// delivery engine and hyperline.test_delivery so that both send the same thing.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <string>

#include "core/delivery/transport.hpp"
#include "core/delivery/types.hpp"

namespace hyperline::delivery {

// Bytes of the request body that carries one payload of `payload_bytes`:
// the payload itself, or wrapped in [ ] for the batch endpoint.
inline int64_t SingleBodyBytes(size_t payload_bytes, bool batch) {
  return static_cast<int64_t>(payload_bytes) + (batch ? 2 : 0);
}

// The request carrying `body` (one event, a batch array, or a delete body) to
// `destination`: URL, method, Bearer key, User-Agent, timeout, and whether
// plain http to a remote host is allowed (the destination's own permission or
// hyperline.allow_http, re-checked at send time).
HttpRequest MakeRequest(const DestinationConfig& destination, const Settings& settings,
                        RequestKind kind, bool batch, std::string body);

// Why an event cannot be sent at all: its body would be larger than
// hyperline.max_request_bytes.
std::string TooLargeMessage(int64_t body_bytes, int64_t max_request_bytes);

}  // namespace hyperline::delivery
