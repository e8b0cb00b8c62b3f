// json_tokens.cpp: see json_tokens.hpp.
#include "core/json_tokens.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>

#include "core/ascii.hpp"

namespace hyperline {
namespace {

void Push(JsonTokens& out, JsonTokenKind kind) { out.tokens.push_back({kind, false, 0, 0}); }

void PushText(JsonTokens& out, JsonTokenKind kind, std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    throw std::invalid_argument("a string contains a NUL character, which Postgres cannot store");
  }
  uint32_t offset = static_cast<uint32_t>(out.arena.size());
  out.arena.append(text);
  out.arena.push_back('\0');
  out.tokens.push_back({kind, false, offset, static_cast<uint32_t>(text.size())});
}

// Compiles the JSON structure; fails (returns false) on anything unexpected.
class ProgramCompiler {
 public:
  // `sort`: put the members of objects with literal keys in jsonb key order.
  ProgramCompiler(std::string_view s, const std::vector<size_t>& sites,
                  std::vector<TokenProgram::Op>& ops, std::vector<TokenProgram::Part>& parts,
                  bool sort)
      : s_(s), sites_(sites), ops_(ops), parts_(parts), sort_(sort) {}

  // Whether some object's members were reordered (SortMembers).
  bool reordered() const { return reordered_; }

  bool Run() {
    SkipSpace();
    if (i_ >= s_.size() || (s_[i_] != '{' && s_[i_] != '[')) return false;
    if (!Value(0)) return false;
    SkipSpace();
    return i_ == s_.size() && next_site_ == sites_.size();
  }

 private:
  void SkipSpace() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) {
      ++i_;
    }
  }
  // Whether a site starts at the current position; consumes it.
  bool AtSite(uint32_t& site) {
    if (next_site_ < sites_.size() && sites_[next_site_] == i_) {
      site = static_cast<uint32_t>(next_site_++);
      size_t end = s_.find("}}", i_ + 2);
      if (end == std::string_view::npos) return false;
      i_ = end + 2;
      return true;
    }
    return false;
  }

  // Puts the members of the object whose BeginObject is ops_[begin] (closed up
  // to the end of ops_) in jsonb key order and marks it keys_sorted, when every
  // key is literal and no key repeats. Otherwise leaves it for the run-time
  // sort: a key with a site is only known per row, and a repeated key must
  // keep jsonb's "last one wins", which the run-time sort implements.
  void SortMembers(size_t begin) {
    struct Member {
      std::string key;
      size_t first;  // the member's Key op, then its value's ops up to `end`
      size_t end;
    };
    std::vector<Member> members;
    int depth = 0;
    for (size_t k = begin + 1; k < ops_.size(); ++k) {
      const TokenProgram::Op& op = ops_[k];
      if (depth == 0 && op.kind == TokenProgram::Op::Key) {
        if (!members.empty()) members.back().end = k;
        std::string key;
        for (uint32_t p = op.first_part; p < op.end_part; ++p) {
          if (parts_[p].is_site) return;
          key += parts_[p].literal;
        }
        members.push_back({std::move(key), k, 0});
      }
      if (op.kind == TokenProgram::Op::BeginObject || op.kind == TokenProgram::Op::BeginArray) {
        ++depth;
      } else if (op.kind == TokenProgram::Op::EndObject || op.kind == TokenProgram::Op::EndArray) {
        --depth;
      }
    }
    if (!members.empty()) members.back().end = ops_.size();
    auto less = [](const Member& a, const Member& b) { return CompareJsonbKeys(a.key, b.key) < 0; };
    std::vector<Member> sorted = members;
    std::stable_sort(sorted.begin(), sorted.end(), less);
    for (size_t m = 1; m < sorted.size(); ++m) {
      if (CompareJsonbKeys(sorted[m - 1].key, sorted[m].key) == 0) return;  // repeated key
    }
    bool moved = false;
    for (size_t m = 0; m < sorted.size(); ++m) moved = moved || sorted[m].first != members[m].first;
    if (moved) {
      std::vector<TokenProgram::Op> body;
      body.reserve(ops_.size() - begin - 1);
      for (const Member& m : sorted) {
        for (size_t k = m.first; k < m.end; ++k) body.push_back(std::move(ops_[k]));
      }
      ops_.resize(begin + 1);
      for (TokenProgram::Op& op : body) ops_.push_back(std::move(op));
      reordered_ = true;
    }
    ops_[begin].keys_sorted = true;
  }

  // Appends a structural op (begin/end of an object or array).
  void PushOp(TokenProgram::Op::Kind kind) {
    TokenProgram::Op op;
    op.kind = kind;
    ops_.push_back(std::move(op));
  }

  // A quoted string with literal parts and sites; emits a Key or String op.
  bool QuotedString(TokenProgram::Op::Kind kind) {
    ++i_;  // opening quote
    TokenProgram::Op op;
    op.kind = kind;
    op.first_part = static_cast<uint32_t>(parts_.size());
    std::string literal;
    auto flush_literal = [&] {
      if (!literal.empty()) {
        parts_.push_back({false, 0, literal});
        literal.clear();
      }
    };
    while (i_ < s_.size()) {
      uint32_t site = 0;
      if (s_[i_] == '{' && AtSite(site)) {
        flush_literal();
        parts_.push_back({true, site, std::string()});
        continue;
      }
      char c = s_[i_];
      if (c == '"') {
        ++i_;
        flush_literal();
        op.end_part = static_cast<uint32_t>(parts_.size());
        ops_.push_back(std::move(op));
        return true;
      }
      if (c == '{' && i_ + 1 < s_.size() && s_[i_ + 1] == '%') return false;  // tags: no program
      if (c != '\\') {
        literal.push_back(c);
        ++i_;
        continue;
      }
      if (i_ + 1 >= s_.size()) return false;
      char e = s_[i_ + 1];
      i_ += 2;
      switch (e) {
        case '"':
          literal.push_back('"');
          break;
        case '\\':
          literal.push_back('\\');
          break;
        case '/':
          literal.push_back('/');
          break;
        case 'b':
          literal.push_back('\b');
          break;
        case 'f':
          literal.push_back('\f');
          break;
        case 'n':
          literal.push_back('\n');
          break;
        case 'r':
          literal.push_back('\r');
          break;
        case 't':
          literal.push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // high surrogate: a low one must follow
            uint32_t low = 0;
            if (i_ + 1 >= s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return false;
            i_ += 2;
            if (!Hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            return false;  // lone low surrogate, or NUL: let the text path report it
          }
          AppendUtf8(cp, literal);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool Hex4(uint32_t& cp) {
    if (i_ + 4 > s_.size()) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      int h = HexDigitValue(s_[i_ + k]);
      if (h < 0) return false;
      cp = cp * 16 + static_cast<uint32_t>(h);
    }
    i_ += 4;
    return true;
  }

  bool Literal() {
    size_t start = i_;
    while (i_ < s_.size() && (AsciiAlnum(s_[i_]) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.')) {
      ++i_;
    }
    std::string_view word = s_.substr(start, i_ - start);
    TokenProgram::Op op;
    op.kind = TokenProgram::Op::Literal;
    if (word == "true") {
      op.literal_kind = JsonTokenKind::True;
    } else if (word == "false") {
      op.literal_kind = JsonTokenKind::False;
    } else if (word == "null") {
      op.literal_kind = JsonTokenKind::Null;
    } else if (!word.empty() && (word[0] == '-' || AsciiDigit(word[0]))) {
      op.literal_kind = JsonTokenKind::Number;
      op.literal = std::string(word);
    } else {
      return false;
    }
    ops_.push_back(std::move(op));
    return true;
  }

  bool Value(int depth) {
    if (depth > 64) return false;
    SkipSpace();
    if (i_ >= s_.size()) return false;
    uint32_t site = 0;
    char c = s_[i_];
    if (c == '{' && AtSite(site)) {
      TokenProgram::Op op;
      op.kind = TokenProgram::Op::Site;
      op.site = site;
      ops_.push_back(std::move(op));
      return true;
    }
    if (c == '"') return QuotedString(TokenProgram::Op::String);
    if (c == '{' || c == '[') {
      bool object = c == '{';
      size_t begin = ops_.size();
      PushOp(object ? TokenProgram::Op::BeginObject : TokenProgram::Op::BeginArray);
      ++i_;
      SkipSpace();
      char close = object ? '}' : ']';
      if (i_ < s_.size() && s_[i_] == close) {
        ++i_;
        if (object && sort_) ops_[begin].keys_sorted = true;  // {}: nothing to sort
        PushOp(object ? TokenProgram::Op::EndObject : TokenProgram::Op::EndArray);
        return true;
      }
      for (;;) {
        if (object) {
          SkipSpace();
          if (i_ >= s_.size() || s_[i_] != '"') return false;
          if (!QuotedString(TokenProgram::Op::Key)) return false;
          SkipSpace();
          if (i_ >= s_.size() || s_[i_] != ':') return false;
          ++i_;
        }
        if (!Value(depth + 1)) return false;
        SkipSpace();
        if (i_ >= s_.size()) return false;
        if (s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (s_[i_] != close) return false;
        ++i_;
        if (object && sort_) SortMembers(begin);
        PushOp(object ? TokenProgram::Op::EndObject : TokenProgram::Op::EndArray);
        return true;
      }
    }
    return Literal();
  }

  std::string_view s_;
  const std::vector<size_t>& sites_;
  std::vector<TokenProgram::Op>& ops_;
  std::vector<TokenProgram::Part>& parts_;
  bool sort_;
  size_t i_ = 0;
  size_t next_site_ = 0;
  bool reordered_ = false;
};

}  // namespace

std::unique_ptr<TokenProgram> TokenProgram::Compile(std::string_view cleaned,
                                                    const std::vector<size_t>& site_offsets) {
  auto program = std::make_unique<TokenProgram>();
  ProgramCompiler compiler(cleaned, site_offsets, program->ops_, program->parts_, true);
  if (!compiler.Run()) return nullptr;
  program->site_count_ = site_offsets.size();
  if (compiler.reordered()) {
    // Once more in template order, for replaying errors (see source_ops_). The
    // parts come out the same: they are numbered as the source is read.
    std::vector<TokenProgram::Part> parts;
    ProgramCompiler unsorted(cleaned, site_offsets, program->source_ops_, parts, false);
    if (!unsorted.Run() || parts.size() != program->parts_.size()) return nullptr;
  }
  return program;
}

void AppendValueTokens(const Value& v, JsonTokens& out) {
  switch (v.kind()) {
    case Value::Kind::Nil:
      Push(out, JsonTokenKind::Null);
      return;
    case Value::Kind::Bool:
      Push(out, v.as_bool() ? JsonTokenKind::True : JsonTokenKind::False);
      return;
    case Value::Kind::Int:
    case Value::Kind::Float:
    case Value::Kind::Decimal: {
      // AppendJsonValue prints the number exactly and rejects NaN/infinity.
      std::string text;
      AppendJsonValue(v, text);
      PushText(out, JsonTokenKind::Number, text);
      return;
    }
    case Value::Kind::String:
      PushText(out, JsonTokenKind::String, v.as_string());
      return;
    case Value::Kind::Time: {
      std::string text;
      AppendIsoTime(v, text);
      PushText(out, JsonTokenKind::String, text);
      return;
    }
    case Value::Kind::Array:
      Push(out, JsonTokenKind::BeginArray);
      for (const Value& e : v.as_array()) AppendValueTokens(e, out);
      Push(out, JsonTokenKind::EndArray);
      return;
    case Value::Kind::Range:
      Push(out, JsonTokenKind::BeginArray);
      for (int64_t i = v.range_first(); i <= v.range_last(); ++i) {
        PushText(out, JsonTokenKind::Number, std::to_string(i));
      }
      Push(out, JsonTokenKind::EndArray);
      return;
    case Value::Kind::Object:
      Push(out, JsonTokenKind::BeginObject);
      for (const auto& [key, value] : v.as_object()) {
        PushText(out, JsonTokenKind::Key, key);
        AppendValueTokens(value, out);
      }
      Push(out, JsonTokenKind::EndObject);
      return;
    case Value::Kind::Empty:
    case Value::Kind::Blank:
      PushText(out, JsonTokenKind::String, "");
      return;
  }
}

int CompareJsonbKeys(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() > b.size() ? 1 : -1;
  return a.empty() ? 0 : memcmp(a.data(), b.data(), a.size());
}

void TokenProgram::Render(const std::vector<Value>& sites, JsonTokens& out) const {
  size_t ntokens = out.tokens.size();
  size_t narena = out.arena.size();
  try {
    Emit(ops_, sites, out);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception&) {
    if (source_ops_.empty()) throw;
    // Sorted members convert their sites out of template order; replay in
    // template order so the error is the one the first failing site gives.
    out.tokens.resize(ntokens);
    out.arena.resize(narena);
    Emit(source_ops_, sites, out);
    throw;  // not reached: the same sites fail in either order
  }
}

void TokenProgram::Emit(const std::vector<Op>& ops, const std::vector<Value>& sites,
                        JsonTokens& out) const {
  // Per thread, reused payload after payload: no allocation once warm.
  thread_local std::string text;
  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::BeginObject:
        out.tokens.push_back({JsonTokenKind::BeginObject, op.keys_sorted, 0, 0});
        break;
      case Op::EndObject:
        Push(out, JsonTokenKind::EndObject);
        break;
      case Op::BeginArray:
        Push(out, JsonTokenKind::BeginArray);
        break;
      case Op::EndArray:
        Push(out, JsonTokenKind::EndArray);
        break;
      case Op::Key:
      case Op::String:
        text.clear();
        for (uint32_t p = op.first_part; p < op.end_part; ++p) {
          const Part& part = parts_[p];
          if (part.is_site) {
            AppendLiquidString(sites.at(part.site), text);
          } else {
            text += part.literal;
          }
        }
        PushText(out, op.kind == Op::Key ? JsonTokenKind::Key : JsonTokenKind::String, text);
        break;
      case Op::Site:
        AppendValueTokens(sites.at(op.site), out);
        break;
      case Op::Literal:
        if (op.literal_kind == JsonTokenKind::Number) {
          PushText(out, JsonTokenKind::Number, op.literal);
        } else {
          Push(out, op.literal_kind);
        }
        break;
    }
  }
}

}  // namespace hyperline
