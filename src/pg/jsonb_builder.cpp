// jsonb_builder.cpp: the jsonb value of a rendered payload, built from its
// JSON tokens (core/json_tokens.hpp) as a JsonbValue tree, then
// JsonbValueToJsonb. The result is byte for byte what jsonb_in would store.
// C++ core headers first (core/cpp_only.hpp refuses them after postgres.h).
#include "pg/jsonb_builder.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
}

namespace hyperline::pg {

namespace {

// Whether `text` is an optional '-' and 1 to 18 digits; sets *value.
bool SmallInteger(const char* text, size_t length, int64* value) {
  size_t i = text[0] == '-' ? 1 : 0;
  if (length <= i || length - i > 18) return false;
  int64 v = 0;
  for (size_t k = i; k < length; ++k) {
    if (text[k] < '0' || text[k] > '9') return false;
    v = v * 10 + (text[k] - '0');
  }
  *value = i == 1 ? -v : v;
  return true;
}

// jsonb's key order (lengthCompareJsonbStringValue in jsonb_util.c).
int CompareKeys(const JsonbValue* a, const JsonbValue* b) {
  return CompareJsonbKeys({a->val.string.val, static_cast<size_t>(a->val.string.len)},
                          {b->val.string.val, static_cast<size_t>(b->val.string.len)});
}

// jsonb's pair order (lengthCompareJsonbPair): by key, and among equal keys
// the later pair first, so that deduplication keeps the last one.
int ComparePairs(const void* a, const void* b, void* has_duplicates) {
  const JsonbPair* pa = static_cast<const JsonbPair*>(a);
  const JsonbPair* pb = static_cast<const JsonbPair*>(b);
  int res = CompareKeys(&pa->key, &pb->key);
  if (res == 0) {
    *static_cast<bool*>(has_duplicates) = true;
    res = pa->order > pb->order ? -1 : 1;
  }
  return res;
}

// Sorts an object's pairs and drops repeated keys, the last value winning:
// what pushJsonbValue does at WJB_END_OBJECT (uniqueifyJsonbObject, static
// in jsonb_util.c), step for step.
void UniqueifyObject(JsonbValue* object) {
  JsonbPair* pairs = object->val.object.pairs;
  int n = object->val.object.nPairs;
  bool has_duplicates = false;
  if (n > 1) qsort_arg(pairs, n, sizeof(JsonbPair), ComparePairs, &has_duplicates);
  if (!has_duplicates) return;
  JsonbPair* res = pairs;
  for (JsonbPair* ptr = pairs + 1; ptr < pairs + n; ++ptr) {
    if (CompareKeys(&ptr->key, &res->key) != 0) {
      ++res;
      if (ptr != res) *res = *ptr;
    }
  }
  object->val.object.nPairs = static_cast<int>(res + 1 - pairs);
}

}  // namespace

// Why not pushJsonbValue: it sorts every object's keys when it closes, even
// those the token program already sorted at compile time (keys_sorted), and
// grows its arrays as it goes. Here the JsonbValue tree is built with arrays of
// their final size and only objects not known sorted are sorted, exactly as
// pushJsonbValue would; the jsonb is byte for byte the same.
Datum TokensToJsonb(const JsonTokens& tokens) {
  const std::vector<JsonToken>& ts = tokens.tokens;
  size_t n = ts.size();
  // Pass 1: the number of members (object values, array elements) of every
  // container, stored at its Begin token. Nesting cannot exceed n.
  int* members = static_cast<int*>(palloc0(sizeof(int) * (n + 1)));
  size_t* open = static_cast<size_t*>(palloc(sizeof(size_t) * (n + 1)));
  int depth = 0;
  for (size_t i = 0; i < n; ++i) {
    JsonTokenKind kind = ts[i].kind;
    if (kind == JsonTokenKind::EndObject || kind == JsonTokenKind::EndArray) {
      --depth;
      continue;
    }
    if (kind == JsonTokenKind::Key) continue;
    if (depth > 0) ++members[open[depth - 1]];
    if (kind == JsonTokenKind::BeginObject || kind == JsonTokenKind::BeginArray) open[depth++] = i;
  }
  // Pass 2: the tree. Arrays never grow, so pointers to their slots hold.
  JsonbValue root;
  root.type = jbvNull;  // replaced by the first token
  JsonbValue key;
  key.type = jbvString;
  key.val.string.val = nullptr;
  key.val.string.len = 0;
  JsonbValue** stack = static_cast<JsonbValue**>(palloc(sizeof(JsonbValue*) * (n + 1)));
  bool* sorted = static_cast<bool*>(palloc(n + 1));
  depth = 0;
  for (size_t i = 0; i < n; ++i) {
    const JsonToken& t = ts[i];
    switch (t.kind) {
      case JsonTokenKind::EndObject:
      case JsonTokenKind::EndArray:
        --depth;
        if (t.kind == JsonTokenKind::EndObject && !sorted[depth]) UniqueifyObject(stack[depth]);
        continue;
      case JsonTokenKind::Key:
        key.val.string.val = const_cast<char*>(tokens.arena.data() + t.offset);
        key.val.string.len = static_cast<int>(t.length);
        continue;
      default:
        break;
    }
    JsonbValue* slot = &root;
    if (depth > 0) {
      JsonbValue* parent = stack[depth - 1];
      if (parent->type == jbvObject) {
        JsonbPair* pair = &parent->val.object.pairs[parent->val.object.nPairs];
        pair->key = key;
        pair->order = static_cast<uint32>(parent->val.object.nPairs++);
        slot = &pair->value;
      } else {
        slot = &parent->val.array.elems[parent->val.array.nElems++];
      }
    }
    switch (t.kind) {
      case JsonTokenKind::BeginObject:
        slot->type = jbvObject;
        slot->val.object.nPairs = 0;
        slot->val.object.pairs =
            static_cast<JsonbPair*>(palloc(sizeof(JsonbPair) * Max(members[i], 1)));
        sorted[depth] = t.keys_sorted;
        stack[depth++] = slot;
        break;
      case JsonTokenKind::BeginArray:
        slot->type = jbvArray;
        slot->val.array.nElems = 0;
        slot->val.array.rawScalar = false;
        slot->val.array.elems =
            static_cast<JsonbValue*>(palloc(sizeof(JsonbValue) * Max(members[i], 1)));
        sorted[depth] = true;
        stack[depth++] = slot;
        break;
      case JsonTokenKind::String:
        slot->type = jbvString;
        slot->val.string.val = const_cast<char*>(tokens.arena.data() + t.offset);
        slot->val.string.len = static_cast<int>(t.length);
        break;
      case JsonTokenKind::Number: {
        slot->type = jbvNumeric;
        const char* text = tokens.arena.data() + t.offset;
        int64 small = 0;
        // Integers of up to 18 digits (most numbers in an event) skip
        // numeric_in's parser; int64_to_numeric gives the same value and scale.
        if (SmallInteger(text, t.length, &small)) {
          slot->val.numeric = int64_to_numeric(small);
        } else {
          slot->val.numeric = DatumGetNumeric(DirectFunctionCall3(
              numeric_in, CStringGetDatum(text), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
        }
        break;
      }
      case JsonTokenKind::True:
      case JsonTokenKind::False:
        slot->type = jbvBool;
        slot->val.boolean = t.kind == JsonTokenKind::True;
        break;
      default:  // Null
        slot->type = jbvNull;
        break;
    }
  }
  return JsonbPGetDatum(JsonbValueToJsonb(&root));
}

}  // namespace hyperline::pg
