// value.hpp: the dynamic value that templates render.
//
// Vocabulary: a Value is what a Liquid variable holds. Values come from two
// places: a row's columns (converted by src/pg, the tuple -> Value step) and
// template literals/filters (src/core/liquid). Kinds map to JSON when a
// placeholder is a whole JSON value: Nil->null, Bool, Int/Float/Decimal->number,
// String->string, Time->ISO 8601 UTC string, Array->array, Object->object.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hyperline {

constexpr int64_t kMicrosPerDay = 86400LL * 1000000LL;
// Days from 1970-01-01 (the Unix epoch) to 2000-01-01 (PostgreSQL's epoch).
constexpr int64_t kUnixToPgEpochDays = 10957;

// Floor division and its non-negative remainder (b > 0).
constexpr int64_t FloorDiv(int64_t a, int64_t b) { return a / b - (a % b < 0 ? 1 : 0); }
constexpr int64_t FloorMod(int64_t a, int64_t b) { return a % b < 0 ? a % b + b : a % b; }

class Value;
using Array = std::vector<Value>;
// Insertion-ordered object; small objects (rows, JSON) are searched linearly.
using Object = std::vector<std::pair<std::string, Value>>;

class Value {
 public:
  enum class Kind : uint8_t {
    Nil,
    Bool,
    Int,      // int64
    Float,    // double
    Decimal,  // exact decimal number kept as its canonical text (Postgres numeric)
    String,
    Time,  // an instant in UTC, or a calendar day (date_only); see TimeFromPgMicros
    Array,
    Object,
    Range,  // Liquid (a..b), inclusive int64 bounds
    Empty,  // Liquid `empty` literal
    Blank,  // Liquid `blank` literal
  };

  Value() = default;
  static Value Nil() { return Value(); }
  static Value Bool(bool b) {
    Value v;
    v.kind_ = Kind::Bool;
    v.i_ = b ? 1 : 0;
    return v;
  }
  static Value Int(int64_t i) {
    Value v;
    v.kind_ = Kind::Int;
    v.i_ = i;
    return v;
  }
  static Value Float(double d) {
    Value v;
    v.kind_ = Kind::Float;
    v.d_ = d;
    return v;
  }
  static Value Decimal(std::string text) {
    Value v;
    v.kind_ = Kind::Decimal;
    v.s_ = std::move(text);
    return v;
  }
  static Value String(std::string s) {
    Value v;
    v.kind_ = Kind::String;
    v.s_ = std::move(s);
    return v;
  }
  static Value String(std::string_view s) { return String(std::string(s)); }
  static Value String(const char* s) { return String(std::string(s)); }
  // Times are kept as days since 2000-01-01 (PostgreSQL's epoch) and
  // microseconds into that day (0 <= micros < kMicrosPerDay), so every value
  // PostgreSQL's timestamp, timestamptz and date types hold (4713 BC to 294276
  // AD, and to 5874897 AD for date) is exact, with room for the `date` filter's
  // inputs (any int64 count of Unix seconds). No constructor can overflow.
  //
  // A timestamp or timestamptz Datum: microseconds since 2000-01-01T00:00:00
  // (UTC for timestamptz; timestamp's wall-clock time is read as UTC).
  static Value TimeFromPgMicros(int64_t micros_since_2000) {
    return TimeFromDays(FloorDiv(micros_since_2000, kMicrosPerDay),
                        FloorMod(micros_since_2000, kMicrosPerDay), false);
  }
  // A date Datum (DateADT): days since 2000-01-01; renders as YYYY-MM-DD.
  static Value DateFromPgDays(int32_t days_since_2000) {
    return TimeFromDays(days_since_2000, 0, true);
  }
  // Microseconds since 1970-01-01T00:00:00Z (a clock reading).
  static Value TimeFromUnixMicros(int64_t micros_since_1970) {
    return TimeFromDays(FloorDiv(micros_since_1970, kMicrosPerDay) - kUnixToPgEpochDays,
                        FloorMod(micros_since_1970, kMicrosPerDay), false);
  }
  // The 0.1.0 constructor (microseconds since 1970; date_only for dates), kept
  // so src/pg builds until it calls TimeFromPgMicros / DateFromPgDays.
  static Value Time(int64_t micros_since_1970, bool date_only = false) {
    Value v = TimeFromUnixMicros(micros_since_1970);
    v.date_only_ = date_only;
    return v;
  }
  // Days since 2000-01-01 and microseconds into that day (normalised by the caller).
  static Value TimeFromDays(int64_t days_since_2000, int64_t day_micros, bool date_only) {
    Value v;
    v.kind_ = Kind::Time;
    v.i_ = days_since_2000;
    v.i2_ = day_micros;
    v.date_only_ = date_only;
    return v;
  }
  static Value MakeArray(Array a) {
    Value v;
    v.kind_ = Kind::Array;
    v.a_ = std::make_shared<Array>(std::move(a));
    return v;
  }
  static Value MakeObject(Object o) {
    Value v;
    v.kind_ = Kind::Object;
    v.o_ = std::make_shared<Object>(std::move(o));
    return v;
  }
  static Value Range(int64_t first, int64_t last) {
    Value v;
    v.kind_ = Kind::Range;
    v.i_ = first;
    v.i2_ = last;
    return v;
  }
  static Value Empty() {
    Value v;
    v.kind_ = Kind::Empty;
    return v;
  }
  static Value Blank() {
    Value v;
    v.kind_ = Kind::Blank;
    return v;
  }

  Kind kind() const { return kind_; }
  bool is_nil() const { return kind_ == Kind::Nil; }
  bool is_number() const {
    return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Decimal;
  }
  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const { return i_; }
  double as_float() const { return d_; }
  // String and Decimal text.
  const std::string& as_string() const { return s_; }
  // Time: days since 2000-01-01, and microseconds into that day.
  int64_t time_days() const { return i_; }
  int64_t time_day_micros() const { return i2_; }
  bool date_only() const { return date_only_; }
  int64_t range_first() const { return i_; }
  int64_t range_last() const { return i2_; }
  const Array& as_array() const { return *a_; }
  const Object& as_object() const { return *o_; }
  // Copy-on-write access for builders; the shared payload is cloned if shared.
  Array& mutable_array();
  Object& mutable_object();

  // Object member by exact key, or nullptr.
  const Value* Find(std::string_view key) const;

 private:
  Kind kind_ = Kind::Nil;
  bool date_only_ = false;
  int64_t i_ = 0;
  int64_t i2_ = 0;
  double d_ = 0;
  std::string s_;
  std::shared_ptr<Array> a_;
  std::shared_ptr<Object> o_;
};

// Liquid's string form of a value (what `{{ v }}` prints in plain Liquid):
// nil -> "", arrays concatenated, floats as Ruby prints them, Time as ISO 8601 UTC.
void AppendLiquidString(const Value& v, std::string& out);
std::string ToLiquidString(const Value& v);

// ISO 8601 UTC of a Time value: 2024-12-20T16:04:11Z, the fraction (trailing
// zeros trimmed) kept when non-zero; date_only values as YYYY-MM-DD. Years
// 0000-9999 have four digits; other years use ISO 8601's expanded form with a
// sign and at least six digits, as ECMAScript's Date does: +294276-12-31,
// -004713-11-24. Years are astronomical: 0000 is 1 BC, -000001 is 2 BC.
void AppendIsoTime(const Value& time, std::string& out);

// Appends code point `cp` encoded as UTF-8.
void AppendUtf8(uint32_t cp, std::string& out);

// Civil (proleptic Gregorian) date <-> days since 1970-01-01. Exact for any
// |days| below 10^14 (years to about +-2.7 * 10^11).
void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d);
int64_t CivilToDays(int64_t y, unsigned m, unsigned d);

// Appends `s` JSON-escaped (no surrounding quotes): ", \, control characters;
// valid UTF-8 is kept as is, invalid bytes become U+FFFD.
void AppendJsonEscaped(std::string_view s, std::string& out);

// Appends the value as a JSON value of its type (numbers exact, Time as a string).
// Throws std::invalid_argument for values JSON cannot hold (NaN, infinity).
void AppendJsonValue(const Value& v, std::string& out);

// Converts parsed JSON text into a Value tree (objects keep key order). Throws
// std::invalid_argument with a message on malformed JSON.
Value ParseJsonValue(std::string_view json);

}  // namespace hyperline
