// functions.cpp: SQL-callable functions of the write path: model validation,
// rendering for preview and backfill, render_template, and the 0.1.0 entry
// points a newer library keeps for an older installed schema.
//
// Why every read of a source table is SQL run as the caller (gate.hpp): row
// level security, column privileges and any function the reading runs (a
// filter's, a policy's) must apply with the rights of the role asking, never
// the extension owner's. Values are converted with the types' output functions
// in C++, never with SQL casts a table owner could redefine.
#include <algorithm>
#include <string>

#include "core/liquid.hpp"
#include "core/payload_template.hpp"

extern "C" {
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/genam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/relcache.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
}

#include "pg/gate.hpp"
#include "pg/guard.hpp"
#include "pg/jsonb_builder.hpp"
#include "pg/model.hpp"
#include "pg/model_catalog.hpp"
#include "pg/outbox.hpp"
#include "pg/shmem.hpp"

namespace hyperline::pg {
// filter.cpp
std::string NormalizeFilter(Oid relid, const std::string& filter);
}  // namespace hyperline::pg

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

// How a table model's rows are read: the SQL (one whole-row column, the
// source's row type, so that the compiled bindings' attribute numbers hold) and
// the source's descriptor.
struct SourceRows {
  std::string sql;
};

// SELECT r FROM [ONLY] source r [WHERE filter] [ORDER BY key] [LIMIT n]
// [FOR SHARE]. ONLY for a plain table: its inheritance children fire none of
// its triggers, so they are not its rows (a partitioned table's partitions are).
// The alias is a name no column of the table has, so `r` is the whole row.
std::string SourceSelect(const CompiledModel& model, const std::string& filter, bool order,
                         int limit, bool lock) {
  char* relation = nullptr;
  bool partitioned = false;
  std::vector<std::string> columns;
  int natts = 0;
  NameData* names = nullptr;
  PgGuard([&] {
    Relation rel = table_open(model.source, AccessShareLock);
    partitioned = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE;
    relation = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                          RelationGetRelationName(rel));
    TupleDesc desc = RelationGetDescr(rel);
    names = static_cast<NameData*>(palloc(sizeof(NameData) * (desc->natts + 1)));
    for (int i = 0; i < desc->natts; ++i) names[natts++] = TupleDescAttr(desc, i)->attname;
    table_close(rel, AccessShareLock);
  });
  columns.reserve(natts);
  for (int i = 0; i < natts; ++i) columns.emplace_back(NameStr(names[i]));
  std::string alias = "r";
  while (std::find(columns.begin(), columns.end(), alias) != columns.end()) alias += "_";
  std::string sql =
      "SELECT " + alias + " FROM " + (partitioned ? "" : "ONLY ") + relation + " " + alias;
  if (!filter.empty()) sql += " WHERE (" + filter + ")";
  if (order) {
    for (size_t i = 0; i < model.keys.size(); ++i) {
      const char* key = nullptr;
      PgGuard([&] { key = quote_identifier(model.keys[i].name.c_str()); });
      sql += std::string(i == 0 ? " ORDER BY " : ", ") + alias + "." + key;
    }
  }
  if (limit >= 0) sql += " LIMIT " + std::to_string(limit);
  if (lock) sql += " FOR SHARE OF " + alias;
  return sql;
}

// Runs `sql` (SourceSelect) with the current user's rights and calls
// on_row(tuple, desc) for every row, fetching `chunk` rows at a time; the
// tuples live until the next fetch. Why a cursor: a backfill of a large table
// must not hold the whole table in memory.
template <typename OnRow>
void ForEachRow(const std::string& sql, Oid rowtype, long chunk, OnRow&& on_row) {
  Portal portal = nullptr;
  TupleDesc desc = nullptr;
  const char* text = sql.c_str();
  PgGuard([&] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
    SPIPlanPtr plan = SPI_prepare(text, 0, nullptr);
    if (plan == nullptr) {
      elog(ERROR, "pg_hyperline: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    }
    portal = SPI_cursor_open(nullptr, plan, nullptr, nullptr, false);
    desc = lookup_rowtype_tupdesc_copy(rowtype, -1);
  });
  for (;;) {
    uint64 got = 0;
    SPITupleTable* table = nullptr;
    PgGuard([&] {
      SPI_cursor_fetch(portal, true, chunk);
      got = SPI_processed;
      table = SPI_tuptable;
    });
    for (uint64 i = 0; i < got; ++i) {
      HeapTupleData tuple;
      bool isnull = false;
      PgGuard([&] {
        Datum d = SPI_getbinval(table->vals[i], table->tupdesc, 1, &isnull);
        if (!isnull) {
          HeapTupleHeader rec = DatumGetHeapTupleHeader(d);
          tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
          ItemPointerSetInvalid(&tuple.t_self);
          tuple.t_tableOid = InvalidOid;
          tuple.t_data = rec;
        }
      });
      if (!isnull) on_row(&tuple, desc);
    }
    PgGuard([&] { SPI_freetuptable(table); });
    if (got < static_cast<uint64>(chunk)) break;
  }
  PgGuard([&] {
    SPI_cursor_close(portal);
    SPI_finish();
  });
}

// The row type of the model's source table.
Oid RowTypeOf(Oid relid) {
  Oid type = InvalidOid;
  PgGuard([&] { type = get_rel_type_id(relid); });
  return type;
}

// The role whose rights a read has: the gate's caller, or (for the 0.1.0
// functions, which run as SECURITY DEFINER) the current user.
Oid Reader() { return HaveCaller() ? CurrentCaller() : GetUserId(); }

// Renders the model against one row the caller can read (or a synthetic one
// when it can read none) and checks the result is an event Hyperline accepts.
void ValidateSample(const CompiledModel& model) {
  std::string key;
  std::string payload;
  std::string error;
  bool have_row = false;
  bool rendered = false;
  {
    UserScope as_reader(Reader(), 0);
    ForEachRow(SourceSelect(model, model.filter, false, 1, false), RowTypeOf(model.source), 1,
               [&](HeapTuple tuple, TupleDesc desc) {
                 have_row = true;
                 rendered = RenderEvent(model, desc, tuple, nullptr, "insert", key, payload,
                                        nullptr, error);
               });
  }
  if (!have_row) {
    try {
      payload = RenderSynthetic(model);
      rendered = true;
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  const std::string sample = !have_row              ? "a sample row"
                             : model.filter.empty() ? "the first row of the table"
                                                    : "the first row of the table in the filter";
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

// Whether the key columns are unique: covered by a primary key or a unique
// index without predicate or expressions whose columns are all NOT NULL.
// Why required: two rows with the same key value would be one record for
// superseding and ordering, and one would replace the other's events.
bool KeyIsUnique(Oid relid, const std::vector<ColumnBinding>& keys) {
  bool unique = false;
  PgGuard([&] {
    Relation rel = table_open(relid, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    List* indexes = RelationGetIndexList(rel);
    ListCell* lc = nullptr;
    foreach (lc, indexes) {
      Relation index = index_open(lfirst_oid(lc), AccessShareLock);
      Form_pg_index form = index->rd_index;
      bool covered = form->indisunique && form->indisvalid &&
                     RelationGetIndexPredicate(index) == NIL &&
                     RelationGetIndexExpressions(index) == NIL;
      for (int k = 0; covered && k < form->indnkeyatts; ++k) {
        AttrNumber att = form->indkey.values[k];
        bool in_key = false;
        for (const ColumnBinding& b : keys) in_key = in_key || b.attnum == att;
        covered = in_key && att > 0 && TupleDescAttr(desc, att - 1)->attnotnull;
      }
      index_close(index, AccessShareLock);
      if (covered) {
        unique = true;
        break;
      }
    }
    table_close(rel, AccessShareLock);
  });
  return unique;
}

// SQL hyperline._validate_model(source, primary_key, payload, model[, filter])
// -> the normalized filter (0.1.0: four arguments, returns void).
Datum ValidateModel(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, "source must not be NULL");
  Oid source = PG_GETARG_OID(0);
  std::string primary_key = TextArg(fcinfo, 1, "primary_key");
  std::string payload = TextArg(fcinfo, 2, "payload");
  std::string name = TextArg(fcinfo, 3, "name");
  bool with_filter = PG_NARGS() > 4;
  std::shared_ptr<CompiledModel> model = CompileModel(name, source, primary_key, payload, "");
  if (with_filter && !KeyIsUnique(source, model->keys)) {
    std::string relname;
    std::string columns;
    PgGuard([&] { relname = format_type_be(get_rel_type_id(source)); });
    for (const ColumnBinding& k : model->keys) {
      const char* quoted = nullptr;
      PgGuard([&] { quoted = quote_identifier(k.name.c_str()); });
      columns += (columns.empty() ? "" : ", ") + std::string(quoted);
    }
    Throw(ERRCODE_INVALID_PARAMETER_VALUE,
          "primary key (" + columns + ") of table " + relname + " is not unique",
          "No primary key or unique index on NOT NULL columns covers it: rows that share a key "
          "would replace each other's events.",
          "Name the table's primary key columns, or add a unique index: CREATE UNIQUE INDEX ON " +
              relname + " (" + columns + "), its columns NOT NULL.");
  }
  if (with_filter && !PG_ARGISNULL(4))
    model->filter = NormalizeFilter(source, TextArg(fcinfo, 4, "filter"));
  ValidateSample(*model);
  if (!with_filter) PG_RETURN_VOID();
  if (model->filter.empty()) PG_RETURN_NULL();
  text* result = nullptr;
  PgGuard([&] { result = cstring_to_text(model->filter.c_str()); });
  PG_RETURN_TEXT_P(result);
}

// SQL hyperline._key_columns(source, primary_key) -> the key's column names.
Datum KeyColumns(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) Throw(ERRCODE_NULL_VALUE_NOT_ALLOWED, "source must not be NULL");
  Oid source = PG_GETARG_OID(0);
  std::string primary_key = TextArg(fcinfo, 1, "primary_key");
  std::vector<std::string> columns;
  int natts = 0;
  NameData* names = nullptr;
  PgGuard([&] {
    Relation rel = table_open(source, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    names = static_cast<NameData*>(palloc(sizeof(NameData) * (desc->natts + 1)));
    for (int i = 0; i < desc->natts; ++i) {
      if (!TupleDescAttr(desc, i)->attisdropped) names[natts++] = TupleDescAttr(desc, i)->attname;
    }
    table_close(rel, AccessShareLock);
  });
  columns.reserve(natts);
  for (int i = 0; i < natts; ++i) columns.emplace_back(NameStr(names[i]));
  std::vector<std::string> keys = KeyColumnNames(primary_key, columns);
  Datum result = 0;
  PgGuard([&] {
    Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (keys.size() + 1)));
    for (size_t i = 0; i < keys.size(); ++i) elems[i] = CStringGetTextDatum(keys[i].c_str());
    result = PointerGetDatum(
        construct_array(elems, static_cast<int>(keys.size()), TEXTOID, -1, false, TYPALIGN_INT));
  });
  return result;
}

// SQL hyperline._model_problem(model) -> why the model cannot render any
// event (a column its template or key uses is gone), or NULL.
Datum ModelProblem(FunctionCallInfo fcinfo) {
  std::string name = TextArg(fcinfo, 0, "model");
  std::shared_ptr<const CompiledModel> model = GetModel(name.c_str(), InvalidOid);
  if (model->error.empty()) PG_RETURN_NULL();
  text* result = nullptr;
  PgGuard([&] { result = cstring_to_text(model->error.c_str()); });
  PG_RETURN_TEXT_P(result);
}

// SQL hyperline._render_rows(model, sample) -> (key, payload): the first rows
// of the model's source in key order, rendered, read with the caller's rights.
// Only the rows returned are rendered. Why the text path (JSON text through
// jsonb_in) and not the trigger's tokens: preview is not on the write path, and
// comparing the two is how the regression tests check the tokens' jsonb.
Datum RenderRows(FunctionCallInfo fcinfo) {
  std::string name = TextArg(fcinfo, 0, "model");
  int sample = PG_ARGISNULL(1) ? 5 : PG_GETARG_INT32(1);
  std::shared_ptr<const CompiledModel> model = GetModel(name.c_str(), InvalidOid);
  if (!model->error.empty()) Throw(ERRCODE_DATA_EXCEPTION, model->error);
  PgGuard([&] { InitMaterializedSRF(fcinfo, 0); });
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (sample == 0) return (Datum)0;
  std::string key;
  std::string payload;
  std::string error;
  UserScope as_reader(Reader(), 0);
  ForEachRow(
      SourceSelect(*model, model->filter, true, sample, false), RowTypeOf(model->source),
      std::min(sample, 1000), [&](HeapTuple tuple, TupleDesc desc) {
        if (!RenderEvent(*model, desc, tuple, nullptr, "insert", key, payload, nullptr, error)) {
          Throw(ERRCODE_DATA_EXCEPTION, "rendering the row with key " + key + " failed: " + error);
        }
        PgGuard([&] {
          Datum values[2] = {CStringGetTextDatum(key.c_str()),
                             DirectFunctionCall1(jsonb_in, CStringGetDatum(payload.c_str()))};
          bool nulls[2] = {false, false};
          tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        });
      });
  return (Datum)0;
}

// SQL hyperline._backfill_rows(model) -> rows enqueued. Every row of the
// source (in the filter), read with the caller's rights, becomes an insert
// event in the outbox, written as the trigger writes them.
//
// Why FOR SHARE: an UPDATE committed while the backfill runs could otherwise
// get an outbox id below the backfill's rows and be delivered before the
// backfill's older version of the same row, which Hyperline would then keep.
// Locking the rows it reads makes a concurrent change of them wait for the
// backfill's commit (so its event comes after), and a change made before makes
// the backfill read the new version.
Datum BackfillRows(FunctionCallInfo fcinfo) {
  std::string name = TextArg(fcinfo, 0, "model");
  std::shared_ptr<const CompiledModel> model = GetModel(name.c_str(), InvalidOid);
  std::string key;
  std::string payload;
  std::string error;
  JsonTokens tokens;
  int64 count = 0;
  UserScope as_reader(Reader(), 0);
  ForEachRow(SourceSelect(*model, model->filter, false, -1, true), RowTypeOf(model->source), 1000,
             [&](HeapTuple tuple, TupleDesc desc) {
               tokens.Clear();
               bool ok = RenderEvent(*model, desc, tuple, nullptr, "insert", key, payload, &tokens,
                                     error);
               bool as_tokens = ok && !tokens.tokens.empty();
               OutboxInsert insert;
               insert.model = model->name.c_str();
               insert.event_key = key.c_str();
               insert.operation = "insert";
               insert.payload = ok && !as_tokens ? payload.c_str() : nullptr;
               insert.payload_jsonb = 0;
               insert.last_error = ok ? nullptr : error.c_str();
               insert.destination = model->destination.c_str();
               insert.via_delete_api = false;
               PgGuard([&] {
                 if (as_tokens) insert.payload_jsonb = TokensToJsonb(tokens);
                 BufferOutboxRow(insert);
               });
               ++count;
             });
  PgGuard([] { FlushOutbox(); });
  WakeWorkerAtCommit();
  PG_RETURN_INT64(count);
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
  // (The Liquid output limit keeps it far below INT_MAX.)
  PgGuard([&] {
    result = cstring_to_text_with_len(sink.out.data(), static_cast<int>(sink.out.size()));
  });
  PG_RETURN_TEXT_P(result);
}

// SQL hyperline._models_changed(): every backend recompiles at our commit.
Datum ModelsChanged(FunctionCallInfo) {
  Oid relid = ModelsRelid();
  if (OidIsValid(relid)) CacheInvalidateRelcacheByRelid(relid);
  PG_RETURN_VOID();
}

// The 0.1.0 schema's C functions, kept so that a 0.1.0 schema can be created
// and used with this library until ALTER EXTENSION pg_hyperline UPDATE.

// SQL hyperline._render_event(model, row, operation) (0.1.0 preview/backfill):
// refused. Why: 0.1.0's preview and backfill build SQL casts as a superuser;
// 0.2.0 reads source rows with the caller's rights instead.
Datum RenderEventRefused(FunctionCallInfo fcinfo) {
  ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                  errmsg("pg_hyperline: preview and backfill need the 0.2.0 schema"),
                  errhint("Run ALTER EXTENSION pg_hyperline UPDATE.")));
  PG_RETURN_NULL();
}

// SQL hyperline._caller_owns(regclass) (0.1.0). The 0.1.0 functions that ask
// are SECURITY DEFINER, so the caller is taken to be the outer user — except
// within a security-restricted operation (an index expression run by ANALYZE,
// say), where the outer user is not the role the code runs for: refused there.
Datum CallerOwns(FunctionCallInfo fcinfo) {
  PG_RETURN_BOOL(!InSecurityRestrictedOperation() &&
                 pg_class_ownercheck(PG_GETARG_OID(0), GetOuterUserId()));
}

// SQL hyperline._caller_can_select(regclass) (0.1.0); see CallerOwns.
Datum CallerCanSelect(FunctionCallInfo fcinfo) {
  PG_RETURN_BOOL(!InSecurityRestrictedOperation() &&
                 pg_class_aclcheck(PG_GETARG_OID(0), GetOuterUserId(), ACL_SELECT) == ACLCHECK_OK);
}

// hyperline_debug_guard_check() (not in the extension's scripts; the
// regression tests create it): a C++ exception thrown inside PgGuard, caught in
// C++, must leave Postgres's error state as it was, so that the next ereport
// (raised here, through PgGuard again) is reported, not a jump into a frame
// that is gone.
Datum DebugGuardCheck(FunctionCallInfo) {
  try {
    PgGuard([] { throw std::runtime_error("thrown inside PgGuard"); });
  } catch (const std::runtime_error&) {
  }
  PgGuard([] {
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("the next error, reported intact")));
  });
  PG_RETURN_VOID();
}

}  // namespace
}  // namespace hyperline::pg

// SQL-callable entry points (guard.hpp): see the functions above.
HYPERLINE_SQL_FUNCTION(hyperline_validate_model, hyperline::pg::ValidateModel)
HYPERLINE_SQL_FUNCTION(hyperline_render_rows, hyperline::pg::RenderRows)
HYPERLINE_SQL_FUNCTION(hyperline_backfill_rows, hyperline::pg::BackfillRows)
HYPERLINE_SQL_FUNCTION(hyperline_key_columns, hyperline::pg::KeyColumns)
HYPERLINE_SQL_FUNCTION(hyperline_model_problem, hyperline::pg::ModelProblem)
HYPERLINE_SQL_FUNCTION(hyperline_render_template, hyperline::pg::RenderTemplate)
HYPERLINE_SQL_FUNCTION(hyperline_debug_guard_check, hyperline::pg::DebugGuardCheck)
HYPERLINE_SQL_FUNCTION_PG(hyperline_models_changed, hyperline::pg::ModelsChanged)
HYPERLINE_SQL_FUNCTION_PG(hyperline_render_event, hyperline::pg::RenderEventRefused)
HYPERLINE_SQL_FUNCTION_PG(hyperline_caller_owns, hyperline::pg::CallerOwns)
HYPERLINE_SQL_FUNCTION_PG(hyperline_caller_can_select, hyperline::pg::CallerCanSelect)
