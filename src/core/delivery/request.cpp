// request.cpp: request building (see request.hpp).
#include "core/delivery/request.hpp"

#include "core/protocol.hpp"

namespace hyperline::delivery {

HttpRequest MakeRequest(const DestinationConfig& destination, const Settings& settings,
                        RequestKind kind, bool batch, std::string body) {
  bool is_delete = kind == RequestKind::kDelete;
  HttpRequest req;
  req.url = destination.base_url + EndpointPath(is_delete, batch && !is_delete);
  req.method = is_delete ? "DELETE" : "POST";
  req.body = std::move(body);
  req.bearer_token = destination.api_key.value_or(std::string());
  req.user_agent = settings.user_agent;
  req.timeout_ms = destination.timeout_ms;
  req.allow_http = settings.allow_http || destination.allow_http;
  return req;
}

std::string TooLargeMessage(int64_t body_bytes, int64_t max_request_bytes) {
  return "the event is " + std::to_string(body_bytes) +
         " bytes, more than hyperline.max_request_bytes (" + std::to_string(max_request_bytes) +
         " bytes): not sent";
}

}  // namespace hyperline::delivery
