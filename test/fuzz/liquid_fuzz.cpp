// liquid_fuzz.cpp: libFuzzer target for the Liquid engine. Parses arbitrary
// bytes as a template and renders it against a fixed context, through both a
// plain-text sink and a JSON-typed sink, with tight limits, then once more with
// an interrupt check that stops the render at its second poll. Any crash, sanitizer
// report, hang or uncaught exception type is a bug.
//
// Build and run (ASan + UBSan, one core):
//   cmake -S . -B /tmp/build-liquid-fuzz -DHYPERLINE_FUZZ=ON \
//         -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build /tmp/build-liquid-fuzz --target liquid_fuzz -j2
//   mkdir -p /tmp/liquid-corpus && /tmp/build-liquid-fuzz/liquid_fuzz \
//         -max_total_time=300 -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
//         -dict=test/fuzz/corpus/liquid/liquid.dict \
//         /tmp/liquid-corpus test/fuzz/corpus/liquid
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/liquid.hpp"
#include "core/value.hpp"

namespace {

using hyperline::Value;
using namespace hyperline::liquid;

// Formats outputs as JSON values, as the payload layer does for bare sites.
class JsonSink : public Sink {
 public:
  void Text(std::string_view t) override { out.append(t); }
  void Output(const Value& v, uint8_t mode) override {
    if (mode == 1) {
      hyperline::AppendJsonValue(v, out);
    } else {
      std::string s;
      hyperline::AppendLiquidString(v, s);
      hyperline::AppendJsonEscaped(s, out);
    }
  }
  std::string out;
};

const Context& FixedContext() {
  static const Context* ctx = [] {
    auto* c = new Context();
    c->Set("row", hyperline::ParseJsonValue(
                      R"({"customer_id": "c-1", "event_type": "api_call", "n": 42, "f": 1.5,
                          "big": 12345678901234567890.123456789, "neg": -7, "ok": true,
                          "none": null, "s": "Hello, World é", "arr": [3, 1, 2, "x", null],
                          "objs": [{"a": 1, "b": "x"}, {"a": 2}, {"b": "y"}],
                          "nested": {"k": {"k": [1, [2, [3]]]}}})"));
    c->Set("old", Value::Nil());
    c->Set("t", Value::Time(1734710651LL * 1000000 + 500000));
    c->Set("d", Value::Time(1734652800LL * 1000000, true));
    // PostgreSQL's last timestamp and first date.
    c->Set("far", Value::TimeFromPgMicros(9223371331200000000LL - 1));
    c->Set("bc", Value::DateFromPgDays(-2451545));
    c->Set("r", Value::Range(1, 5));
    c->Set("nan", Value::Float(0.0 / 0.0));
    return c;
  }();
  return *ctx;
}

// Polls so far in the current input's interrupted render.
thread_local int polls = 0;

// Stops a render at its second poll (an interrupt arriving mid-render).
bool StopAtSecondPoll(void*) noexcept { return ++polls >= 2; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view src(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<Template> t;
  try {
    t = Template::Parse(src);
  } catch (const ParseError& e) {
    if (e.line < 1 || e.column < 1) __builtin_trap();
    return 0;
  }
  // Every site must lie inside the source.
  for (auto& site : t->output_sites()) {
    if (site.offset + site.length > size || site.length < 4) __builtin_trap();
    site.mode = static_cast<uint8_t>(site.offset % 2);
  }
  (void)t->VariablePaths();
  Limits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_loop_iterations = 20000;
  limits.max_depth = 50;
  limits.max_steps = 2000000;
  try {
    StringSink sink;
    t->Render(FixedContext(), sink, limits);
  } catch (const RenderError&) {
  }
  try {
    JsonSink sink;
    t->Render(FixedContext(), sink, limits);
  } catch (const RenderError&) {
  }
  static Context interrupting = [] {
    Context c = FixedContext();
    c.SetInterruptCheck(StopAtSecondPoll);
    return c;
  }();
  polls = 0;
  try {
    StringSink sink;
    t->Render(interrupting, sink, limits);
  } catch (const RenderError&) {
  } catch (const Interrupted&) {
  }
  return 0;
}
