// time_test.cpp: Time values over PostgreSQL's whole range (4713 BC to 294276
// AD for timestamps, 5874897 AD for dates): constructors, ISO 8601 text, JSON,
// comparisons and the `date` filter. Expected numbers were computed apart from
// this code (Python, and PostgreSQL's date2j for the Julian-day limits).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/liquid.hpp"
#include "core/payload_template.hpp"
#include "core/value.hpp"

namespace hyperline {
namespace {

constexpr int64_t kDay = 86400LL * 1000000LL;
// PostgreSQL's limits, in its own units (src/include/datatype/timestamp.h):
// MIN_TIMESTAMP is Julian day 0, END_TIMESTAMP is 294277-01-01, and dates run
// from Julian day 0 to DATE_END_JULIAN - 1.
constexpr int64_t kPgMinTimestamp = -211813488000000000LL;
constexpr int64_t kPgEndTimestamp = 9223371331200000000LL;
constexpr int32_t kPgMinDate = -2451545;
constexpr int32_t kPgMaxDate = 2145031948;

std::string Iso(const Value& v) {
  std::string out;
  AppendIsoTime(v, out);
  return out;
}

std::string Json(const Value& v) {
  std::string out;
  AppendJsonValue(v, out);
  return out;
}

// "lt", "eq" or "gt": how Liquid's <, == and > see `a` against `b`.
std::string Compare(const Value& a, const Value& b) {
  liquid::Context ctx;
  ctx.Set("a", a);
  ctx.Set("b", b);
  liquid::StringSink sink;
  liquid::Template::Parse(
      "{% if a < b %}lt{% endif %}{% if a == b %}eq{% endif %}{% if a > b %}gt{% endif %}")
      ->Render(ctx, sink);
  return sink.out;
}

// Renders `src` with `t` bound to `value`.
std::string RenderWith(const std::string& src, const Value& value) {
  liquid::Context ctx;
  ctx.Set("t", value);
  liquid::StringSink sink;
  liquid::Template::Parse(src)->Render(ctx, sink);
  return sink.out;
}

TEST(Time, UsualFormsAreUnchanged) {
  // 2024-12-20T16:04:11Z is 788025851 s after 2000-01-01.
  Value t = Value::TimeFromPgMicros(788025851LL * 1000000);
  EXPECT_EQ(Iso(t), "2024-12-20T16:04:11Z");
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(788025851LL * 1000000 + 500000)), "2024-12-20T16:04:11.5Z");
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(788025851LL * 1000000 + 123)),
            "2024-12-20T16:04:11.000123Z");
  EXPECT_EQ(Iso(Value::DateFromPgDays(9120)), "2024-12-20");
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(0)), "2000-01-01T00:00:00Z");
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(-1)), "1999-12-31T23:59:59.999999Z");
  EXPECT_EQ(Iso(Value::DateFromPgDays(0)), "2000-01-01");
  EXPECT_EQ(Iso(Value::DateFromPgDays(-1)), "1999-12-31");
  EXPECT_EQ(ToLiquidString(t), "2024-12-20T16:04:11Z");
  EXPECT_EQ(Json(t), "\"2024-12-20T16:04:11Z\"");
  EXPECT_EQ(Json(Value::DateFromPgDays(9120)), "\"2024-12-20\"");
}

TEST(Time, UnixConstructorsAgreeWithPgOnes) {
  EXPECT_EQ(Iso(Value::TimeFromUnixMicros(1734710651LL * 1000000)), "2024-12-20T16:04:11Z");
  // The 0.1.0 constructor (Unix micros, date_only) renders as before.
  EXPECT_EQ(Iso(Value::Time(1734652800LL * 1000000, true)), "2024-12-20");
  EXPECT_EQ(Iso(Value::Time(-1)), "1969-12-31T23:59:59.999999Z");
  // Any int64 is accepted without overflow.
  EXPECT_EQ(Iso(Value::TimeFromUnixMicros(INT64_MIN)), "-290308-12-21T19:59:05.224192Z");
  EXPECT_EQ(Iso(Value::TimeFromUnixMicros(INT64_MAX)), "+294247-01-10T04:00:54.775807Z");
}

TEST(Time, PostgresTimestampLimits) {
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(kPgMinTimestamp)), "-004713-11-24T00:00:00Z");
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(kPgEndTimestamp - 1)), "+294276-12-31T23:59:59.999999Z");
  // The value issue 16 saw rendered as -290307-05-12T15:58:10Z.
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(9222437606400000000LL)), "+294247-06-01T00:00:00Z");
  // Every int64 of microseconds since 2000 renders; the extremes:
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(INT64_MAX)), "+294277-01-09T04:00:54.775807Z");
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(INT64_MIN)), "-290278-12-22T19:59:05.224192Z");
}

TEST(Time, PostgresDateLimits) {
  EXPECT_EQ(Iso(Value::DateFromPgDays(kPgMinDate)), "-004713-11-24");
  EXPECT_EQ(Iso(Value::DateFromPgDays(kPgMaxDate)), "+5874897-12-31");
  EXPECT_EQ(Json(Value::DateFromPgDays(kPgMaxDate)), "\"+5874897-12-31\"");
  EXPECT_EQ(Iso(Value::DateFromPgDays(INT32_MIN)), "-5877611-06-22");
  EXPECT_EQ(Iso(Value::DateFromPgDays(INT32_MAX)), "+5881610-07-11");
}

TEST(Time, FourDigitYearsAndTheExpandedFormAround) {
  // 10000-01-01 is 2921940 days after 2000-01-01.
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(2921940 * kDay - 1)), "9999-12-31T23:59:59.999999Z");
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(2921940 * kDay)), "+010000-01-01T00:00:00Z");
  EXPECT_EQ(Iso(Value::DateFromPgDays(2921939)), "9999-12-31");
  EXPECT_EQ(Iso(Value::DateFromPgDays(2921940)), "+010000-01-01");
  // Year 0 (1 BC) still has four digits; year -1 (2 BC) is expanded.
  EXPECT_EQ(Iso(Value::DateFromPgDays(-730425)), "0000-03-01");
  EXPECT_EQ(Iso(Value::DateFromPgDays(-730426)), "0000-02-29");  // 1 BC was a leap year
  EXPECT_EQ(Iso(Value::DateFromPgDays(-730485)), "0000-01-01");
  EXPECT_EQ(Iso(Value::DateFromPgDays(-730486)), "-000001-12-31");
  EXPECT_EQ(Iso(Value::TimeFromPgMicros(-730486 * kDay + 1000)), "-000001-12-31T00:00:00.001Z");
  // 0001-01-01 (the first AD day).
  EXPECT_EQ(Iso(Value::DateFromPgDays(-730119)), "0001-01-01");
}

TEST(Time, LeapYears) {
  // 2000 (divisible by 400) has Feb 29; 1900 and 2100 do not; 2024 does.
  EXPECT_EQ(Iso(Value::DateFromPgDays(59)), "2000-02-29");
  EXPECT_EQ(Iso(Value::DateFromPgDays(60)), "2000-03-01");
  EXPECT_EQ(Iso(Value::DateFromPgDays(-36466)), "1900-02-28");
  EXPECT_EQ(Iso(Value::DateFromPgDays(-36465)), "1900-03-01");
  EXPECT_EQ(Iso(Value::DateFromPgDays(36583)), "2100-02-28");
  EXPECT_EQ(Iso(Value::DateFromPgDays(36584)), "2100-03-01");
  EXPECT_EQ(Iso(Value::DateFromPgDays(8825)), "2024-02-29");
  // 5 BC (astronomical -4) was a leap year in the proleptic Gregorian calendar.
  EXPECT_EQ(Iso(Value::DateFromPgDays(-731887)), "-000004-02-29");
}

TEST(Time, ComparisonsAcrossTheRange) {
  Value bc = Value::TimeFromPgMicros(kPgMinTimestamp);
  Value now = Value::TimeFromPgMicros(788025851LL * 1000000);
  Value far = Value::TimeFromPgMicros(kPgEndTimestamp - 1);
  EXPECT_EQ(Compare(bc, now), "lt");
  EXPECT_EQ(Compare(now, far), "lt");
  EXPECT_EQ(Compare(far, bc), "gt");
  EXPECT_EQ(Compare(now, Value::TimeFromPgMicros(788025851LL * 1000000)), "eq");
  EXPECT_EQ(Compare(Value::TimeFromPgMicros(-1), Value::TimeFromPgMicros(0)), "lt");
  // A date equals the timestamp at its midnight (as before: the same instant).
  EXPECT_EQ(Compare(Value::DateFromPgDays(9120), Value::TimeFromPgMicros(9120LL * kDay)), "eq");
  EXPECT_EQ(Compare(Value::DateFromPgDays(9120), Value::TimeFromPgMicros(9120LL * kDay + 1)), "lt");
  EXPECT_EQ(Compare(Value::TimeFromUnixMicros(0), Value::TimeFromPgMicros(-946684800LL * 1000000)),
            "eq");
  liquid::Context ctx;
  ctx.Set("ts", Value::MakeArray({far, now, bc, Value::DateFromPgDays(kPgMaxDate)}));
  liquid::StringSink sink;
  liquid::Template::Parse("{{ ts | sort | join: ' ' }}")->Render(ctx, sink);
  EXPECT_EQ(sink.out,
            "-004713-11-24T00:00:00Z 2024-12-20T16:04:11Z +294276-12-31T23:59:59.999999Z "
            "+5874897-12-31");
}

TEST(Time, DateFilterOverTheWholeRange) {
  EXPECT_EQ(RenderWith("{{ t | date: '%Y-%m-%d %H:%M:%S.%6N %s %A %j' }}",
                       Value::TimeFromPgMicros(kPgEndTimestamp - 1)),
            "294276-12-31 23:59:59.999999 9224318015999 Sunday 366");
  EXPECT_EQ(
      RenderWith("{{ t | date: '%Y-%m-%d %s %a' }}", Value::TimeFromPgMicros(kPgMinTimestamp)),
      "-4713-11-24 -210866803200 Mon");
  EXPECT_EQ(RenderWith("{{ t | date: '%Y-%m-%d %s' }}", Value::DateFromPgDays(kPgMaxDate)),
            "5874897-12-31 185331706992000");
  EXPECT_EQ(RenderWith("{{ t | date: '%F %T' }}", Value::TimeFromPgMicros(9222437606400000000LL)),
            "294247-06-01 00:00:00");
}

TEST(Time, DateFilterTakesAnyInt64OfSeconds) {
  // Every int64 of Unix seconds is a time; %s gives the same number back.
  EXPECT_EQ(liquid::RenderString("{{ 9223372036854775807 | date: '%s %Y-%m-%d %H:%M:%S' }}",
                                 Value::MakeObject({})),
            "9223372036854775807 292277026596-12-04 15:30:07");
  EXPECT_EQ(liquid::RenderString("{{ -9223372036854775808 | date: '%s %Y-%m-%d %H:%M:%S' }}",
                                 Value::MakeObject({})),
            "-9223372036854775808 -292277022657-01-27 08:29:52");
  // A string of digits is Unix seconds too (Ruby's Time.at), up to int64.
  EXPECT_EQ(liquid::RenderString("{{ '253402300800' | date: '%F' }}", Value::MakeObject({})),
            "10000-01-01");
  EXPECT_EQ(liquid::RenderString("{{ '9223372036854775807' | date: '%s' }}", Value::MakeObject({})),
            "9223372036854775807");
  // Beyond int64: a clear render error, never a wrapped value.
  try {
    liquid::RenderString("{{ '9223372036854775808' | date: '%Y' }}", Value::MakeObject({}));
    FAIL() << "no error";
  } catch (const liquid::RenderError& e) {
    EXPECT_NE(std::string(e.what()).find("outside the supported range"), std::string::npos)
        << e.what();
  }
  // Date strings reach PostgreSQL's dates and beyond.
  EXPECT_EQ(liquid::RenderString("{{ '5874897-12-31' | date: '%Y %j' }}", Value::MakeObject({})),
            "5874897-12-31");  // not a YYYY-MM-DD pattern: unchanged, like Ruby
  EXPECT_EQ(liquid::RenderString("{{ 'December 31, 5874897' | date: '%Y-%m-%d %a' }}",
                                 Value::MakeObject({})),
            "5874897-12-31 Tue");
}

TEST(Time, PayloadTokensRenderExtremeTimes) {
  auto tmpl = PayloadTemplate::Compile(R"({"at": {{ row.at }}, "day": "{{ row.day }}"})");
  ASSERT_TRUE(tmpl->HasTokenProgram());
  liquid::Context ctx;
  ctx.Set("row", Value::MakeObject({{"at", Value::TimeFromPgMicros(kPgEndTimestamp - 1)},
                                    {"day", Value::DateFromPgDays(kPgMinDate)}}));
  std::string text;
  tmpl->Render(ctx, text);
  EXPECT_EQ(text, R"({"at": "+294276-12-31T23:59:59.999999Z", "day": "-004713-11-24"})");
  JsonTokens tokens;
  tmpl->RenderTokens(ctx, tokens);
  std::vector<std::string> strings;
  for (const JsonToken& t : tokens.tokens) {
    if (t.kind == JsonTokenKind::String) strings.emplace_back(tokens.arena, t.offset, t.length);
  }
  EXPECT_EQ(strings, (std::vector<std::string>{"+294276-12-31T23:59:59.999999Z", "-004713-11-24"}));
}

}  // namespace
}  // namespace hyperline
