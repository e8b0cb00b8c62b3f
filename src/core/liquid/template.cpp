// template.cpp: the Liquid tokenizer, parser and tag nodes.
//
// Parsing happens once per template: names, literals and filters are resolved
// into the node tree here so Render only walks it. The parser is strict (Ruby
// Liquid's strict mode): anything it does not understand is a ParseError with
// line, column and the offending token.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/liquid/internal.hpp"
#include "core/names.hpp"
#include "core/liquid/number.hpp"

namespace hyperline::liquid {

namespace {

// Why: every nested block is a C++ stack frame in the parser and renderer; a
// hostile template must not be able to overflow the stack.
constexpr int kMaxParseDepth = 100;

// ASCII whitespace as Ruby's \s matches it.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsWordChar(char c) { return AsciiAlnum(c) || c == '_'; }

// Drops leading and trailing whitespace.
std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Ruby's String#rstrip / #lstrip (whitespace and NUL).
void RStrip(std::string& s) {
  while (!s.empty() && (IsSpace(s.back()) || s.back() == '\0')) s.pop_back();
}
// Ruby's String#lstrip.
void LStrip(std::string& s) {
  size_t i = 0;
  while (i < s.size() && (IsSpace(s[i]) || s[i] == '\0')) ++i;
  s.erase(0, i);
}

// True when `s` has only whitespace (a blank text node).
bool IsWhitespaceOnly(std::string_view s) {
  for (char c : s) {
    if (!IsSpace(c)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Template-level tokens.

struct Token {
  enum class Kind : uint8_t { End, Text, Output, Tag };
  Kind kind = Kind::End;
  size_t offset = 0;  // in the source
  size_t length = 0;
  bool trim_left = false;
  bool trim_right = false;
  std::string_view text;    // Text: the text; Output: inner markup
  std::string_view name;    // Tag: name
  std::string_view markup;  // Tag: arguments
};

// Builds ParseError messages with line/column from a source offset.
class ErrorReporter {
 public:
  explicit ErrorReporter(std::string_view src) : src_(src) {}
  [[noreturn]] void Fail(const std::string& msg, size_t offset, std::string_view near) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < offset && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) {
        ++col;  // columns count characters, not UTF-8 continuation bytes
      }
    }
    // Cut the excerpt at a character boundary.
    size_t cut = std::min<size_t>(near.size(), 80);
    while (cut < near.size() && cut > 0 && (static_cast<unsigned char>(near[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    std::string n(near.substr(0, cut));
    std::string full = "Liquid syntax error (line " + std::to_string(line) + ", column " +
                       std::to_string(col) + "): " + msg;
    if (!n.empty()) full += " near '" + n + "'";
    throw ParseError(full, line, col);
  }
  std::string_view src() const { return src_; }

 private:
  std::string_view src_;
};

// Produces tokens from template source, or from the lines of a `liquid` tag.
class Tokenizer {
 public:
  Tokenizer(std::string_view src, size_t base, bool liquid_lines, const ErrorReporter& err)
      : src_(src), base_(base), lines_(liquid_lines), err_(err) {}

  bool liquid_lines() const { return lines_; }

  Token Next() {
    Token t;
    if (lines_) return NextLine();
    if (pos_ >= src_.size()) return t;
    size_t open = FindOpen(pos_);
    if (open != pos_) {
      t.kind = Token::Kind::Text;
      t.offset = base_ + pos_;
      size_t end = open == std::string_view::npos ? src_.size() : open;
      t.length = end - pos_;
      t.text = src_.substr(pos_, end - pos_);
      pos_ = end;
      return t;
    }
    t.offset = base_ + pos_;
    if (src_[pos_ + 1] == '{') {
      size_t close = src_.find('}', pos_ + 2);
      if (close == std::string_view::npos || close + 1 >= src_.size() || src_[close + 1] != '}') {
        err_.Fail("Variable was not properly terminated with '}}'", base_ + pos_,
                  src_.substr(pos_, 40));
      }
      size_t end = close + 2;
      t.kind = Token::Kind::Output;
      t.length = end - pos_;
      std::string_view inner = src_.substr(pos_ + 2, close - pos_ - 2);
      if (!inner.empty() && inner.front() == '-') {
        t.trim_left = true;
        inner.remove_prefix(1);
      }
      if (!inner.empty() && inner.back() == '-') {
        t.trim_right = true;
        inner.remove_suffix(1);
      } else if (t.length >= 5 && src_[end - 3] == '-') {
        t.trim_right = true;  // `{{-}}`
      }
      t.text = inner;
      pos_ = end;
      return t;
    }
    size_t close = src_.find("%}", pos_ + 2);
    if (close == std::string_view::npos) {
      err_.Fail("Tag was not properly terminated with '%}'", base_ + pos_, src_.substr(pos_, 40));
    }
    size_t end = close + 2;
    t.kind = Token::Kind::Tag;
    t.length = end - pos_;
    std::string_view inner = src_.substr(pos_ + 2, close - pos_ - 2);
    if (!inner.empty() && inner.front() == '-') {
      t.trim_left = true;
      inner.remove_prefix(1);
    }
    if (!inner.empty() && inner.back() == '-') {
      t.trim_right = true;
      inner.remove_suffix(1);
    } else if (t.length >= 5 && src_[end - 3] == '-') {
      t.trim_right = true;
    }
    SplitTag(inner, t);
    pos_ = end;
    return t;
  }

  // Reads raw text up to `{% endNAME %}`; returns the text, or npos offset if
  // missing. Used by raw (and doc bodies are parsed token by token instead).
  bool ReadRaw(std::string_view end_name, std::string_view& body, Token& end_tok) {
    size_t p = pos_;
    while (true) {
      size_t open = src_.find("{%", p);
      if (open == std::string_view::npos) return false;
      size_t q = open + 2;
      bool trim_left = false;
      if (q < src_.size() && src_[q] == '-') {
        trim_left = true;
        ++q;
      }
      while (q < src_.size() && IsSpace(src_[q])) ++q;
      if (src_.compare(q, end_name.size(), end_name) == 0) {
        size_t r = q + end_name.size();
        while (r < src_.size() && IsSpace(src_[r])) ++r;
        bool trim_right = false;
        if (r < src_.size() && src_[r] == '-') {
          trim_right = true;
          ++r;
        }
        if (src_.compare(r, 2, "%}") == 0) {
          body = src_.substr(pos_, open - pos_);
          end_tok.kind = Token::Kind::Tag;
          end_tok.offset = base_ + open;
          end_tok.length = r + 2 - open;
          end_tok.trim_left = trim_left;
          end_tok.trim_right = trim_right;
          end_tok.name = end_name;
          pos_ = r + 2;
          return true;
        }
      }
      p = open + 2;
    }
  }

 private:
  size_t FindOpen(size_t from) const {
    size_t p = from;
    while (true) {
      size_t i = src_.find('{', p);
      if (i == std::string_view::npos || i + 1 >= src_.size()) return std::string_view::npos;
      if (src_[i + 1] == '{' || src_[i + 1] == '%') return i;
      p = i + 1;
    }
  }

  // Splits a tag's inner text into name and markup.
  void SplitTag(std::string_view inner, Token& t) const {
    size_t i = 0;
    while (i < inner.size() && IsSpace(inner[i])) ++i;
    size_t start = i;
    if (i < inner.size() && inner[i] == '#') {
      ++i;
    } else {
      while (i < inner.size() && IsWordChar(inner[i])) ++i;
    }
    t.name = inner.substr(start, i - start);
    t.markup = Trim(inner.substr(i));
    if (t.name.empty()) {
      err_.Fail("Tag was not properly terminated with '%}' or has no name", t.offset,
                src_.substr(t.offset - base_, t.length));
    }
  }

  // One line of a `liquid` tag as a tag token.
  Token NextLine() {
    Token t;
    while (pos_ < src_.size()) {
      size_t nl = src_.find('\n', pos_);
      size_t end = nl == std::string_view::npos ? src_.size() : nl;
      std::string_view line = src_.substr(pos_, end - pos_);
      size_t line_off = pos_;
      pos_ = nl == std::string_view::npos ? src_.size() : nl + 1;
      size_t lead = 0;
      while (lead < line.size() && IsSpace(line[lead])) ++lead;
      std::string_view body = Trim(line);
      if (body.empty()) continue;
      t.kind = Token::Kind::Tag;
      t.offset = base_ + line_off + lead;
      t.length = body.size();
      size_t i = 0;
      if (body[0] == '#') {
        i = 1;
      } else {
        while (i < body.size() && IsWordChar(body[i])) ++i;
      }
      if (i == 0) err_.Fail("invalid line in liquid tag", t.offset, body);
      t.name = body.substr(0, i);
      t.markup = Trim(body.substr(i));
      return t;
    }
    return t;
  }

  std::string_view src_;
  size_t base_;
  bool lines_;
  const ErrorReporter& err_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Expression lexer.

enum class Tk : uint8_t {
  End,
  Id,
  String,
  Number,
  Comparison,
  Dot,
  DotDot,
  Colon,
  Comma,
  Pipe,
  OpenSquare,
  CloseSquare,
  OpenRound,
  CloseRound,
  Question,
  Dash,
};

struct Lexeme {
  Tk type = Tk::End;
  std::string_view text;
  size_t offset = 0;  // in the source
};

// Tokenizes markup (Ruby Liquid's Lexer), reporting errors against the source.
class Lexer {
 public:
  Lexer(std::string_view markup, size_t base, const ErrorReporter& err, std::string_view near)
      : err_(err), near_(near) {
    size_t i = 0;
    const size_t n = markup.size();
    while (true) {
      while (i < n && IsSpace(markup[i])) ++i;
      Lexeme l;
      l.offset = base + i;
      if (i >= n) {
        toks_.push_back(l);
        break;
      }
      char c = markup[i];
      size_t start = i;
      auto rest = markup.substr(i);
      if (rest.rfind("==", 0) == 0 || rest.rfind("!=", 0) == 0 || rest.rfind("<>", 0) == 0 ||
          rest.rfind("<=", 0) == 0 || rest.rfind(">=", 0) == 0) {
        l.type = Tk::Comparison;
        i += 2;
      } else if (c == '<' || c == '>') {
        l.type = Tk::Comparison;
        i += 1;
      } else if (rest.rfind("contains", 0) == 0 && rest.size() > 8 && IsSpace(rest[8])) {
        l.type = Tk::Comparison;
        i += 8;
      } else if (c == '\'' || c == '"') {
        size_t close = markup.find(c, i + 1);
        if (close == std::string_view::npos) {
          err_.Fail("unterminated string literal", base + i, near_);
        }
        l.type = Tk::String;
        i = close + 1;
      } else if (AsciiDigit(c) || (c == '-' && i + 1 < n && AsciiDigit(markup[i + 1]))) {
        l.type = Tk::Number;
        ++i;
        while (i < n && AsciiDigit(markup[i])) ++i;
        if (i + 1 < n && markup[i] == '.' && AsciiDigit(markup[i + 1])) {
          ++i;
          while (i < n && AsciiDigit(markup[i])) ++i;
        }
      } else if (AsciiAlpha(c) || c == '_') {
        l.type = Tk::Id;
        ++i;
        while (i < n && (IsWordChar(markup[i]) || markup[i] == '-')) ++i;
        if (i < n && markup[i] == '?') ++i;
      } else if (rest.rfind("..", 0) == 0) {
        l.type = Tk::DotDot;
        i += 2;
      } else {
        switch (c) {
          case '|':
            l.type = Tk::Pipe;
            break;
          case '.':
            l.type = Tk::Dot;
            break;
          case ':':
            l.type = Tk::Colon;
            break;
          case ',':
            l.type = Tk::Comma;
            break;
          case '[':
            l.type = Tk::OpenSquare;
            break;
          case ']':
            l.type = Tk::CloseSquare;
            break;
          case '(':
            l.type = Tk::OpenRound;
            break;
          case ')':
            l.type = Tk::CloseRound;
            break;
          case '?':
            l.type = Tk::Question;
            break;
          case '-':
            l.type = Tk::Dash;
            break;
          default:
            err_.Fail(std::string("unexpected character '") + c + "'", base + i, near_);
        }
        i += 1;
      }
      l.text = markup.substr(start, i - start);
      toks_.push_back(l);
    }
  }

  const Lexeme& Peek(size_t ahead = 0) const {
    size_t k = std::min(p_ + ahead, toks_.size() - 1);
    return toks_[k];
  }
  bool Look(Tk t, size_t ahead = 0) const { return Peek(ahead).type == t; }
  Lexeme Consume() {
    Lexeme l = toks_[p_];
    if (p_ + 1 < toks_.size()) ++p_;
    return l;
  }
  Lexeme Expect(Tk t, const char* what) {
    if (!Look(t)) Fail(std::string("expected ") + what);
    return Consume();
  }
  bool Accept(Tk t) {
    if (!Look(t)) return false;
    Consume();
    return true;
  }
  bool AcceptId(std::string_view word) {
    if (Look(Tk::Id) && Peek().text == word) {
      Consume();
      return true;
    }
    return false;
  }
  void ExpectEnd() {
    if (!Look(Tk::End)) Fail("unexpected token");
  }
  [[noreturn]] void Fail(const std::string& msg) const {
    const Lexeme& l = Peek();
    std::string m = msg;
    if (l.type == Tk::End) {
      m += " (found end of markup)";
    } else {
      m += " (found '" + std::string(l.text) + "')";
    }
    err_.Fail(m, l.offset, near_);
  }

 private:
  const ErrorReporter& err_;
  std::string_view near_;
  std::vector<Lexeme> toks_;
  size_t p_ = 0;
};

// ---------------------------------------------------------------------------
// Nodes.

void RenderBody(const Body& body, RenderState& st) {
  for (const auto& n : body) {
    n->Render(st);
    if (st.interrupt != Interrupt::None) return;
  }
}

// Ruby's BlockBody#blank?: every node is blank.
bool BodyBlank(const Body& body) {
  for (const auto& n : body) {
    if (!n->Blank()) return false;
  }
  return true;
}

// Guards render recursion depth.
struct DepthGuard {
  explicit DepthGuard(RenderState& st) : st(st) {
    if (++st.depth > st.limits.max_depth) throw RenderError("Liquid error: nesting too deep");
  }
  ~DepthGuard() { --st.depth; }
  RenderState& st;
};

class TextNode : public Node {
 public:
  explicit TextNode(std::string t) : text(std::move(t)) {}
  void Render(RenderState& st) const override { st.Text(text); }
  bool Blank() const override { return IsWhitespaceOnly(text); }
  std::string text;
};

class OutputNode : public Node {
 public:
  void Render(RenderState& st) const override {
    if (pipe.filters.empty()) {
      Value scratch;
      const Value& v = Eval(pipe.expr, st, scratch);
      st.Output(v, site);
    } else {
      st.Output(EvalPipeline(pipe, st), site);
    }
  }
  Pipeline pipe;
  size_t site = 0;
};

class AssignNode : public Node {
 public:
  void Render(RenderState& st) const override {
    Value v = EvalPipeline(pipe, st);
    if (v.kind() == Value::Kind::String) st.ChargeWork(v.as_string().size());
    st.Assign(id, std::move(v));
  }
  bool Blank() const override { return true; }
  std::string name;
  int id = -1;
  Pipeline pipe;
};

class CaptureNode : public Node {
 public:
  void Render(RenderState& st) const override {
    DepthGuard g(st);
    st.captures.emplace_back();
    RenderBody(body, st);
    std::string s = std::move(st.captures.back());
    st.captures.pop_back();
    st.ChargeWork(s.size());
    st.Assign(id, Value::String(std::move(s)));
  }
  bool Blank() const override { return true; }
  std::string name;
  int id = -1;
  Body body;
};

class IfNode : public Node {
 public:
  struct Branch {
    Condition cond;
    Body body;
  };
  void Render(RenderState& st) const override {
    DepthGuard g(st);
    for (size_t i = 0; i < branches.size(); ++i) {
      bool r = EvalCondition(branches[i].cond, st);
      if (i == 0 && negate_first) r = !r;
      if (r) {
        RenderBody(branches[i].body, st);
        return;
      }
    }
    if (has_else) RenderBody(else_body, st);
  }
  bool Blank() const override {
    for (const auto& b : branches) {
      if (!BodyBlank(b.body)) return false;
    }
    return BodyBlank(else_body);
  }
  std::vector<Branch> branches;
  Body else_body;
  bool has_else = false;
  bool negate_first = false;  // unless
};

class CaseNode : public Node {
 public:
  struct When {
    bool is_else = false;
    Expr value;
    size_t body = 0;
  };
  void Render(RenderState& st) const override {
    DepthGuard g(st);
    bool run_else = true;
    for (const When& w : whens) {
      if (w.is_else) {
        if (run_else) RenderBody(bodies[w.body], st);
      } else {
        // Like Ruby, the subject is evaluated for each `when`: a body may assign
        // to it, and a reference into the bindings would not survive the body.
        Value s1, s2;
        const Value& subject = Eval(subject_expr, st, s1);
        const Value& value = Eval(w.value, st, s2);
        st.ChargeScan(subject);
        st.ChargeScan(value);
        if (LiquidEquals(subject, value)) {
          run_else = false;
          RenderBody(bodies[w.body], st);
        }
      }
      if (st.interrupt != Interrupt::None) return;
    }
  }
  bool Blank() const override {
    for (const auto& b : bodies) {
      if (!BodyBlank(b)) return false;
    }
    return true;
  }
  Expr subject_expr;
  std::vector<When> whens;
  std::vector<Body> bodies;
};

// Shared collection handling of for and tablerow.
struct LoopSpec {
  std::string var;
  int var_id = -1;
  int drop_id = -1;  // id of "forloop" / "tablerowloop"
  std::string name;  // "var-collection" for offset:continue
  size_t slot = 0;   // offset:continue slot (one per distinct name)
  Expr collection;
  bool reversed = false;
  bool has_limit = false, has_offset = false, offset_continue = false, has_cols = false;
  Expr limit, offset, cols;
};

// The items a loop visits: a window of an array or a range, read in place (a
// huge range is never materialised), or materialised items (hash pairs, a string).
struct LoopSeq {
  enum class Kind : uint8_t { Array, Range, Items };
  Kind kind = Kind::Items;
  Value coll;
  Array items;
  int64_t start = 0;
  int64_t count = 0;
  bool reversed = false;

  // Binds a loop variable to the i-th item: array elements by reference (no copy
  // per iteration, so nested loops over big values stay cheap), others by value.
  void Bind(int64_t i, RenderState::Local& local) const {
    if (kind == Kind::Array) {
      int64_t k = reversed ? count - 1 - i : i;
      local.ref = &coll.as_array()[static_cast<size_t>(start + k)];
    } else {
      local.ref = nullptr;
      local.value = At(i);
    }
  }

  // The i-th item (0 <= i < count), honouring `reversed`.
  Value At(int64_t i) const {
    int64_t k = reversed ? count - 1 - i : i;
    switch (kind) {
      case Kind::Array:
        return coll.as_array()[static_cast<size_t>(start + k)];
      case Kind::Range:
        return Value::Int(coll.range_first() + start + k);
      default:
        return items[static_cast<size_t>(k)];
    }
  }
};

// Evaluates the loop's collection and its offset/limit window (Ruby Liquid's
// slice_collection: negative offsets start at 0, negative limits select nothing).
void LoopItems(const LoopSpec& spec, RenderState& st, LoopSeq& seq, int64_t& from_out) {
  seq.coll = EvalCopy(spec.collection, st);
  int64_t from = 0;
  if (spec.offset_continue) {
    if (spec.slot < st.for_offsets.size()) from = st.for_offsets[spec.slot];
  } else if (spec.has_offset) {
    Value ov = EvalCopy(spec.offset, st);
    if (!ov.is_nil()) from = ToInteger(ov, "offset");
  }
  bool has_to = false;
  int64_t to = 0;
  if (spec.has_limit) {
    Value lv = EvalCopy(spec.limit, st);
    if (!lv.is_nil()) {
      has_to = true;
      int64_t lim = ToInteger(lv, "limit");
      if (__builtin_add_overflow(lim, from, &to)) to = lim < 0 ? INT64_MIN : INT64_MAX;
    }
  }
  from_out = from;
  // Window [begin, end) of a sequence of `size` items.
  auto window = [&](int64_t size) {
    int64_t begin = std::max<int64_t>(from, 0);
    int64_t end = has_to ? std::min<int64_t>(to, size) : size;
    seq.start = begin;
    seq.count = end > begin ? end - begin : 0;
  };
  const Value& coll = seq.coll;
  switch (coll.kind()) {
    case Value::Kind::Array:
      seq.kind = LoopSeq::Kind::Array;
      window(static_cast<int64_t>(coll.as_array().size()));
      break;
    case Value::Kind::Range: {
      seq.kind = LoopSeq::Kind::Range;
      __int128 size = static_cast<__int128>(coll.range_last()) - coll.range_first() + 1;
      window(size <= 0 ? 0 : size > INT64_MAX ? INT64_MAX : static_cast<int64_t>(size));
      break;
    }
    case Value::Kind::Object: {
      const Object& o = coll.as_object();
      window(static_cast<int64_t>(o.size()));
      for (int64_t i = 0; i < seq.count; ++i) {
        const auto& kv = o[static_cast<size_t>(seq.start + i)];
        seq.items.push_back(Value::MakeArray({Value::String(kv.first), kv.second}));
      }
      seq.start = 0;
      break;
    }
    case Value::Kind::String:
      if (!coll.as_string().empty()) {
        window(1);
        if (seq.count == 1) seq.items.push_back(coll);
        seq.start = 0;
      }
      break;
    default:
      break;
  }
}

class ForNode : public Node {
 public:
  void Render(RenderState& st) const override {
    DepthGuard g(st);
    LoopSeq seq;
    int64_t from;
    LoopItems(spec, st, seq, from);
    seq.reversed = spec.reversed;
    // Remember where offset:continue resumes.
    int64_t next;
    if (__builtin_add_overflow(from, seq.count, &next)) next = INT64_MAX;
    if (spec.slot >= st.for_offsets.size()) st.for_offsets.resize(spec.slot + 1, 0);
    st.for_offsets[spec.slot] = next;
    if (seq.count == 0) {
      if (has_else) RenderBody(else_body, st);
      return;
    }
    int parent = -1;
    for (size_t i = st.loops.size(); i-- > 0;) {
      if (!st.loops[i].tablerow) {
        parent = static_cast<int>(i);
        break;
      }
    }
    st.loops.push_back(RenderState::Loop{seq.count, 0, 0, false, spec.name, parent});
    int loop = static_cast<int>(st.loops.size() - 1);
    size_t base = st.locals.size();
    st.locals.push_back({spec.var_id, Value(), -1});
    st.locals.push_back({spec.drop_id, Value(), loop});
    for (int64_t i = 0; i < seq.count; ++i) {
      st.CountIteration();
      st.loops[static_cast<size_t>(loop)].index0 = i;
      seq.Bind(i, st.locals[base]);
      RenderBody(body, st);
      if (st.interrupt == Interrupt::Break) {
        st.interrupt = Interrupt::None;
        break;
      }
      if (st.interrupt == Interrupt::Continue) st.interrupt = Interrupt::None;
    }
    st.locals.resize(base);
    st.loops.pop_back();
  }
  bool Blank() const override { return BodyBlank(body) && BodyBlank(else_body); }
  LoopSpec spec;
  Body body, else_body;
  bool has_else = false;
};

void AppendIntText(int64_t v, std::string& s) { s += std::to_string(v); }

class TablerowNode : public Node {
 public:
  void Render(RenderState& st) const override {
    DepthGuard g(st);
    Value coll_check = EvalCopy(spec.collection, st);
    if (coll_check.is_nil()) return;
    LoopSeq seq;
    int64_t from;
    LoopItems(spec, st, seq, from);
    int64_t length = seq.count;
    int64_t cols = length;
    if (spec.has_cols) {
      Value cv = EvalCopy(spec.cols, st);
      if (cv.kind() == Value::Kind::Float && std::isfinite(cv.as_float()) &&
          std::fabs(cv.as_float()) < 1e18) {
        cols = static_cast<int64_t>(cv.as_float());
      } else if (!cv.is_nil()) {
        cols = ToInteger(cv, "cols");
      }
    }
    if (cols <= 0) cols = length > 0 ? length : 1;
    st.Text("<tr class=\"row1\">\n");
    st.loops.push_back(RenderState::Loop{length, 0, cols, true, spec.name, -1});
    int loop = static_cast<int>(st.loops.size() - 1);
    size_t base = st.locals.size();
    st.locals.push_back({spec.var_id, Value(), -1});
    st.locals.push_back({spec.drop_id, Value(), loop});
    std::string buf;
    for (int64_t i = 0; i < length; ++i) {
      st.CountIteration();
      st.loops[static_cast<size_t>(loop)].index0 = i;
      seq.Bind(i, st.locals[base]);
      buf = "<td class=\"col";
      AppendIntText(i % cols + 1, buf);
      buf += "\">";
      st.Text(buf);
      RenderBody(body, st);
      st.Text("</td>");
      if (st.interrupt == Interrupt::Break) {
        st.interrupt = Interrupt::None;
        break;
      }
      if (st.interrupt == Interrupt::Continue) st.interrupt = Interrupt::None;
      if (i % cols == cols - 1 && i != length - 1) {
        buf = "</tr>\n<tr class=\"row";
        AppendIntText(i / cols + 2, buf);
        buf += "\">";
        st.Text(buf);
      }
    }
    st.locals.resize(base);
    st.loops.pop_back();
    st.Text("</tr>\n");
  }
  LoopSpec spec;
  Body body;
};

class CycleNode : public Node {
 public:
  void Render(RenderState& st) const override {
    int64_t* pos;
    if (has_group) {
      pos = &st.named_cycles[ToLiquidString(EvalCopy(group, st))];
    } else {
      if (slot >= st.cycle_pos.size()) st.cycle_pos.resize(slot + 1, 0);
      pos = &st.cycle_pos[slot];
    }
    // Ruby reads values[i] (nil past the end) and wraps only when storing.
    int64_t i = *pos;
    int64_t n = static_cast<int64_t>(values.size());
    *pos = i + 1 >= n ? 0 : i + 1;
    if (i < n) st.Text(ToLiquidString(EvalCopy(values[static_cast<size_t>(i)], st)));
  }
  bool has_group = false;
  Expr group;
  size_t slot = 0;  // unnamed cycles with the same values share a slot
  std::vector<Expr> values;
};

class CounterNode : public Node {
 public:
  void Render(RenderState& st) const override {
    size_t k = static_cast<size_t>(id);
    if (k >= st.counters.size()) {
      st.counters.resize(std::max(k + 1, st.names ? st.names->size() : 0));
      st.counter_set.resize(st.counters.size());
    }
    Value* slot = &st.counters[k];
    if (!st.counter_set[k]) {
      // Ruby's `environments.first[name] ||= 0` starts from the data's value.
      const Value* init = st.ctx.Find(name);
      *slot = init && init->kind() == Value::Kind::Int ? *init : Value::Int(0);
      st.counter_set[k] = 1;
    }
    int64_t v = slot->as_int();
    if (decrement) {
      if (v == INT64_MIN) throw RenderError("Liquid error: counter overflow");
      --v;
      *slot = Value::Int(v);
      st.Text(std::to_string(v));
    } else {
      if (v == INT64_MAX) throw RenderError("Liquid error: counter overflow");
      st.Text(std::to_string(v));
      *slot = Value::Int(v + 1);
    }
  }
  std::string name;
  int id = -1;
  bool decrement = false;
};

class InterruptNode : public Node {
 public:
  explicit InterruptNode(Interrupt i) : kind(i) {}
  void Render(RenderState& st) const override { st.interrupt = kind; }
  Interrupt kind;
};

class IfchangedNode : public Node {
 public:
  void Render(RenderState& st) const override {
    DepthGuard g(st);
    st.captures.emplace_back();
    RenderBody(body, st);
    std::string s = std::move(st.captures.back());
    st.captures.pop_back();
    if (!st.has_ifchanged || s != st.last_ifchanged) {
      st.has_ifchanged = true;
      st.last_ifchanged = s;
      st.Text(s);
    }
  }
  Body body;
};

class RawNode : public Node {
 public:
  explicit RawNode(std::string t) : text(std::move(t)) {}
  void Render(RenderState& st) const override { st.Text(text); }
  bool Blank() const override { return text.empty(); }
  std::string text;
};

class BlankNode : public Node {  // comment, doc, inline comment
 public:
  void Render(RenderState&) const override {}
  bool Blank() const override { return true; }
};

// Drops the whitespace-only text of a blank block (Ruby's remove_blank_strings).
void RemoveBlankStrings(Body& body) {
  body.erase(std::remove_if(body.begin(), body.end(),
                            [](const std::unique_ptr<Node>& n) {
                              return dynamic_cast<TextNode*>(n.get()) != nullptr;
                            }),
             body.end());
}

// ---------------------------------------------------------------------------
// Parser.

class Parser {
 public:
  Parser(std::string_view src, std::vector<OutputSite>& sites,
         std::vector<std::vector<std::string>>& paths, std::unordered_map<std::string, int>& names)
      : err_(src), src_(src), sites_(sites), paths_(paths), names_(names) {}

  void ParseDocument(Body& body) {
    Tokenizer tz(src_, 0, false, err_);
    Token end;
    ParseBody(tz, body, {}, end);
  }

 private:
  using Ends = std::initializer_list<std::string_view>;

  std::string_view TokenText(const Token& t) const { return src_.substr(t.offset, t.length); }

  // Interns a variable name so renders look bindings up by index.
  int Intern(const std::string& name) {
    auto it = names_.find(name);
    if (it != names_.end()) return it->second;
    int id = static_cast<int>(names_.size());
    names_.emplace(name, id);
    return id;
  }

  // One slot per distinct key (offset:continue names, unnamed cycles).
  static size_t Slot(std::unordered_map<std::string, size_t>& slots, const std::string& key) {
    auto it = slots.find(key);
    if (it != slots.end()) return it->second;
    size_t id = slots.size();
    slots.emplace(key, id);
    return id;
  }

  // Parses nodes until a tag named in `ends` (returned in `end`) or the end of input.
  void ParseBody(Tokenizer& tz, Body& body, Ends ends, Token& end) {
    while (true) {
      Token t = tz.Next();
      if (t.kind == Token::Kind::End) {
        end = t;
        return;
      }
      if (t.kind == Token::Kind::Text) {
        std::string text(t.text);
        if (trim_next_) LStrip(text);
        trim_next_ = false;
        if (!text.empty()) body.push_back(std::make_unique<TextNode>(std::move(text)));
        continue;
      }
      if (t.trim_left && !body.empty()) {
        if (auto* tn = dynamic_cast<TextNode*>(body.back().get())) {
          RStrip(tn->text);
          if (tn->text.empty()) body.pop_back();
        }
      }
      trim_next_ = t.trim_right;
      if (t.kind == Token::Kind::Output) {
        auto node = std::make_unique<OutputNode>();
        Lexer lx(t.text, t.offset + 2 + (t.trim_left ? 1 : 0), err_, TokenText(t));
        if (lx.Look(Tk::End)) {
          node->pipe.expr.kind = Expr::Kind::Literal;
        } else {
          ParsePipeline(lx, node->pipe);
        }
        lx.ExpectEnd();
        node->site = AddSite(t);
        body.push_back(std::move(node));
        continue;
      }
      for (std::string_view e : ends) {
        if (t.name == e) {
          end = t;
          return;
        }
      }
      ParseTag(tz, t, body);
    }
  }

  size_t AddSite(const Token& t) {
    OutputSite s;
    s.offset = t.offset;
    s.length = t.length;
    sites_.push_back(s);
    return sites_.size() - 1;
  }

  [[noreturn]] void Fail(const std::string& msg, const Token& t) const {
    err_.Fail(msg, t.offset, TokenText(t));
  }

  // Lexer over a tag's markup.
  Lexer MarkupLexer(const Token& t) const {
    size_t base = static_cast<size_t>(t.markup.data() - src_.data());
    return Lexer(t.markup, base, err_, TokenText(t));
  }

  void EnterBlock(const Token& t) {
    if (++depth_ > kMaxParseDepth) Fail("nesting too deep", t);
  }

  // Parses the body of a block tag up to one of `ends`; fails if never closed.
  Token BlockBody(Tokenizer& tz, const Token& open, Body& body, Ends ends) {
    Token end;
    ParseBody(tz, body, ends, end);
    if (end.kind == Token::Kind::End) {
      Fail("'" + std::string(open.name) + "' tag was never closed", open);
    }
    return end;
  }

  void ParseTag(Tokenizer& tz, const Token& t, Body& body) {
    std::string_view n = t.name;
    if (n == "assign") return ParseAssign(t, body);
    if (n == "capture") return ParseCapture(tz, t, body);
    if (n == "if" || n == "unless") return ParseIf(tz, t, body);
    if (n == "case") return ParseCase(tz, t, body);
    if (n == "for") return ParseFor(tz, t, body);
    if (n == "tablerow") return ParseTablerow(tz, t, body);
    if (n == "cycle") return ParseCycle(t, body);
    if (n == "increment" || n == "decrement") return ParseCounter(t, body);
    if (n == "echo") return ParseEcho(t, body);
    if (n == "raw") return ParseRaw(tz, t, body);
    if (n == "comment") return ParseComment(tz, t, body);
    if (n == "doc") return ParseDoc(tz, t, body);
    if (n == "#") {
      // Inline comment: in a liquid tag, every line must start with '#' too.
      if (tz.liquid_lines()) return;
      for (size_t i = 0; i < t.markup.size(); ++i) {
        if (t.markup[i] == '\n') {
          size_t j = i + 1;
          while (j < t.markup.size() && IsSpace(t.markup[j]) && t.markup[j] != '\n') ++j;
          if (j < t.markup.size() && t.markup[j] != '#' && t.markup[j] != '\n') {
            Fail("every line of an inline comment must start with '#'", t);
          }
        }
      }
      body.push_back(std::make_unique<BlankNode>());
      return;
    }
    if (n == "liquid") return ParseLiquid(t, body);
    if (n == "ifchanged") return ParseIfchanged(tz, t, body);
    if (n == "break" || n == "continue") {
      if (!t.markup.empty()) Fail("'" + std::string(n) + "' takes no arguments", t);
      body.push_back(
          std::make_unique<InterruptNode>(n == "break" ? Interrupt::Break : Interrupt::Continue));
      return;
    }
    if (n == "include" || n == "render") {
      Fail("the '" + std::string(n) +
               "' tag is not supported (templates have no file system to load partials from)",
           t);
    }
    if (n == "else" || n == "elsif" || n == "when" || n.rfind("end", 0) == 0) {
      Fail("unknown tag '" + std::string(n) + "'", t);
    }
    static const std::vector<std::string_view> kTags = {
        "assign", "capture", "case",     "comment", "cycle",     "decrement",
        "doc",    "echo",    "for",      "if",      "ifchanged", "increment",
        "liquid", "raw",     "tablerow", "unless",  "break",     "continue"};
    std::string hint = hyperline::ClosestName(n, kTags);
    Fail("unknown tag '" + std::string(n) + "'" +
             (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"),
         t);
  }

  void ParseAssign(const Token& t, Body& body) {
    size_t eq = t.markup.find('=');
    if (eq == std::string_view::npos) Fail("assign needs 'name = value'", t);
    std::string_view target = Trim(t.markup.substr(0, eq));
    // Ruby Liquid's VariableSignature: word characters, '-', '.', '[', ']', '(', ')'.
    if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
          return IsWordChar(c) || c == '-' || c == '.' || c == '[' || c == ']' || c == '(' ||
                 c == ')';
        })) {
      Fail("invalid variable name in assign", t);
    }
    auto node = std::make_unique<AssignNode>();
    node->name = std::string(target);
    std::string_view rhs = t.markup.substr(eq + 1);
    size_t base = static_cast<size_t>(rhs.data() - src_.data());
    Lexer lx(rhs, base, err_, TokenText(t));
    ParsePipeline(lx, node->pipe);
    lx.ExpectEnd();
    assigned_.insert(node->name);
    node->id = Intern(node->name);
    body.push_back(std::move(node));
  }

  // True when `name` is bound by the template here (not read from the context).
  bool Bound(const std::string& name) const {
    return name == "forloop" || name == "tablerowloop" || assigned_.count(name) > 0 ||
           std::find(loop_vars_.begin(), loop_vars_.end(), name) != loop_vars_.end();
  }

  void ParseCapture(Tokenizer& tz, const Token& t, Body& body) {
    std::string_view name = Trim(t.markup);
    if (name.size() >= 2 && (name[0] == '\'' || name[0] == '"') && name.back() == name[0]) {
      name = name.substr(1, name.size() - 2);
    } else if (name.empty() || !IsWordChar(name[0]) ||
               !std::all_of(name.begin(), name.end(),
                            [](char c) { return IsWordChar(c) || c == '-'; })) {
      Fail("capture needs a variable name", t);
    }
    auto node = std::make_unique<CaptureNode>();
    node->name = std::string(name);
    node->id = Intern(node->name);
    EnterBlock(t);
    BlockBody(tz, t, node->body, {"endcapture"});
    --depth_;
    assigned_.insert(node->name);
    body.push_back(std::move(node));
  }

  void ParseIf(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<IfNode>();
    node->negate_first = t.name == "unless";
    std::string end_name = t.name == "unless" ? "endunless" : "endif";
    EnterBlock(t);
    Token cur = t;
    while (true) {
      IfNode::Branch br;
      ParseCondition(cur, br.cond);
      node->branches.push_back(std::move(br));
      Token end = BlockBody(tz, t, node->branches.back().body, {"elsif", "else", end_name});
      if (end.name == "elsif") {
        cur = end;
        continue;
      }
      if (end.name == "else") {
        node->has_else = true;
        Token e2 = BlockBody(tz, t, node->else_body, {"elsif", "else", end_name});
        // Ruby Liquid parses but never reaches blocks after the first else.
        while (e2.name != end_name) {
          if (e2.name == "elsif") {
            Condition ignored;
            ParseCondition(e2, ignored);
          }
          Body ignored_body;
          e2 = BlockBody(tz, t, ignored_body, {"elsif", "else", end_name});
        }
      }
      break;
    }
    --depth_;
    if (node->Blank()) {
      for (auto& b : node->branches) RemoveBlankStrings(b.body);
      RemoveBlankStrings(node->else_body);
    }
    body.push_back(std::move(node));
  }

  void ParseCondition(const Token& t, Condition& c) {
    Lexer lx = MarkupLexer(t);
    if (lx.Look(Tk::End)) Fail("'" + std::string(t.name) + "' needs a condition", t);
    while (true) {
      Comparison cmp;
      ParseExpr(lx, cmp.left, 0);
      if (lx.Look(Tk::Comparison)) {
        std::string_view op = lx.Consume().text;
        if (op == "==")
          cmp.op = CmpOp::Eq;
        else if (op == "!=" || op == "<>")
          cmp.op = CmpOp::Ne;
        else if (op == "<")
          cmp.op = CmpOp::Lt;
        else if (op == ">")
          cmp.op = CmpOp::Gt;
        else if (op == "<=")
          cmp.op = CmpOp::Le;
        else if (op == ">=")
          cmp.op = CmpOp::Ge;
        else
          cmp.op = CmpOp::Contains;
        ParseExpr(lx, cmp.right, 0);
      }
      c.items.push_back(std::move(cmp));
      if (lx.AcceptId("and")) {
        c.joins_and.push_back(true);
      } else if (lx.AcceptId("or")) {
        c.joins_and.push_back(false);
      } else {
        break;
      }
    }
    lx.ExpectEnd();
  }

  void ParseCase(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<CaseNode>();
    {
      Lexer lx = MarkupLexer(t);
      ParseExpr(lx, node->subject_expr, 0);
      lx.ExpectEnd();
    }
    EnterBlock(t);
    Body ignored;
    Token end = BlockBody(tz, t, ignored, {"when", "else", "endcase"});
    while (end.name != "endcase") {
      node->bodies.emplace_back();
      size_t idx = node->bodies.size() - 1;
      if (end.name == "when") {
        Lexer lx = MarkupLexer(end);
        if (lx.Look(Tk::End)) Fail("'when' needs a value", end);
        while (true) {
          CaseNode::When w;
          ParseExpr(lx, w.value, 0);
          w.body = idx;
          node->whens.push_back(std::move(w));
          if (lx.Accept(Tk::Comma) || lx.AcceptId("or")) continue;
          break;
        }
        lx.ExpectEnd();
      } else {
        CaseNode::When w;
        w.is_else = true;
        w.body = idx;
        node->whens.push_back(std::move(w));
      }
      end = BlockBody(tz, t, node->bodies[idx], {"when", "else", "endcase"});
    }
    --depth_;
    if (node->Blank()) {
      for (auto& b : node->bodies) RemoveBlankStrings(b);
    }
    body.push_back(std::move(node));
  }

  // `var in collection [reversed] [limit: x] [offset: y|continue] [cols: z]`
  void ParseLoopSpec(const Token& t, LoopSpec& spec, bool tablerow) {
    Lexer lx = MarkupLexer(t);
    Lexeme var = lx.Expect(Tk::Id, "a loop variable name");
    spec.var = std::string(var.text);
    if (!lx.AcceptId("in")) lx.Fail("expected 'in'");
    size_t start = lx.Peek().offset;
    ParseExpr(lx, spec.collection, 0);
    size_t stop = lx.Peek().offset;
    std::string_view coll_text = Trim(src_.substr(start, stop - start));
    spec.name = spec.var + "-" + std::string(coll_text);
    while (!lx.Look(Tk::End)) {
      if (lx.Accept(Tk::Comma) && lx.Look(Tk::End)) break;
      if (lx.AcceptId("reversed")) {
        spec.reversed = true;
        continue;
      }
      Lexeme attr = lx.Expect(Tk::Id, "'limit', 'offset' or 'reversed'");
      lx.Expect(Tk::Colon, "':'");
      if (attr.text == "limit") {
        spec.has_limit = true;
        ParseExpr(lx, spec.limit, 0);
      } else if (attr.text == "offset") {
        if (!tablerow && lx.Look(Tk::Id) && lx.Peek().text == "continue") {
          lx.Consume();
          spec.offset_continue = true;
        } else {
          spec.has_offset = true;
          ParseExpr(lx, spec.offset, 0);
        }
      } else if (attr.text == "cols" && tablerow) {
        spec.has_cols = true;
        ParseExpr(lx, spec.cols, 0);
      } else {
        err_.Fail("unknown loop attribute '" + std::string(attr.text) + "'", attr.offset,
                  TokenText(t));
      }
    }
    spec.var_id = Intern(spec.var);
    spec.drop_id = Intern(tablerow ? "tablerowloop" : "forloop");
    spec.slot = Slot(loop_slots_, spec.name);
  }

  void ParseFor(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<ForNode>();
    ParseLoopSpec(t, node->spec, false);
    EnterBlock(t);
    loop_vars_.push_back(node->spec.var);
    Token end = BlockBody(tz, t, node->body, {"else", "endfor"});
    loop_vars_.pop_back();
    if (end.name == "else") {
      node->has_else = true;
      Token e2 = BlockBody(tz, t, node->else_body, {"else", "endfor"});
      if (e2.name != "endfor") Fail("unexpected 'else'", e2);
    }
    --depth_;
    if (node->Blank()) {
      RemoveBlankStrings(node->body);
      RemoveBlankStrings(node->else_body);
    }
    body.push_back(std::move(node));
  }

  void ParseTablerow(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<TablerowNode>();
    ParseLoopSpec(t, node->spec, true);
    EnterBlock(t);
    loop_vars_.push_back(node->spec.var);
    BlockBody(tz, t, node->body, {"endtablerow"});
    loop_vars_.pop_back();
    --depth_;
    body.push_back(std::move(node));
  }

  void ParseCycle(const Token& t, Body& body) {
    auto node = std::make_unique<CycleNode>();
    Lexer lx = MarkupLexer(t);
    if (lx.Look(Tk::End)) Fail("cycle needs values", t);
    Expr first;
    ParseExpr(lx, first, 0);
    size_t values_start = lx.Peek().offset;
    if (lx.Accept(Tk::Colon)) {
      node->has_group = true;
      node->group = std::move(first);
      values_start = lx.Peek().offset;
      Expr v;
      ParseExpr(lx, v, 0);
      node->values.push_back(std::move(v));
    } else {
      node->values.push_back(std::move(first));
      values_start = static_cast<size_t>(t.markup.data() - src_.data());
    }
    while (lx.Accept(Tk::Comma)) {
      Expr v;
      ParseExpr(lx, v, 0);
      node->values.push_back(std::move(v));
    }
    lx.ExpectEnd();
    size_t values_end = static_cast<size_t>(t.markup.data() - src_.data()) + t.markup.size();
    if (!node->has_group) {
      // Unnamed cycles share state when their values are spelled the same.
      std::string key;
      for (char c : src_.substr(values_start, values_end - values_start)) {
        if (!IsSpace(c)) key.push_back(c);
      }
      node->slot = Slot(cycle_slots_, key);
    }
    body.push_back(std::move(node));
  }

  void ParseCounter(const Token& t, Body& body) {
    Lexer lx = MarkupLexer(t);
    Lexeme id = lx.Expect(Tk::Id, "a variable name");
    lx.ExpectEnd();
    auto node = std::make_unique<CounterNode>();
    node->name = std::string(id.text);
    node->decrement = t.name == "decrement";
    node->id = Intern(node->name);
    assigned_.insert(node->name);
    body.push_back(std::move(node));
  }

  void ParseEcho(const Token& t, Body& body) {
    auto node = std::make_unique<OutputNode>();
    Lexer lx = MarkupLexer(t);
    if (lx.Look(Tk::End)) {
      node->pipe.expr.kind = Expr::Kind::Literal;
    } else {
      ParsePipeline(lx, node->pipe);
    }
    lx.ExpectEnd();
    node->site = AddSite(t);
    body.push_back(std::move(node));
  }

  void ParseRaw(Tokenizer& tz, const Token& t, Body& body) {
    if (tz.liquid_lines()) Fail("raw is not allowed in a liquid tag", t);
    if (!t.markup.empty()) Fail("raw takes no arguments", t);
    std::string_view text;
    Token end;
    if (!tz.ReadRaw("endraw", text, end)) Fail("'raw' tag was never closed", t);
    std::string s(text);
    if (trim_next_) LStrip(s);
    if (end.trim_left) RStrip(s);
    trim_next_ = end.trim_right;
    body.push_back(std::make_unique<RawNode>(std::move(s)));
  }

  // Skips a comment body, honouring nested comment and raw blocks.
  void ParseComment(Tokenizer& tz, const Token& t, Body& body) {
    int nesting = 1;
    while (true) {
      Token k = tz.Next();
      if (k.kind == Token::Kind::End) Fail("'comment' tag was never closed", t);
      if (k.kind != Token::Kind::Tag) continue;
      if (k.name == "comment") {
        ++nesting;
        if (nesting > kMaxParseDepth) Fail("nesting too deep", k);
      } else if (k.name == "endcomment") {
        if (--nesting == 0) {
          if (!tz.liquid_lines()) ApplyEndTrim(k, body);
          break;
        }
      } else if (k.name == "raw" && !tz.liquid_lines()) {
        std::string_view text;
        Token end;
        if (!tz.ReadRaw("endraw", text, end)) Fail("'raw' tag was never closed", k);
      }
    }
    body.push_back(std::make_unique<BlankNode>());
  }

  // Whitespace control of a closing tag swallowed by a comment/doc body.
  void ApplyEndTrim(const Token& k, Body&) { trim_next_ = k.trim_right; }

  // A doc body is free text up to `{% enddoc %}`; only a nested doc is refused.
  void ParseDoc(Tokenizer& tz, const Token& t, Body& body) {
    if (!t.markup.empty()) Fail("doc takes no arguments", t);
    if (tz.liquid_lines()) {
      while (true) {
        Token k = tz.Next();
        if (k.kind == Token::Kind::End) Fail("'doc' tag was never closed", t);
        if (k.name == "doc") Fail("nested doc tags are not allowed", k);
        if (k.name == "enddoc") break;
      }
    } else {
      std::string_view text;
      Token end;
      if (!tz.ReadRaw("enddoc", text, end)) Fail("'doc' tag was never closed", t);
      for (size_t p = text.find("{%"); p != std::string_view::npos; p = text.find("{%", p + 2)) {
        size_t q = p + 2;
        if (q < text.size() && text[q] == '-') ++q;
        while (q < text.size() && IsSpace(text[q])) ++q;
        if (text.compare(q, 3, "doc") == 0 && (q + 3 >= text.size() || !IsWordChar(text[q + 3]))) {
          err_.Fail("nested doc tags are not allowed",
                    static_cast<size_t>(text.data() - src_.data()) + p, text.substr(p, 20));
        }
      }
      trim_next_ = end.trim_right;
    }
    body.push_back(std::make_unique<BlankNode>());
  }

  void ParseLiquid(const Token& t, Body& body) {
    EnterBlock(t);
    size_t base = static_cast<size_t>(t.markup.data() - src_.data());
    Tokenizer lines(t.markup, base, true, err_);
    Token end;
    ParseBody(lines, body, {}, end);
    --depth_;
  }

  void ParseIfchanged(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<IfchangedNode>();
    EnterBlock(t);
    BlockBody(tz, t, node->body, {"endifchanged"});
    --depth_;
    body.push_back(std::move(node));
  }

  // expression ('|' filter (':' args)?)*
  void ParsePipeline(Lexer& lx, Pipeline& p) {
    ParseExpr(lx, p.expr, 0);
    while (lx.Accept(Tk::Pipe)) {
      Lexeme name = lx.Expect(Tk::Id, "a filter name");
      FilterCall f;
      f.name = std::string(name.text);
      if (lx.Accept(Tk::Colon)) {
        while (true) {
          if (lx.Look(Tk::Id) && lx.Look(Tk::Colon, 1)) {
            std::string key(lx.Consume().text);
            lx.Consume();
            Expr e;
            ParseExpr(lx, e, 0);
            f.kwargs.emplace_back(std::move(key), std::move(e));
          } else {
            Expr e;
            ParseExpr(lx, e, 0);
            f.args.push_back(std::move(e));
          }
          if (!lx.Accept(Tk::Comma)) break;
        }
      }
      int min_args = 0, max_args = 0;
      f.fn = FindFilter(f.name, min_args, max_args);
      if (!f.fn) {
        std::string hint = SuggestFilter(f.name);
        err_.Fail("unknown filter '" + f.name + "'" +
                      (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"),
                  name.offset, name.text);
      }
      // Only `default` takes a keyword argument (allow_false); Ruby passes any
      // other as an extra positional hash, which no standard filter accepts.
      if (!f.kwargs.empty() && f.name != "default") {
        err_.Fail("filter '" + f.name + "' takes no keyword arguments", name.offset, name.text);
      }
      int n = static_cast<int>(f.args.size());
      if (n < min_args || n > max_args) {
        err_.Fail("filter '" + f.name + "' expects " +
                      (min_args == max_args
                           ? std::to_string(min_args)
                           : std::to_string(min_args) + " to " + std::to_string(max_args)) +
                      " argument(s), got " + std::to_string(n),
                  name.offset, name.text);
      }
      p.filters.push_back(std::move(f));
    }
  }

  void ParseExpr(Lexer& lx, Expr& e, int nesting) {
    if (nesting > kMaxParseDepth) lx.Fail("expression nested too deeply");
    const Lexeme& l = lx.Peek();
    switch (l.type) {
      case Tk::Id: {
        Lexeme id = lx.Consume();
        std::string_view w = id.text;
        bool has_lookups = lx.Look(Tk::Dot) || lx.Look(Tk::OpenSquare);
        if (!has_lookups) {
          if (w == "true" || w == "false") {
            e.kind = Expr::Kind::Literal;
            e.literal = Value::Bool(w == "true");
            return;
          }
          if (w == "nil" || w == "null") {
            e.kind = Expr::Kind::Literal;
            return;
          }
          if (w == "empty") {
            e.kind = Expr::Kind::Literal;
            e.literal = Value::Empty();
            return;
          }
          if (w == "blank") {
            e.kind = Expr::Kind::Literal;
            e.literal = Value::Blank();
            return;
          }
        }
        e.kind = Expr::Kind::Variable;
        e.root = std::string(w);
        e.root_id = Intern(e.root);
        ParseLookups(lx, e, nesting);
        return;
      }
      case Tk::OpenSquare: {
        lx.Consume();
        Expr inner;
        ParseExpr(lx, inner, nesting + 1);
        lx.Expect(Tk::CloseSquare, "']'");
        e.kind = Expr::Kind::Variable;
        if (inner.kind == Expr::Kind::Literal && inner.literal.kind() == Value::Kind::String) {
          e.root = inner.literal.as_string();
          e.root_id = Intern(e.root);
        } else {
          e.dynamic_root = std::make_unique<Expr>(std::move(inner));
        }
        ParseLookups(lx, e, nesting);
        return;
      }
      case Tk::String: {
        Lexeme s = lx.Consume();
        e.kind = Expr::Kind::Literal;
        e.literal = Value::String(s.text.substr(1, s.text.size() - 2));
        return;
      }
      case Tk::Number: {
        Lexeme num = lx.Consume();
        e.kind = Expr::Kind::Literal;
        e.literal = NumberLiteral(num.text);
        return;
      }
      case Tk::OpenRound: {
        lx.Consume();
        auto lo = std::make_unique<Expr>();
        ParseExpr(lx, *lo, nesting + 1);
        lx.Expect(Tk::DotDot, "'..'");
        auto hi = std::make_unique<Expr>();
        ParseExpr(lx, *hi, nesting + 1);
        lx.Expect(Tk::CloseRound, "')'");
        e.kind = Expr::Kind::Range;
        e.lo = std::move(lo);
        e.hi = std::move(hi);
        return;
      }
      default:
        lx.Fail("expected a value");
    }
  }

  static Value NumberLiteral(std::string_view text) {
    std::string s(text);
    if (s.find('.') != std::string::npos) return Value::Float(ParseDouble(s));
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE) return Value::Decimal(s);
    return Value::Int(v);
  }

  void ParseLookups(Lexer& lx, Expr& e, int nesting) {
    bool dynamic_seen = e.dynamic_root != nullptr;
    std::vector<std::string> path;
    if (!dynamic_seen) path.push_back(e.root);
    while (true) {
      if (lx.Accept(Tk::Dot)) {
        Lexeme id = lx.Expect(Tk::Id, "a property name after '.'");
        PathSeg seg;
        seg.key = std::string(id.text);
        seg.command = seg.key == "size" || seg.key == "first" || seg.key == "last";
        if (!dynamic_seen) path.push_back(seg.key);
        e.path.push_back(std::move(seg));
      } else if (lx.Accept(Tk::OpenSquare)) {
        Expr inner;
        ParseExpr(lx, inner, nesting + 1);
        lx.Expect(Tk::CloseSquare, "']'");
        PathSeg seg;
        if (inner.kind == Expr::Kind::Literal && inner.literal.kind() == Value::Kind::String) {
          seg.key = inner.literal.as_string();
          if (!dynamic_seen) path.push_back(seg.key);
        } else if (inner.kind == Expr::Kind::Literal && inner.literal.kind() == Value::Kind::Int) {
          seg.kind = PathSeg::Kind::Index;
          seg.index = inner.literal.as_int();
          dynamic_seen = true;
        } else {
          seg.kind = PathSeg::Kind::Dynamic;
          seg.dynamic = std::make_unique<Expr>(std::move(inner));
          dynamic_seen = true;
        }
        e.path.push_back(std::move(seg));
      } else {
        break;
      }
    }
    if (!path.empty() && !Bound(path[0])) paths_.push_back(std::move(path));
  }

  ErrorReporter err_;
  std::string_view src_;
  std::vector<OutputSite>& sites_;
  std::vector<std::vector<std::string>>& paths_;
  // Names the template binds itself at the current point of the source: loop
  // variables while inside their loop, assign/capture/counter names after
  // their tag. Reads of these are not context reads (VariablePaths).
  std::vector<std::string> loop_vars_;
  std::unordered_set<std::string> assigned_;
  std::unordered_map<std::string, int>& names_;
  std::unordered_map<std::string, size_t> loop_slots_;
  std::unordered_map<std::string, size_t> cycle_slots_;
  bool trim_next_ = false;
  int depth_ = 0;
};

class CompiledTemplate : public Template {
 public:
  explicit CompiledTemplate(std::string_view source) : source_(source) {
    std::vector<std::vector<std::string>> raw_paths;
    Parser p(source_, sites_, raw_paths, names_);
    p.ParseDocument(body_);
    std::set<std::vector<std::string>> seen;
    for (auto& path : raw_paths) {
      if (seen.insert(path).second) paths_.push_back(std::move(path));
    }
  }

  void Render(const Context& ctx, Sink& sink, const Limits& limits) const override {
    RenderState st(ctx, sink, limits, sites_);
    st.names = &names_;
    try {
      RenderBody(body_, st);
    } catch (const RenderError&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      throw RenderError(std::string("Liquid error: ") + e.what());
    }
  }

  std::vector<OutputSite>& output_sites() override { return sites_; }

  std::vector<std::vector<std::string>> VariablePaths() const override { return paths_; }

 private:
  std::string source_;
  Body body_;
  std::vector<OutputSite> sites_;
  std::vector<std::vector<std::string>> paths_;
  std::unordered_map<std::string, int> names_;
};

}  // namespace

// Compiles `source` (see liquid.hpp).
std::unique_ptr<Template> Template::Parse(std::string_view source) {
  return std::make_unique<CompiledTemplate>(source);
}

// Sets or replaces a top-level variable.
void Context::Set(std::string name, Value value) {
  for (auto& kv : vars_) {
    if (kv.first == name) {
      kv.second = std::move(value);
      return;
    }
  }
  vars_.emplace_back(std::move(name), std::move(value));
}

// Finds a top-level variable by name.
const Value* Context::Find(std::string_view name) const {
  for (const auto& kv : vars_) {
    if (kv.first == name) return &kv.second;
  }
  return nullptr;
}

// Finds a top-level variable by name, for writing.
Value* Context::FindMutable(std::string_view name) {
  for (auto& kv : vars_) {
    if (kv.first == name) return &kv.second;
  }
  return nullptr;
}

// Parses and renders `source` with the members of `data` as variables.
std::string RenderString(std::string_view source, const Value& data) {
  auto t = Template::Parse(source);
  Context ctx;
  if (data.kind() == Value::Kind::Object) {
    for (const auto& kv : data.as_object()) ctx.Set(kv.first, kv.second);
  }
  StringSink sink;
  t->Render(ctx, sink);
  return std::move(sink.out);
}

}  // namespace hyperline::liquid
