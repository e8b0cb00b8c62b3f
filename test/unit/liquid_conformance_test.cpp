// liquid_conformance_test.cpp: Ruby Liquid behaviours beyond the public golden
// suite (identifier rules, string first/last, squish, cycle groups, offset:continue
// edge cases, comment/doc/raw bodies, tablerow interrupts), table-driven.
#include <gtest/gtest.h>

#include <string>

#include "core/liquid.hpp"
#include "core/value.hpp"

namespace hyperline::liquid {
namespace {

struct Case {
  const char* name;
  const char* tmpl;
  const char* data;
  const char* want;  // nullptr: must fail to parse or render
};

const Case kCases[] = {
    {"assign symbols", "{% assign aA1_-.[] = 'hello' %}{{ [\"aA1_-.[]\"] }}", "{}", "hello"},
    {"assign parens", "{% assign (a)(b) = 'x' %}{{ [\"(a)(b)\"] }}", "{}", "x"},
    {"assign digits", "{% assign 123 = 'hello' %}{{ 123 }} {{ [\"123\"] }}", "{}", "123 hello"},
    {"assign question mark", "{% assign foo? = 'hello' %}", "{}", nullptr},
    {"false with lookups", "{% if false.x == 7 %}T{% endif %}", R"({"false": {"x": 7}})", "T"},
    {"for var with hyphen", "{% for x-y in a %}{{ x-y }}{% endfor %}", R"({"a": [1, 2]})", "12"},
    {"for var with question", "{% for x? in a %}{{ x? }}{% endfor %}", R"({"a": [1, 2]})", "12"},
    {"output question", "{{ bar? }}", R"({"bar?": "g"})", "g"},
    {"words without dot", "{{ foo \n bar }}", "{}", nullptr},
    {"double dot", "{{ foo..bar }}", "{}", nullptr},
    {"index without dot", "{{ a[0]title }}", "{}", nullptr},
    {"string first", "{{ s.first }}{{ s.last }}{{ 'héllo' | first }}{{ 'hellé' | last }}",
     R"({"s": "hello"})", "hohé"},
    {"hash first pair", "{{ h.first | join: '#' }}|{{ h.last }}", R"({"h": {"a": 1, "b": 2}})",
     "a#1|"},
    {"unicode case",
     "{{ 'élan Ærø ŁÓDŹ ß' | upcase }}|{{ 'ÉLAN ΑΒΓ ДОМ Ÿ' | downcase }}|"
     "{{ 'école' | capitalize }}",
     "{}", "ÉLAN ÆRØ ŁÓDŹ SS|élan αβγ дом ÿ|École"},
    {"case keeps invalid bytes", "{{ s | upcase }}", R"({"s": "a\u00e9b"})", "AÉB"},
    {"squish", "{{ \" \n\tHello  \n World!  \" | squish }}|{{ 5 | squish }}", "{}",
     "Hello World!|5"},
    {"range slice", "{{ (1..5) | slice: 1, 3 }}", "{}", "..5"},
    {"cycle variable group",
     "{% cycle a: 1, 2, 3 %}{% assign a = 'bar' %}{% cycle a: 1, 2, 3 %}"
     "{% cycle a: 1, 2, 3 %}",
     R"({"a": "foo"})", "112"},
    {"cycle nil groups share", "{% cycle a: 1, 2, 3 %}{% cycle b: 1, 2, 3 %}{% cycle 1, 2, 3 %}",
     "{}", "121"},
    {"cycle named items",
     "{% cycle 'a': 1, 2, 3 %}{% cycle 'a': 7, 8, 9 %}{% cycle 'a': 1, 2, 3 %}", "{}", "183"},
    {"decrement then increment", "{% decrement f %} {% decrement f %} {% increment f %}", "{}",
     "-1 -2 -2"},
    {"assign shadows counter",
     "{% assign foo = 5 %}{{ foo }} {% increment foo %} "
     "{% increment foo %} {{ foo }}",
     "{}", "5 0 1 5"},
    {"continue over changing array",
     "{% assign f = '1,2,3,4,5,6' | split: ',' %}"
     "{% for i in f limit: 3 %}{{ i }}{% endfor %}{% assign f = 'u,v,w,x,y,z' | split: ',' %}"
     "{% for i in f offset: continue %}{{ i }}{% endfor %}",
     "{}", "123xyz"},
    {"continue after break",
     "{% for i in (1..6) limit: 4 %}{% if i == 3 %}{% break %}{% endif %}"
     "a{{ i }}{% endfor %}{% for i in (1..6) offset: continue %}b{{ i }}{% endfor %}",
     "{}", "a1a2b5b6"},
    {"negative offset continue",
     "{% for i in (0..3) offset: -2 %}a{{ i }}{% endfor %}"
     "{% for i in (0..3) offset: continue %}b{{ i }}{% endfor %}",
     "{}", "a0a1a2a3b2b3"},
    {"negative offset limit", "{% for i in (0..3) offset: -2 limit: 3 %}{{ i }}{% endfor %}", "{}",
     "0"},
    {"comma after collection", "{% for i in (1..6), limit: 4, offset: 2 %}{{ i }}{% endfor %}",
     "{}", "3456"},
    {"forloop name", "{% for i in (1..3) limit:1 %}{{ forloop.name }}{% endfor %}", "{}",
     "i-(1..3)"},
    {"parent of parent loop",
     "{% for i in (1..2) %}{% for j in (1..1) %}{% for k in (1..1) %}"
     "{{ forloop.parentloop.parentloop.index }}{% endfor %}{% endfor %}{% endfor %}",
     "{}", "12"},
    {"else markup ignored", "{% if false %}1{% else nonsense %}2{% endif %}", "{}", "2"},
    {"case multiple matches", "{% case t %}{% when 'H' %}a{% when x, 'H' %}b{% endcase %}",
     R"({"t": "H", "x": "H"})", "abb"},
    {"case subject re-evaluated",
     "{% for x in (1..2) %}{% case x %}{% when 1 %}{% for y in (1..9) %}"
     "{% for z in (1..2) %}{% endfor %}{% endfor %}a{% assign x = 2 %}{% when 2 %}b{% endcase %}"
     "{% endfor %}",
     "{}", "ab"},
    {"case else in middle",
     "{% case 'x' %}{% when 'y' %}a{% else %}b{% else %}c{% when 'x' %}d"
     "{% endcase %}",
     "{}", "bcd"},
    {"comment ignores delimiters", "{% comment %} }} %} {{ ! }} {% if %}{%- endcomment %}", "{}",
     ""},
    {"comment incomplete output", "{% comment %}{{ {%- endcomment %}", "{}", nullptr},
    {"comment unbalanced raw", "{% comment %} {% raw %} ! {% endcomment %}", "{}", nullptr},
    {"comment nested raw", "{% comment %}{% raw %}{% endcomment %}{% endraw %}{% endcomment %}x",
     "{}", "x"},
    {"doc free text", "{% doc %}{{ foo {% if %}{% raw %}{% enddoc %}y", "{}", "y"},
    {"doc nested", "{% doc %}a{% doc %}{% enddoc %}", "{}", nullptr},
    {"raw partial tags", "{% raw %} %} {% }} {{ {% endraw %}", "{}", " %} {% }} {{ "},
    {"raw whitespace control", "! {%- raw -%} {{ x }} {%- endraw -%} !", "{}", "!{{ x }}!"},
    {"inline comment lines", "{%-\n  # one\n  # two\n-%}x", "{}", "x"},
    {"inline comment needs hash", "{%-\n  # one\n  two\n-%}", "{}", nullptr},
    {"liquid crlf lines", "{% liquid\r\nif true\r\n echo 'a'\r\nendif %}", "{}", "a"},
    {"liquid cr only", "{% liquid\rif true\r echo 'a'\rendif %}", "{}", nullptr},
    {"liquid bare liquid", "{%- liquid\n  liquid\n  echo 'foo'\n-%}", "{}", "foo"},
    {"liquid comment", "{% liquid\n if 1 != 1\n comment\n else\n echo 1\n endcomment\n endif\n%}",
     "{}", ""},
    {"tablerow break", "{% tablerow n in (1..3) cols:2 %}{{n}}{% break %}{{n}}{% endtablerow %}",
     "{}", "<tr class=\"row1\">\n<td class=\"col1\">1</td></tr>\n"},
    {"tablerow continue", "{% tablerow n in (1..3) cols:2 %}{{n}}{% continue %}x{% endtablerow %}",
     "{}",
     "<tr class=\"row1\">\n<td class=\"col1\">1</td><td class=\"col2\">2</td></tr>\n"
     "<tr class=\"row2\"><td class=\"col1\">3</td></tr>\n"},
    {"tablerow cols string", "{% tablerow i in (1..2) cols:'1' %}{{ i }}{% endtablerow %}", "{}",
     "<tr class=\"row1\">\n<td class=\"col1\">1</td></tr>\n<tr class=\"row2\"><td "
     "class=\"col1\">2</td></tr>\n"},
    {"string greater than int", "{% if '2' > 1 %}x{% endif %}", "{}", nullptr},
    {"contains false is false", "{% if a contains false %}T{% else %}F{% endif %}",
     R"({"a": [1, false]})", "F"},
    {"range equals range", "{% assign f = (1..3) %}{% if f == (1..3) %}T{% endif %}", "{}", "T"},
    {"default kwarg first", "{{ false | default: allow_false: true, 'bar' }}", "{}", "false"},
    {"keyword argument only for default", "{{ 'a' | upcase: foo: 1 }}", "{}", nullptr},
    {"round float digits", "{{ 5.666 | round: 1.2 }} {{ 5.666 | round: 'foo' }}", "{}", "5.7 6"},
    {"replace empty pattern",
     "{{ 'ab' | replace: x, '#' }}|{{ 'ab' | replace_first: x, '#' }}|"
     "{{ 'ab' | replace_last: x, '#' }}",
     "{}", "#a#b#|#ab|ab#"},
    {"replace object inspect", "{{ a | replace: '{', '!' }}", R"({"a": {}})", "!}"},
    {"split nil and false", "{{ 'ab' | split: nil | join: '#' }}|{{ 'a b' | split: false }}", "{}",
     "a#b|a b"},
    {"sum property strings", "{{ a | sum: 'k' }}", R"({"a": [{"k": "1"}, {"k": "2.5"}]})", "3.5"},
    {"uniq unhashable", "{{ a | uniq | join: '#' }}", R"({"a": ["a", "b", [], {}, {}]})", "a#b#{}"},
    {"where nil item", "{{ a | where: 'k' }}", R"({"a": [{"k": 1}, null]})", ""},
    {"map on int", "{{ 123 | map: 'title' }}", "{}", nullptr},
    {"has int bits", "{{ a | has: 2 }}", R"({"a": [1, 2, 3]})", "true"},
    {"float times exact",
     "{{ 1.1 | times: 3 }} {{ '10.1' | minus: '2.2' }} {{ 20 | divided_by: 7.0 }}", "{}",
     "3.3 7.9 2.857142857142857"},
    {"big int overflow exact", "{{ 9223372036854775807 | times: 10 }}", "{}",
     "92233720368547758070"},
    {"modulo floors", "{{ -7 | modulo: 3 }} {{ 7 | modulo: -3 }} {{ 10.1 | modulo: 7.0 }}", "{}",
     "2 -2 3.1"},
    {"divided_by floors", "{{ -7 | divided_by: 2 }}", "{}", "-4"},
    {"date formats", "{{ 0 | date: '%Y-%m-%d %H:%M:%S %j %U %W %u %w %y %C %e %l %P %%' }}", "{}",
     "1970-01-01 00:00:00 001 00 00 4 4 70 19  1 12 am %"},
    {"date padding flags", "{{ 1709251200 | date: '%-m/%-d %_m %^b %10A|%-10A|' }}", "{}",
     "3/1  3 MAR     Friday|Friday|"},
    {"date iso week", "{{ '2021-01-03' | date: '%G-W%V-%u' }}", "{}", "2020-W53-7"},
    {"date rfc2822", "{{ 'Tue, 14 Mar 2016 10:20:30 -0200' | date: '%Y-%m-%d %H:%M' }}", "{}",
     "2016-03-14 12:20"},
};

TEST(LiquidConformance, RubyBehaviours) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    std::string got, error;
    try {
      got = RenderString(c.tmpl, ParseJsonValue(c.data));
    } catch (const ParseError& e) {
      error = e.what();
    } catch (const RenderError& e) {
      error = e.what();
    }
    if (c.want == nullptr) {
      EXPECT_FALSE(error.empty()) << "rendered: " << got;
    } else {
      EXPECT_EQ(error, "");
      EXPECT_EQ(got, c.want);
    }
  }
}

}  // namespace
}  // namespace hyperline::liquid
