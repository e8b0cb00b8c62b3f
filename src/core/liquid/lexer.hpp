// lexer.hpp: the first phase of parsing a Liquid template.
//
// Vocabulary: the Tokenizer cuts template source into Tokens (text, `{{ }}`
// outputs, `{% %}` tags, or the lines of a `liquid` tag); the Lexer cuts the
// markup inside one token into Lexemes (identifiers, strings, numbers,
// comparison operators, punctuation), as Ruby Liquid's Lexer does. Both report
// errors through an ErrorReporter, which knows the whole source and so the line
// and column of every offset. The parser (parser.cpp) consumes both.
#pragma once
#include "core/cpp_only.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/ascii.hpp"
#include "core/liquid.hpp"

namespace hyperline::liquid {

// Ruby's \w: ASCII letters, digits and '_'.
inline bool IsWordChar(char c) { return AsciiAlnum(c) || c == '_'; }

// Drops leading and trailing whitespace.
inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && AsciiSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && AsciiSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Ruby's String#rstrip (whitespace and NUL).
inline void RStrip(std::string& s) {
  while (!s.empty() && (AsciiSpace(s.back()) || s.back() == '\0')) s.pop_back();
}

// Ruby's String#lstrip (whitespace and NUL).
inline void LStrip(std::string& s) {
  size_t i = 0;
  while (i < s.size() && (AsciiSpace(s[i]) || s[i] == '\0')) ++i;
  s.erase(0, i);
}

// True when `s` has only whitespace (a blank text node).
inline bool IsWhitespaceOnly(std::string_view s) {
  for (char c : s) {
    if (!AsciiSpace(c)) return false;
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
  // Throws ParseError: `msg` at `offset`, quoting (up to 80 bytes of) `near`.
  [[noreturn]] void Fail(const std::string& msg, size_t offset, std::string_view near) const;
  std::string_view src() const { return src_; }

 private:
  std::string_view src_;
};

// Produces tokens from template source, or from the lines of a `liquid` tag.
class Tokenizer {
 public:
  // `src` starts at byte `base` of the template (for error positions).
  Tokenizer(std::string_view src, size_t base, bool liquid_lines, const ErrorReporter& err)
      : src_(src), base_(base), lines_(liquid_lines), err_(err) {}

  bool liquid_lines() const { return lines_; }

  // The next token; kind End at the end of the source.
  Token Next();

  // Reads raw text up to `{% endNAME %}` into `body` and the closing tag into
  // `end_tok`; false when it is missing. Used by raw and doc.
  bool ReadRaw(std::string_view end_name, std::string_view& body, Token& end_tok);

 private:
  size_t FindOpen(size_t from) const;
  void SplitTag(std::string_view inner, Token& t) const;
  Token NextLine();

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
  // `markup` starts at byte `base` of the source; errors quote `near`.
  Lexer(std::string_view markup, size_t base, const ErrorReporter& err, std::string_view near);

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
  void ExpectEnd() const {
    if (!Look(Tk::End)) Fail("unexpected token");
  }
  // Throws ParseError: `msg` and the lexeme found at the current position.
  [[noreturn]] void Fail(const std::string& msg) const;

 private:
  const ErrorReporter& err_;
  std::string_view near_;
  std::vector<Lexeme> toks_;
  size_t p_ = 0;
};

}  // namespace hyperline::liquid
