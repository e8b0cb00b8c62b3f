// json_check.cpp: see json_check.hpp.
#include "core/json_check.hpp"

#include "core/ascii.hpp"

namespace hyperline {
namespace {

class Checker {
 public:
  explicit Checker(std::string_view s) : s_(s) {}

  JsonCheckResult Run() {
    SkipSpace();
    if (!Value()) return result_;
    SkipSpace();
    if (i_ != s_.size()) return Fail("unexpected text after the JSON value");
    return result_;
  }

 private:
  JsonCheckResult Fail(const char* reason) {
    if (result_.ok) {
      result_.ok = false;
      result_.offset = i_;
      result_.reason = reason;
    }
    return result_;
  }
  bool Error(const char* reason) {
    Fail(reason);
    return false;
  }
  void SkipSpace() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) {
      ++i_;
    }
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return Error("invalid literal");
    i_ += word.size();
    return true;
  }

  // Reads 4 hex digits at `at` into cp.
  bool Hex4(size_t at, unsigned& cp) const {
    if (at + 4 > s_.size()) return false;
    cp = 0;
    for (size_t k = at; k < at + 4; ++k) {
      int h = HexDigitValue(s_[k]);
      if (h < 0) return false;
      cp = cp * 16 + static_cast<unsigned>(h);
    }
    return true;
  }

  bool Number() {
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !AsciiDigit(s_[i_])) return Error("invalid number");
    if (s_[i_] == '0') {
      ++i_;
    } else {
      while (i_ < s_.size() && AsciiDigit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !AsciiDigit(s_[i_]))
        return Error("invalid number: digit expected after '.'");
      while (i_ < s_.size() && AsciiDigit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !AsciiDigit(s_[i_])) return Error("invalid number: exponent expected");
      while (i_ < s_.size() && AsciiDigit(s_[i_])) ++i_;
    }
    return true;
  }

  bool String() {
    ++i_;  // opening quote
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return Error("control character inside a string (escape it)");
      if (c == '\\') {
        ++i_;
        if (i_ >= s_.size()) break;
        char e = s_[i_];
        if (e == 'u') {
          // Postgres jsonb refuses \u0000 and unpaired surrogates: so do we,
          // or the insert of the payload would fail the user's statement.
          unsigned cp = 0;
          if (!Hex4(i_ + 1, cp)) return Error("invalid \\u escape");
          i_ += 5;
          if (cp == 0) return Error("\\u0000 cannot be stored by Postgres");
          if (cp >= 0xDC00 && cp <= 0xDFFF)
            return Error("unpaired Unicode surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low = 0;
            if (i_ + 1 >= s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u' || !Hex4(i_ + 2, low) ||
                low < 0xDC00 || low > 0xDFFF) {
              return Error("unpaired Unicode surrogate in \\u escape");
            }
            i_ += 6;
          }
          continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
            e != 't') {
          return Error("invalid escape in a string");
        }
      }
      ++i_;
    }
    return Error("unterminated string");
  }

  // Iterative over containers (explicit stack): no recursion on hostile input.
  bool Value() {
    char stack[kMaxJsonDepth];
    int depth = 0;
    for (;;) {
      SkipSpace();
      if (i_ >= s_.size()) return Error("unexpected end of JSON");
      char c = s_[i_];
      bool scalar = true;
      if (c == '{' || c == '[') {
        if (depth == kMaxJsonDepth) return Error("JSON nested too deeply");
        stack[depth++] = c;
        ++i_;
        SkipSpace();
        if (i_ < s_.size() && s_[i_] == (c == '{' ? '}' : ']')) {
          ++i_;
          --depth;
        } else {
          scalar = false;
          if (c == '{') {
            if (i_ >= s_.size() || s_[i_] != '"') return Error("expected a string key");
            if (!String()) return false;
            SkipSpace();
            if (i_ >= s_.size() || s_[i_] != ':') return Error("expected ':' after an object key");
            ++i_;
          }
          continue;  // parse the first member's value
        }
      } else if (c == '"') {
        if (!String()) return false;
      } else if (c == 't') {
        if (!Literal("true")) return false;
      } else if (c == 'f') {
        if (!Literal("false")) return false;
      } else if (c == 'n') {
        if (!Literal("null")) return false;
      } else if (c == '-' || AsciiDigit(c)) {
        if (!Number()) return false;
      } else {
        return Error("unexpected character");
      }
      (void)scalar;
      // After a value: close containers or move to the next member.
      for (;;) {
        if (depth == 0) return true;
        SkipSpace();
        if (i_ >= s_.size()) return Error("unexpected end of JSON");
        char open = stack[depth - 1];
        char close = open == '{' ? '}' : ']';
        if (s_[i_] == close) {
          ++i_;
          --depth;
          continue;
        }
        if (s_[i_] != ',')
          return Error(open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        ++i_;
        if (open == '{') {
          SkipSpace();
          if (i_ >= s_.size() || s_[i_] != '"') return Error("expected a string key");
          if (!String()) return false;
          SkipSpace();
          if (i_ >= s_.size() || s_[i_] != ':') return Error("expected ':' after an object key");
          ++i_;
        }
        break;  // parse the next value
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
  JsonCheckResult result_;
};

}  // namespace

JsonCheckResult CheckJsonSyntax(std::string_view text) { return Checker(text).Run(); }

}  // namespace hyperline
