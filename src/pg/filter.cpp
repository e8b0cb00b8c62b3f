// filter.cpp: a table model's filter — a boolean SQL expression over the
// source's columns, written as in a trigger's WHEN clause with bare column
// names (`billable AND quantity > 0`).
//
// Vocabulary: the *normalized* filter is the expression as Postgres prints it
// back (deparse_expression), with every function and operator that is not in
// pg_catalog schema-qualified; it is what hyperline._models.filter holds and
// what preview and backfill put in their WHERE clause. A *condition* is the
// normalized filter over `new.` or `old.` columns, for a trigger's WHEN clause:
// rows outside the filter are then never queued for our trigger at all, so they
// cost the write path almost nothing.
//
// Parsing happens under the gate's fixed search_path (gate.hpp), and nothing
// here evaluates the expression: it runs only in the trigger's WHEN clause (as
// the writing role, like any trigger) and in queries run as the caller.
#include "pg/gate.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/table.h"
#include "catalog/pg_trigger.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/readfuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "rewrite/prs2lock.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
}

namespace hyperline::pg {
namespace {

// Parses `filter` against relation `relid` (Postgres code: call under PgGuard
// or from a C function). ERROR with the reason for anything but one boolean,
// non-volatile expression without subqueries over the table's columns.
Node* ParseFilter(Oid relid, const char* filter) {
  char* sql = psprintf("SELECT %s", filter);
  List* stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
  SelectStmt* select = nullptr;
  if (list_length(stmts) == 1) {
    Node* stmt = linitial_node(RawStmt, stmts)->stmt;
    if (IsA(stmt, SelectStmt)) select = reinterpret_cast<SelectStmt*>(stmt);
  }
  if (select == nullptr || select->op != SETOP_NONE || list_length(select->targetList) != 1 ||
      select->fromClause != NIL || select->whereClause != nullptr || select->groupClause != NIL ||
      select->havingClause != nullptr || select->windowClause != NIL ||
      select->distinctClause != NIL || select->sortClause != NIL || select->limitCount != nullptr ||
      select->limitOffset != nullptr || select->lockingClause != NIL ||
      select->withClause != nullptr || select->intoClause != nullptr ||
      linitial_node(ResTarget, select->targetList)->name != nullptr) {
    ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR), errmsg("invalid filter: %s", filter),
                    errdetail("A filter is one boolean expression over the table's columns, "
                              "as in a WHERE clause: billable AND quantity > 0.")));
  }
  Node* raw = linitial_node(ResTarget, select->targetList)->val;
  ParseState* pstate = make_parsestate(nullptr);
  pstate->p_sourcetext = sql;
  Relation rel = table_open(relid, AccessShareLock);
  ParseNamespaceItem* item =
      addRangeTableEntryForRelation(pstate, rel, AccessShareLock, nullptr, false, true);
  addNSItemToQuery(pstate, item, true, true, true);
  Node* expr = transformExpr(pstate, raw, EXPR_KIND_WHERE);
  expr = coerce_to_boolean(pstate, expr, "the filter");
  assign_expr_collations(pstate, expr);
  table_close(rel, NoLock);
  if (checkExprHasSubLink(expr)) {
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("invalid filter: %s", filter),
                    errdetail("A filter cannot contain a subquery: it is evaluated for each "
                              "row change, in the writing transaction.")));
  }
  if (contain_volatile_functions(expr)) {
    ereport(ERROR,
            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("invalid filter: %s", filter),
             errdetail("A filter cannot call a volatile function: it must give the same answer "
                       "for the same row, or a row could enter or leave the model at random.")));
  }
  return expr;
}

// `expr` (Vars of range table entry 1) printed over `alias`.
char* Deparse(Node* expr, Oid relid, const char* alias, bool prefix) {
  return deparse_expression(expr, deparse_context_for(alias, relid), prefix, false);
}

}  // namespace

// The normalized form of `filter` over relation `relid`; throws PgException
// naming the problem.
std::string NormalizeFilter(Oid relid, const std::string& filter) {
  char* text = nullptr;
  PgGuard([&] {
    Node* expr = ParseFilter(relid, filter.c_str());
    text = Deparse(expr, relid, get_rel_name(relid), false);
  });
  return text;
}

namespace {

bool FindBooleanTest(Node* node, void* found) {
  if (node == nullptr) return false;
  if (IsA(node, BooleanTest)) {
    *static_cast<BooleanTest**>(found) = reinterpret_cast<BooleanTest*>(node);
    return true;
  }
  // expression_tree_walker takes the walker as bool (*)() (C); the cast goes
  // through void (*)() as the C headers intend.
  return expression_tree_walker(
      node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(FindBooleanTest)), found);
}

// SQL hyperline._filter_of_qual(source regclass, qual text): the normalized
// filter inside a model trigger's WHEN clause (pg_trigger.tgqual), printed with
// the table's current column names. Why: a renamed column is renamed inside the
// WHEN clause (stored parsed) but not in the text of hyperline._models.filter,
// which the DDL event trigger refreshes with this. _install_triggers puts the
// filter as the operand of the first IS [NOT] TRUE test of every condition.
Datum FilterOfQual(FunctionCallInfo fcinfo) {
  Oid relid = PG_GETARG_OID(0);
  Node* qual = static_cast<Node*>(stringToNode(text_to_cstring(PG_GETARG_TEXT_PP(1))));
  BooleanTest* test = nullptr;
  (void)FindBooleanTest(qual, &test);
  if (test == nullptr) PG_RETURN_NULL();
  Node* filter = reinterpret_cast<Node*>(test->arg);
  ChangeVarNodes(filter, PRS2_NEW_VARNO, 1, 0);
  PG_RETURN_TEXT_P(cstring_to_text(Deparse(filter, relid, get_rel_name(relid), false)));
}

// SQL hyperline._filter_condition(source regclass, filter text, alias text):
// the normalized filter over `alias.` columns (alias new or old), for a WHEN
// clause. C style: Postgres errors pass through.
Datum FilterCondition(FunctionCallInfo fcinfo) {
  Oid relid = PG_GETARG_OID(0);
  char* filter = text_to_cstring(PG_GETARG_TEXT_PP(1));
  char* alias = text_to_cstring(PG_GETARG_TEXT_PP(2));
  if (strcmp(alias, "new") != 0 && strcmp(alias, "old") != 0) {
    ereport(ERROR, (errmsg("pg_hyperline: alias must be new or old")));
  }
  Node* expr = ParseFilter(relid, filter);
  PG_RETURN_TEXT_P(cstring_to_text(Deparse(expr, relid, alias, true)));
}

}  // namespace
}  // namespace hyperline::pg

HYPERLINE_SQL_FUNCTION_PG(hyperline_filter_condition, hyperline::pg::FilterCondition)
HYPERLINE_SQL_FUNCTION_PG(hyperline_filter_of_qual, hyperline::pg::FilterOfQual)
