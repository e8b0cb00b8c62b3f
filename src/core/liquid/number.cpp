// number.cpp: Ruby float printing and 128-bit exact decimal arithmetic.
#include "core/liquid/number.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace hyperline::liquid {

namespace {

// Shortest round-trip digits of |d| and its decimal exponent (d = 0.DIGITS * 10^decpt).
void ShortestDigits(double d, std::string& digits, int& decpt) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), std::fabs(d), std::chars_format::scientific);
  std::string_view s(buf, static_cast<size_t>(res.ptr - buf));
  size_t e = s.find('e');
  digits.clear();
  for (size_t i = 0; i < e; ++i) {
    if (s[i] != '.') digits.push_back(s[i]);
  }
  int exp = std::atoi(std::string(s.substr(e + 1)).c_str());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  decpt = exp + 1;
}

const __int128 kMaxDec = [] {
  __int128 v = 1;
  for (int i = 0; i < 37; ++i) v *= 10;
  return v;  // 10^37: keeps every op far from the 128-bit edge
}();

__int128 Pow10(int n) {
  __int128 v = 1;
  for (int i = 0; i < n; ++i) v *= 10;
  return v;
}

bool Fits(__int128 m) { return m < kMaxDec * 10 && m > -kMaxDec * 10; }

// Scales `a` up to `scale` (>= a.scale); false on overflow.
bool Rescale(Dec& a, int scale) {
  while (a.scale < scale) {
    if (a.m > kMaxDec || a.m < -kMaxDec) return false;
    a.m *= 10;
    a.scale++;
  }
  return true;
}

// Removes trailing fraction zeros.
Dec Normalize(Dec a) {
  while (a.scale > 0 && a.m % 10 == 0) {
    a.m /= 10;
    a.scale--;
  }
  return a;
}

}  // namespace

// Appends `d` in Ruby's Float#to_s format.
void AppendRubyFloat(double d, std::string& out) {
  if (std::isnan(d)) {
    out += "NaN";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-Infinity" : "Infinity";
    return;
  }
  if (d == 0) {
    out += std::signbit(d) ? "-0.0" : "0.0";
    return;
  }
  std::string digits;
  int decpt;
  ShortestDigits(d, digits, decpt);
  if (d < 0) out.push_back('-');
  int nd = static_cast<int>(digits.size());
  if (decpt < -3 || decpt > 16) {
    out.push_back(digits[0]);
    out.push_back('.');
    if (nd > 1) {
      out.append(digits, 1, std::string::npos);
    } else {
      out.push_back('0');
    }
    char buf[16];
    std::snprintf(buf, sizeof(buf), "e%+03d", decpt - 1);
    out += buf;
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (decpt >= nd) {
    out += digits;
    out.append(static_cast<size_t>(decpt - nd), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<size_t>(decpt));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(decpt), std::string::npos);
  }
}

// True when `text` is exactly the decimal `d` prints as.
bool DoubleMatchesText(double d, std::string_view text) {
  // A double has at most 17 significant digits; very long text is never one.
  if (text.size() > 400) return false;
  // Normalise the text to significant digits and a decimal point position.
  std::string digits;
  int decpt = 0;
  bool seen_point = false, seen_nonzero = false;
  size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      seen_point = true;
    } else if (c >= '0' && c <= '9') {
      if (c == '0' && !seen_nonzero) {
        if (seen_point) decpt--;
        continue;
      }
      seen_nonzero = true;
      digits.push_back(c);
      if (!seen_point) decpt++;
    } else if (c == 'e' || c == 'E') {
      long e = std::strtol(std::string(text.substr(i + 1)).c_str(), nullptr, 10);
      if (e > 100000 || e < -100000) return false;
      decpt += static_cast<int>(e);
      break;
    } else {
      return false;
    }
  }
  while (!digits.empty() && digits.back() == '0') digits.pop_back();
  if (digits.empty()) return d == 0;
  if (d == 0) return false;
  std::string sd;
  int sp;
  ShortestDigits(d, sd, sp);
  return sd == digits && sp == decpt;
}

// Parses decimal text into a Dec, if it fits.
std::optional<Dec> ParseDec(std::string_view text) {
  if (text.size() > 400) return std::nullopt;  // wider than 38 digits + zeros anyway
  Dec r;
  bool neg = false;
  size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) neg = text[i++] == '-';
  int frac = 0;
  bool point = false, any = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (point) return std::nullopt;
      point = true;
    } else if (c >= '0' && c <= '9') {
      any = true;
      if (r.m == 0 && c == '0') {
        if (point) frac++;
        continue;
      }
      if (r.m > kMaxDec) return std::nullopt;
      r.m = r.m * 10 + (c - '0');
      if (point) frac++;
    } else if ((c == 'e' || c == 'E') && any) {
      std::string_view e = text.substr(i + 1);
      if (e.empty()) return std::nullopt;
      long ev = 0;
      auto res = std::from_chars(e.data() + (e[0] == '+' ? 1 : 0), e.data() + e.size(), ev);
      if (res.ec != std::errc() || res.ptr != e.data() + e.size()) return std::nullopt;
      if (ev > 40 || ev < -40) return std::nullopt;
      frac -= static_cast<int>(ev);
      break;
    } else {
      return std::nullopt;
    }
  }
  if (!any) return std::nullopt;
  if (frac < 0) {
    if (!Rescale(r, 0)) return std::nullopt;
    for (int k = 0; k < -frac; ++k) {
      if (r.m > kMaxDec) return std::nullopt;
      r.m *= 10;
    }
    frac = 0;
  }
  r.scale = frac;
  r = Normalize(r);
  if (r.scale > 38) return std::nullopt;
  if (neg) r.m = -r.m;
  return r;
}

// The Dec of a double's shortest representation.
std::optional<Dec> DecFromDouble(double d) {
  if (!std::isfinite(d)) return std::nullopt;
  if (d == 0) return Dec{};
  std::string digits;
  int decpt;
  ShortestDigits(d, digits, decpt);
  Dec r;
  for (char c : digits) r.m = r.m * 10 + (c - '0');
  int scale = static_cast<int>(digits.size()) - decpt;
  if (scale < 0) {
    if (-scale > 20) return std::nullopt;
    r.m *= Pow10(-scale);
    scale = 0;
  }
  if (scale > 38) return std::nullopt;
  r.scale = scale;
  if (d < 0) r.m = -r.m;
  return r;
}

// a + b
std::optional<Dec> DecAdd(Dec a, Dec b) {
  int s = a.scale > b.scale ? a.scale : b.scale;
  if (!Rescale(a, s) || !Rescale(b, s)) return std::nullopt;
  Dec r{a.m + b.m, s};
  if (!Fits(r.m)) return std::nullopt;
  return Normalize(r);
}

// a - b
std::optional<Dec> DecSub(Dec a, Dec b) {
  b.m = -b.m;
  return DecAdd(a, b);
}

// a * b
std::optional<Dec> DecMul(Dec a, Dec b) {
  __int128 m;
  if (__builtin_mul_overflow(a.m, b.m, &m) || !Fits(m)) return std::nullopt;
  Dec r = Normalize(Dec{m, a.scale + b.scale});
  if (r.scale > 38) return std::nullopt;
  return r;
}

// Rounds half away from zero to `digits` fraction digits.
std::optional<Dec> DecRound(Dec a, int digits) {
  if (digits > 38) digits = 38;
  if (digits < -38) return Dec{};
  if (a.scale <= digits) return a;
  int drop = a.scale - digits;
  if (drop > 38) return Dec{};
  __int128 p = Pow10(drop);
  __int128 q = a.m / p, rem = a.m % p;
  __int128 arem = rem < 0 ? -rem : rem;
  if (arem * 2 >= p) q += a.m < 0 ? -1 : 1;
  if (digits >= 0) return Normalize(Dec{q, digits});
  __int128 m;
  if (__builtin_mul_overflow(q, Pow10(-digits), &m) || !Fits(m)) return std::nullopt;
  return Dec{m, 0};
}

// Largest integer <= a.
Dec DecFloor(Dec a) {
  if (a.scale == 0) return a;
  __int128 p = Pow10(a.scale);
  __int128 q = a.m / p;
  if (a.m % p != 0 && a.m < 0) q -= 1;
  return Dec{q, 0};
}

// Smallest integer >= a.
Dec DecCeil(Dec a) {
  if (a.scale == 0) return a;
  __int128 p = Pow10(a.scale);
  __int128 q = a.m / p;
  if (a.m % p != 0 && a.m > 0) q += 1;
  return Dec{q, 0};
}

// Three-way comparison.
int DecCompare(Dec a, Dec b) {
  auto d = DecSub(a, b);
  if (!d) {
    double x = DecToDouble(a), y = DecToDouble(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return d->m < 0 ? -1 : d->m > 0 ? 1 : 0;
}

// Appends a 128-bit integer in decimal.
void AppendInt128(__int128 v, std::string& out) {
  char buf[48];
  int n = 0;
  bool neg = v < 0;
  unsigned __int128 u =
      neg ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  do {
    buf[n++] = static_cast<char>('0' + static_cast<int>(u % 10));
    u /= 10;
  } while (u != 0);
  if (neg) out.push_back('-');
  while (n > 0) out.push_back(buf[--n]);
}

// Canonical decimal text of a Dec.
std::string DecToText(Dec a) {
  std::string out;
  bool neg = a.m < 0;
  std::string digits;
  AppendInt128(neg ? -a.m : a.m, digits);
  if (neg) out.push_back('-');
  if (a.scale == 0) return out + digits;
  if (static_cast<int>(digits.size()) <= a.scale) {
    digits.insert(0, static_cast<size_t>(a.scale) - digits.size() + 1, '0');
  }
  size_t ip = digits.size() - static_cast<size_t>(a.scale);
  out.append(digits, 0, ip);
  out.push_back('.');
  out.append(digits, ip, std::string::npos);
  return out;
}

double DecToDouble(Dec a) { return ParseDouble(DecToText(a)); }

// Locale-independent strtod replacement (see number.hpp).
double ParseDouble(std::string_view text) {
  bool neg = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    neg = text[0] == '-';
    text.remove_prefix(1);
  }
  double d = 0;
  auto res = std::from_chars(text.data(), text.data() + text.size(), d);
  if (res.ec == std::errc::result_out_of_range) {
    // Tiny when the exponent is negative, otherwise huge.
    size_t e = text.find_first_of("eE");
    bool tiny = e != std::string_view::npos && e + 1 < text.size() && text[e + 1] == '-';
    d = tiny ? 0.0 : HUGE_VAL;
  } else if (res.ec != std::errc()) {
    d = 0;
  }
  return neg ? -d : d;
}

// The integer part of `a` (floored) if it fits int64.
std::optional<int64_t> DecToInt64(Dec a) {
  Dec f = DecFloor(a);
  if (f.m > INT64_MAX || f.m < INT64_MIN) return std::nullopt;
  return static_cast<int64_t>(f.m);
}

}  // namespace hyperline::liquid
