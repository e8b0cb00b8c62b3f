// extension_guard.cpp: what DROP EXTENSION pg_hyperline does besides dropping
// the extension's objects (a ProcessUtility hook).
//
// Why: events waiting in hyperline.outbox are committed usage — revenue — and
// DROP EXTENSION would throw them away without a word; it is refused while any
// are undelivered, unless CASCADE says to discard them. And the schema
// hyperline, which CREATE EXTENSION creates but does not make a member of the
// extension (it holds the extension), would be left behind empty.
#include "pg/extension_guard.hpp"

#include "pg/gate.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
}

namespace hyperline::pg {
namespace {

ProcessUtility_hook_type prev_process_utility = nullptr;

// Whether `stmt` is a DROP EXTENSION naming pg_hyperline.
bool DropsUs(Node* stmt) {
  if (!IsA(stmt, DropStmt)) return false;
  auto* drop = reinterpret_cast<DropStmt*>(stmt);
  if (drop->removeType != OBJECT_EXTENSION) return false;
  ListCell* lc = nullptr;
  foreach (lc, drop->objects) {
    if (strcmp(strVal(lfirst(lc)), "pg_hyperline") == 0) return true;
  }
  return false;
}

// Events of hyperline.outbox not delivered yet (pending or sending), or -1
// when the extension is not installed here.
int64 UndeliveredEvents() {
  if (!OidIsValid(get_extension_oid("pg_hyperline", true))) return -1;
  Oid nsp = get_namespace_oid("hyperline", true);
  if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("outbox", nsp))) return -1;
  int64 count = 0;
  int nestlevel = NewGUCNestLevel();
  PinSearchPath();
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
  int rc = SPI_execute(
      "SELECT count(*) FROM hyperline.outbox WHERE status IN ('pending', 'sending')", true, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_hyperline: %s", SPI_result_code_string(rc));
  bool isnull = false;
  count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  SPI_finish();
  AtEOXact_GUC(true, nestlevel);
  return count;
}

// Drops schema hyperline if it exists and holds nothing (a user's own object
// left in it keeps it).
void DropEmptySchema() {
  Oid nsp = get_namespace_oid("hyperline", true);
  if (!OidIsValid(nsp)) return;
  int nestlevel = NewGUCNestLevel();
  PinSearchPath();
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_hyperline: SPI_connect failed");
  Oid argtype = OIDOID;
  Datum arg = ObjectIdGetDatum(nsp);
  int rc = SPI_execute_with_args(
      "SELECT 1 FROM pg_catalog.pg_depend d WHERE d.refclassid = "
      "'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.refobjid OPERATOR(pg_catalog.=) $1 "
      "LIMIT 1",
      1, &argtype, &arg, nullptr, false, 1);  // not read-only: a snapshot that sees the drop
  bool empty = rc == SPI_OK_SELECT && SPI_processed == 0;
  SPI_finish();
  AtEOXact_GUC(true, nestlevel);
  if (empty) {
    ObjectAddress schema;
    ObjectAddressSet(schema, NamespaceRelationId, nsp);
    performDeletion(&schema, DROP_RESTRICT, 0);
  }
}

void GuardUtility(PlannedStmt* pstmt, const char* query_string, bool read_only_tree,
                  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment* query_env,
                  DestReceiver* dest, QueryCompletion* qc) {
  bool dropping = DropsUs(pstmt->utilityStmt);
  if (dropping && reinterpret_cast<DropStmt*>(pstmt->utilityStmt)->behavior != DROP_CASCADE) {
    int64 waiting = UndeliveredEvents();
    if (waiting > 0) {
      ereport(ERROR,
              (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
               errmsg("cannot drop extension pg_hyperline: %lld events are not delivered yet",
                      static_cast<long long>(waiting)),
               errdetail("Dropping the extension would discard them with hyperline.outbox."),
               errhint("Wait until no event is pending (SELECT count(*) FROM hyperline.outbox "
                       "WHERE status IN ('pending', 'sending')), or use DROP EXTENSION "
                       "pg_hyperline CASCADE to discard them.")));
    }
  }
  if (prev_process_utility) {
    prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
  } else {
    standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest,
                            qc);
  }
  if (dropping) {
    CommandCounterIncrement();  // see the drop
    if (!OidIsValid(get_extension_oid("pg_hyperline", true))) DropEmptySchema();
  }
}

}  // namespace

void InstallExtensionGuard() {
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = GuardUtility;
}

}  // namespace hyperline::pg
