// lexer.cpp: the Tokenizer and the Lexer (see lexer.hpp).
#include "core/liquid/lexer.hpp"

#include <string>

namespace hyperline::liquid {

// Throws a ParseError naming line and column (in characters) of `offset`.
void ErrorReporter::Fail(const std::string& msg, size_t offset, std::string_view near) const {
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

// The next token: a run of text, an output, a tag (or a liquid-tag line).
Token Tokenizer::Next() {
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

// Reads raw text up to `{% endNAME %}` (see lexer.hpp).
bool Tokenizer::ReadRaw(std::string_view end_name, std::string_view& body, Token& end_tok) {
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
    while (q < src_.size() && AsciiSpace(src_[q])) ++q;
    if (src_.compare(q, end_name.size(), end_name) == 0) {
      size_t r = q + end_name.size();
      while (r < src_.size() && AsciiSpace(src_[r])) ++r;
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

// Offset of the next `{{` or `{%` at or after `from`, or npos.
size_t Tokenizer::FindOpen(size_t from) const {
  size_t p = from;
  while (true) {
    size_t i = src_.find('{', p);
    if (i == std::string_view::npos || i + 1 >= src_.size()) return std::string_view::npos;
    if (src_[i + 1] == '{' || src_[i + 1] == '%') return i;
    p = i + 1;
  }
}

// Splits a tag's inner text into name and markup.
void Tokenizer::SplitTag(std::string_view inner, Token& t) const {
  size_t i = 0;
  while (i < inner.size() && AsciiSpace(inner[i])) ++i;
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
Token Tokenizer::NextLine() {
  Token t;
  while (pos_ < src_.size()) {
    size_t nl = src_.find('\n', pos_);
    size_t end = nl == std::string_view::npos ? src_.size() : nl;
    std::string_view line = src_.substr(pos_, end - pos_);
    size_t line_off = pos_;
    pos_ = nl == std::string_view::npos ? src_.size() : nl + 1;
    size_t lead = 0;
    while (lead < line.size() && AsciiSpace(line[lead])) ++lead;
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

// Cuts `markup` into lexemes up front; the parser then walks them.
Lexer::Lexer(std::string_view markup, size_t base, const ErrorReporter& err, std::string_view near)
    : err_(err), near_(near) {
  size_t i = 0;
  const size_t n = markup.size();
  while (true) {
    while (i < n && AsciiSpace(markup[i])) ++i;
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
    } else if (rest.rfind("contains", 0) == 0 && rest.size() > 8 && AsciiSpace(rest[8])) {
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

// Throws a ParseError naming the lexeme at the current position.
void Lexer::Fail(const std::string& msg) const {
  const Lexeme& l = Peek();
  std::string m = msg;
  if (l.type == Tk::End) {
    m += " (found end of markup)";
  } else {
    m += " (found '" + std::string(l.text) + "')";
  }
  err_.Fail(m, l.offset, near_);
}

}  // namespace hyperline::liquid
