// liquid_engine_test.cpp: the Liquid engine's interface (sites, sinks, variable
// paths, errors, limits) and the core of its semantics.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/liquid.hpp"
#include "core/value.hpp"

namespace hyperline::liquid {
namespace {

// Renders `src` with JSON `data` as the context.
std::string R(std::string_view src, std::string_view data = "{}") {
  return RenderString(src, ParseJsonValue(data));
}

// Records every sink call so tests can check values and modes.
class RecordingSink : public Sink {
 public:
  void Text(std::string_view t) override { events.push_back("T:" + std::string(t)); }
  void Output(const Value& v, uint8_t mode) override {
    events.push_back("O" + std::to_string(mode) + ":" + ToLiquidString(v));
    values.push_back(v);
  }
  std::vector<std::string> events;
  std::vector<Value> values;
};

Context RowContext() {
  Context ctx;
  ctx.Set("row", ParseJsonValue(R"({"customer_id": "c-1", "duration_ms": 42,
                                    "is_verified": true, "tags": ["a", "b"]})"));
  return ctx;
}

TEST(LiquidEngine, OutputSitesInSourceOrderWithOffsets) {
  std::string src = "a{{ x }}b{% echo y | upcase %}c{%- if true -%}{{z}}{% endif %}";
  auto t = Template::Parse(src);
  auto& sites = t->output_sites();
  ASSERT_EQ(sites.size(), 3u);
  EXPECT_EQ(src.substr(sites[0].offset, sites[0].length), "{{ x }}");
  EXPECT_EQ(src.substr(sites[1].offset, sites[1].length), "{% echo y | upcase %}");
  EXPECT_EQ(src.substr(sites[2].offset, sites[2].length), "{{z}}");
}

TEST(LiquidEngine, SinkGetsFinalValuesAndModes) {
  auto t = Template::Parse(
      "id={{ row.customer_id | upcase }};n={{ row.duration_ms | plus: 1 }};"
      "v={{ row.is_verified }};{% echo row.tags %}");
  auto& sites = t->output_sites();
  for (size_t i = 0; i < sites.size(); ++i) sites[i].mode = static_cast<uint8_t>(i + 1);
  RecordingSink sink;
  t->Render(RowContext(), sink);
  std::vector<std::string> want = {"T:id=", "O1:C-1",  "T:;n=", "O2:43",
                                   "T:;v=", "O3:true", "T:;",   "O4:ab"};
  EXPECT_EQ(sink.events, want);
  ASSERT_EQ(sink.values.size(), 4u);
  EXPECT_EQ(sink.values[1].kind(), Value::Kind::Int);
  EXPECT_EQ(sink.values[2].kind(), Value::Kind::Bool);
  EXPECT_EQ(sink.values[3].kind(), Value::Kind::Array);
}

TEST(LiquidEngine, CaptureTurnsOutputIntoText) {
  auto t = Template::Parse("{% capture s %}<{{ row.duration_ms }}>{% endcapture %}{{ s }}");
  RecordingSink sink;
  t->Render(RowContext(), sink);
  std::vector<std::string> want = {"O0:<42>"};
  EXPECT_EQ(sink.events, want);
}

TEST(LiquidEngine, VariablePaths) {
  auto t = Template::Parse(
      "{{ row.customer_id | upcase }}{{ row }}{{ row[x].y }}{{ old.a.b }}"
      "{% assign z = row.duration_ms %}{{ z }}{% for i in row.tags %}{{ i }}{{ forloop.index }}"
      "{% endfor %}{% if model == 'm' %}{% endif %}{{ row.customer_id }}{{ a | default: b.c }}"
      "{{ [k].v }}{{ ['operation'] }}");
  std::vector<std::vector<std::string>> want = {
      {"row", "customer_id"}, {"row"},   {"x"}, {"old", "a", "b"}, {"row", "duration_ms"},
      {"row", "tags"},        {"model"}, {"a"}, {"b", "c"},        {"k"},
      {"*"},                  {"operation"}};
  EXPECT_EQ(t->VariablePaths(), want);
}

TEST(LiquidEngine, VariablePathsFollowScopes) {
  // A loop variable shadows the context only inside its loop; an assign only
  // after it; reads before an assign are context reads.
  auto t = Template::Parse(
      "{% for row in old.items %}{{ row.x }}{% else %}{{ row.y }}{% endfor %}{{ row.z }}"
      "{% assign n = n | plus: 1 %}{{ n }}{% capture c %}{{ c }}{% endcapture %}{{ c }}"
      "{% increment k %}{{ k }}{% tablerow i in (1..2) %}{{ i }}{{ tablerowloop.col }}"
      "{% endtablerow %}{{ i }}");
  std::vector<std::vector<std::string>> want = {
      {"old", "items"}, {"row", "y"}, {"row", "z"}, {"n"}, {"c"}, {"i"}};
  EXPECT_EQ(t->VariablePaths(), want);
}

TEST(LiquidEngine, ParseErrorsHaveLineColumnAndToken) {
  try {
    Template::Parse("line1\nline2 {% endfor %}");
    FAIL() << "no error";
  } catch (const ParseError& e) {
    EXPECT_EQ(e.line, 2);
    EXPECT_EQ(e.column, 7);
    std::string m = e.what();
    EXPECT_NE(m.find("line 2, column 7"), std::string::npos) << m;
    EXPECT_NE(m.find("{% endfor %}"), std::string::npos) << m;
    EXPECT_NE(m.find("unknown tag 'endfor'"), std::string::npos) << m;
  }
  try {
    Template::Parse("é€ {{ 1 + }}");  // columns count characters
    FAIL() << "no error";
  } catch (const ParseError& e) {
    EXPECT_EQ(e.line, 1);
    EXPECT_EQ(e.column, 9);
  }
  try {
    Template::Parse("{{ a | nosuchfilter }}");
    FAIL() << "no error";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("nosuchfilter"), std::string::npos);
  }
  try {
    Template::Parse("{{ a | upcse }}{% assing x = 1 %}");
    FAIL() << "no error";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'upcase'"), std::string::npos) << e.what();
  }
  try {
    Template::Parse("{% assing x = 1 %}");
    FAIL() << "no error";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'assign'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Template::Parse("{{ a "), ParseError);
  EXPECT_THROW(Template::Parse("{% if a %}"), ParseError);
  EXPECT_THROW(Template::Parse("{% foo %}"), ParseError);
  EXPECT_THROW(Template::Parse("{{ 1 + 2 }}"), ParseError);
  EXPECT_THROW(Template::Parse("{{ a | append }}"), ParseError);
  EXPECT_THROW(Template::Parse("{% include 'x' %}"), ParseError);
  EXPECT_THROW(Template::Parse("{% render 'x' %}"), ParseError);
}

TEST(LiquidEngine, OutputsAndLookups) {
  std::string d = R"({"a": {"b": [10, 20, {"c": "deep"}]}, "k": "b", "s": "héllo"})";
  EXPECT_EQ(R("{{ a.b[0] }} {{ a.b.last.c }} {{ a[k].size }} {{ a.b[-1]['c'] }}", d),
            "10 deep 3 deep");
  EXPECT_EQ(R("{{ a.b.first }}|{{ s.size }}|{{ missing.x.y }}|{{ a.b['size'] }}", d), "10|5||");
  EXPECT_EQ(R("{{ 'str' }} {{ 12 }} {{ -3.50 }} {{ true }} {{ nil }}|{{ (1..3) }}"),
            "str 12 -3.5 true |1..3");
}

TEST(LiquidEngine, Conditions) {
  EXPECT_EQ(R("{% if 0 %}t{% endif %}{% if '' %}e{% endif %}{% if nil %}n{% endif %}"), "te");
  EXPECT_EQ(R("{% if 1 == 1.0 and 'ab' contains 'b' %}y{% else %}n{% endif %}"), "y");
  EXPECT_EQ(R("{% if false and false or true %}y{% else %}n{% endif %}"), "n");
  EXPECT_EQ(R("{% if true or false and false %}y{% else %}n{% endif %}"), "y");
  EXPECT_EQ(R("{% unless a %}u{% elsif 1 > 2 %}x{% else %}e{% endunless %}"), "u");
  EXPECT_EQ(R("{% if a == empty %}E{% endif %}{% if b == blank %}B{% endif %}",
              R"({"a": [], "b": "  "})"),
            "EB");
  EXPECT_EQ(R("{% if x contains 2 %}y{% endif %}", R"({"x": [1, 2]})"), "y");
  EXPECT_EQ(R("{% case 2 %}{% when 1, 2 %}a{% when 3 or 2 %}b{% else %}c{% endcase %}"), "ab");
  EXPECT_THROW(R("{% if 'a' < 1 %}{% endif %}"), RenderError);
}

TEST(LiquidEngine, Loops) {
  EXPECT_EQ(R("{% for i in (1..5) limit: 2 offset: 1 %}{{ i }}{% endfor %}"), "23");
  EXPECT_EQ(R("{% for i in (1..3) reversed %}{{ i }}{% if forloop.last %}!{% endif %}{% endfor %}"),
            "321!");
  EXPECT_EQ(R("{% for i in x %}{{ i }}{% else %}none{% endfor %}", R"({"x": []})"), "none");
  EXPECT_EQ(R("{% for i in (1..6) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}"
              "{% break %}{% endif %}{{ i }}{% endfor %}"),
            "13");
  EXPECT_EQ(R("{% for a in (1..2) %}{% for b in (1..2) %}{{ forloop.parentloop.index }}{{ b }}"
              "{% endfor %}{% endfor %}"),
            "11122122");
  EXPECT_EQ(R("{% for i in (1..4) limit: 2 %}{{ i }}{% endfor %}"
              "{% for i in (1..4) offset: continue %}{{ i }}{% endfor %}"),
            "1234");
  EXPECT_EQ(R("{% cycle 'a', 'b' %}{% cycle 'a', 'b' %}{% cycle 'a', 'b' %}"), "aba");
  EXPECT_EQ(R("{% increment n %}{% increment n %}{% decrement m %}{{ n }}"), "01-12");
  EXPECT_EQ(R("{% tablerow i in (1..3) cols: 2 %}{{ i }}{% endtablerow %}"),
            "<tr class=\"row1\">\n<td class=\"col1\">1</td><td class=\"col2\">2</td></tr>\n"
            "<tr class=\"row2\"><td class=\"col1\">3</td></tr>\n");
}

TEST(LiquidEngine, AssignCaptureRawCommentWhitespace) {
  EXPECT_EQ(R("{% assign x = 'a,b' | split: ',' %}{{ x | join: '-' }}"), "a-b");
  EXPECT_EQ(R("{% capture c %}x{{ 1 | plus: 1 }}{% endcapture %}{{ c }}"), "x2");
  EXPECT_EQ(R("{% raw %}{{ a }}{% endraw %}"), "{{ a }}");
  EXPECT_EQ(R("a{% comment %}{{ x }}{% endcomment %}b{% # note %}c"), "abc");
  EXPECT_EQ(R("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(R("a \n{%- if true -%}\n b {%- endif %}"), "ab");
  EXPECT_EQ(R("{% liquid\n assign x = 2\n echo x | times: 3\n%}"), "6");
  EXPECT_EQ(R("{% for i in (1..3) %}{% ifchanged %}{{ i | divided_by: 2 }}{% endifchanged %}"
              "{% endfor %}"),
            "01");
}

TEST(LiquidEngine, Filters) {
  EXPECT_EQ(R("{{ 'Hello' | upcase }} {{ 'Hello' | downcase }} {{ 'hello world' | capitalize }}"),
            "HELLO hello Hello world");
  EXPECT_EQ(R("{{ '  x ' | strip }}|{{ 'a' | append: 'b' | prepend: 'c' }}"), "x|cab");
  EXPECT_EQ(R("{{ 'aXbX' | replace: 'X', '-' }} {{ 'aXbX' | remove: 'X' }}"), "a-b- ab");
  EXPECT_EQ(R("{{ 'Ground control' | truncate: 8 }}"), "Groun...");
  EXPECT_EQ(R("{{ 5 | plus: 2 }} {{ 5 | minus: 7 }} {{ 3 | times: 1.5 }} {{ 7 | divided_by: 2 }}"),
            "7 -2 4.5 3");
  EXPECT_EQ(R("{{ 7 | divided_by: 2.0 }} {{ -7 | modulo: 3 }} {{ 0.1 | plus: 0.2 }}"), "3.5 2 0.3");
  EXPECT_EQ(R("{{ 4.6 | round }} {{ 4.5612 | round: 2 }} {{ 1.2 | ceil }} {{ -1.2 | floor }}"),
            "5 4.56 2 -2");
  EXPECT_EQ(R("{{ -3 | abs }} {{ 1 | at_least: 3 }} {{ 5 | at_most: 3 }}"), "3 3 3");
  EXPECT_EQ(R("{{ x | default: 'd' }} {{ false | default: 'd', allow_false: true }}"), "d false");
  EXPECT_EQ(R("{{ 'a b c' | split: ' ' | size }} {{ 'abc' | size }}"), "3 3");
  EXPECT_EQ(R("{{ 9223372036854775807 | plus: 1 }}"), "9223372036854775808");
  EXPECT_THROW(R("{{ 1 | divided_by: 0 }}"), RenderError);
  EXPECT_THROW(R("{{ 1 | modulo: 0 }}"), RenderError);
}

TEST(LiquidEngine, DateFilter) {
  EXPECT_EQ(R("{{ t | date: '%Y-%m-%d %H:%M:%S %a %b %j %s' }}", R"({"t": 1734710651})"),
            "2024-12-20 16:04:11 Fri Dec 355 1734710651");
  EXPECT_EQ(R("{{ '2024-12-20T16:04:11Z' | date: '%d/%m/%y %I%p %-d %e %^a' }}"),
            "20/12/24 04PM 20 20 FRI");
  EXPECT_EQ(R("{{ '2024-12-20 16:04:11 +0100' | date: '%H:%M %z %Z' }}"), "15:04 +0000 UTC");
  EXPECT_EQ(R("{{ 'March 14, 2016' | date: '%b %d, %y' }}"), "Mar 14, 16");
  EXPECT_EQ(R("{{ 'not a date' | date: '%Y' }}"), "not a date");
  EXPECT_EQ(R("{{ 'now' | date: '%Y' }}").size(), 4u);
  Context ctx;
  ctx.Set("t", Value::Time(1734710651LL * 1000000 + 500000));
  auto t = Template::Parse("{{ t }} {{ t | date: '%Y %L %N' }}");
  StringSink sink;
  t->Render(ctx, sink);
  EXPECT_EQ(sink.out, "2024-12-20T16:04:11.5Z 2024 500 500000000");
}

TEST(LiquidEngine, LimitsStopRunawayTemplates) {
  auto t = Template::Parse("{% for i in (1..100000000) %}x{% endfor %}");
  Limits small;
  small.max_loop_iterations = 1000;
  StringSink sink;
  EXPECT_THROW(t->Render(Context(), sink, small), RenderError);

  auto grow = Template::Parse(
      "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..100) %}{% assign s = s | append: s %}"
      "{% endfor %}{{ s | size }}");
  StringSink sink2;
  EXPECT_THROW(grow->Render(Context(), sink2), RenderError);

  Limits tiny;
  tiny.max_output_bytes = 10;
  auto out = Template::Parse("{% for i in (1..100) %}abc{% endfor %}");
  StringSink sink3;
  EXPECT_THROW(out->Render(Context(), sink3, tiny), RenderError);

  std::string deep;
  for (int i = 0; i < 50; ++i) deep += "{% if true %}";
  deep += "x";
  for (int i = 0; i < 50; ++i) deep += "{% endif %}";
  auto d = Template::Parse(deep);
  Limits shallow;
  shallow.max_depth = 10;
  StringSink sink4;
  EXPECT_THROW(d->Render(Context(), sink4, shallow), RenderError);
  StringSink sink5;
  d->Render(Context(), sink5);
  EXPECT_EQ(sink5.out, "x");

  // Scanning a big value in a long loop is bounded work, not a hang.
  Context big;
  big.Set("s", Value::String(std::string(1 << 20, 'a')));
  for (const char* src :
       {"{% for i in (1..1000000) %}{% if s contains 'b' %}{% endif %}{% endfor %}",
        "{% for i in (1..1000000) %}{% assign n = s | size %}{% endfor %}",
        "{% for i in (1..1000000) %}{% case s %}{% when 'x' %}{% endcase %}{% endfor %}"}) {
    StringSink sink;
    EXPECT_THROW(Template::Parse(src)->Render(big, sink), RenderError) << src;
  }
  // Nested loops bind array elements by reference: no per-iteration copies.
  Array rows;
  for (int i = 0; i < 300; ++i) rows.push_back(Value::String(std::string(100000, 'x')));
  big.Set("rows", Value::MakeArray(std::move(rows)));
  auto nested = Template::Parse(
      "{% for a in rows %}{% for b in rows %}{% endfor %}{% endfor %}{{ rows | size }}");
  StringSink sink6;
  nested->Render(big, sink6);
  EXPECT_EQ(sink6.out, "300");

  std::string too_deep;
  for (int i = 0; i < 1000; ++i) too_deep += "{% if true %}";
  EXPECT_THROW(Template::Parse(too_deep), ParseError);
  EXPECT_THROW(Template::Parse("{{ " + std::string(5000, '[') + " }}"), ParseError);
}

TEST(LiquidEngine, RenderIsRepeatableAndConst) {
  auto t = Template::Parse("{% assign n = row.duration_ms | plus: 1 %}{{ n }}{% increment c %}");
  Context ctx = RowContext();
  for (int i = 0; i < 3; ++i) {
    StringSink sink;
    t->Render(ctx, sink);
    EXPECT_EQ(sink.out, "430");
  }
}

}  // namespace
}  // namespace hyperline::liquid

namespace hyperline::liquid {
namespace {

// Inputs found by test/fuzz/liquid_fuzz.cpp; each once crashed a sanitizer build.
TEST(LiquidEngine, FuzzRegressions) {
  // A parsed date far in the future overflowed the microsecond arithmetic
  // (times are now days and microseconds of the day: it is simply formatted).
  EXPECT_EQ(R("{{ \"March 28nd604116\" | date: \"%s\" }}"), "19001899900800");
  EXPECT_EQ(R("{{ \"March 28 199999\" | date: \"%Y\" }}"), "199999");
  // A huge digit count for round was converted from double to int64 unchecked.
  EXPECT_EQ(R("{{ 02.5 | divided_by: 3 | round: 25942762441546108467 }}"), "0.8333333333333334");
  EXPECT_EQ(R("{{ 2.5 | round: -25942762441546108467 }}"), "0");
  // Found by review: int64 edges in range sizes, truncate lengths and epoch seconds.
  EXPECT_EQ(R("{% assign r = (-9223372036854775807..9223372036854775807) %}{{ r.size }}"),
            "9223372036854775807");
  EXPECT_EQ(R("{{ (-9223372036854775807..9223372036854775807) | size }}"), "9223372036854775807");
  EXPECT_EQ(R("{{ 'abcdef' | truncate: -9223372036854775807 }}"), "...");
  Context ctx;
  ctx.Set("t", Value::Time(INT64_MIN));
  StringSink sink;
  Template::Parse("{{ t | date: '%s' }}")->Render(ctx, sink);
  EXPECT_EQ(sink.out, "-9223372036855");
}

TEST(LiquidEngine, DeepContextValuesFailCleanly) {
  Value v = Value::Int(1);
  for (int i = 0; i < 3000; ++i) v = Value::MakeArray({v});
  Context ctx;
  ctx.Set("v", v);
  for (const char* src :
       {"{{ v }}", "{% if v == v %}x{% endif %}", "{{ v | join }}", "{{ v | uniq }}"}) {
    StringSink sink;
    EXPECT_THROW(Template::Parse(src)->Render(ctx, sink), RenderError) << src;
  }
}

}  // namespace
}  // namespace hyperline::liquid
