// gate.cpp: the one entry point of every public function that acts for its
// caller (create_model, preview, backfill, ...), and the record of who that
// caller is.
//
// Vocabulary: the *caller* is the role whose rights apply to a call — the
// current user when the public function was called (GetUserId(), so inside
// another role's SECURITY DEFINER function it is that role, never the outer
// session user). The *twin* of public function hyperline.f is the private
// function hyperline._f with the same argument types: plain plpgsql, not
// executable by PUBLIC, holding the function's logic.
//
// Why a gate instead of SECURITY DEFINER: a SECURITY DEFINER function cannot
// tell who called it (Postgres keeps the previous user in a local variable),
// and guessing with the outer user let an index expression run by autovacuum act
// with the superuser's rights. The gate records the caller, refuses calls from
// security-restricted operations (index expressions, ANALYZE, materialized view
// refreshes), switches to the extension's owner with a fixed search_path and
// runs the twin. Code that reads the caller's data (validation samples, preview,
// backfill, query runs) switches back to the caller (AsCaller in gate.hpp), so
// row level security, column privileges and every user-defined function run
// with the caller's rights, never the owner's.
#include "pg/gate.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
}

namespace hyperline::pg {
namespace {

constexpr int kMaxDepth = 16;
Oid callers[kMaxDepth];
// The callers' search_path strings: the GUC's own values, which the gate's
// GUC_ACTION_SAVE keeps alive (as the prior value) until the gate restores them.
const char* caller_paths[kMaxDepth];
int depth = 0;

// What a gate keeps between calls of one expression (in fn_extra).
struct GateCache {
  FmgrInfo twin;
  Oid owner;  // the twin's owner: the role that installed the extension
  char name[NAMEDATALEN];
};

// Finds the twin of the public function `fn_oid` and checks that it is a
// function of this extension.
GateCache* LoadGate(FunctionCallInfo fcinfo) {
  Oid fn = fcinfo->flinfo->fn_oid;
  HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
  if (!HeapTupleIsValid(tup)) elog(ERROR, "pg_hyperline: function %u not found", fn);
  auto* proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tup));
  char twin_name[NAMEDATALEN + 1];
  snprintf(twin_name, sizeof twin_name, "_%s", NameStr(proc->proname));
  HeapTuple twin_tup =
      SearchSysCache3(PROCNAMEARGSNSP, CStringGetDatum(twin_name),
                      PointerGetDatum(&proc->proargtypes), ObjectIdGetDatum(proc->pronamespace));
  if (!HeapTupleIsValid(twin_tup)) {
    elog(ERROR, "pg_hyperline: %s has no private twin %s", NameStr(proc->proname), twin_name);
  }
  auto* twin = reinterpret_cast<Form_pg_proc>(GETSTRUCT(twin_tup));
  Oid twin_oid = twin->oid;
  Oid owner = twin->proowner;
  bool definer = twin->prosecdef;
  ReleaseSysCache(twin_tup);
  Oid ext = get_extension_oid("pg_hyperline", true);
  if (definer || !OidIsValid(ext) || getExtensionOfObject(ProcedureRelationId, twin_oid) != ext ||
      getExtensionOfObject(ProcedureRelationId, fn) != ext) {
    elog(ERROR, "pg_hyperline: %s is not a function of the extension", twin_name);
  }
  auto* cache =
      static_cast<GateCache*>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(GateCache)));
  fmgr_info_cxt(twin_oid, &cache->twin, fcinfo->flinfo->fn_mcxt);
  cache->twin.fn_expr = fcinfo->flinfo->fn_expr;
  cache->owner = owner;
  strlcpy(cache->name, NameStr(proc->proname), NAMEDATALEN);
  ReleaseSysCache(tup);
  return cache;
}

}  // namespace

Oid CurrentCaller() {
  if (depth == 0) {
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("pg_hyperline: no caller: this function is called by the "
                           "extension's own functions only")));
  }
  return callers[depth - 1];
}

bool HaveCaller() { return depth > 0; }

const char* CallerSearchPath() {
  (void)CurrentCaller();  // ERROR without a gate
  const char* path = caller_paths[depth - 1];
  return path != nullptr ? path : "";
}

void PinSearchPath() {
  (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                          GUC_ACTION_SAVE, true, 0, false);
}

}  // namespace hyperline::pg

namespace hyperline::pg {
namespace {

// SQL hyperline.<f>(...) for every public function that acts for its caller:
// see the file comment. Postgres code only (no C++ objects, nothing that
// throws): errors raised by the twin pass through untouched, with their
// context, and the finally block restores the caller record.
Datum Gate(FunctionCallInfo fcinfo) {
  if (fcinfo->flinfo->fn_extra == nullptr) fcinfo->flinfo->fn_extra = LoadGate(fcinfo);
  auto* const cache = static_cast<GateCache*>(fcinfo->flinfo->fn_extra);
  if (InSecurityRestrictedOperation()) {
    ereport(ERROR,
            (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
             errmsg("hyperline.%s() cannot be called within a security-restricted operation",
                    cache->name),
             errdetail("Index expressions, ANALYZE, VACUUM and materialized view refreshes run "
                       "their functions with another role's identity.")));
  }
  if (depth >= kMaxDepth) {
    ereport(ERROR, (errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
                    errmsg("hyperline.%s(): calls nested too deeply", cache->name)));
  }
  Oid save_user = InvalidOid;
  int save_sec = 0;
  GetUserIdAndSecContext(&save_user, &save_sec);
  caller_paths[depth] = namespace_search_path;
  callers[depth++] = save_user;
  Datum result = 0;
  bool isnull = false;
  PG_TRY();
  {
    SetUserIdAndSecContext(cache->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
    int nestlevel = NewGUCNestLevel();
    PinSearchPath();
    LOCAL_FCINFO(twin, FUNC_MAX_ARGS);
    InitFunctionCallInfoData(*twin, &cache->twin, fcinfo->nargs, fcinfo->fncollation,
                             fcinfo->context, fcinfo->resultinfo);
    for (int i = 0; i < fcinfo->nargs; ++i) twin->args[i] = fcinfo->args[i];
    result = FunctionCallInvoke(twin);
    isnull = twin->isnull;
    AtEOXact_GUC(true, nestlevel);
  }
  PG_FINALLY();
  {
    --depth;
    SetUserIdAndSecContext(save_user, save_sec);
  }
  PG_END_TRY();
  fcinfo->isnull = isnull;
  return result;
}

// SQL hyperline._caller(): the role calling the public function being run.
Datum Caller(FunctionCallInfo) { PG_RETURN_OID(CurrentCaller()); }

// SQL hyperline._in_gate(): whether a public function's gate is active.
Datum InGate(FunctionCallInfo) { PG_RETURN_BOOL(HaveCaller()); }

}  // namespace
}  // namespace hyperline::pg

HYPERLINE_SQL_FUNCTION_PG(hyperline_gate, hyperline::pg::Gate)
HYPERLINE_SQL_FUNCTION_PG(hyperline_caller, hyperline::pg::Caller)
HYPERLINE_SQL_FUNCTION_PG(hyperline_in_gate, hyperline::pg::InGate)
