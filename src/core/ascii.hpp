// ascii.hpp: ASCII character classes, case mapping and hex digits.
//
// Why not <cctype> (isalpha, isdigit, tolower, ...): their results depend on the
// process locale, which inside a Postgres backend is the database's LC_CTYPE
// (under a Turkish locale tolower('I') is not 'i'; under Latin-1 locales isalpha
// accepts bytes of UTF-8 text). Liquid syntax, Ruby's string methods, JSON,
// names and HTTP are defined on ASCII, so src/core and src/http use these.
#pragma once
#include "core/cpp_only.hpp"

#include <string>
#include <string_view>

namespace hyperline {

inline bool AsciiDigit(char c) { return c >= '0' && c <= '9'; }
inline bool AsciiIsLower(char c) { return c >= 'a' && c <= 'z'; }
inline bool AsciiIsUpper(char c) { return c >= 'A' && c <= 'Z'; }
inline bool AsciiAlpha(char c) { return AsciiIsLower(c) || AsciiIsUpper(c); }
inline bool AsciiAlnum(char c) { return AsciiAlpha(c) || AsciiDigit(c); }
inline bool AsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
inline char AsciiLower(char c) { return AsciiIsUpper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
inline char AsciiUpper(char c) { return AsciiIsLower(c) ? static_cast<char>(c - 'a' + 'A') : c; }

// `s` with ASCII letters lower-cased (other bytes, UTF-8 included, unchanged).
inline std::string AsciiLowerString(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

// Value 0-15 of a hex digit (either case), or -1 when `c` is not one.
inline int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace hyperline
