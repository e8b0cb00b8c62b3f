// filters.cpp: Liquid's standard filters (Ruby Liquid's StandardFilters).
//
// Numbers follow Ruby Liquid: integers stay integers, anything with a fraction is
// computed exactly in decimal (Ruby uses BigDecimal) and returned as a float.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "core/liquid/internal.hpp"
#include "core/names.hpp"
#include "core/liquid/number.hpp"

namespace hyperline::liquid {

namespace {

using K = Value::Kind;

[[noreturn]] void Fail(const FilterArgs& fa, const std::string& msg) {
  throw RenderError("Liquid error: " + std::string(fa.name) + ": " + msg);
}

// Result strings are charged to the render's work budget.
Value Str(FilterArgs& fa, std::string s) {
  if (fa.state) fa.state->ChargeWork(s.size());
  return Value::String(std::move(s));
}

std::string S(const Value& v) { return ToLiquidString(v); }

// Returns positional argument `i`, or nil when absent.
const Value& Arg(const FilterArgs& fa, size_t i) {
  static const Value kNil;
  return i < fa.args.size() ? fa.args[i] : kNil;
}

// Ruby's whitespace for strip and split.
bool IsRubySpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == '\0';
}

// Byte offsets of UTF-8 character starts in `s`, plus s.size() at the end.
std::vector<size_t> CharStarts(const std::string& s) {
  std::vector<size_t> v;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) v.push_back(i);
  }
  v.push_back(s.size());
  return v;
}

// ---------------------------------------------------------------------------
// Numbers.

struct Num {
  enum class T : uint8_t { Int, Dec, Dbl } t = T::Int;
  int64_t i = 0;
  Dec d;
  double f = 0;
};

// A Num holding the exact decimal of a double (or the double if too wide).
Num FromDouble(double x) {
  Num n;
  if (auto d = DecFromDouble(x)) {
    n.t = Num::T::Dec;
    n.d = *d;
  } else {
    n.t = Num::T::Dbl;
    n.f = x;
  }
  return n;
}

// A Num from decimal text; integers stay Int when `integer_ok`.
Num FromDecText(const std::string& s, bool integer_ok) {
  Num n;
  if (auto d = ParseDec(s)) {
    if (integer_ok && d->scale == 0 && d->m <= INT64_MAX && d->m >= INT64_MIN) {
      n.i = static_cast<int64_t>(d->m);
      return n;
    }
    n.t = Num::T::Dec;
    n.d = *d;
    return n;
  }
  n.t = Num::T::Dbl;
  n.f = ParseDouble(s);
  return n;
}

// Ruby Liquid's Utils.to_number.
Num ToNumber(const Value& v) {
  Num n;
  switch (v.kind()) {
    case K::Int:
      n.i = v.as_int();
      return n;
    case K::Float:
      return FromDouble(v.as_float());
    case K::Decimal:
      return FromDecText(v.as_string(), false);
    case K::String: {
      const std::string& s = v.as_string();
      size_t b = 0, e = s.size();
      while (b < e && IsRubySpace(s[b])) ++b;
      while (e > b && IsRubySpace(s[e - 1])) --e;
      std::string t = s.substr(b, e - b);
      // /\A-?\d+\.\d+\z/ -> decimal
      size_t i = !t.empty() && t[0] == '-' ? 1 : 0;
      size_t d1 = i;
      while (i < t.size() && AsciiDigit(t[i])) ++i;
      if (i > d1 && i < t.size() && t[i] == '.') {
        size_t d2 = ++i;
        while (i < t.size() && AsciiDigit(t[i])) ++i;
        if (i > d2 && i == t.size()) return FromDecText(t, false);
      }
      // String#to_i: leading whitespace, sign, digits.
      size_t p = 0;
      while (p < s.size() && IsRubySpace(s[p])) ++p;
      std::string digits;
      if (p < s.size() && (s[p] == '-' || s[p] == '+')) digits.push_back(s[p++]);
      while (p < s.size() && (AsciiDigit(s[p]) || (s[p] == '_' && !digits.empty()))) {
        if (s[p] != '_') digits.push_back(s[p]);
        ++p;
      }
      if (digits.empty() || digits == "-" || digits == "+") return n;
      return FromDecText(digits, true);
    }
    default:
      return n;
  }
}

Dec AsDec(const Num& n) { return n.t == Num::T::Int ? Dec{n.i, 0} : n.d; }
// Converts a Num to double.
double AsDouble(const Num& n) {
  switch (n.t) {
    case Num::T::Int:
      return static_cast<double>(n.i);
    case Num::T::Dec:
      return DecToDouble(n.d);
    default:
      return n.f;
  }
}

// Integer results that overflow int64 keep their exact value as Decimal text.
Value IntResult(__int128 v) {
  if (v <= INT64_MAX && v >= INT64_MIN) return Value::Int(static_cast<int64_t>(v));
  std::string s;
  AppendInt128(v, s);
  return Value::Decimal(s);
}

// Converts a Num to a Value (decimal results become floats, as Ruby does).
Value NumValue(const Num& n) {
  switch (n.t) {
    case Num::T::Int:
      return Value::Int(n.i);
    case Num::T::Dec:
      return Value::Float(DecToDouble(n.d));
    default:
      return Value::Float(n.f);
  }
}

enum class Op { Add, Sub, Mul, Div, Mod };

// plus/minus/times/divided_by/modulo with Ruby Liquid number rules.
Value Arith(FilterArgs& fa, Op op) {
  Num a = ToNumber(fa.input), b = ToNumber(Arg(fa, 0));
  if (a.t == Num::T::Int && b.t == Num::T::Int) {
    __int128 x = a.i, y = b.i;
    switch (op) {
      case Op::Add:
        return IntResult(x + y);
      case Op::Sub:
        return IntResult(x - y);
      case Op::Mul:
        return IntResult(x * y);
      case Op::Div: {
        if (y == 0) Fail(fa, "divided by 0");
        __int128 q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) q -= 1;  // Ruby floors
        return IntResult(q);
      }
      case Op::Mod: {
        if (y == 0) Fail(fa, "divided by 0");
        __int128 r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return IntResult(r);
      }
    }
  }
  if ((op == Op::Div || op == Op::Mod) && AsDouble(b) == 0) Fail(fa, "divided by 0");
  if (a.t != Num::T::Dbl && b.t != Num::T::Dbl) {
    Dec x = AsDec(a), y = AsDec(b);
    std::optional<Dec> r;
    switch (op) {
      case Op::Add:
        r = DecAdd(x, y);
        break;
      case Op::Sub:
        r = DecSub(x, y);
        break;
      case Op::Mul:
        r = DecMul(x, y);
        break;
      case Op::Div:
        break;
      case Op::Mod: {
        double q = std::floor(DecToDouble(x) / DecToDouble(y));
        if (std::fabs(q) < 1e30) {
          auto qd = DecFromDouble(q);
          if (qd) {
            auto prod = DecMul(*qd, y);
            if (prod) r = DecSub(x, *prod);
          }
        }
        break;
      }
    }
    if (r) return Value::Float(DecToDouble(*r));
  }
  double x = AsDouble(a), y = AsDouble(b);
  switch (op) {
    case Op::Add:
      return Value::Float(x + y);
    case Op::Sub:
      return Value::Float(x - y);
    case Op::Mul:
      return Value::Float(x * y);
    case Op::Div:
      return Value::Float(x / y);
    case Op::Mod: {
      double r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value::Float(r);
    }
  }
  return Value();
}

Value FPlus(FilterArgs& fa) { return Arith(fa, Op::Add); }
Value FMinus(FilterArgs& fa) { return Arith(fa, Op::Sub); }
Value FTimes(FilterArgs& fa) { return Arith(fa, Op::Mul); }
Value FDividedBy(FilterArgs& fa) { return Arith(fa, Op::Div); }
Value FModulo(FilterArgs& fa) { return Arith(fa, Op::Mod); }

// abs filter.
Value FAbs(FilterArgs& fa) {
  Num a = ToNumber(fa.input);
  if (a.t == Num::T::Int) return IntResult(a.i < 0 ? -static_cast<__int128>(a.i) : a.i);
  if (a.t == Num::T::Dec) {
    Dec d = a.d;
    if (d.m < 0) d.m = -d.m;
    return Value::Float(DecToDouble(d));
  }
  return Value::Float(std::fabs(a.f));
}

Value RoundLike(FilterArgs& fa, int mode) {  // 0 floor, 1 ceil
  Num a = ToNumber(fa.input);
  if (a.t == Num::T::Int) return Value::Int(a.i);
  if (a.t == Num::T::Dbl) {
    double r = mode == 0 ? std::floor(a.f) : std::ceil(a.f);
    if (!std::isfinite(r) || std::fabs(r) > 9.2e18) Fail(fa, "number out of range");
    return Value::Int(static_cast<int64_t>(r));
  }
  Dec r = mode == 0 ? DecFloor(a.d) : DecCeil(a.d);
  return IntResult(r.m);
}
Value FFloor(FilterArgs& fa) { return RoundLike(fa, 0); }
Value FCeil(FilterArgs& fa) { return RoundLike(fa, 1); }

// round: half away from zero; no digits (or negative) gives an integer.
Value FRound(FilterArgs& fa) {
  Num a = ToNumber(fa.input);
  Num nd = ToNumber(Arg(fa, 0));
  int64_t digits;
  if (nd.t == Num::T::Int) {
    digits = nd.i;
  } else {
    // Clamp before converting: a huge or NaN digit count must not overflow int64.
    double d = AsDouble(nd);
    digits = std::isnan(d) ? 0 : d > 40 ? 40 : d < -40 ? -40 : static_cast<int64_t>(d);
  }
  digits = std::max<int64_t>(-40, std::min<int64_t>(40, digits));
  if (a.t == Num::T::Int) {
    if (digits >= 0) return Value::Int(a.i);
    auto r = DecRound(Dec{a.i, 0}, static_cast<int>(digits));
    return r ? IntResult(r->m) : Value::Int(0);
  }
  if (a.t == Num::T::Dbl) {
    if (!std::isfinite(a.f)) {
      if (digits == 0) Fail(fa, "cannot round infinity or NaN");
      return Value::Float(a.f);
    }
    double p = std::pow(10.0, static_cast<double>(digits));
    double r = std::round(a.f * p) / p;
    if (digits <= 0) {
      if (std::fabs(r) > 9.2e18) Fail(fa, "number out of range");
      return Value::Int(static_cast<int64_t>(r));
    }
    return Value::Float(r);
  }
  auto r = DecRound(a.d, static_cast<int>(digits));
  if (!r) return Value::Float(AsDouble(a));
  if (digits <= 0) return IntResult(r->m);
  return Value::Float(DecToDouble(*r));
}

// at_least / at_most.
Value MinMax(FilterArgs& fa, bool max) {
  Num a = ToNumber(fa.input), b = ToNumber(Arg(fa, 0));
  int c;
  if (a.t == Num::T::Int && b.t == Num::T::Int) {
    c = a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  } else if (a.t != Num::T::Dbl && b.t != Num::T::Dbl) {
    c = DecCompare(AsDec(a), AsDec(b));
  } else {
    double x = AsDouble(a), y = AsDouble(b);
    c = x < y ? -1 : x > y ? 1 : 0;
  }
  const Num& pick = max ? (c >= 0 ? a : b) : (c <= 0 ? a : b);
  return NumValue(pick);
}
Value FAtLeast(FilterArgs& fa) { return MinMax(fa, true); }
Value FAtMost(FilterArgs& fa) { return MinMax(fa, false); }

// ---------------------------------------------------------------------------
// Strings.

Value FAppend(FilterArgs& fa) { return Str(fa, S(fa.input) + S(Arg(fa, 0))); }
Value FPrepend(FilterArgs& fa) { return Str(fa, S(Arg(fa, 0)) + S(fa.input)); }

// Case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic (Ruby's
// String#upcase/downcase are Unicode-aware; these blocks cover European text).
// Other code points and invalid UTF-8 bytes pass through unchanged.
uint32_t UpperOf(uint32_t c) {
  if (c < 0x80) return AsciiIsLower(static_cast<char>(c)) ? c - 32 : c;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 0x20;
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x131) return 'I';
    if (c == 0x17F) return 'S';
    bool odd_lower = (c <= 0x137) || (c >= 0x14A && c <= 0x177);
    bool even_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_lower && (c & 1)) return c - 1;
    if (even_lower && !(c & 1)) return c - 1;
    return c;
  }
  if (c >= 0x3B1 && c <= 0x3C9) return c == 0x3C2 ? 0x3A3 : c - 0x20;
  if (c == 0x3AC) return 0x386;
  if (c >= 0x3AD && c <= 0x3AF) return c - 0x25;
  if (c == 0x3CC) return 0x38C;
  if (c == 0x3CD || c == 0x3CE) return c - 0x3F;
  if (c >= 0x430 && c <= 0x44F) return c - 0x20;
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  return c;
}

// Lower-case mapping of a code point (same blocks as UpperOf).
uint32_t LowerOf(uint32_t c) {
  if (c < 0x80) return AsciiIsUpper(static_cast<char>(c)) ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if (c == 0x178) return 0xFF;
  if (c >= 0x100 && c <= 0x17F) {
    bool even_upper = (c <= 0x137) || (c >= 0x14A && c <= 0x177);
    bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (c == 0x130) return 'i';
    if (even_upper && !(c & 1)) return c + 1;
    if (odd_upper && (c & 1)) return c + 1;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return c;
}

// Decodes the UTF-8 sequence at s[i] (2-byte forms only matter here); returns its
// length, or 0 when the byte does not start a valid sequence.
size_t DecodeUtf8(const std::string& s, size_t i, uint32_t& cp) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  return n;
}

// Maps each character: mode 0 lower, 1 upper, 2 capitalize (first upper, rest lower).
std::string MapCase(const std::string& s, int mode) {
  std::string out;
  out.reserve(s.size());
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t n = DecodeUtf8(s, i, cp);
    if (n == 0) {
      out.push_back(s[i++]);
      first = false;
      continue;
    }
    bool upper = mode == 1 || (mode == 2 && first);
    if (upper && cp == 0xDF) {
      out += "SS";  // Ruby: "ß".upcase == "SS"
    } else {
      AppendUtf8(upper ? UpperOf(cp) : LowerOf(cp), out);
    }
    first = false;
    i += n;
  }
  return out;
}

Value FDowncase(FilterArgs& fa) { return Str(fa, MapCase(S(fa.input), 0)); }
Value FUpcase(FilterArgs& fa) { return Str(fa, MapCase(S(fa.input), 1)); }
Value FCapitalize(FilterArgs& fa) { return Str(fa, MapCase(S(fa.input), 2)); }

// strip / lstrip / rstrip.
Value StripImpl(FilterArgs& fa, bool left, bool right) {
  std::string s = S(fa.input);
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && IsRubySpace(s[b])) ++b;
  }
  if (right) {
    while (e > b && IsRubySpace(s[e - 1])) --e;
  }
  return Str(fa, s.substr(b, e - b));
}
// Splits on runs of Ruby whitespace, ignoring leading/trailing whitespace.
std::vector<std::string> SplitWords(const std::string& s) {
  std::vector<std::string> w;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsRubySpace(s[i])) ++i;
    size_t b = i;
    while (i < s.size() && !IsRubySpace(s[i])) ++i;
    if (i > b) w.push_back(s.substr(b, i - b));
  }
  return w;
}

// Strips both ends and collapses inner whitespace runs to one space.
Value FSquish(FilterArgs& fa) {
  std::string out;
  for (const std::string& w : SplitWords(S(fa.input))) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return Str(fa, std::move(out));
}

Value FStrip(FilterArgs& fa) { return StripImpl(fa, true, true); }
Value FLstrip(FilterArgs& fa) { return StripImpl(fa, true, false); }
Value FRstrip(FilterArgs& fa) { return StripImpl(fa, false, true); }

// Replaces occurrences of `from` in `s` (all, first or last).
std::string ReplaceImpl(FilterArgs& fa, const std::string& s, const std::string& from,
                        const std::string& to, int which) {  // 0 all, 1 first, 2 last
  std::string out;
  if (from.empty()) {
    if (which == 1) return to + s;
    if (which == 2) return s + to;
    // Ruby's gsub("") inserts between every character.
    std::vector<size_t> cs = CharStarts(s);
    if (fa.state) fa.state->ChargeWork(to.size() * cs.size());
    for (size_t k = 0; k + 1 < cs.size(); ++k) {
      out += to;
      out.append(s, cs[k], cs[k + 1] - cs[k]);
    }
    out += to;
    return out;
  }
  if (which == 1) {
    size_t p = SafeFind(s, from);
    if (p == std::string::npos) return s;
    return s.substr(0, p) + to + s.substr(p + from.size());
  }
  if (which == 2) {
    size_t p = SafeRFind(s, from);
    if (p == std::string::npos) return s;
    return s.substr(0, p) + to + s.substr(p + from.size());
  }
  size_t p = 0;
  while (true) {
    size_t q = SafeFind(s, from, p);
    if (q == std::string::npos) break;
    out.append(s, p, q - p);
    out += to;
    if (fa.state && out.size() > fa.state->limits.max_output_bytes) Fail(fa, "result too large");
    p = q + from.size();
  }
  out.append(s, p, std::string::npos);
  return out;
}
// replace filter.
Value FReplace(FilterArgs& fa) {
  return Str(fa, ReplaceImpl(fa, S(fa.input), S(Arg(fa, 0)), S(Arg(fa, 1)), 0));
}
// replace_first filter.
Value FReplaceFirst(FilterArgs& fa) {
  return Str(fa, ReplaceImpl(fa, S(fa.input), S(Arg(fa, 0)), S(Arg(fa, 1)), 1));
}
// replace_last filter.
Value FReplaceLast(FilterArgs& fa) {
  return Str(fa, ReplaceImpl(fa, S(fa.input), S(Arg(fa, 0)), S(Arg(fa, 1)), 2));
}
// remove filter.
Value FRemove(FilterArgs& fa) {
  return Str(fa, ReplaceImpl(fa, S(fa.input), S(Arg(fa, 0)), "", 0));
}
// remove_first filter.
Value FRemoveFirst(FilterArgs& fa) {
  return Str(fa, ReplaceImpl(fa, S(fa.input), S(Arg(fa, 0)), "", 1));
}
// remove_last filter.
Value FRemoveLast(FilterArgs& fa) {
  return Str(fa, ReplaceImpl(fa, S(fa.input), S(Arg(fa, 0)), "", 2));
}

// truncate: at most `length` characters including the ellipsis.
Value FTruncate(FilterArgs& fa) {
  if (fa.input.is_nil()) return Value();
  std::string s = S(fa.input);
  int64_t length = fa.args.empty() ? 50 : ToInteger(Arg(fa, 0), "truncate length");
  std::string ellipsis = fa.args.size() > 1 ? S(Arg(fa, 1)) : "...";
  std::vector<size_t> cs = CharStarts(s);
  int64_t nchars = static_cast<int64_t>(cs.size()) - 1;
  if (nchars <= length) return Value::String(std::move(s));
  int64_t el = static_cast<int64_t>(CharStarts(ellipsis).size()) - 1;
  int64_t l = length <= el ? 0 : length - el;
  return Str(fa, s.substr(0, cs[static_cast<size_t>(std::min(l, nchars))]) + ellipsis);
}

// truncatewords: the first `words` words plus the ellipsis.
Value FTruncatewords(FilterArgs& fa) {
  if (fa.input.is_nil()) return Value();
  std::string s = S(fa.input);
  int64_t words = fa.args.empty() ? 15 : ToInteger(Arg(fa, 0), "truncatewords length");
  if (words <= 0) words = 1;
  std::string ellipsis = fa.args.size() > 1 ? S(Arg(fa, 1)) : "...";
  std::vector<std::string> w = SplitWords(s);
  if (static_cast<int64_t>(w.size()) <= words) return Value::String(std::move(s));
  std::string out;
  for (int64_t i = 0; i < words; ++i) {
    if (i) out.push_back(' ');
    out += w[static_cast<size_t>(i)];
  }
  return Str(fa, out + ellipsis);
}

// split with Ruby's String#split rules (" " splits on whitespace runs).
Value FSplit(FilterArgs& fa) {
  std::string s = S(fa.input);
  std::string sep = S(Arg(fa, 0));
  Array out;
  // Why: count the parts before building them so a huge split fails cheaply.
  size_t parts = 1;
  if (sep.empty() || sep == " ") {
    parts = s.size();
  } else {
    for (size_t p = SafeFind(s, sep); p != std::string::npos;
         p = SafeFind(s, sep, p + sep.size())) {
      ++parts;
    }
  }
  if (fa.state) fa.state->ChargeWork(s.size() + parts * sizeof(Value));
  if (sep == " ") {
    for (auto& w : SplitWords(s)) out.push_back(Value::String(std::move(w)));
  } else if (sep.empty()) {
    std::vector<size_t> cs = CharStarts(s);
    for (size_t k = 0; k + 1 < cs.size(); ++k) {
      out.push_back(Value::String(s.substr(cs[k], cs[k + 1] - cs[k])));
    }
  } else {
    out.reserve(parts);
    size_t p = 0;
    while (true) {
      size_t q = SafeFind(s, sep, p);
      if (q == std::string::npos) {
        out.push_back(Value::String(s.substr(p)));
        break;
      }
      out.push_back(Value::String(s.substr(p, q - p)));
      p = q + sep.size();
    }
    // Ruby drops trailing empty strings.
    while (!out.empty() && out.back().as_string().empty()) out.pop_back();
  }
  return Value::MakeArray(std::move(out));
}

// strip_newlines filter.
Value FStripNewlines(FilterArgs& fa) {
  std::string s = S(fa.input), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n') continue;
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    out.push_back(s[i]);
  }
  return Str(fa, std::move(out));
}

// newline_to_br filter.
Value FNewlineToBr(FilterArgs& fa) {
  std::string s = S(fa.input), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
      out += "<br />\n";
      ++i;
    } else if (s[i] == '\n') {
      out += "<br />\n";
    } else {
      out.push_back(s[i]);
    }
  }
  return Str(fa, std::move(out));
}

// Appends `c` HTML-escaped (&, <, >, ", ').
void AppendHtmlEscaped(char c, std::string& out) {
  switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out.push_back(c);
  }
}

// escape filter.
Value FEscape(FilterArgs& fa) {
  if (fa.input.is_nil()) return Value();
  std::string s = S(fa.input), out;
  for (char c : s) AppendHtmlEscaped(c, out);
  return Str(fa, std::move(out));
}

// escape_once: escapes, keeping existing entities.
Value FEscapeOnce(FilterArgs& fa) {
  std::string s = S(fa.input), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      // Keep existing entities: &name; or &#digits;
      size_t j = i + 1;
      bool entity = false;
      if (j < s.size() && s[j] == '#') {
        size_t k = j + 1;
        while (k < s.size() && AsciiDigit(s[k])) ++k;
        entity = k > j + 1 && k < s.size() && s[k] == ';';
      } else {
        size_t k = j;
        while (k < s.size() && AsciiAlpha(s[k])) ++k;
        entity = k > j && k < s.size() && s[k] == ';';
      }
      if (entity) {
        out.push_back('&');
        continue;
      }
    }
    AppendHtmlEscaped(s[i], out);
  }
  return Str(fa, std::move(out));
}

// url_encode (Ruby's CGI.escape).
Value FUrlEncode(FilterArgs& fa) {
  if (fa.input.is_nil()) return Value();
  static const char kHex[] = "0123456789ABCDEF";
  std::string s = S(fa.input), out;
  for (unsigned char c : s) {
    if (AsciiAlnum(static_cast<char>(c)) || c == '_' || c == '.' || c == '-' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return Str(fa, std::move(out));
}

// url_decode (Ruby's CGI.unescape).
Value FUrlDecode(FilterArgs& fa) {
  if (fa.input.is_nil()) return Value();
  std::string s = S(fa.input), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigitValue(s[i + 1]) >= 0 &&
               HexDigitValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigitValue(s[i + 1]) * 16 + HexDigitValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return Str(fa, std::move(out));
}

// Case-insensitive search for `needle` (ASCII) from `from`.
size_t IFind(const std::string& s, std::string_view needle, size_t from) {
  for (size_t i = from; i + needle.size() <= s.size(); ++i) {
    bool ok = true;
    for (size_t k = 0; k < needle.size(); ++k) {
      if (AsciiLower(s[i + k]) != needle[k]) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
  }
  return std::string::npos;
}

// strip_html: drops script/style blocks, comments and tags.
Value FStripHtml(FilterArgs& fa) {
  std::string s = S(fa.input);
  // Remove script/style blocks and comments, then any tag.
  struct Pair {
    const char* open;
    const char* close;
  };
  static const Pair kBlocks[] = {{"<script", "</script>"}, {"<!--", "-->"}, {"<style", "</style>"}};
  for (const Pair& p : kBlocks) {
    std::string out;
    size_t pos = 0;
    while (true) {
      size_t a = IFind(s, p.open, pos);
      if (a == std::string::npos) break;
      size_t b = IFind(s, p.close, a + std::strlen(p.open));
      if (b == std::string::npos) break;
      out.append(s, pos, a - pos);
      pos = b + std::strlen(p.close);
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
  }
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t a = s.find('<', pos);
    if (a == std::string::npos) break;
    size_t b = s.find('>', a + 1);
    if (b == std::string::npos) break;
    out.append(s, pos, a - pos);
    pos = b + 1;
  }
  out.append(s, pos, std::string::npos);
  return Str(fa, std::move(out));
}

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Base64-encodes `s` (URL-safe alphabet when `url`).
std::string B64Encode(const std::string& s, bool url) {
  std::string out;
  size_t i = 0;
  while (i + 2 < s.size() + 2 && i < s.size()) {
    uint32_t v = static_cast<unsigned char>(s[i]) << 16;
    size_t n = 1;
    if (i + 1 < s.size()) {
      v |= static_cast<unsigned char>(s[i + 1]) << 8;
      ++n;
    }
    if (i + 2 < s.size()) {
      v |= static_cast<unsigned char>(s[i + 2]);
      ++n;
    }
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(n > 1 ? kB64[(v >> 6) & 63] : '=');
    out.push_back(n > 2 ? kB64[v & 63] : '=');
    i += 3;
  }
  if (url) {
    for (char& c : out) {
      if (c == '+') c = '-';
      if (c == '/') c = '_';
    }
  }
  return out;
}

// Strict Base64 decoding; false on malformed input.
bool B64Decode(std::string s, bool url, std::string& out) {
  if (url) {
    for (char& c : s) {
      if (c == '-')
        c = '+';
      else if (c == '_')
        c = '/';
    }
    if (s.find('=') == std::string::npos) {
      while (s.size() % 4) s.push_back('=');
    }
  }
  if (s.size() % 4) return false;
  for (size_t i = 0; i < s.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = s[i + k];
      int d;
      if (c == '=') {
        if (i + 4 != s.size() || k < 2) return false;
        ++pad;
        d = 0;
      } else {
        if (pad) return false;
        const char* p = std::strchr(kB64, c);
        if (!p || c == '\0') return false;
        d = static_cast<int>(p - kB64);
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<char>((v >> 16) & 255));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 255));
    if (pad < 1) out.push_back(static_cast<char>(v & 255));
  }
  return true;
}

Value FBase64Encode(FilterArgs& fa) { return Str(fa, B64Encode(S(fa.input), false)); }
Value FBase64UrlSafeEncode(FilterArgs& fa) { return Str(fa, B64Encode(S(fa.input), true)); }
// base64_decode filter.
Value FBase64Decode(FilterArgs& fa) {
  std::string out;
  if (!B64Decode(S(fa.input), false, out)) Fail(fa, "invalid base64 provided");
  return Str(fa, std::move(out));
}
// base64_url_safe_decode filter.
Value FBase64UrlSafeDecode(FilterArgs& fa) {
  std::string out;
  if (!B64Decode(S(fa.input), true, out)) Fail(fa, "invalid base64 provided");
  return Str(fa, std::move(out));
}

// slice: a substring or sub-array from `offset` (negative from the end).
Value FSlice(FilterArgs& fa) {
  int64_t off = ToInteger(Arg(fa, 0), "slice offset");
  int64_t len =
      fa.args.size() > 1 && !Arg(fa, 1).is_nil() ? ToInteger(Arg(fa, 1), "slice length") : 1;
  auto window = [&](int64_t size, int64_t& b, int64_t& n) {
    b = off < 0 ? off + size : off;
    if (b < 0 || b > size || len < 0) return false;
    n = std::min(len, size - b);
    return true;
  };
  int64_t b, n;
  if (fa.input.kind() == K::Array) {
    const Array& a = fa.input.as_array();
    if (!window(static_cast<int64_t>(a.size()), b, n)) return Value::MakeArray({});
    return Value::MakeArray(Array(a.begin() + b, a.begin() + b + n));
  }
  std::string s = S(fa.input);
  std::vector<size_t> cs = CharStarts(s);
  if (!window(static_cast<int64_t>(cs.size()) - 1, b, n)) return Value::String("");
  return Value::String(s.substr(cs[static_cast<size_t>(b)],
                                cs[static_cast<size_t>(b + n)] - cs[static_cast<size_t>(b)]));
}

// size filter.
Value FSize(FilterArgs& fa) {
  switch (fa.input.kind()) {
    case K::String:
      return Value::Int(static_cast<int64_t>(CharStarts(fa.input.as_string()).size()) - 1);
    case K::Array:
      return Value::Int(static_cast<int64_t>(fa.input.as_array().size()));
    case K::Object:
      return Value::Int(static_cast<int64_t>(fa.input.as_object().size()));
    case K::Range: {
      int64_t lo = fa.input.range_first(), hi = fa.input.range_last();
      return Value::Int(RangeSize(lo, hi));
    }
    case K::Int:
      return Value::Int(8);
    default:
      return Value::Int(0);
  }
}

// default: the argument when the input is nil, false or empty.
Value FDefault(FilterArgs& fa) {
  bool allow_false = false;
  for (const auto& kw : fa.kwargs) {
    if (kw.first == "allow_false") allow_false = Truthy(kw.second);
  }
  bool use_default = allow_false ? fa.input.is_nil() : !Truthy(fa.input);
  if (!use_default && (fa.input.kind() == K::String || fa.input.kind() == K::Array ||
                       fa.input.kind() == K::Object)) {
    use_default = IsEmptyValue(fa.input);
  }
  return use_default ? (fa.args.empty() ? Value::String("") : Arg(fa, 0)) : fa.input;
}

// ---------------------------------------------------------------------------
// Arrays.

void FlattenInto(const Value& v, Array& out, int depth) {
  if (depth > 100) throw RenderError("Liquid error: array nested too deeply");
  for (const Value& e : v.as_array()) {
    if (e.kind() == K::Array) {
      FlattenInto(e, out, depth + 1);
    } else {
      out.push_back(e);
    }
  }
}

// One render step per element a filter visits, so a filter over a huge array
// still polls the interrupt check (see kInterruptCheckSteps).
inline void Tick(FilterArgs& fa) {
  if (fa.state) fa.state->Step();
}

// Ruby Liquid's InputIterator: arrays flattened, hashes wrapped, nil empty.
Array Iterate(FilterArgs& fa, const Value& v) {
  Array out;
  switch (v.kind()) {
    case K::Array: {
      bool nested = false;
      for (const Value& e : v.as_array()) nested = nested || e.kind() == K::Array;
      if (!nested) return v.as_array();
      FlattenInto(v, out, 0);
      break;
    }
    case K::Nil:
      break;
    case K::Range:
      return RangeToArray(v, fa.state).as_array();
    default:
      out.push_back(v);
  }
  if (fa.state) fa.state->ChargeWork(out.size() * sizeof(Value));
  return out;
}

// Ruby `item[property]` for filters that read a property of each element.
Value Property(FilterArgs& fa, const Value& item, const Value& prop) {
  switch (item.kind()) {
    case K::Object: {
      if (prop.kind() != K::String) return Value();
      const Value* f = item.Find(prop.as_string());
      return f ? *f : Value();
    }
    case K::String: {
      // String#[](str) returns str when it is a substring.
      std::string p = S(prop);
      if (prop.kind() != K::String) Fail(fa, "no implicit conversion into Integer");
      return SafeFind(item.as_string(), p) != std::string::npos ? Value::String(p) : Value();
    }
    case K::Nil:
      return Value();
    case K::Int:
      // Ruby's Integer#[] reads a bit; a non-integer index is a TypeError.
      if (prop.kind() == K::Int) {
        int64_t b = prop.as_int();
        if (b < 0) return Value::Int(0);
        return Value::Int(b >= 63 ? (item.as_int() < 0 ? 1 : 0) : (item.as_int() >> b) & 1);
      }
      Fail(fa, "cannot select the property '" + S(prop) + "'");
    case K::Array:
      if (prop.kind() == K::Int) {
        const Array& a = item.as_array();
        int64_t n = static_cast<int64_t>(a.size()),
                i = prop.as_int() < 0 ? prop.as_int() + n : prop.as_int();
        return i >= 0 && i < n ? a[static_cast<size_t>(i)] : Value();
      }
      Fail(fa, "cannot select the property '" + S(prop) + "'");
    default:
      Fail(fa, "cannot select the property '" + S(prop) + "'");
  }
}

// join filter.
Value FJoin(FilterArgs& fa) {
  std::string glue = fa.args.empty() ? " " : S(Arg(fa, 0));
  std::string out;
  bool first = true;
  for (const Value& e : Iterate(fa, fa.input)) {
    Tick(fa);
    if (!first) out += glue;
    first = false;
    AppendLiquidString(e, out);
    if (fa.state && out.size() > fa.state->limits.max_output_bytes) Fail(fa, "result too large");
  }
  return Str(fa, std::move(out));
}

// first filter.
Value FFirst(FilterArgs& fa) {
  const Value& v = fa.input;
  if (v.kind() == K::Array) return v.as_array().empty() ? Value() : v.as_array().front();
  if (v.kind() == K::Range)
    return v.range_last() >= v.range_first() ? Value::Int(v.range_first()) : Value();
  if (v.kind() == K::Object && !v.as_object().empty()) {
    return Value::MakeArray({Value::String(v.as_object()[0].first), v.as_object()[0].second});
  }
  if (v.kind() == K::String && !v.as_string().empty()) {
    return Value::String(FirstOrLastChar(v.as_string(), false));
  }
  return Value();
}
// last filter.
Value FLast(FilterArgs& fa) {
  const Value& v = fa.input;
  if (v.kind() == K::Array) return v.as_array().empty() ? Value() : v.as_array().back();
  if (v.kind() == K::Range)
    return v.range_last() >= v.range_first() ? Value::Int(v.range_last()) : Value();
  if (v.kind() == K::String && !v.as_string().empty()) {
    return Value::String(FirstOrLastChar(v.as_string(), true));
  }
  return Value();
}

// reverse filter.
Value FReverse(FilterArgs& fa) {
  Array a = Iterate(fa, fa.input);
  std::reverse(a.begin(), a.end());
  return Value::MakeArray(std::move(a));
}

// compact filter.
Value FCompact(FilterArgs& fa) {
  Array a = Iterate(fa, fa.input), out;
  bool by_prop = !fa.args.empty() && !Arg(fa, 0).is_nil();
  for (Value& e : a) {
    Tick(fa);
    bool keep = by_prop ? !Property(fa, e, Arg(fa, 0)).is_nil() : !e.is_nil();
    if (keep) out.push_back(std::move(e));
  }
  return Value::MakeArray(std::move(out));
}

// A key equal for values Ruby's uniq treats as the same (eql?: 1 and 1.0 differ).
void UniqKey(const Value& v, std::string& out, int depth) {
  if (depth > 100) throw RenderError("Liquid error: value nested too deeply");
  out.push_back(static_cast<char>('A' + static_cast<int>(v.kind())));
  switch (v.kind()) {
    case K::Array:
      out += std::to_string(v.as_array().size());
      out.push_back('[');
      for (const Value& e : v.as_array()) UniqKey(e, out, depth + 1);
      break;
    case K::Object:
      out += std::to_string(v.as_object().size());
      out.push_back('{');
      for (const auto& kv : v.as_object()) {
        out += std::to_string(kv.first.size());
        out.push_back(':');
        out += kv.first;
        UniqKey(kv.second, out, depth + 1);
      }
      break;
    default: {
      std::string s = ToLiquidString(v);
      out += std::to_string(s.size());
      out.push_back(':');
      out += s;
    }
  }
}

// uniq filter.
Value FUniq(FilterArgs& fa) {
  Array a = Iterate(fa, fa.input), out;
  bool by_prop = !fa.args.empty() && !Arg(fa, 0).is_nil();
  std::unordered_set<std::string> seen;
  std::string key;
  for (Value& e : a) {
    Tick(fa);
    key.clear();
    UniqKey(by_prop ? Property(fa, e, Arg(fa, 0)) : e, key, 0);
    if (fa.state) fa.state->ChargeWork(key.size());
    if (seen.insert(key).second) out.push_back(std::move(e));
  }
  return Value::MakeArray(std::move(out));
}

// concat filter.
Value FConcat(FilterArgs& fa) {
  if (Arg(fa, 0).kind() != K::Array) Fail(fa, "concat filter requires an array argument");
  Array a = Iterate(fa, fa.input);
  const Array& b = Arg(fa, 0).as_array();
  if (fa.state) fa.state->ChargeWork((a.size() + b.size()) * sizeof(Value));
  a.insert(a.end(), b.begin(), b.end());
  return Value::MakeArray(std::move(a));
}

// map filter.
Value FMap(FilterArgs& fa) {
  Array out;
  for (const Value& e : Iterate(fa, fa.input)) {
    Tick(fa);
    out.push_back(Property(fa, e, Arg(fa, 0)));
  }
  return Value::MakeArray(std::move(out));
}

// Shared by where/reject/find/find_index/has: does `item` match? Sets `stop`
// when Ruby would raise NoMethodError (a nil item, or a nil property), which
// Ruby Liquid turns into the filter's default result.
bool Matches(FilterArgs& fa, const Value& item, bool& stop) {
  Tick(fa);
  if (item.is_nil() || Arg(fa, 0).is_nil()) {
    stop = true;
    return false;
  }
  Value p = Property(fa, item, Arg(fa, 0));
  if (fa.args.size() < 2 || Arg(fa, 1).is_nil()) return Truthy(p);
  return LiquidEquals(p, Arg(fa, 1));
}

// where filter.
Value FWhere(FilterArgs& fa) {
  Array out;
  bool stop = false;
  for (const Value& e : Iterate(fa, fa.input)) {
    if (Matches(fa, e, stop)) out.push_back(e);
    if (stop) return Value::MakeArray({});
  }
  return Value::MakeArray(std::move(out));
}
// reject filter.
Value FReject(FilterArgs& fa) {
  Array out;
  bool stop = false;
  for (const Value& e : Iterate(fa, fa.input)) {
    bool m = Matches(fa, e, stop);
    if (stop) return Value::MakeArray({});
    if (!m) out.push_back(e);
  }
  return Value::MakeArray(std::move(out));
}
// find filter.
Value FFind(FilterArgs& fa) {
  bool stop = false;
  for (const Value& e : Iterate(fa, fa.input)) {
    if (Matches(fa, e, stop)) return e;
    if (stop) return Value();
  }
  return Value();
}
// find_index filter.
Value FFindIndex(FilterArgs& fa) {
  int64_t i = 0;
  bool stop = false;
  for (const Value& e : Iterate(fa, fa.input)) {
    if (Matches(fa, e, stop)) return Value::Int(i);
    if (stop) return Value();
    ++i;
  }
  return Value();
}
// has filter.
Value FHas(FilterArgs& fa) {
  if (Arg(fa, 0).is_nil()) return Value::Bool(false);
  bool stop = false;
  for (const Value& e : Iterate(fa, fa.input)) {
    if (Matches(fa, e, stop)) return Value::Bool(true);
    if (stop) return Value();
  }
  return Value::Bool(false);
}

// sum filter.
Value FSum(FilterArgs& fa) {
  Num total;
  bool by_prop = !fa.args.empty() && !Arg(fa, 0).is_nil();
  for (const Value& e : Iterate(fa, fa.input)) {
    Tick(fa);
    Value v = by_prop ? Property(fa, e, Arg(fa, 0)) : e;
    Num n = ToNumber(v);
    if (total.t == Num::T::Int && n.t == Num::T::Int) {
      int64_t r;
      if (!__builtin_add_overflow(total.i, n.i, &r)) {
        total.i = r;
        continue;
      }
    }
    if (total.t != Num::T::Dbl && n.t != Num::T::Dbl) {
      if (auto r = DecAdd(AsDec(total), AsDec(n))) {
        total.t = Num::T::Dec;
        total.d = *r;
        continue;
      }
    }
    double x = AsDouble(total) + AsDouble(n);
    total = Num();
    total.t = Num::T::Dbl;
    total.f = x;
  }
  return NumValue(total);
}

// Sort order for `sort`: numbers and strings each among themselves, nil last.
void CheckSortable(FilterArgs& fa, const std::vector<const Value*>& keys) {
  bool num = false, str = false, other = false;
  for (const Value* k : keys) {
    if (k->is_nil()) continue;
    if (k->is_number())
      num = true;
    else if (k->kind() == K::String)
      str = true;
    else
      other = true;
  }
  if ((num && str) || other) {
    // Times compare among themselves; everything else is incomparable.
    bool all_time = true;
    for (const Value* k : keys) all_time = all_time && (k->is_nil() || k->kind() == K::Time);
    if (!all_time) Fail(fa, "cannot sort values of incompatible types");
  }
}

// sort / sort_natural (stable; nil last).
Value SortImpl(FilterArgs& fa, bool natural) {
  Array a = fa.input.kind() == K::Array || fa.input.kind() == K::Range || fa.input.is_nil()
                ? Iterate(fa, fa.input)
                : Array{fa.input};
  if (a.empty()) return Value::MakeArray({});
  bool by_prop = !fa.args.empty() && !Arg(fa, 0).is_nil();
  std::vector<Value> keys;
  keys.reserve(a.size());
  for (const Value& e : a) {
    Tick(fa);
    keys.push_back(by_prop ? Property(fa, e, Arg(fa, 0)) : e);
  }
  std::vector<size_t> idx(a.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  if (natural) {
    std::vector<std::string> lower(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      Tick(fa);
      lower[i] = S(keys[i]);
      for (char& c : lower[i]) c = static_cast<char>(AsciiLower(c));
    }
    std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
      Tick(fa);
      bool nx = keys[x].is_nil(), ny = keys[y].is_nil();
      if (nx || ny) return !nx && ny;
      return lower[x] < lower[y];
    });
  } else {
    std::vector<const Value*> ptrs;
    ptrs.reserve(keys.size());
    for (const Value& k : keys) ptrs.push_back(&k);
    CheckSortable(fa, ptrs);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
      Tick(fa);
      bool nx = keys[x].is_nil(), ny = keys[y].is_nil();
      if (nx || ny) return !nx && ny;
      return LiquidCompare(keys[x], keys[y]) < 0;
    });
  }
  Array out;
  out.reserve(a.size());
  for (size_t i : idx) out.push_back(std::move(a[i]));
  return Value::MakeArray(std::move(out));
}
Value FSort(FilterArgs& fa) { return SortImpl(fa, false); }
Value FSortNatural(FilterArgs& fa) { return SortImpl(fa, true); }

// ---------------------------------------------------------------------------
// Dates.

// date: formats a time, Unix seconds (an integer or a string of digits), or a
// date string with a strftime format; other input is returned unchanged, as
// Ruby Liquid returns it when Utils.to_date gives nil.
Value FDate(FilterArgs& fa) {
  const Value& fmt = Arg(fa, 0);
  std::string format = S(fmt);
  if (format.empty()) return fa.input;
  TimePoint tp;
  const Value& in = fa.input;
  switch (in.kind()) {
    case K::Time:
      tp = {in.time_days(), in.time_day_micros()};
      break;
    case K::Int:
      tp = TimePointFromUnixSeconds(in.as_int());  // every int64 fits
      break;
    case K::Float: {
      double f = in.as_float();
      if (!std::isfinite(f) || std::fabs(f) >= 9.2e18) return in;
      if (std::fabs(f) <= 9e12) {
        tp = TimePointFromUnixMicros(static_cast<int64_t>(std::floor(f * 1e6)));
      } else {
        // Beyond microsecond precision anyway: whole seconds.
        tp = TimePointFromUnixSeconds(static_cast<int64_t>(std::floor(f)));
      }
      break;
    }
    case K::String: {
      std::string s = in.as_string();
      if (s.empty()) return in;
      std::string lower = AsciiLowerString(s);
      if (lower == "now" || lower == "today") {
        tp = TimePointFromUnixMicros(NowMicros());
        break;
      }
      bool digits = std::all_of(s.begin(), s.end(), [](char c) { return AsciiDigit(c); });
      if (digits) {
        // Ruby reads any string of digits as Unix seconds (Time.at).
        errno = 0;
        long long secs = std::strtoll(s.c_str(), nullptr, 10);
        if (errno == ERANGE) {
          Fail(fa, "'" + s + "' seconds is outside the supported range of times");
        }
        tp = TimePointFromUnixSeconds(secs);
        break;
      }
      if (!ParseDateTime(s, tp)) return in;
      break;
    }
    default:
      return in;
  }
  return Str(fa, Strftime(tp, format));
}

struct FilterDef {
  const char* name;
  FilterFn fn;
  int min_args;
  int max_args;
};

const FilterDef kFilters[] = {
    {"abs", FAbs, 0, 0},
    {"append", FAppend, 1, 1},
    {"at_least", FAtLeast, 1, 1},
    {"at_most", FAtMost, 1, 1},
    {"base64_decode", FBase64Decode, 0, 0},
    {"base64_encode", FBase64Encode, 0, 0},
    {"base64_url_safe_decode", FBase64UrlSafeDecode, 0, 0},
    {"base64_url_safe_encode", FBase64UrlSafeEncode, 0, 0},
    {"capitalize", FCapitalize, 0, 0},
    {"ceil", FCeil, 0, 0},
    {"compact", FCompact, 0, 1},
    {"concat", FConcat, 1, 1},
    {"date", FDate, 1, 1},
    {"default", FDefault, 0, 1},
    {"divided_by", FDividedBy, 1, 1},
    {"downcase", FDowncase, 0, 0},
    {"escape", FEscape, 0, 0},
    {"escape_once", FEscapeOnce, 0, 0},
    {"find", FFind, 1, 2},
    {"find_index", FFindIndex, 1, 2},
    {"first", FFirst, 0, 0},
    {"floor", FFloor, 0, 0},
    {"has", FHas, 1, 2},
    {"h", FEscape, 0, 0},
    {"join", FJoin, 0, 1},
    {"last", FLast, 0, 0},
    {"lstrip", FLstrip, 0, 0},
    {"map", FMap, 1, 1},
    {"minus", FMinus, 1, 1},
    {"modulo", FModulo, 1, 1},
    {"newline_to_br", FNewlineToBr, 0, 0},
    {"plus", FPlus, 1, 1},
    {"prepend", FPrepend, 1, 1},
    {"reject", FReject, 1, 2},
    {"remove", FRemove, 1, 1},
    {"remove_first", FRemoveFirst, 1, 1},
    {"remove_last", FRemoveLast, 1, 1},
    {"replace", FReplace, 1, 2},
    {"replace_first", FReplaceFirst, 1, 2},
    {"replace_last", FReplaceLast, 2, 2},
    {"reverse", FReverse, 0, 0},
    {"round", FRound, 0, 1},
    {"rstrip", FRstrip, 0, 0},
    {"size", FSize, 0, 0},
    {"slice", FSlice, 1, 2},
    {"sort", FSort, 0, 1},
    {"sort_natural", FSortNatural, 0, 1},
    {"split", FSplit, 1, 1},
    {"squish", FSquish, 0, 0},
    {"strip", FStrip, 0, 0},
    {"strip_html", FStripHtml, 0, 0},
    {"strip_newlines", FStripNewlines, 0, 0},
    {"sum", FSum, 0, 1},
    {"times", FTimes, 1, 1},
    {"truncate", FTruncate, 0, 2},
    {"truncatewords", FTruncatewords, 0, 2},
    {"uniq", FUniq, 0, 1},
    {"upcase", FUpcase, 0, 0},
    {"url_decode", FUrlDecode, 0, 0},
    {"url_encode", FUrlEncode, 0, 0},
    {"where", FWhere, 1, 2},
};

}  // namespace

// Looks a filter up in the table.
FilterFn FindFilter(std::string_view name, int& min_args, int& max_args) {
  for (const FilterDef& f : kFilters) {
    if (name == f.name) {
      min_args = f.min_args;
      max_args = f.max_args;
      return f.fn;
    }
  }
  return nullptr;
}

// The filter name closest to `name`, for error hints.
std::string SuggestFilter(std::string_view name) {
  std::vector<std::string_view> names;
  for (const FilterDef& f : kFilters) names.push_back(f.name);
  return hyperline::ClosestName(name, names);
}

}  // namespace hyperline::liquid
