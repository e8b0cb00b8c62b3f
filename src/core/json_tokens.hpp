// json_tokens.hpp: a rendered payload as a stream of JSON tokens.
//
// Vocabulary: for a payload template without Liquid tags, the JSON structure is
// fixed; only the values of its output sites change per row. A TokenProgram is
// that structure compiled once (keys, literal strings already unescaped, the
// places of the sites); rendering it yields JsonTokens — begin/end of objects
// and arrays, keys, strings (unescaped), numbers (JSON text), true/false/null —
// which the Postgres side turns into jsonb directly, without printing JSON text
// and parsing it again.
//
// jsonb stores an object's keys sorted (shorter first, then bytewise) and
// unique (the last duplicate wins). An object whose keys are all literal and
// distinct is sorted once, when the program is compiled; its BeginObject token
// says so (keys_sorted) and the Postgres side skips the per-row sort.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/value.hpp"

namespace hyperline {

enum class JsonTokenKind : uint8_t {
  BeginObject,
  EndObject,
  BeginArray,
  EndArray,
  Key,
  String,
  Number,
  True,
  False,
  Null,
};

struct JsonToken {
  JsonTokenKind kind;
  bool keys_sorted;  // BeginObject: keys already unique and in jsonb order
  uint32_t offset;   // Key/String/Number: text in JsonTokens::arena, NUL-terminated
  uint32_t length;
};

struct JsonTokens {
  std::vector<JsonToken> tokens;
  std::string arena;
  void Clear() {
    tokens.clear();
    arena.clear();
  }
  std::string_view Text(const JsonToken& t) const { return {arena.data() + t.offset, t.length}; }
};

class TokenProgram {
 public:
  // Compiles the JSON structure of `cleaned` (comments and trailing commas
  // blanked) whose output sites start at `site_offsets` (ascending). Returns
  // null when the structure cannot be compiled (e.g. a site in key position
  // outside quotes, or a top-level scalar); callers then print text.
  static std::unique_ptr<TokenProgram> Compile(std::string_view cleaned,
                                               const std::vector<size_t>& site_offsets);

  // Emits the tokens of one payload given the final value of every site, in
  // site order. Throws std::invalid_argument for values JSON cannot hold (the
  // first such site in template order, even where members were reordered).
  void Render(const std::vector<Value>& sites, JsonTokens& out) const;

  // Number of output sites the program reads.
  size_t site_count() const { return site_count_; }

  struct Part {
    bool is_site;
    uint32_t site;
    std::string literal;  // unescaped
  };
  struct Op {
    enum Kind : uint8_t {
      BeginObject,
      EndObject,
      BeginArray,
      EndArray,
      Key,
      String,
      Site,
      Literal
    };
    Kind kind = BeginObject;
    uint32_t first_part = 0;  // Key/String: parts [first_part, end_part)
    uint32_t end_part = 0;
    uint32_t site = 0;                                 // Site
    JsonTokenKind literal_kind = JsonTokenKind::Null;  // Literal: Number/True/False/Null
    std::string literal;                               // Literal number text
    bool keys_sorted = false;  // BeginObject: members reordered into jsonb key order
  };

 private:
  void Emit(const std::vector<Op>& ops, const std::vector<Value>& sites, JsonTokens& out) const;

  std::vector<Op> ops_;  // members of keys_sorted objects in jsonb key order
  // The ops in template order, kept only when some object was reordered: a
  // failing render is replayed with them so it reports the same error as
  // before the reordering (the first failing site in the template).
  std::vector<Op> source_ops_;
  std::vector<Part> parts_;
  size_t site_count_ = 0;
};

// jsonb's order of object keys (Postgres's lengthCompareJsonbStringValue):
// negative, zero or positive as `a` sorts before, equal to or after `b`.
int CompareJsonbKeys(std::string_view a, std::string_view b);

// Appends `v` as JSON tokens (typed as AppendJsonValue types it).
void AppendValueTokens(const Value& v, JsonTokens& out);

}  // namespace hyperline
