// test_delivery.cpp: hyperline._test_delivery(model, payload, operation), the C
// half of hyperline.test_delivery(model): sends one payload now, synchronously,
// to the model's destination and returns what the destination answered. The
// request is built as the delivery worker builds it (delivery::MakeRequest,
// with the same settings), always for the single-event endpoint.
#include <string>

#include "core/delivery/request.hpp"
#include "core/protocol.hpp"
#include "http/client.hpp"
#include "pg/delivery_settings.hpp"
#include "pg/guard.hpp"
#include "pg/outbox_store.hpp"
#include "pg/worker_common.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"
}

namespace hyperline::pg {
namespace {

// The body of hyperline._test_delivery; returns (status, response body).
std::pair<int, std::string> TestDelivery(const std::string& model, const std::string& payload,
                                         const std::string& operation) {
  if (operation != "insert" && operation != "update" && operation != "delete") {
    Throw(ERRCODE_INVALID_PARAMETER_VALUE,
          "operation must be insert, update or delete (got \"" + operation + "\")");
  }
  delivery::DestinationConfig destination = store::LoadModelDestination(model);
  if (!destination.api_key) {
    Throw(ERRCODE_INVALID_PARAMETER_VALUE,
          "destination \"" + destination.name + "\" has no API key", "",
          "Set one with hyperline.alter_destination(name, api_key => ...).");
  }
  delivery::Settings settings = DeliverySettings();
  bool is_delete = operation == "delete";
  std::string body;
  if (is_delete) {
    std::optional<std::string> id = RecordIdOf(payload);
    if (!id) Throw(ERRCODE_INVALID_PARAMETER_VALUE, "the payload has no record.id to delete");
    body = BuildDeleteBody({*id});
  } else {
    body = payload;
    int64_t bytes = delivery::SingleBodyBytes(body.size(), false);
    if (bytes > settings.max_request_bytes) {
      Throw(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            delivery::TooLargeMessage(bytes, settings.max_request_bytes));
    }
  }
  http::Request req = delivery::MakeRequest(
      destination, settings,
      is_delete ? delivery::RequestKind::kDelete : delivery::RequestKind::kPost,
      /*batch=*/false, std::move(body));
  std::string refused = http::CheckUrl(req.url, req.allow_http);
  if (!refused.empty()) {
    Throw(ERRCODE_INSUFFICIENT_PRIVILEGE, "destination \"" + destination.name + "\": " + refused);
  }
  const std::string key = *destination.api_key;
  http::Client client(1);
  // Why the guard: a cancel (or statement_timeout) arrives as a Postgres
  // error; PgGuard turns it into a C++ exception that unwinds the client.
  http::Response r =
      http::Perform(client, std::move(req), [] { PgGuard([] { CHECK_FOR_INTERRUPTS(); }); });
  if (r.status == 0) {
    Throw(ERRCODE_CONNECTION_FAILURE,
          Redact("could not deliver to destination \"" + destination.name + "\" at " +
                     destination.base_url + ": " + r.error,
                 key),
          "", r.timed_out ? "The request timed out; see the destination's timeout_ms." : "");
  }
  return {r.status, Redact(r.body, key)};
}

// SQL hyperline._send_test(model, payload, operation) -> (http_status, response).
Datum SendTest(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) {
    Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, "model, payload and operation must not be NULL");
  }
  char* model = nullptr;
  char* payload = nullptr;
  char* operation = nullptr;
  PgGuard([&] {
    model = text_to_cstring(PG_GETARG_TEXT_PP(0));
    payload = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(1)));
    operation = text_to_cstring(PG_GETARG_TEXT_PP(2));
  });
  // (Not a structured binding: C++17 lambdas cannot capture one.)
  std::pair<int, std::string> answer = TestDelivery(model, payload, operation);
  int status = answer.first;
  const std::string& body = answer.second;
  PgGuard([&] {
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    Datum values[2] = {Int32GetDatum(status),
                       PointerGetDatum(cstring_to_text_with_len(body.data(), body.size()))};
    bool nulls[2] = {false, false};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  });
  return (Datum)0;
}

}  // namespace
}  // namespace hyperline::pg

HYPERLINE_SQL_FUNCTION(hyperline_test_delivery, hyperline::pg::SendTest)
