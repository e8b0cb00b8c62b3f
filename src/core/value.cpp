// value.cpp: Value storage helpers and the text/JSON forms of values.
//
// Why here: both the Liquid engine (plain text) and the payload layer (JSON-typed
// output) print values; keeping one implementation keeps them consistent.
#include "core/value.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

#include "core/liquid/number.hpp"

namespace hyperline {

// Returns the array for writing, cloning it first if another Value shares it.
Array& Value::mutable_array() {
  if (!a_) a_ = std::make_shared<Array>();
  if (a_.use_count() > 1) a_ = std::make_shared<Array>(*a_);
  return *a_;
}

// Returns the object for writing, cloning it first if another Value shares it.
Object& Value::mutable_object() {
  if (!o_) o_ = std::make_shared<Object>();
  if (o_.use_count() > 1) o_ = std::make_shared<Object>(*o_);
  return *o_;
}

// Finds an object member by exact key (linear: rows and JSON objects are small).
const Value* Value::Find(std::string_view key) const {
  if (kind_ != Kind::Object || !o_) return nullptr;
  for (const auto& kv : *o_) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

namespace {

// Appends a signed integer in decimal.
void AppendInt(int64_t i, std::string& out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), i);
  out.append(buf, static_cast<size_t>(res.ptr - buf));
}

// Appends `n` as at least `width` digits, zero padded.
void AppendPadded(int64_t n, int width, std::string& out) {
  char buf[24];
  bool neg = n < 0;
  uint64_t u = neg ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
  auto res = std::to_chars(buf, buf + sizeof(buf), u);
  int len = static_cast<int>(res.ptr - buf);
  if (neg) out.push_back('-');
  for (int i = len; i < width; ++i) out.push_back('0');
  out.append(buf, static_cast<size_t>(res.ptr - buf));
}

// Why: values are trees printed recursively; a value built elsewhere (e.g. from a
// deeply nested jsonb column) must fail cleanly instead of exhausting the stack.
constexpr int kMaxPrintDepth = 1000;

// Throws when a value is nested deeper than printing allows.
void CheckDepth(int depth) {
  if (depth > kMaxPrintDepth) throw std::invalid_argument("value nested too deeply to print");
}

void AppendLiquidStringAt(const Value& v, std::string& out, int depth);
void AppendJsonValueAt(const Value& v, std::string& out, int depth);

// Appends a Ruby-style Hash#inspect of an object (what Ruby Liquid prints).
void AppendInspect(const Value& v, std::string& out, int depth);

// Appends `s` as Ruby's String#inspect prints it (quoted, escaped).
void AppendInspectString(std::string_view s, std::string& out) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
  out.push_back('"');
}

// Appends Ruby's #inspect form of `v` (how Ruby Liquid prints hashes).
void AppendInspect(const Value& v, std::string& out, int depth) {
  CheckDepth(depth);
  switch (v.kind()) {
    case Value::Kind::Nil:
      out += "nil";
      break;
    case Value::Kind::String:
      AppendInspectString(v.as_string(), out);
      break;
    case Value::Kind::Time:
      out.push_back('"');
      AppendIsoTime(v, out);
      out.push_back('"');
      break;
    case Value::Kind::Array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.as_array()) {
        if (!first) out += ", ";
        first = false;
        AppendInspect(e, out, depth + 1);
      }
      out.push_back(']');
      break;
    }
    case Value::Kind::Object: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : v.as_object()) {
        if (!first) out += ", ";
        first = false;
        AppendInspectString(kv.first, out);
        out += "=>";
        AppendInspect(kv.second, out, depth + 1);
      }
      out.push_back('}');
      break;
    }
    default:
      AppendLiquidString(v, out);
  }
}

}  // namespace

// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
int64_t CivilToDays(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Appends a Time value as ISO 8601 UTC (see value.hpp).
void AppendIsoTime(const Value& time, std::string& out) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(time.time_days() + kUnixToPgEpochDays, y, m, d);
  if (y >= 0 && y <= 9999) {
    AppendPadded(y, 4, out);
  } else {
    // ISO 8601 expanded year: mandatory sign, at least six digits.
    out.push_back(y < 0 ? '-' : '+');
    AppendPadded(y < 0 ? -y : y, 6, out);
  }
  out.push_back('-');
  AppendPadded(m, 2, out);
  out.push_back('-');
  AppendPadded(d, 2, out);
  if (time.date_only()) return;
  int64_t rem = time.time_day_micros();
  int64_t secs = rem / 1000000;
  int64_t frac = rem % 1000000;
  out.push_back('T');
  AppendPadded(secs / 3600, 2, out);
  out.push_back(':');
  AppendPadded(secs / 60 % 60, 2, out);
  out.push_back(':');
  AppendPadded(secs % 60, 2, out);
  if (frac != 0) {
    char buf[7];
    for (int i = 5; i >= 0; --i) {
      buf[i] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    int len = 6;
    while (len > 0 && buf[len - 1] == '0') --len;
    out.push_back('.');
    out.append(buf, static_cast<size_t>(len));
  }
  out.push_back('Z');
}

void AppendLiquidString(const Value& v, std::string& out) { AppendLiquidStringAt(v, out, 0); }

namespace {

// Appends Liquid's text form of `v`; `depth` bounds recursion.
void AppendLiquidStringAt(const Value& v, std::string& out, int depth) {
  CheckDepth(depth);
  switch (v.kind()) {
    case Value::Kind::Nil:
    case Value::Kind::Empty:
    case Value::Kind::Blank:
      return;
    case Value::Kind::Bool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::Int:
      AppendInt(v.as_int(), out);
      return;
    case Value::Kind::Float:
      liquid::AppendRubyFloat(v.as_float(), out);
      return;
    case Value::Kind::Decimal:
    case Value::Kind::String:
      out += v.as_string();
      return;
    case Value::Kind::Time:
      AppendIsoTime(v, out);
      return;
    case Value::Kind::Array:
      // Ruby's Array#join flattens nested arrays.
      for (const auto& e : v.as_array()) AppendLiquidStringAt(e, out, depth + 1);
      return;
    case Value::Kind::Object:
      AppendInspect(v, out, depth);
      return;
    case Value::Kind::Range:
      AppendInt(v.range_first(), out);
      out += "..";
      AppendInt(v.range_last(), out);
      return;
  }
}

}  // namespace

// Returns Liquid's text form of `v`.
std::string ToLiquidString(const Value& v) {
  std::string out;
  AppendLiquidString(v, out);
  return out;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
static size_t Utf8SequenceLength(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

// Appends `s` JSON-escaped, replacing invalid UTF-8 with U+FFFD.
void AppendJsonEscaped(std::string_view s, std::string& out) {
  static const char kHex[] = "0123456789abcdef";
  size_t run_start = 0;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(s, i);
      if (len > 0) {
        i += len;
        continue;
      }
    }
    out.append(s.data() + run_start, i - run_start);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out += "\xEF\xBF\xBD";  // invalid UTF-8 byte -> U+FFFD
        }
    }
    ++i;
    run_start = i;
  }
  out.append(s.data() + run_start, n - run_start);
}

// True if `text` is a JSON number (digits, optional fraction and exponent).
static bool IsJsonNumber(std::string_view t) {
  size_t i = 0;
  if (i < t.size() && t[i] == '-') ++i;
  if (i >= t.size()) return false;
  if (t[i] == '0') {
    ++i;
  } else if (t[i] >= '1' && t[i] <= '9') {
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  } else {
    return false;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    if (i == start) return false;
  }
  return i == t.size();
}

void AppendJsonValue(const Value& v, std::string& out) { AppendJsonValueAt(v, out, 0); }

namespace {

// Appends `v` as a JSON value; `depth` bounds recursion.
void AppendJsonValueAt(const Value& v, std::string& out, int depth) {
  CheckDepth(depth);
  switch (v.kind()) {
    case Value::Kind::Nil:
      out += "null";
      return;
    case Value::Kind::Bool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::Int:
      AppendInt(v.as_int(), out);
      return;
    case Value::Kind::Float: {
      double d = v.as_float();
      if (!std::isfinite(d)) {
        throw std::invalid_argument(std::isnan(d) ? "NaN cannot be represented in JSON"
                                                  : "Infinity cannot be represented in JSON");
      }
      char buf[40];
      auto res = std::to_chars(buf, buf + sizeof(buf), d);
      out.append(buf, static_cast<size_t>(res.ptr - buf));
      return;
    }
    case Value::Kind::Decimal: {
      const std::string& t = v.as_string();
      if (!IsJsonNumber(t)) {
        throw std::invalid_argument("numeric value '" + t + "' cannot be represented in JSON");
      }
      out += t;
      return;
    }
    case Value::Kind::String:
      out.push_back('"');
      AppendJsonEscaped(v.as_string(), out);
      out.push_back('"');
      return;
    case Value::Kind::Time:
      out.push_back('"');
      AppendIsoTime(v, out);
      out.push_back('"');
      return;
    case Value::Kind::Array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.as_array()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJsonValueAt(e, out, depth + 1);
      }
      out.push_back(']');
      return;
    }
    case Value::Kind::Object: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : v.as_object()) {
        if (!first) out.push_back(',');
        first = false;
        out.push_back('"');
        AppendJsonEscaped(kv.first, out);
        out += "\":";
        AppendJsonValueAt(kv.second, out, depth + 1);
      }
      out.push_back('}');
      return;
    }
    case Value::Kind::Range: {
      // Why: a range is a lazily expanded array; cap what JSON will spell out.
      int64_t a = v.range_first(), b = v.range_last();
      out.push_back('[');
      if (b >= a && static_cast<uint64_t>(b) - static_cast<uint64_t>(a) >= 1000000) {
        throw std::invalid_argument("range too large to render as JSON");
      }
      for (int64_t i = a; i <= b; ++i) {
        if (i != a) out.push_back(',');
        AppendInt(i, out);
        if (i == b) break;
      }
      out.push_back(']');
      return;
    }
    case Value::Kind::Empty:
    case Value::Kind::Blank:
      out += "\"\"";
      return;
  }
}

}  // namespace

namespace {

// SAX handler building a Value tree; keeps number lexemes for exactness.
class ValueBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return Put(Value::Nil()); }
  bool boolean(bool b) override { return Put(Value::Bool(b)); }
  bool number_integer(number_integer_t i) override { return Put(Value::Int(i)); }
  bool number_unsigned(number_unsigned_t u) override {
    if (u <= static_cast<uint64_t>(INT64_MAX)) return Put(Value::Int(static_cast<int64_t>(u)));
    return Put(Value::Decimal(std::to_string(u)));
  }
  bool number_float(number_float_t d, const string_t& lexeme) override {
    if (std::isfinite(d) && liquid::DoubleMatchesText(d, lexeme)) return Put(Value::Float(d));
    return Put(Value::Decimal(lexeme));
  }
  bool string(string_t& s) override { return Put(Value::String(std::move(s))); }
  bool binary(binary_t&) override { return Put(Value::Nil()); }
  bool start_object(std::size_t) override {
    if (stack_.size() >= kMaxDepth) return TooDeep();
    stack_.push_back(Value::MakeObject({}));
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    keys_.back() = std::move(k);
    return true;
  }
  bool end_object() override {
    Value v = std::move(stack_.back());
    stack_.pop_back();
    keys_.pop_back();
    return Put(std::move(v));
  }
  bool start_array(std::size_t) override {
    if (stack_.size() >= kMaxDepth) return TooDeep();
    stack_.push_back(Value::MakeArray({}));
    keys_.emplace_back();
    return true;
  }
  bool end_array() override { return end_object(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error_ = "invalid JSON at byte " + std::to_string(position) + ": " + ex.what();
    return false;
  }

  Value result;
  std::string error_;

 private:
  // Why: Value trees are destroyed recursively; bound nesting so no input can
  // exhaust the stack.
  static constexpr size_t kMaxDepth = 512;
  bool TooDeep() {
    error_ = "invalid JSON: nesting deeper than 512 levels";
    return false;
  }
  bool Put(Value v) {
    if (stack_.empty()) {
      result = std::move(v);
    } else if (stack_.back().kind() == Value::Kind::Array) {
      stack_.back().mutable_array().push_back(std::move(v));
    } else {
      stack_.back().mutable_object().emplace_back(std::move(keys_.back()), std::move(v));
    }
    return true;
  }
  std::vector<Value> stack_;
  std::vector<std::string> keys_;
};

}  // namespace

// Parses JSON text into a Value tree (ordered objects, exact numbers).
Value ParseJsonValue(std::string_view json) {
  ValueBuilder builder;
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(json.begin(), json.end(), &builder);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("invalid JSON: ") + e.what());
  }
  if (!ok) {
    throw std::invalid_argument(builder.error_.empty() ? "invalid JSON" : builder.error_);
  }
  return std::move(builder.result);
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace hyperline
