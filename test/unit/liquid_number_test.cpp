// liquid_number_test.cpp: exact decimal arithmetic, Ruby float printing and
// locale-independent number parsing used by the Liquid filters.
#include <gtest/gtest.h>

#include <clocale>
#include <cmath>
#include <string>

#include "core/liquid/number.hpp"

namespace hyperline::liquid {
namespace {

std::string Ruby(double d) {
  std::string s;
  AppendRubyFloat(d, s);
  return s;
}

TEST(LiquidNumber, RubyFloatFormat) {
  EXPECT_EQ(Ruby(3.0), "3.0");
  EXPECT_EQ(Ruby(-0.5), "-0.5");
  EXPECT_EQ(Ruby(1234567.25), "1234567.25");
  EXPECT_EQ(Ruby(1e100), "1.0e+100");
  EXPECT_EQ(Ruby(2.5e-5), "2.5e-05");
  EXPECT_EQ(Ruby(0.1 + 0.2), "0.30000000000000004");
}

TEST(LiquidNumber, DecimalArithmeticIsExact) {
  auto a = ParseDec("0.1"), b = ParseDec("0.2");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(DecToText(*DecAdd(*a, *b)), "0.3");
  EXPECT_EQ(DecToText(*DecMul(*ParseDec("1.1"), *ParseDec("3"))), "3.3");
  EXPECT_EQ(DecToText(*DecSub(*ParseDec("10.1"), *ParseDec("2.2"))), "7.9");
  EXPECT_EQ(DecToText(*DecRound(*ParseDec("2.675"), 2)), "2.68");
  EXPECT_EQ(DecToText(*DecRound(*ParseDec("-2.5"), 0)), "-3");
  EXPECT_EQ(DecToText(DecFloor(*ParseDec("-5.1"))), "-6");
  EXPECT_EQ(DecToText(DecCeil(*ParseDec("5.1"))), "6");
  EXPECT_EQ(DecCompare(*ParseDec("1.50"), *ParseDec("1.5")), 0);
  EXPECT_EQ(DecToText(*ParseDec("12e2")), "1200");
  EXPECT_FALSE(ParseDec("1.2.3"));
  EXPECT_FALSE(ParseDec("abc"));
  EXPECT_FALSE(ParseDec(std::string(60, '9')));  // too wide: callers fall back to double
  // Overflow is reported, never wrapped.
  auto big = ParseDec("9999999999999999999999999999999999");
  ASSERT_TRUE(big);
  EXPECT_FALSE(DecMul(*big, *big));
}

TEST(LiquidNumber, DoubleMatchesText) {
  EXPECT_TRUE(DoubleMatchesText(0.1, "0.1"));
  EXPECT_TRUE(DoubleMatchesText(1.5, "1.50"));
  EXPECT_TRUE(DoubleMatchesText(1200, "1.2e3"));
  EXPECT_FALSE(DoubleMatchesText(12345678901234567890.123456789, "12345678901234567890.123456789"));
  EXPECT_FALSE(DoubleMatchesText(0.1, "0.10000000000000001"));
}

TEST(LiquidNumber, ParseDoubleIgnoresLocale) {
  // A comma-decimal locale must not change how "1.5" parses (if installed).
  const char* old = std::setlocale(LC_NUMERIC, nullptr);
  std::string saved = old ? old : "C";
  std::setlocale(LC_NUMERIC, "de_DE.UTF-8");
  EXPECT_EQ(ParseDouble("1.5"), 1.5);
  EXPECT_EQ(ParseDouble("-2.25e2"), -225.0);
  EXPECT_EQ(ParseDouble("+3"), 3.0);
  EXPECT_TRUE(std::isinf(ParseDouble("1e400")));
  EXPECT_EQ(ParseDouble("1e-400"), 0.0);
  EXPECT_EQ(ParseDouble("junk"), 0.0);
  std::setlocale(LC_NUMERIC, saved.c_str());
}

}  // namespace
}  // namespace hyperline::liquid
