// db_lifecycle.cpp: the served-database rule, the ProcessUtility hook that
// stops our workers before DROP DATABASE and friends, and
// hyperline._database_served() (see db_lifecycle.hpp).
//
// Plain C style (no C++ objects): the hook and the SQL function only call
// Postgres, so their errors are Postgres errors.
#include "pg/db_lifecycle.hpp"

#include "pg/guard.hpp"

#include <cstring>

#include "pg/guc.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
}

namespace hyperline::pg {
namespace {

// How long a command waits for our processes to leave its database. Why 10 s:
// the delivery worker leaves within one loop iteration (milliseconds); past
// this the command runs anyway and reports the database busy, as it would.
constexpr int kStopTimeoutMs = 10000;

ProcessUtility_hook_type prev_process_utility = nullptr;

// The database a utility statement needs to itself (no other session
// connected), or nullptr. `top_level`: the statement may run here (DROP
// DATABASE and the others but RENAME refuse a transaction block).
const char* DatabaseNeededAlone(Node* stmt, bool top_level) {
  ListCell* lc;
  if (!top_level && !IsA(stmt, RenameStmt)) return nullptr;
  switch (nodeTag(stmt)) {
    case T_DropdbStmt:
      return castNode(DropdbStmt, stmt)->dbname;
    case T_RenameStmt: {
      auto* rename = castNode(RenameStmt, stmt);
      return rename->renameType == OBJECT_DATABASE ? rename->subname : nullptr;
    }
    case T_AlterDatabaseStmt: {
      auto* alter = castNode(AlterDatabaseStmt, stmt);
      foreach (lc, alter->options) {
        auto* opt = lfirst_node(DefElem, lc);
        if (strcmp(opt->defname, "tablespace") == 0) return alter->dbname;
      }
      return nullptr;
    }
    case T_CreatedbStmt: {
      auto* create = castNode(CreatedbStmt, stmt);
      foreach (lc, create->options) {
        auto* opt = lfirst_node(DefElem, lc);
        if (strcmp(opt->defname, "template") == 0 && opt->arg != nullptr) {
          return defGetString(opt);
        }
      }
      return nullptr;
    }
    default:
      return nullptr;
  }
}

// Whether the statement creates or updates pg_hyperline.
bool TouchesOurExtension(Node* stmt) {
  if (IsA(stmt, CreateExtensionStmt)) {
    return strcmp(castNode(CreateExtensionStmt, stmt)->extname, "pg_hyperline") == 0;
  }
  if (IsA(stmt, AlterExtensionStmt)) {
    return strcmp(castNode(AlterExtensionStmt, stmt)->extname, "pg_hyperline") == 0;
  }
  return false;
}

// Why stop our workers first: DROP DATABASE (and the others) fail with
// "database is being accessed by other users" while any process is connected
// to the database, and a background worker is not one they terminate. Why the
// block lasts until the end of the transaction: the launcher must not start a
// worker there before the command has committed (or failed).
void LifecycleUtility(PlannedStmt* pstmt, const char* query_string, bool read_only_tree,
                      ProcessUtilityContext context, ParamListInfo params,
                      QueryEnvironment* query_env, DestReceiver* dest, QueryCompletion* qc) {
  Node* stmt = pstmt->utilityStmt;
  bool top_level = context == PROCESS_UTILITY_TOPLEVEL && !IsTransactionBlock();
  const char* dbname = DatabaseNeededAlone(stmt, top_level);
  if (dbname != nullptr) {
    Oid database = get_database_oid(dbname, true);
    // Why only for the owner (or a superuser): each of these commands needs
    // ownership (copying a non-template too), and anyone else could otherwise
    // stop a database's delivery with a command bound to fail.
    if (OidIsValid(database) && database != MyDatabaseId &&
        pg_database_ownercheck(database, GetUserId())) {
      (void)BlockAndStopDatabase(database, kStopTimeoutMs);
    }
  }
  bool ours = TouchesOurExtension(stmt);
  if (prev_process_utility) {
    prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
  } else {
    standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest,
                            qc);
  }
  // The launcher starts this database's worker once the transaction commits.
  if (ours) NoteExtensionCreatedAtCommit();
}

}  // namespace

ServedState DatabaseServedState(const char* datname, bool is_template, bool allow_connections,
                                bool invalid) {
  if (guc_database != nullptr && guc_database[0] != '\0' && strcmp(datname, guc_database) != 0) {
    return ServedState::kOtherDatabase;
  }
  if (invalid) return ServedState::kInvalid;
  if (is_template) return ServedState::kTemplate;
  if (!allow_connections) return ServedState::kNoConnections;
  return ServedState::kServed;
}

ServedState CurrentDatabaseServedState() {
  HeapTuple tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
  auto* db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
  ServedState state = DatabaseServedState(NameStr(db->datname), db->datistemplate, db->datallowconn,
                                          database_is_invalid_form(db));
  ReleaseSysCache(tuple);
  return state;
}

char* NotServedDetail(ServedState state) {
  switch (state) {
    case ServedState::kServed:
      return nullptr;
    case ServedState::kOtherDatabase:
      return psprintf("hyperline.database is set to \"%s\": only that database is served.",
                      guc_database);
    case ServedState::kTemplate:
      return pstrdup(
          "This database is a template: no worker connects to a template (databases created "
          "from it are served).");
    case ServedState::kNoConnections:
      return pstrdup("This database does not allow connections (datallowconn is false).");
    case ServedState::kInvalid:
      return pstrdup("This database is invalid (an interrupted DROP DATABASE).");
  }
  return nullptr;
}

// SQL hyperline._database_served(warn boolean DEFAULT false) RETURNS boolean:
// whether a delivery worker serves this database; with warn, a WARNING says
// why not (the install and upgrade scripts end with it). Postgres code only.
Datum DatabaseServed(FunctionCallInfo fcinfo) {
  bool warn = PG_NARGS() > 0 && !PG_ARGISNULL(0) && PG_GETARG_BOOL(0);
  ServedState state = CurrentDatabaseServedState();
  if (state != ServedState::kServed && warn) {
    const char* hint =
        state == ServedState::kOtherDatabase
            ? psprintf(
                  "Create the extension in database \"%s\", or set hyperline.database = '' "
                  "(every database) in postgresql.conf and restart the server.",
                  guc_database)
            : "Create the extension in a database that allows connections and is not a template.";
    ereport(WARNING, (errcode(ERRCODE_WARNING),
                      errmsg("no pg_hyperline worker delivers events from database \"%s\"",
                             get_database_name(MyDatabaseId)),
                      errdetail_internal("%s", NotServedDetail(state)), errhint("%s", hint)));
  }
  PG_RETURN_BOOL(state == ServedState::kServed);
}

void InstallDatabaseLifecycleHook() {
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = LifecycleUtility;
}

}  // namespace hyperline::pg

HYPERLINE_SQL_FUNCTION_PG(hyperline_database_served, hyperline::pg::DatabaseServed)
