// model_catalog.cpp: see model_catalog.hpp.
#include "pg/catalog.hpp"
#include "pg/model_catalog.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include <cstring>

namespace hyperline::pg {

Oid ModelsRelid() {
  Oid nsp = get_namespace_oid(catalog::kSchema, true);
  return OidIsValid(nsp) ? get_relname_relid(catalog::kModels, nsp) : InvalidOid;
}

namespace {

// Text of a column, or nullptr when NULL or absent.
char* TextColumn(HeapTuple tuple, TupleDesc desc, AttrNumber att) {
  if (att == InvalidAttrNumber) return nullptr;
  bool isnull = false;
  Datum d = heap_getattr(tuple, att, desc, &isnull);
  return isnull ? nullptr : TextDatumGetCString(d);
}

int MaskOf(ArrayType* triggers) {
  Datum* elems = nullptr;
  bool* nulls = nullptr;
  int n = 0;
  deconstruct_array(triggers, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
  int mask = 0;
  for (int i = 0; i < n; ++i) {
    if (nulls[i]) continue;
    char* t = TextDatumGetCString(elems[i]);
    if (strcmp(t, "insert") == 0) mask |= kOnInsert;
    if (strcmp(t, "update") == 0) mask |= kOnUpdate;
    if (strcmp(t, "delete") == 0) mask |= kOnDelete;
  }
  return mask;
}

}  // namespace

void ReadModelDef(const char* name, ModelDef* def) {
  memset(def, 0, sizeof *def);
  Oid relid = ModelsRelid();
  if (!OidIsValid(relid)) {
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("pg_hyperline: hyperline._models does not exist"),
                    errhint("Is the extension installed in this database?")));
  }
  Relation rel = table_open(relid, AccessShareLock);
  Oid index = RelationGetPrimaryKeyIndex(rel);
  if (!OidIsValid(index)) elog(ERROR, "pg_hyperline: hyperline._models has no primary key");
  TupleDesc desc = RelationGetDescr(rel);
  // Columns by name: the layout of the installed version.
  AttrNumber a_name = get_attnum(relid, "name");
  AttrNumber a_kind = get_attnum(relid, "kind");
  AttrNumber a_source = get_attnum(relid, "source");
  AttrNumber a_key = get_attnum(relid, "primary_key");
  AttrNumber a_payload = get_attnum(relid, "payload");
  AttrNumber a_triggers = get_attnum(relid, "triggers");
  AttrNumber a_destination = get_attnum(relid, "destination");
  AttrNumber a_enabled = get_attnum(relid, "enabled");
  AttrNumber a_filter = get_attnum(relid, "filter");
  AttrNumber a_delete_mode = get_attnum(relid, "delete_mode");
  AttrNumber a_owner = get_attnum(relid, "owner");
  if (a_name == InvalidAttrNumber || a_key == InvalidAttrNumber || a_payload == InvalidAttrNumber ||
      a_destination == InvalidAttrNumber) {
    elog(ERROR, "pg_hyperline: hyperline._models lacks a column every version has");
  }
  Relation index_rel = index_open(index, AccessShareLock);
  Oid collation = index_rel->rd_indcollation[0];
  index_close(index_rel, AccessShareLock);
  ScanKeyData key;
  ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid, collation, F_TEXTEQ,
                         CStringGetTextDatum(name));
  Snapshot snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
  SysScanDesc scan = systable_beginscan(rel, index, true, snapshot, 1, &key);
  HeapTuple tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) {
    bool isnull = false;
    def->found = true;
    char* kind = TextColumn(tuple, desc, a_kind);
    def->is_query = kind != nullptr && strcmp(kind, "query") == 0;
    Datum source = heap_getattr(tuple, a_source, desc, &isnull);
    def->source = isnull ? InvalidOid : DatumGetObjectId(source);
    def->primary_key = TextColumn(tuple, desc, a_key);
    def->payload = TextColumn(tuple, desc, a_payload);
    def->destination = TextColumn(tuple, desc, a_destination);
    def->filter = TextColumn(tuple, desc, a_filter);
    char* mode = TextColumn(tuple, desc, a_delete_mode);
    // 0.1.0 sent every removal with DELETE /v1/events.
    def->delete_via_api = a_delete_mode == InvalidAttrNumber || (mode && strcmp(mode, "api") == 0);
    Datum triggers = heap_getattr(tuple, a_triggers, desc, &isnull);
    def->triggers = isnull ? 0 : MaskOf(DatumGetArrayTypeP(triggers));
    Datum enabled = heap_getattr(tuple, a_enabled, desc, &isnull);
    def->enabled = isnull || DatumGetBool(enabled);
    if (a_owner != InvalidAttrNumber) {
      Datum owner = heap_getattr(tuple, a_owner, desc, &isnull);
      def->owner = isnull ? InvalidOid : DatumGetObjectId(owner);
    }
  }
  systable_endscan(scan);
  table_close(rel, AccessShareLock);
}

}  // namespace hyperline::pg
