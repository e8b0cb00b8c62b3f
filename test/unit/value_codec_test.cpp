// Tests for the Value encoding a query model keeps for each key.
#include "core/value_codec.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace hyperline {
namespace {

// Whether two values are the same kind with the same content (recursively).
bool Same(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Nil:
    case Value::Kind::Empty:
    case Value::Kind::Blank:
      return true;
    case Value::Kind::Bool:
      return a.as_bool() == b.as_bool();
    case Value::Kind::Int:
      return a.as_int() == b.as_int();
    case Value::Kind::Float:
      return a.as_float() == b.as_float() || (std::isnan(a.as_float()) && std::isnan(b.as_float()));
    case Value::Kind::Decimal:
    case Value::Kind::String:
      return a.as_string() == b.as_string();
    case Value::Kind::Time:
      return a.time_days() == b.time_days() && a.time_day_micros() == b.time_day_micros() &&
             a.date_only() == b.date_only();
    case Value::Kind::Range:
      return a.range_first() == b.range_first() && a.range_last() == b.range_last();
    case Value::Kind::Array: {
      if (a.as_array().size() != b.as_array().size()) return false;
      for (size_t i = 0; i < a.as_array().size(); ++i) {
        if (!Same(a.as_array()[i], b.as_array()[i])) return false;
      }
      return true;
    }
    case Value::Kind::Object: {
      if (a.as_object().size() != b.as_object().size()) return false;
      for (size_t i = 0; i < a.as_object().size(); ++i) {
        if (a.as_object()[i].first != b.as_object()[i].first) return false;
        if (!Same(a.as_object()[i].second, b.as_object()[i].second)) return false;
      }
      return true;
    }
  }
  return false;
}

Value RoundTrip(const Value& v) {
  std::string bytes;
  EncodeValue(v, bytes);
  return DecodeValue(bytes);
}

TEST(ValueCodec, EveryKindComesBackTheSame) {
  const Value values[] = {
      Value::Nil(),
      Value::Bool(true),
      Value::Bool(false),
      Value::Int(0),
      Value::Int(-1),
      Value::Int(std::numeric_limits<int64_t>::max()),
      Value::Int(std::numeric_limits<int64_t>::min()),
      Value::Float(0.1),
      Value::Float(-1e308),
      Value::Float(std::numeric_limits<double>::infinity()),
      Value::Float(std::nan("")),
      Value::Decimal("123456789012345678901234567890.000000000000000001"),
      Value::String(""),
      Value::String(std::string("nul\0inside and \xff bytes", 23)),
      Value::Time(1734710651000000),                   // 2024-12-20T16:04:11Z
      Value::Time(1734710651123456),                   // with a fraction
      Value::Time(-1),                                 // 1969-12-31T23:59:59.999999Z
      Value::Time(-62135596800000000),                 // 0001-01-01
      Value::TimeFromPgMicros(9223371331199999999LL),  // 294276-12-31T23:59:59.999999Z
      Value::DateFromPgDays(-2451545),                 // 4713 BC
      Value::Time(1734652800000000, true),             // a date
      Value::Range(-3, 7),
      Value::Empty(),
      Value::Blank(),
  };
  for (const Value& v : values) {
    EXPECT_TRUE(Same(RoundTrip(v), v)) << ToLiquidString(v);
  }
}

TEST(ValueCodec, RowsWithNestedValuesComeBackInOrder) {
  Object row;
  row.emplace_back("seats", Value::Int(12));
  row.emplace_back("customer", Value::String("cus_1"));
  row.emplace_back("day", Value::Time(1734652800000000, true));
  row.emplace_back("tags", Value::MakeArray({Value::String("a"), Value::Nil(),
                                             Value::MakeArray({Value::Int(1)})}));
  Object meta;
  meta.emplace_back("z", Value::Int(1));
  meta.emplace_back("a", Value::Decimal("2.50"));
  row.emplace_back("meta", Value::MakeObject(meta));
  row.emplace_back("", Value::Nil());
  Value v = Value::MakeObject(row);
  EXPECT_TRUE(Same(RoundTrip(v), v));
  // Same value, same bytes.
  std::string a;
  std::string b;
  EncodeValue(v, a);
  EncodeValue(RoundTrip(v), b);
  EXPECT_EQ(a, b);
}

TEST(ValueCodec, RefusesWhatItDidNotWrite) {
  std::string good;
  EncodeValue(Value::MakeObject({{"id", Value::String("abc")}}), good);
  EXPECT_THROW(DecodeValue(""), std::invalid_argument);
  EXPECT_THROW(DecodeValue(std::string(1, '\x02') + good.substr(1)), std::invalid_argument);
  for (size_t n = 1; n < good.size(); ++n) {
    EXPECT_THROW(DecodeValue(good.substr(0, n)), std::invalid_argument) << "truncated at " << n;
  }
  EXPECT_THROW(DecodeValue(good + "x"), std::invalid_argument);
  EXPECT_THROW(DecodeValue(std::string("\x01\x63", 2)), std::invalid_argument);  // unknown tag
  // An array claiming more elements than bytes left.
  EXPECT_THROW(DecodeValue(std::string("\x01\x09\xff\xff\xff\xff\x0f", 7)), std::invalid_argument);
  // Deep nesting is refused, not a stack overflow.
  std::string deep(1, '\x01');
  for (int i = 0; i < 100000; ++i) deep += std::string("\x09\x01", 2);
  deep.push_back('\x00');
  EXPECT_THROW(DecodeValue(deep), std::invalid_argument);
  // A time of day past midnight.
  std::string bad_time("\x01\x07\x00", 3);
  std::string micros;
  uint64_t v = 86400ULL * 1000000ULL;
  while (v >= 0x80) {
    micros.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  micros.push_back(static_cast<char>(v));
  EXPECT_THROW(DecodeValue(bad_time + micros), std::invalid_argument);
}

}  // namespace
}  // namespace hyperline
