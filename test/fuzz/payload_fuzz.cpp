// payload_fuzz.cpp: libFuzzer target for the JSON-with-Liquid payload layer
// (src/core/payload_template). Compiles arbitrary bytes as a payload template,
// renders it against a fixed row (as text, and as JSON tokens when the template
// has a token program), and checks what the layer promises: a
// template that compiles without structural tags renders valid JSON, and
// CheckEventShape / RemoveTrailingCommas never crash on the result. Any crash,
// sanitizer report, hang or unexpected exception type is a bug.
//
// Build and run (ASan + UBSan, one core):
//   cmake -S . -B /tmp/build-fuzz -DHYPERLINE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
//   cmake --build /tmp/build-fuzz --target payload_fuzz -j2
//   mkdir -p /tmp/payload-corpus && /tmp/build-fuzz/payload_fuzz -max_total_time=600 \
//       -timeout=10 -rss_limit_mb=2048 -max_len=4096 /tmp/payload-corpus test/fuzz/corpus/payload
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "core/payload_template.hpp"

namespace {

using hyperline::Object;
using hyperline::Value;

// The row every input renders against: one value of each kind.
hyperline::liquid::Context MakeContext() {
  hyperline::liquid::Context ctx;
  Object row = {
      {"id", Value::Int(42)},
      {"customer_id", Value::String("cus_\"x\"\\\n\x01\xc3\xa9")},
      {"amount", Value::Decimal("12345678901234567890.123456789")},
      {"ratio", Value::Float(0.1)},
      {"flag", Value::Bool(true)},
      {"nothing", Value::Nil()},
      {"at", Value::Time(1734710651123000)},
      {"day", Value::Time(1734652800000000, true)},
      {"far", Value::TimeFromPgMicros(9223371331200000000LL - 1)},
      {"bc", Value::DateFromPgDays(-2451545)},
      {"tags", Value::MakeArray({Value::String("a"), Value::Nil(), Value::Int(3)})},
      {"props", Value::MakeObject({{"plan", Value::String("pro")}, {"seats", Value::Int(3)}})},
  };
  ctx.Set("row", Value::MakeObject(row));
  ctx.Set("old", Value::Nil());
  ctx.Set("model", Value::String("fuzz"));
  ctx.Set("operation", Value::String("insert"));
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const hyperline::liquid::Context ctx = MakeContext();
  std::string source(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<hyperline::PayloadTemplate> tmpl;
  try {
    tmpl = hyperline::PayloadTemplate::Compile(source);
  } catch (const hyperline::PayloadError&) {
    return 0;
  }
  if (tmpl->HasTokenProgram()) {
    hyperline::JsonTokens tokens;
    try {
      tmpl->RenderTokens(ctx, tokens);
    } catch (const hyperline::liquid::RenderError&) {
    }
  }
  std::string out;
  try {
    tmpl->Render(ctx, out);
  } catch (const hyperline::liquid::RenderError&) {
    return 0;
  }
  (void)hyperline::JsonSyntaxError(out);
  (void)hyperline::CheckEventShape(out);
  std::string copy = out;
  hyperline::RemoveTrailingCommas(copy);
  return 0;
}
