// test_delivery.cpp: hyperline._test_delivery(model, payload, operation), the C
// half of hyperline.test_delivery(model): sends one payload now, synchronously,
// to the model's destination and returns what the destination answered.
#include <string>

#include "core/protocol.hpp"
#include "http/client.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(hyperline_test_delivery);
}

#ifndef HYPERLINE_VERSION
#define HYPERLINE_VERSION "dev"
#endif

namespace hyperline::pg {
namespace {

// The destination settings of a model (read through SPI).
struct Target {
  std::string destination;
  std::string base_url;
  std::string api_key;
  int timeout_ms = 10000;
  bool allow_http = false;
};

// Looks up the model's destination and key; errors if the model is unknown.
Target LoadTarget(const std::string& model) {
  char* destination = nullptr;
  char* base_url = nullptr;
  char* api_key = nullptr;
  int timeout_ms = 10000;
  bool allow_http = false;
  bool found = false;
  PgGuard([&] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
    Oid types[1] = {TEXTOID};
    Datum values[1] = {PointerGetDatum(cstring_to_text_with_len(model.data(), model.size()))};
    int rc = SPI_execute_with_args(
        "SELECT d.name, d.base_url, k.api_key, d.timeout_ms, d.allow_http FROM hyperline._models m"
        " JOIN hyperline._destinations d ON d.name = m.destination"
        " JOIN _hyperline.api_keys k ON k.destination = d.name WHERE m.name = $1",
        1, types, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
    if (SPI_processed == 1) {
      found = true;
      TupleDesc desc = SPI_tuptable->tupdesc;
      HeapTuple t = SPI_tuptable->vals[0];
      bool isnull = false;
      // SPI_getvalue copies into the caller's context, which survives SPI_finish.
      destination = SPI_getvalue(t, desc, 1);
      base_url = SPI_getvalue(t, desc, 2);
      api_key = SPI_getvalue(t, desc, 3);
      timeout_ms = DatumGetInt32(SPI_getbinval(t, desc, 4, &isnull));
      Datum allow = SPI_getbinval(t, desc, 5, &isnull);
      allow_http = !isnull && DatumGetBool(allow);
    }
    SPI_finish();
  });
  if (!found) Throw(ERRCODE_UNDEFINED_OBJECT, "model \"" + model + "\" does not exist");
  Target t{destination, base_url, api_key, timeout_ms, allow_http};
  PgGuard([&] {
    // Do not leave the key in backend memory longer than needed.
    memset(api_key, 0, strlen(api_key));
  });
  return t;
}

// The body of hyperline._test_delivery; returns (status, response body).
std::pair<int, std::string> TestDelivery(const std::string& model, const std::string& payload,
                                         const std::string& operation) {
  if (operation != "insert" && operation != "update" && operation != "delete") {
    Throw(ERRCODE_INVALID_PARAMETER_VALUE,
          "operation must be insert, update or delete (got \"" + operation + "\")");
  }
  Target target = LoadTarget(model);
  http::Request req;
  bool is_delete = operation == "delete";
  req.method = is_delete ? "DELETE" : "POST";
  req.url = target.base_url + EndpointPath(is_delete, false);
  if (is_delete) {
    std::optional<std::string> id = RecordIdOf(payload);
    if (!id) Throw(ERRCODE_INVALID_PARAMETER_VALUE, "the payload has no record.id to delete");
    req.body = BuildDeleteBody({*id});
  } else {
    req.body = payload;
  }
  req.bearer_token = target.api_key;
  req.user_agent = "pg_hyperline/" HYPERLINE_VERSION;
  req.timeout_ms = target.timeout_ms;
  req.allow_http = guc_allow_http || target.allow_http;
  std::string refused = http::CheckUrl(req.url, req.allow_http);
  if (!refused.empty()) {
    Throw(ERRCODE_INSUFFICIENT_PRIVILEGE, "destination \"" + target.destination + "\": " + refused);
  }
  http::Client client(1);
  // Why the guard: a cancel (or statement_timeout) arrives as a Postgres
  // error; PgGuard turns it into a C++ exception that unwinds the client.
  http::Response r =
      http::Perform(client, std::move(req), [] { PgGuard([] { CHECK_FOR_INTERRUPTS(); }); });
  if (r.status == 0) {
    Throw(ERRCODE_CONNECTION_FAILURE,
          Redact("could not deliver to destination \"" + target.destination + "\" at " +
                     target.base_url + ": " + r.error,
                 target.api_key),
          "", r.timed_out ? "The request timed out; see the destination's timeout_ms." : "");
  }
  return {r.status, Redact(r.body, target.api_key)};
}

}  // namespace
}  // namespace hyperline::pg

extern "C" Datum hyperline_test_delivery(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) {
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("model, payload and operation must not be NULL")));
  }
  char* model = text_to_cstring(PG_GETARG_TEXT_PP(0));
  char* payload = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(1)));
  char* operation = text_to_cstring(PG_GETARG_TEXT_PP(2));
  int status = 0;
  char* body = nullptr;
  hyperline::pg::CppGuard([&] {
    auto [code, text] = hyperline::pg::TestDelivery(model, payload, operation);
    status = code;
    hyperline::pg::PgGuard([&] { body = pnstrdup(text.data(), text.size()); });
  });
  InitMaterializedSRF(fcinfo, 0);
  ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  Datum values[2] = {Int32GetDatum(status), CStringGetTextDatum(body)};
  bool nulls[2] = {false, false};
  tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  return (Datum)0;
}
