// Unit tests for the JSON-with-Liquid payload layer (src/core/payload_template).
#include "core/payload_template.hpp"

#include "core/json_check.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace hyperline {
namespace {

std::string Render(const std::string& source, const Object& row) {
  auto tmpl = PayloadTemplate::Compile(source);
  liquid::Context ctx;
  ctx.Set("row", Value::MakeObject(row));
  ctx.Set("old", Value::Nil());
  std::string out;
  tmpl->Render(ctx, out);
  return out;
}

TEST(PayloadTemplate, QuotedPlaceholdersAreEscapedText) {
  std::string out =
      Render(R"({"a": "x{{ row.s }}y"})", {{"s", Value::String("q\"b\\n\n\t\x01 é")}});
  EXPECT_EQ(nlohmann::json::parse(out)["a"], "xq\"b\\n\n\t\x01 éy");
}

TEST(PayloadTemplate, NilInsideStringIsEmpty) {
  EXPECT_EQ(nlohmann::json::parse(Render(R"({"a": "{{ row.s }}"})", {{"s", Value::Nil()}}))["a"],
            "");
}

TEST(PayloadTemplate, BarePlaceholdersAreTyped) {
  std::string out = Render(
      R"({"i": {{ row.i }}, "d": {{ row.d }}, "b": {{ row.b }}, "n": {{ row.n }},
          "s": {{ row.s }}, "a": {{ row.a }}, "t": {{ row.t }}})",
      {{"i", Value::Int(9007199254740993)},
       {"d", Value::Decimal("12345678901234567890.123456789")},
       {"b", Value::Bool(false)},
       {"n", Value::Nil()},
       {"s", Value::String("text")},
       {"a", Value::MakeArray({Value::Int(1), Value::String("x"), Value::Nil()})},
       {"t", Value::Time(1734710651000000)}});
  EXPECT_NE(out.find("9007199254740993"), std::string::npos);
  EXPECT_NE(out.find("12345678901234567890.123456789"), std::string::npos);
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["b"], false);
  EXPECT_TRUE(j["n"].is_null());
  EXPECT_EQ(j["s"], "text");
  EXPECT_EQ(j["a"], nlohmann::json::parse(R"([1, "x", null])"));
  EXPECT_EQ(j["t"], "2024-12-20T16:04:11Z");
}

TEST(PayloadTemplate, CommentsAndTrailingCommasAccepted) {
  std::string out = Render(R"({
    // a line comment with "quotes" and {{ braces }}
    "a": "{{ row.x }}", /* block
    comment */ "b": [1, 2,],
    "url": "http://example.com/x", // slashes inside strings are not comments
  })",
                           {{"x", Value::Int(5)}});
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["a"], "5");
  EXPECT_EQ(j["b"].size(), 2u);
  EXPECT_EQ(j["url"], "http://example.com/x");
}

TEST(PayloadTemplate, ConditionalMembersDropTrailingCommas) {
  const std::string source = R"({"a": 1, {% if row.c %}"c": "{{ row.c }}",{% endif %} })";
  EXPECT_EQ(nlohmann::json::parse(Render(source, {{"c", Value::String("x")}}))["c"], "x");
  EXPECT_FALSE(nlohmann::json::parse(Render(source, {{"c", Value::Nil()}})).contains("c"));
}

TEST(PayloadTemplate, JsonSyntaxErrorNamesLineAndColumn) {
  try {
    PayloadTemplate::Compile("{\n  \"a\": \"{{ row.a }}\"\n  \"b\": 1\n}");
    FAIL() << "expected PayloadError";
  } catch (const PayloadError& e) {
    EXPECT_EQ(e.line, 3);
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
}

TEST(PayloadTemplate, LiquidSyntaxErrorIsPayloadError) {
  EXPECT_THROW(PayloadTemplate::Compile(R"({"a": "{% if row.a %}"})"), PayloadError);
  EXPECT_THROW(PayloadTemplate::Compile(R"({"a": {{ row.a | }}})"), PayloadError);
}

TEST(PayloadTemplate, ReportsVariablePaths) {
  auto tmpl = PayloadTemplate::Compile(R"({"a": "{{ row.x }}", "b": {{ old.y | default: 1 }}})");
  auto paths = tmpl->VariablePaths();
  bool saw_x = false;
  bool saw_y = false;
  for (const auto& p : paths) {
    if (p.size() >= 2 && p[0] == "row" && p[1] == "x") saw_x = true;
    if (p.size() >= 2 && p[0] == "old" && p[1] == "y") saw_y = true;
  }
  EXPECT_TRUE(saw_x);
  EXPECT_TRUE(saw_y);
}

TEST(PayloadTemplate, NonFiniteFloatIsARenderError) {
  try {
    Render(R"({"a": {{ row.f }}})", {{"f", Value::Float(0.0 / 0.0)}});
    FAIL() << "expected a render error";
  } catch (const liquid::RenderError& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
}

TEST(EventShape, AcceptsAValidEvent) {
  auto r = CheckEventShape(
      R"({"customer_id": "c", "event_type": "e", "timestamp": "2024-01-01T00:00:00Z",
          "record": {"id": "x", "n": 1, "tags": ["a"]}})");
  EXPECT_TRUE(r.errors.empty());
  EXPECT_TRUE(r.warnings.empty());
}

TEST(EventShape, NamesEachMissingField) {
  auto r = CheckEventShape(R"({"event_type": "e", "record": {}})");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_NE(r.errors[0].find("customer_id"), std::string::npos);
  EXPECT_NE(r.errors[1].find("timestamp"), std::string::npos);
  EXPECT_NE(r.errors[2].find("record.id"), std::string::npos);
}

TEST(EventShape, WarnsOnObjectsInsideRecord) {
  auto r = CheckEventShape(
      R"({"customer_id": "c", "event_type": "e", "timestamp": 1,
          "record": {"id": "x", "o": {"a": 1}, "l": [{"b": 1}]}})");
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.warnings.size(), 2u);
}

TEST(EventShape, WarnsOnATimestampHyperlineRejects) {
  auto shape = [](const std::string& ts) {
    return CheckEventShape(R"({"customer_id": "c", "event_type": "e", "timestamp": )" + ts +
                           R"(, "record": {"id": "x"}})");
  };
  for (const char* ok : {R"("2024-12-20T16:04:11Z")", R"("2024-12-20T16:04:11.123456+01:00")",
                         R"("2024-12-20t16:04:11-0530")", R"("1734710651000")", "1734710651000"}) {
    auto r = shape(ok);
    EXPECT_TRUE(r.errors.empty()) << ok;
    EXPECT_TRUE(r.warnings.empty()) << ok;
  }
  for (const char* bad : {R"("2024-12-20")", R"("2024-12-20T16:04:11")", R"("2024-12-20 16:04:11Z")",
                          R"("yesterday")", R"("")", "1734710651000.5"}) {
    auto r = shape(bad);
    EXPECT_TRUE(r.errors.empty()) << bad;
    ASSERT_EQ(r.warnings.size(), 1u) << bad;
    EXPECT_NE(r.warnings[0].find("timestamp"), std::string::npos) << r.warnings[0];
  }
  auto date = shape(R"("2024-12-20")");
  EXPECT_NE(date.warnings[0].find("T00:00:00Z"), std::string::npos) << date.warnings[0];
}

TEST(EventShape, SyntaxErrorHasPosition) {
  auto r = CheckEventShape("{\"a\": 1,\n \"b\" 2}");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("line 2"), std::string::npos) << r.errors[0];
}

// Found by payload_fuzz: a number beyond double range made the JSON check throw.
TEST(PayloadTemplate, HugeNumberLiteralsAreValidJson) {
  std::string out = Render(R"({"a": 1e999, "b": {{ row.x }}})", {{"x", Value::Int(1)}});
  EXPECT_EQ(JsonSyntaxError(out), "");
}

TEST(JsonCheck, AcceptsValidJson) {
  for (const char* ok : {"{}", "[]", " 1 ", "-0.5e+10", "\"a\\u00e9\\n\"", "true", "null",
                         R"({"a": [1, {"b": [true, false, null]}, "x"], "c": {}})"}) {
    EXPECT_TRUE(CheckJsonSyntax(ok).ok) << ok;
  }
}

TEST(JsonCheck, RejectsInvalidJsonWithOffset) {
  struct Case {
    const char* text;
    size_t offset;
  };
  for (Case c : {Case{"{\"a\" 1}", 5}, Case{"[1,]", 3}, Case{"{\"a\": 1,}", 8}, Case{"01", 1},
                 Case{"\"a\nb\"", 2}, Case{"[1] 2", 4}, Case{"{\"a\": tru}", 6}, Case{"", 0},
                 Case{"\"\\x\"", 2}}) {
    JsonCheckResult r = CheckJsonSyntax(c.text);
    EXPECT_FALSE(r.ok) << c.text;
    EXPECT_EQ(r.offset, c.offset) << c.text << ": " << (r.reason ? r.reason : "");
  }
}

TEST(JsonCheck, RefusesWhatJsonbCannotStore) {
  EXPECT_FALSE(CheckJsonSyntax(R"(["\u0000"])").ok);
  EXPECT_FALSE(CheckJsonSyntax(R"(["\udc00"])").ok);
  EXPECT_FALSE(CheckJsonSyntax(R"(["\ud800x"])").ok);
  EXPECT_TRUE(CheckJsonSyntax(R"(["\ud83d\ude00"])").ok);
}

// The token path and the text path must produce the same event.
TEST(PayloadTokens, SameEventAsText) {
  const std::string source = R"({
    // comment
    "customer_id": "cus_{{ row.s }}\u00e9\n", "n": {{ row.d }}, "t": {{ row.t }},
    "rec": {"id": "{{ row.i }}", "a": {{ row.a }}, "o": {{ row.o }}, "nil": {{ row.nil }},
            "lit": [1, -2.5e3, true, false, null, "x\"y"],},
  })";
  auto tmpl = PayloadTemplate::Compile(source);
  ASSERT_TRUE(tmpl->HasTokenProgram());
  liquid::Context ctx;
  ctx.Set("row", Value::MakeObject({{"s", Value::String("a\"b")},
                                    {"d", Value::Decimal("12345678901234567890.5")},
                                    {"t", Value::Time(1734710651000000)},
                                    {"i", Value::Int(7)},
                                    {"a", Value::MakeArray({Value::Int(1), Value::String("z")})},
                                    {"o", Value::MakeObject({{"k", Value::Bool(true)}})},
                                    {"nil", Value::Nil()}}));
  std::string text;
  tmpl->Render(ctx, text);
  JsonTokens tokens;
  tmpl->RenderTokens(ctx, tokens);
  // Print the tokens back as JSON and compare parsed documents.
  std::string printed;
  std::vector<bool> first{true};
  auto sep = [&] {
    if (!first.back()) printed += ",";
    first.back() = false;
  };
  bool after_key = false;
  for (const JsonToken& t : tokens.tokens) {
    bool value = t.kind != JsonTokenKind::EndObject && t.kind != JsonTokenKind::EndArray;
    if (value && !after_key) sep();
    after_key = false;
    switch (t.kind) {
      case JsonTokenKind::BeginObject:
        printed += "{";
        first.push_back(true);
        break;
      case JsonTokenKind::BeginArray:
        printed += "[";
        first.push_back(true);
        break;
      case JsonTokenKind::EndObject:
        printed += "}";
        first.pop_back();
        break;
      case JsonTokenKind::EndArray:
        printed += "]";
        first.pop_back();
        break;
      case JsonTokenKind::Key:
        printed += "\"";
        AppendJsonEscaped(tokens.Text(t), printed);
        printed += "\":";
        after_key = true;
        break;
      case JsonTokenKind::String:
        printed += "\"";
        AppendJsonEscaped(tokens.Text(t), printed);
        printed += "\"";
        break;
      case JsonTokenKind::Number:
        printed += tokens.Text(t);
        break;
      case JsonTokenKind::True:
        printed += "true";
        break;
      case JsonTokenKind::False:
        printed += "false";
        break;
      case JsonTokenKind::Null:
        printed += "null";
        break;
    }
  }
  EXPECT_EQ(nlohmann::json::parse(printed), nlohmann::json::parse(text)) << printed << "\n" << text;
}

TEST(PayloadTokens, OnlyWithoutTags) {
  EXPECT_FALSE(
      PayloadTemplate::Compile(R"({"a": {% if x %}1{% else %}2{% endif %}})")->HasTokenProgram());
  EXPECT_FALSE(PayloadTemplate::Compile(R"({"a": "{% if x %}y{% endif %}"})")->HasTokenProgram());
  EXPECT_FALSE(PayloadTemplate::Compile(R"("top-level scalar {{ x }}")")->HasTokenProgram());
  EXPECT_TRUE(PayloadTemplate::Compile(R"([{{ x }}, "{{ y }}"])")->HasTokenProgram());
}

TEST(PayloadTokens, NulAndNaNAreRenderErrors) {
  auto tmpl = PayloadTemplate::Compile(R"({"a": "{{ row.s }}", "b": {{ row.f }}})");
  liquid::Context ctx;
  JsonTokens tokens;
  std::string text;
  ctx.Set("row",
          Value::MakeObject({{"s", Value::String(std::string("a\0b", 3))}, {"f", Value::Int(1)}}));
  EXPECT_THROW(tmpl->RenderTokens(ctx, tokens), liquid::RenderError);
  EXPECT_THROW(tmpl->Render(ctx, text), liquid::RenderError);
  ctx.Set("row", Value::MakeObject({{"s", Value::String("ok")}, {"f", Value::Float(0.0 / 0.0)}}));
  tokens.Clear();
  EXPECT_THROW(tmpl->RenderTokens(ctx, tokens), liquid::RenderError);
}

// The keys of every BeginObject token at its own level, and its keys_sorted flag.
struct TokenObject {
  bool keys_sorted;
  std::vector<std::string> keys;
};
std::vector<TokenObject> TokenObjects(const JsonTokens& tokens) {
  std::vector<TokenObject> objects;
  std::vector<long> open;  // index in `objects` of each open container, -1 for arrays
  for (const JsonToken& t : tokens.tokens) {
    switch (t.kind) {
      case JsonTokenKind::BeginObject:
        open.push_back(static_cast<long>(objects.size()));
        objects.push_back({t.keys_sorted, {}});
        break;
      case JsonTokenKind::BeginArray:
        open.push_back(-1);
        break;
      case JsonTokenKind::EndObject:
      case JsonTokenKind::EndArray:
        open.pop_back();
        break;
      case JsonTokenKind::Key:
        objects[open.back()].keys.emplace_back(tokens.Text(t));
        break;
      default:
        break;
    }
  }
  return objects;
}

TEST(PayloadTokens, CompareJsonbKeysIsJsonbOrder) {
  // Shorter first, then bytewise (unsigned), as jsonb sorts object keys.
  EXPECT_LT(CompareJsonbKeys("", "a"), 0);
  EXPECT_LT(CompareJsonbKeys("zz", "aaa"), 0);
  EXPECT_LT(CompareJsonbKeys("B", "a"), 0);
  EXPECT_LT(CompareJsonbKeys("z", "\xc3"), 0);  // bytes compare unsigned
  EXPECT_EQ(CompareJsonbKeys("ab", "ab"), 0);
  EXPECT_GT(CompareJsonbKeys("record", "id"), 0);
}

// Objects with literal, distinct keys come out in jsonb key order, marked
// keys_sorted; the event is the same as the text path's.
TEST(PayloadTokens, LiteralKeysSortedAtCompileTime) {
  const std::string source = R"({
    "customer_id": "{{ row.s }}", "event_type": "x", "timestamp": {{ row.i }},
    "record": {"id": "{{ row.i }}", "durationInMs": {{ row.i }}, "isVerified": true},
    "zz": [{"bb": 1, "a": {"é": 1, "z": 2, "": 3, "B": 4}}, {}], "a": "{{ row.s }}",
    "dups": {"k": 1, "a": 2, "k": {{ row.i }}},
    "dyn": {"{{ row.s }}": 1, "m": {"y": 1, "x": 2}},
    "site": {{ row.o }}
  })";
  auto tmpl = PayloadTemplate::Compile(source);
  ASSERT_TRUE(tmpl->HasTokenProgram());
  liquid::Context ctx;
  ctx.Set("row", Value::MakeObject(
                     {{"s", Value::String("m")},
                      {"i", Value::Int(7)},
                      {"o", Value::MakeObject({{"b", Value::Int(1)}, {"a", Value::Int(2)}})}}));
  JsonTokens tokens;
  tmpl->RenderTokens(ctx, tokens);
  std::vector<TokenObject> objects = TokenObjects(tokens);
  ASSERT_EQ(objects.size(), 9u);
  using Keys = std::vector<std::string>;
  // Top level: sorted (its keys are literal and distinct).
  EXPECT_TRUE(objects[0].keys_sorted);
  EXPECT_EQ(objects[0].keys, (Keys{"a", "zz", "dyn", "dups", "site", "record", "timestamp",
                                   "event_type", "customer_id"}));
  // Members move with their values: "a" is the string site, "zz" the array.
  EXPECT_EQ(tokens.tokens[1].kind, JsonTokenKind::Key);
  EXPECT_EQ(tokens.tokens[2].kind, JsonTokenKind::String);
  EXPECT_EQ(tokens.Text(tokens.tokens[2]), "m");
  EXPECT_EQ(tokens.tokens[4].kind, JsonTokenKind::BeginArray);
  // zz[0], its "a", zz[1] = {}.
  EXPECT_TRUE(objects[1].keys_sorted);
  EXPECT_EQ(objects[1].keys, (Keys{"a", "bb"}));
  EXPECT_TRUE(objects[2].keys_sorted);
  EXPECT_EQ(objects[2].keys, (Keys{"", "B", "z", "\xc3\xa9"}));
  EXPECT_TRUE(objects[3].keys_sorted);
  // "dyn": a key from a site is only known per row, so not sorted (in
  // template order); the literal object inside it is.
  EXPECT_FALSE(objects[4].keys_sorted);
  EXPECT_EQ(objects[4].keys, (Keys{"m", "m"}));
  EXPECT_TRUE(objects[5].keys_sorted);
  EXPECT_EQ(objects[5].keys, (Keys{"x", "y"}));
  // "dups": a repeated key is left to the run-time sort (last one wins).
  EXPECT_FALSE(objects[6].keys_sorted);
  EXPECT_EQ(objects[6].keys, (Keys{"k", "a", "k"}));
  // A site's object value is not sorted by the program.
  EXPECT_FALSE(objects[7].keys_sorted);
  EXPECT_EQ(objects[7].keys, (Keys{"b", "a"}));
  EXPECT_TRUE(objects[8].keys_sorted);
  EXPECT_EQ(objects[8].keys, (Keys{"id", "isVerified", "durationInMs"}));
  for (const TokenObject& o : objects) {
    if (!o.keys_sorted) continue;
    for (size_t k = 1; k < o.keys.size(); ++k) {
      EXPECT_LT(CompareJsonbKeys(o.keys[k - 1], o.keys[k]), 0) << o.keys[k];
    }
  }
}

TEST(PayloadTokens, TemplateOrderKeptWhenAlreadySorted) {
  auto tmpl = PayloadTemplate::Compile(R"({"a": 1, "bb": {"c": "{{ x }}", "dd": 2}})");
  liquid::Context ctx;
  ctx.Set("x", Value::String("v"));
  JsonTokens tokens;
  tmpl->RenderTokens(ctx, tokens);
  std::vector<TokenObject> objects = TokenObjects(tokens);
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_TRUE(objects[0].keys_sorted);
  EXPECT_TRUE(objects[1].keys_sorted);
  EXPECT_EQ(objects[0].keys, (std::vector<std::string>{"a", "bb"}));
}

// Sorting converts sites out of template order; the error reported is still
// the first failing site's in the template.
TEST(PayloadTokens, ErrorOfFirstFailingSiteInTemplateOrder) {
  auto tmpl = PayloadTemplate::Compile(R"({"bb": "{{ row.s }}", "a": {{ row.f }}})");
  liquid::Context ctx;
  ctx.Set("row", Value::MakeObject({{"s", Value::String(std::string("a\0b", 3))},
                                    {"f", Value::Float(0.0 / 0.0)}}));
  JsonTokens tokens;
  try {
    tmpl->RenderTokens(ctx, tokens);
    FAIL() << "no error";
  } catch (const liquid::RenderError& e) {
    EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos) << e.what();
  }
}

TEST(JsonCheck, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '[');
  EXPECT_FALSE(CheckJsonSyntax(deep).ok);
  std::string fine = std::string(100, '[') + std::string(100, ']');
  EXPECT_TRUE(CheckJsonSyntax(fine).ok);
}

TEST(RemoveTrailingCommas, KeepsStringsIntact) {
  std::string s = R"({"a": ",}", "b": [1, 2, ], })";
  RemoveTrailingCommas(s);
  auto j = nlohmann::json::parse(s);
  EXPECT_EQ(j["a"], ",}");
  EXPECT_EQ(j["b"].size(), 2u);
}

}  // namespace
}  // namespace hyperline
