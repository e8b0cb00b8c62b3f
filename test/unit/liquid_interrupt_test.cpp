// liquid_interrupt_test.cpp: the cooperative interrupt check (Context::
// SetInterruptCheck), the Interrupted exception and the step limit, through the
// Liquid engine and the payload layer.
#include <gtest/gtest.h>

#include <string>
#include <type_traits>

#include "core/liquid.hpp"
#include "core/payload_template.hpp"
#include "core/value.hpp"

namespace hyperline::liquid {
namespace {

static_assert(!std::is_base_of_v<RenderError, Interrupted>,
              "callers tell an interrupted render from a failed one by type");

// What the check saw, and when it asks the render to stop.
struct Probe {
  long calls = 0;
  long stop_at = -1;  // stop on this call (1-based); -1: never
};

// The InterruptCheck under test: counts calls, stops on `stop_at`.
bool CountingCheck(void* arg) noexcept {
  auto* p = static_cast<Probe*>(arg);
  ++p->calls;
  return p->stop_at >= 0 && p->calls >= p->stop_at;
}

// Renders `src` with `ctx` into a string.
std::string Render(const std::string& src, const Context& ctx, const Limits& limits = Limits()) {
  StringSink sink;
  Template::Parse(src)->Render(ctx, sink, limits);
  return sink.out;
}

// A context with `n` integers (n, n-1, ..., 1) as `items`, and as many
// objects {"x": i} as `objs`.
Context ItemsContext(int n) {
  Array items, objs;
  for (int i = n; i > 0; --i) {
    items.push_back(Value::Int(i));
    objs.push_back(Value::MakeObject({{"x", Value::Int(i)}}));
  }
  Context ctx;
  ctx.Set("items", Value::MakeArray(std::move(items)));
  ctx.Set("objs", Value::MakeArray(std::move(objs)));
  return ctx;
}

TEST(LiquidInterrupt, CheckIsCalledDuringLongLoops) {
  Probe probe;
  Context ctx;
  ctx.SetInterruptCheck(CountingCheck, &probe);
  std::string out = Render("{% for i in (1..100000) %}{{ i | plus: 1 }}{% endfor %}", ctx);
  EXPECT_EQ(out.size(), 488900u);  // the digits of 2..100001: the render completed
  // Each iteration is at least 3 steps (iteration, body, filter call).
  EXPECT_GE(probe.calls, 3 * 100000 / kInterruptCheckSteps);
  EXPECT_LE(probe.calls, 10 * 100000 / kInterruptCheckSteps);
}

TEST(LiquidInterrupt, ShortRendersDoNotCallTheCheck) {
  Probe probe;
  Context ctx;
  ctx.Set("row", ParseJsonValue(R"({"id": 7, "name": "x"})"));
  ctx.SetInterruptCheck(CountingCheck, &probe);
  EXPECT_EQ(Render("{{ row.id }}-{{ row.name | upcase }}{% if row.id > 1 %}!{% endif %}", ctx),
            "7-X!");
  EXPECT_EQ(probe.calls, 0);
}

TEST(LiquidInterrupt, NormalRendersAreUnchangedByACheckThatNeverStops) {
  const std::string src =
      "{% assign total = 0 %}{% for i in (1..3000) %}{% assign total = total | plus: i %}"
      "{% if forloop.last %}{{ total }}{% endif %}{% endfor %}|{{ items | sort | first }}"
      "|{{ objs | map: 'x' | size }}|{% cycle 'a', 'b' %}{% cycle 'a', 'b' %}";
  Context plain = ItemsContext(5000);
  Context checked = ItemsContext(5000);
  Probe probe;
  checked.SetInterruptCheck(CountingCheck, &probe);
  std::string want = Render(src, plain);
  EXPECT_EQ(want, "4501500|1|5000|ab");
  EXPECT_EQ(Render(src, checked), want);
  EXPECT_GT(probe.calls, 0);
}

TEST(LiquidInterrupt, StopThrowsInterruptedNotRenderError) {
  Probe probe;
  probe.stop_at = 3;
  Context ctx;
  ctx.SetInterruptCheck(CountingCheck, &probe);
  auto t = Template::Parse("{% for i in (1..1000000) %}{{ i }}{% endfor %}");
  StringSink sink;
  try {
    t->Render(ctx, sink);
    FAIL() << "the render was not interrupted";
  } catch (const RenderError& e) {
    FAIL() << "interrupt reported as a render error: " << e.what();
  } catch (const Interrupted& e) {
    EXPECT_STREQ(e.what(), "Liquid render interrupted");
  }
  // Stopped at the third check: about 3 * kInterruptCheckSteps steps, far from
  // the million iterations.
  EXPECT_EQ(probe.calls, 3);
  EXPECT_LT(sink.out.size(), 3u * kInterruptCheckSteps * 7);
  // The template is unharmed: the next render (no stop) completes.
  Probe again;
  Context ctx2;
  ctx2.SetInterruptCheck(CountingCheck, &again);
  StringSink sink2;
  Template::Parse("{% for i in (1..5000) %}x{% endfor %}")->Render(ctx2, sink2);
  EXPECT_EQ(sink2.out.size(), 5000u);
}

TEST(LiquidInterrupt, StopsInsideCapturesNestedLoopsAndConditions) {
  for (const char* src : {
           "{% capture c %}{% for i in (1..1000000) %}{{ i }}{% endfor %}{% endcapture %}",
           "{% for a in (1..1000) %}{% for b in (1..1000) %}{% endfor %}{% endfor %}",
           "{% for i in (1..1000000) %}{% if i == 0 or i == -1 %}x{% endif %}{% endfor %}",
           "{% for i in (1..1000000) %}{% case i %}{% when 0 %}x{% endcase %}{% endfor %}",
           "{% tablerow i in (1..1000000) %}{{ i }}{% endtablerow %}",
       }) {
    Probe probe;
    probe.stop_at = 2;
    Context ctx;
    ctx.SetInterruptCheck(CountingCheck, &probe);
    StringSink sink;
    EXPECT_THROW(Template::Parse(src)->Render(ctx, sink), Interrupted) << src;
    EXPECT_EQ(probe.calls, 2) << src;
  }
}

TEST(LiquidInterrupt, FiltersOverBigArraysPollWhileTheyWork) {
  // One filter call over 50,000 elements: sort's comparisons and map's,
  // where's and uniq's elements are steps, so the check runs inside the call.
  for (const char* src : {"{{ items | sort | size }}", "{{ objs | map: 'x' | size }}",
                          "{{ objs | where: 'x' | size }}", "{{ items | uniq | size }}",
                          "{{ items | join: ',' | size }}", "{{ items | sum }}"}) {
    Probe probe;
    probe.stop_at = 5;
    Context ctx = ItemsContext(50000);
    ctx.SetInterruptCheck(CountingCheck, &probe);
    StringSink sink;
    EXPECT_THROW(Template::Parse(src)->Render(ctx, sink), Interrupted) << src;
    EXPECT_EQ(sink.out, "") << src;
  }
}

TEST(LiquidInterrupt, CheckReceivesItsArgument) {
  struct Flag {
    bool stop = true;
  } flag;
  Context ctx;
  ctx.SetInterruptCheck([](void* arg) noexcept { return static_cast<Flag*>(arg)->stop; }, &flag);
  EXPECT_THROW(Render("{% for i in (1..10000) %}{% endfor %}", ctx), Interrupted);
  flag.stop = false;
  EXPECT_EQ(Render("{% for i in (1..10000) %}{% endfor %}done", ctx), "done");
  ctx.SetInterruptCheck(nullptr);
  EXPECT_EQ(ctx.interrupt_check(), nullptr);
  EXPECT_EQ(Render("{% for i in (1..10000) %}{% endfor %}done", ctx), "done");
}

TEST(LiquidInterrupt, StepLimitBoundsARender) {
  // Each limit is a RenderError naming it; none needs the interrupt check.
  Limits few;
  few.max_steps = 10000;
  try {
    Render("{% for i in (1..100000) %}{{ i }}{% endfor %}", Context(), few);
    FAIL() << "no step limit";
  } catch (const RenderError& e) {
    EXPECT_NE(std::string(e.what()).find("step limit exceeded"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Render("{% for i in (1..100) %}{{ i }}{% endfor %}", Context(), few).size(), 192u);
  // Steps are counted per filter call: the same loop with 20 filters instead
  // of one exceeds a budget the light one stays within.
  Limits some;
  some.max_steps = 500000;  // 3 steps per light iteration, 22 per heavy one
  std::string heavy = "{% for i in (1..100000) %}{% assign x = i";
  for (int k = 0; k < 20; ++k) heavy += " | plus: 1";
  heavy += " %}{% endfor %}";
  EXPECT_THROW(Render(heavy, Context(), some), RenderError);
  EXPECT_NO_THROW(Render("{% for i in (1..100000) %}{% assign x = i | plus: 1 %}{% endfor %}",
                         Context(), some));
  // An infinite-looking loop stops at the loop limit.
  try {
    Render("{% for i in (1..100000000) %}x{% endfor %}", Context());
    FAIL() << "no loop limit";
  } catch (const RenderError& e) {
    EXPECT_NE(std::string(e.what()).find("loop iteration limit"), std::string::npos);
  }
}

}  // namespace
}  // namespace hyperline::liquid

namespace hyperline {
namespace {

// Payload layer: Render and RenderTokens let Interrupted through unchanged.
TEST(PayloadInterrupt, InterruptedPropagatesOutOfRenderAndRenderTokens) {
  Array items;
  for (int i = 0; i < 100000; ++i) items.push_back(Value::Int(100000 - i));
  liquid::Context ctx;
  ctx.Set("row", Value::MakeObject(
                     {{"id", Value::String("e1")}, {"items", Value::MakeArray(std::move(items))}}));
  struct Stop {
    long calls = 0;
  } stop;
  ctx.SetInterruptCheck([](void* arg) noexcept { return ++static_cast<Stop*>(arg)->calls >= 2; },
                        &stop);
  // No tags: a token program; the work is one filter over a big array.
  auto fixed = PayloadTemplate::Compile(
      R"({"id": "{{ row.id }}", "first": {{ row.items | sort | first }}})");
  ASSERT_TRUE(fixed->HasTokenProgram());
  JsonTokens tokens;
  EXPECT_THROW(fixed->RenderTokens(ctx, tokens), liquid::Interrupted);
  std::string out;
  stop.calls = 0;
  EXPECT_THROW(fixed->Render(ctx, out), liquid::Interrupted);
  // With tags: the text path.
  auto looping = PayloadTemplate::Compile(
      R"({"id": "{{ row.id }}", "n": {% for i in row.items %}{% if forloop.last %})"
      R"({{ i }}{% endif %}{% endfor %}})");
  ASSERT_FALSE(looping->HasTokenProgram());
  stop.calls = 0;
  out.clear();
  EXPECT_THROW(looping->Render(ctx, out), liquid::Interrupted);
  // Without a check the same renders complete.
  ctx.SetInterruptCheck(nullptr);
  out.clear();
  looping->Render(ctx, out);
  EXPECT_EQ(out, R"({"id": "e1", "n": 1})");
  fixed->RenderTokens(ctx, tokens);
  EXPECT_FALSE(tokens.tokens.empty());
}

}  // namespace
}  // namespace hyperline
