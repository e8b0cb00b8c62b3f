// json_tokens.hpp: a rendered payload as a stream of JSON tokens.
//
// Vocabulary: for a payload template without Liquid tags, the JSON structure is
// fixed; only the values of its output sites change per row. A TokenProgram is
// that structure compiled once (keys, literal strings already unescaped, the
// places of the sites); rendering it yields JsonTokens — begin/end of objects
// and arrays, keys, strings (unescaped), numbers (JSON text), true/false/null —
// which the Postgres side turns into jsonb directly, without printing JSON text
// and parsing it again.
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
  uint32_t offset;  // Key/String/Number: text in JsonTokens::arena, NUL-terminated
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
  // site order. Throws std::invalid_argument for values JSON cannot hold.
  void Render(const std::vector<Value>& sites, JsonTokens& out) const;

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
  };

 private:
  std::vector<Op> ops_;
  std::vector<Part> parts_;
};

// Appends `v` as JSON tokens (typed as AppendJsonValue types it).
void AppendValueTokens(const Value& v, JsonTokens& out);

}  // namespace hyperline
