// functions.cpp: SQL-callable functions of the write path: model validation,
// rendering for preview/backfill, render_template, and privilege helpers.
#include <string>

#include "core/liquid.hpp"
#include "core/payload_template.hpp"

extern "C" {
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"
}

#include "pg/guard.hpp"
#include "pg/model.hpp"

namespace hyperline::pg {
namespace {

std::string TextArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, std::string(what) + " must not be NULL");
  char* s = nullptr;
  PgGuard([&] { s = text_to_cstring(PG_GETARG_TEXT_PP(n)); });
  return s;
}

// Raises a WARNING (through the guard: ereport may allocate).
void Warn(const std::string& message) {
  const char* m = message.c_str();
  PgGuard([&] { ereport(WARNING, (errmsg("%s", m))); });
}

// Renders the model against one stored row (or a synthetic one on an empty
// table) and checks the result is an event Hyperline accepts.
void ValidateSample(const CompiledModel& model) {
  std::string key;
  std::string payload;
  std::string error;
  bool have_row = false;
  bool rendered = false;
  Relation rel = nullptr;
  HeapTuple tuple = nullptr;
  TupleDesc desc = nullptr;
  PgGuard([&] {
    rel = table_open(model.source, AccessShareLock);
    desc = RelationGetDescr(rel);
    if (rel->rd_rel->relkind == RELKIND_RELATION) {
      TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, nullptr);
      HeapTuple t = heap_getnext(scan, ForwardScanDirection);
      if (t != nullptr) tuple = heap_copytuple(t);
      table_endscan(scan);
    }
  });
  try {
    if (tuple != nullptr) {
      have_row = true;
      rendered = RenderEvent(model, desc, tuple, nullptr, "insert", key, payload, nullptr, error);
    } else {
      try {
        payload = RenderSynthetic(model);
        rendered = true;
      } catch (const std::bad_alloc&) {
        throw;
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
  } catch (...) {
    PgGuard([&] { table_close(rel, AccessShareLock); });
    throw;
  }
  PgGuard([&] { table_close(rel, AccessShareLock); });
  const std::string sample = have_row ? "the first row of the table" : "a sample row";
  if (!rendered) {
    Throw(ERRCODE_DATA_EXCEPTION, "rendering " + sample + " failed: " + error,
          payload.empty() ? "" : "Rendered: " + payload);
  }
  // Trim the template's surrounding whitespace for messages.
  size_t first = payload.find_first_not_of(" \t\r\n");
  size_t last = payload.find_last_not_of(" \t\r\n");
  if (first != std::string::npos) payload = payload.substr(first, last - first + 1);
  EventShapeReport report = CheckEventShape(payload);
  if (!report.errors.empty()) {
    std::string detail = "Rendered from " + sample + ": " + payload;
    Throw(ERRCODE_INVALID_PARAMETER_VALUE, "invalid payload: " + report.errors.front(), detail,
          "Hyperline events need customer_id, event_type, timestamp and a record object with "
          "an id.");
  }
  for (const std::string& w : report.warnings) Warn("payload: " + w);
}

Datum ValidateModel(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, "source must not be NULL");
  Oid source = PG_GETARG_OID(0);
  std::string primary_key = TextArg(fcinfo, 1, "primary_key");
  std::string payload = TextArg(fcinfo, 2, "payload");
  std::string name = TextArg(fcinfo, 3, "name");
  std::shared_ptr<CompiledModel> model = CompileModel(name, source, primary_key, payload, "");
  ValidateSample(*model);
  PG_RETURN_VOID();
}

Datum RenderEventSql(FunctionCallInfo fcinfo) {
  std::string name = TextArg(fcinfo, 0, "model");
  if (PG_ARGISNULL(1)) Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, "row must not be NULL");
  std::string operation = TextArg(fcinfo, 2, "operation");
  std::shared_ptr<const CompiledModel> model = GetModel(name.c_str(), InvalidOid);
  HeapTupleData tuple;
  TupleDesc desc = nullptr;
  TupleDesc result_desc = nullptr;
  PgGuard([&] {
    HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(1);
    desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec), HeapTupleHeaderGetTypMod(rec));
    tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
    ItemPointerSetInvalid(&tuple.t_self);
    tuple.t_tableOid = InvalidOid;
    tuple.t_data = rec;
    if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE) {
      elog(ERROR, "pg_hyperline: _render_event must return a composite type");
    }
  });
  std::string key;
  std::string payload;
  std::string error;
  bool ok =
      RenderEvent(*model, desc, &tuple, nullptr, operation.c_str(), key, payload, nullptr, error);
  Datum result = 0;
  PgGuard([&] {
    ReleaseTupleDesc(desc);
    Datum values[2];
    bool nulls[2] = {!ok, ok};
    if (ok) {
      values[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(payload.c_str()));
    } else {
      values[1] = CStringGetTextDatum(error.c_str());
    }
    result = HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc), values, nulls));
  });
  return result;
}

Datum RenderTemplate(FunctionCallInfo fcinfo) {
  std::string source = TextArg(fcinfo, 0, "template");
  std::string context_json = "{}";
  if (!PG_ARGISNULL(1)) {
    char* text = nullptr;
    PgGuard([&] {
      Jsonb* jb = PG_GETARG_JSONB_P(1);
      text = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
    });
    context_json = text;
  }
  Value data = ParseJsonValue(context_json);
  if (data.kind() != Value::Kind::Object) {
    Throw(ERRCODE_INVALID_PARAMETER_VALUE, "context must be a JSON object");
  }
  std::unique_ptr<liquid::Template> tmpl;
  try {
    tmpl = liquid::Template::Parse(source);
  } catch (const liquid::ParseError& e) {
    Throw(ERRCODE_SYNTAX_ERROR, e.what());
  }
  liquid::Context ctx;
  for (const auto& [name, value] : data.as_object()) ctx.Set(name, value);
  liquid::StringSink sink;
  try {
    tmpl->Render(ctx, sink);
  } catch (const liquid::RenderError& e) {
    Throw(ERRCODE_INVALID_PARAMETER_VALUE, e.what());
  }
  text* result = nullptr;
  PgGuard([&] { result = cstring_to_text_with_len(sink.out.data(), sink.out.size()); });
  PG_RETURN_TEXT_P(result);
}

}  // namespace
}  // namespace hyperline::pg

using hyperline::pg::CppGuard;

extern "C" {
PG_FUNCTION_INFO_V1(hyperline_validate_model);
PG_FUNCTION_INFO_V1(hyperline_render_event);
PG_FUNCTION_INFO_V1(hyperline_render_template);
PG_FUNCTION_INFO_V1(hyperline_caller_owns);
PG_FUNCTION_INFO_V1(hyperline_caller_can_select);
PG_FUNCTION_INFO_V1(hyperline_models_changed);

// SQL hyperline._validate_model(source, primary_key, payload, model).
Datum hyperline_validate_model(PG_FUNCTION_ARGS) {
  return CppGuard([&] { return hyperline::pg::ValidateModel(fcinfo); });
}

// SQL hyperline._render_event(model, row, operation) -> (payload, error).
Datum hyperline_render_event(PG_FUNCTION_ARGS) {
  return CppGuard([&] { return hyperline::pg::RenderEventSql(fcinfo); });
}

// SQL hyperline.render_template(template, context).
Datum hyperline_render_template(PG_FUNCTION_ARGS) {
  return CppGuard([&] { return hyperline::pg::RenderTemplate(fcinfo); });
}

// SQL hyperline._caller_owns(regclass). Why GetOuterUserId: the functions that
// ask are SECURITY DEFINER, so the current user is the extension's owner; the
// outer user is the role that called them.
Datum hyperline_caller_owns(PG_FUNCTION_ARGS) {
  PG_RETURN_BOOL(pg_class_ownercheck(PG_GETARG_OID(0), GetOuterUserId()));
}

// SQL hyperline._caller_can_select(regclass).
Datum hyperline_caller_can_select(PG_FUNCTION_ARGS) {
  PG_RETURN_BOOL(pg_class_aclcheck(PG_GETARG_OID(0), GetOuterUserId(), ACL_SELECT) == ACLCHECK_OK);
}

// SQL hyperline._models_changed(): every backend recompiles at our commit.
Datum hyperline_models_changed(PG_FUNCTION_ARGS) {
  Oid relid = get_relname_relid("_models", get_namespace_oid("hyperline", false));
  if (OidIsValid(relid)) CacheInvalidateRelcacheByRelid(relid);
  PG_RETURN_VOID();
}
}
