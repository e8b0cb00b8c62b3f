// value_test.cpp: Value's text and JSON forms and JSON parsing.
#include "core/value.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace hyperline {
namespace {

std::string Json(const Value& v) {
  std::string out;
  AppendJsonValue(v, out);
  return out;
}

std::string Escaped(std::string_view s) {
  std::string out;
  AppendJsonEscaped(s, out);
  return out;
}

// ISO text of Unix microseconds (a date's midnight with date_only).
std::string Iso(int64_t micros, bool date_only = false) {
  std::string out;
  AppendIsoTime(Value::Time(micros, date_only), out);
  return out;
}

TEST(ValueTest, FloatsPrintLikeRuby) {
  EXPECT_EQ(ToLiquidString(Value::Float(1.0)), "1.0");
  EXPECT_EQ(ToLiquidString(Value::Float(0.1)), "0.1");
  EXPECT_EQ(ToLiquidString(Value::Float(1e20)), "1.0e+20");
  EXPECT_EQ(ToLiquidString(Value::Float(1e16)), "1.0e+16");
  EXPECT_EQ(ToLiquidString(Value::Float(1e15)), "1000000000000000.0");
  EXPECT_EQ(ToLiquidString(Value::Float(0.0001)), "0.0001");
  EXPECT_EQ(ToLiquidString(Value::Float(0.00001)), "1.0e-05");
  EXPECT_EQ(ToLiquidString(Value::Float(-2.5)), "-2.5");
  EXPECT_EQ(ToLiquidString(Value::Float(123.456)), "123.456");
  EXPECT_EQ(ToLiquidString(Value::Float(1.5e-7)), "1.5e-07");
  EXPECT_EQ(ToLiquidString(Value::Float(std::nan(""))), "NaN");
  EXPECT_EQ(ToLiquidString(Value::Float(-std::numeric_limits<double>::infinity())), "-Infinity");
}

TEST(ValueTest, LiquidStringOfEachKind) {
  EXPECT_EQ(ToLiquidString(Value::Nil()), "");
  EXPECT_EQ(ToLiquidString(Value::Bool(true)), "true");
  EXPECT_EQ(ToLiquidString(Value::Int(-42)), "-42");
  EXPECT_EQ(ToLiquidString(Value::Decimal("12345678901234567890.123456789")),
            "12345678901234567890.123456789");
  EXPECT_EQ(ToLiquidString(Value::String("héllo")), "héllo");
  EXPECT_EQ(ToLiquidString(Value::MakeArray(
                {Value::Int(1), Value::MakeArray({Value::String("a")}), Value::Nil()})),
            "1a");
  EXPECT_EQ(ToLiquidString(Value::Range(1, 5)), "1..5");
  EXPECT_EQ(ToLiquidString(Value::Empty()), "");
  EXPECT_EQ(ToLiquidString(Value::MakeObject({{"a", Value::Int(1)}})), "{\"a\"=>1}");
}

TEST(ValueTest, IsoTime) {
  // 2024-12-20T16:04:11Z = 1734710651 s
  EXPECT_EQ(Iso(1734710651LL * 1000000), "2024-12-20T16:04:11Z");
  EXPECT_EQ(Iso(1734710651LL * 1000000 + 500000), "2024-12-20T16:04:11.5Z");
  EXPECT_EQ(Iso(1734710651LL * 1000000 + 123), "2024-12-20T16:04:11.000123Z");
  EXPECT_EQ(Iso(1734652800LL * 1000000, true), "2024-12-20");
  EXPECT_EQ(Iso(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Iso(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(Iso(-86400LL * 1000000 * 365), "1969-01-01T00:00:00Z");
  EXPECT_EQ(ToLiquidString(Value::Time(1734710651LL * 1000000)), "2024-12-20T16:04:11Z");
}

TEST(ValueTest, JsonEscaping) {
  EXPECT_EQ(Escaped("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(Escaped("line\nnext\ttab\r"), "line\\nnext\\ttab\\r");
  EXPECT_EQ(Escaped(std::string("\x01\x1f", 2)), "\\u0001\\u001f");
  EXPECT_EQ(Escaped("héllo €😀"), "héllo €😀");
  EXPECT_EQ(Escaped("bad\xff byte"), "bad\xEF\xBF\xBD byte");
  EXPECT_EQ(Escaped("trunc\xe2\x82"), "trunc\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Escaped("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(Escaped("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
}

TEST(ValueTest, JsonValues) {
  EXPECT_EQ(Json(Value::Nil()), "null");
  EXPECT_EQ(Json(Value::Bool(false)), "false");
  EXPECT_EQ(Json(Value::Int(INT64_MIN)), "-9223372036854775808");
  EXPECT_EQ(Json(Value::Float(0.1)), "0.1");
  EXPECT_EQ(Json(Value::Float(2.0)), "2");
  EXPECT_EQ(Json(Value::Decimal("12345678901234567890.123456789")),
            "12345678901234567890.123456789");
  EXPECT_EQ(Json(Value::String("a\"b")), "\"a\\\"b\"");
  EXPECT_EQ(Json(Value::Time(1734710651LL * 1000000)), "\"2024-12-20T16:04:11Z\"");
  EXPECT_EQ(Json(Value::MakeArray({Value::Int(1), Value::String("x")})), "[1,\"x\"]");
  EXPECT_EQ(Json(Value::MakeObject({{"b", Value::Int(1)}, {"a", Value::Nil()}})),
            "{\"b\":1,\"a\":null}");
  EXPECT_EQ(Json(Value::Range(1, 3)), "[1,2,3]");
  EXPECT_EQ(Json(Value::Blank()), "\"\"");
}

TEST(ValueTest, JsonRejectsNonFiniteNumbers) {
  try {
    Json(Value::Float(std::nan("")));
    FAIL() << "NaN accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos);
  }
  EXPECT_THROW(Json(Value::Float(std::numeric_limits<double>::infinity())), std::invalid_argument);
  EXPECT_THROW(Json(Value::Decimal("NaN")), std::invalid_argument);
  EXPECT_THROW(Json(Value::Decimal("Infinity")), std::invalid_argument);
  EXPECT_THROW(Json(Value::Decimal("1.")), std::invalid_argument);
}

TEST(ValueTest, ParseJsonKeepsOrderAndExactNumbers) {
  Value v = ParseJsonValue(
      R"({"z": 1, "a": [true, null, 1.5, 0.1], "big": 12345678901234567890.123456789,
          "huge": 123456789012345678901234567890, "u": 18446744073709551615, "s": "é\n"})");
  ASSERT_EQ(v.kind(), Value::Kind::Object);
  const Object& o = v.as_object();
  ASSERT_EQ(o.size(), 6u);
  EXPECT_EQ(o[0].first, "z");
  EXPECT_EQ(o[1].first, "a");
  EXPECT_EQ(v.Find("z")->kind(), Value::Kind::Int);
  const Array& a = v.Find("a")->as_array();
  EXPECT_EQ(a[0].kind(), Value::Kind::Bool);
  EXPECT_TRUE(a[1].is_nil());
  EXPECT_EQ(a[2].kind(), Value::Kind::Float);
  EXPECT_EQ(a[3].kind(), Value::Kind::Float);
  EXPECT_DOUBLE_EQ(a[3].as_float(), 0.1);
  EXPECT_EQ(v.Find("big")->kind(), Value::Kind::Decimal);
  EXPECT_EQ(v.Find("big")->as_string(), "12345678901234567890.123456789");
  EXPECT_EQ(v.Find("huge")->kind(), Value::Kind::Decimal);
  EXPECT_EQ(v.Find("huge")->as_string(), "123456789012345678901234567890");
  EXPECT_EQ(v.Find("u")->as_string(), "18446744073709551615");
  EXPECT_EQ(v.Find("s")->as_string(), "é\n");
  EXPECT_EQ(Json(v.Find("big") ? *v.Find("big") : Value()), "12345678901234567890.123456789");
}

TEST(ValueTest, ParseJsonErrors) {
  EXPECT_THROW(ParseJsonValue("{"), std::invalid_argument);
  EXPECT_THROW(ParseJsonValue("[1,]"), std::invalid_argument);
  EXPECT_THROW(ParseJsonValue(""), std::invalid_argument);
  EXPECT_THROW(ParseJsonValue(std::string(100000, '[')), std::invalid_argument);
}

TEST(ValueTest, DeepValuesFailCleanly) {
  // Values built outside ParseJsonValue (e.g. from a deep jsonb column) must not
  // exhaust the stack when printed.
  Value v = Value::Int(1);
  for (int i = 0; i < 3000; ++i) v = Value::MakeArray({v});
  std::string out;
  EXPECT_THROW(AppendJsonValue(v, out), std::invalid_argument);
  EXPECT_THROW(ToLiquidString(v), std::invalid_argument);
  Value shallow = Value::Int(1);
  for (int i = 0; i < 100; ++i) shallow = Value::MakeArray({shallow});
  EXPECT_EQ(ToLiquidString(shallow), "1");
}

TEST(ValueTest, CopyOnWrite) {
  Value a = Value::MakeArray({Value::Int(1)});
  Value b = a;
  b.mutable_array().push_back(Value::Int(2));
  EXPECT_EQ(a.as_array().size(), 1u);
  EXPECT_EQ(b.as_array().size(), 2u);
  Value o = Value::MakeObject({{"k", Value::Int(1)}});
  EXPECT_EQ(o.Find("k")->as_int(), 1);
  EXPECT_EQ(o.Find("missing"), nullptr);
  EXPECT_EQ(Value::Int(3).Find("k"), nullptr);
}

}  // namespace
}  // namespace hyperline
