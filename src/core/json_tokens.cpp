// json_tokens.cpp: see json_tokens.hpp.
#include "core/json_tokens.hpp"

#include <algorithm>
#include <stdexcept>

namespace hyperline {
namespace {

void Push(JsonTokens& out, JsonTokenKind kind) { out.tokens.push_back({kind, 0, 0}); }

void PushText(JsonTokens& out, JsonTokenKind kind, std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    throw std::invalid_argument("a string contains a NUL character, which Postgres cannot store");
  }
  uint32_t offset = static_cast<uint32_t>(out.arena.size());
  out.arena.append(text);
  out.arena.push_back('\0');
  out.tokens.push_back({kind, offset, static_cast<uint32_t>(text.size())});
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Compiles the JSON structure; fails (returns false) on anything unexpected.
class ProgramCompiler {
 public:
  ProgramCompiler(std::string_view s, const std::vector<size_t>& sites,
                  std::vector<TokenProgram::Op>& ops, std::vector<TokenProgram::Part>& parts)
      : s_(s), sites_(sites), ops_(ops), parts_(parts) {}

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
      int h = HexValue(s_[i_ + k]);
      if (h < 0) return false;
      cp = cp * 16 + static_cast<uint32_t>(h);
    }
    i_ += 4;
    return true;
  }

  bool Literal() {
    size_t start = i_;
    while (i_ < s_.size() && (isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
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
    } else if (!word.empty() && (word[0] == '-' || isdigit(static_cast<unsigned char>(word[0])))) {
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
      PushOp(object ? TokenProgram::Op::BeginObject : TokenProgram::Op::BeginArray);
      ++i_;
      SkipSpace();
      char close = object ? '}' : ']';
      if (i_ < s_.size() && s_[i_] == close) {
        ++i_;
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
  size_t i_ = 0;
  size_t next_site_ = 0;
};

}  // namespace

std::unique_ptr<TokenProgram> TokenProgram::Compile(std::string_view cleaned,
                                                    const std::vector<size_t>& site_offsets) {
  auto program = std::make_unique<TokenProgram>();
  ProgramCompiler compiler(cleaned, site_offsets, program->ops_, program->parts_);
  if (!compiler.Run()) return nullptr;
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
      AppendIsoTime(v.time_micros(), v.date_only(), text);
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

void TokenProgram::Render(const std::vector<Value>& sites, JsonTokens& out) const {
  std::string text;
  for (const Op& op : ops_) {
    switch (op.kind) {
      case Op::BeginObject:
        Push(out, JsonTokenKind::BeginObject);
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
