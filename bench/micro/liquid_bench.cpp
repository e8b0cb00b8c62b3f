// liquid_bench.cpp: micro-benchmarks of the Liquid engine (Google Benchmark).
//
// The headline case renders the payload template of SPEC's Hightouch-style
// example from a six-field row, as the trigger does for every usage event: the
// template is compiled once and rendered many times. bench/liquidjs/run.sh runs
// the same template and data through LiquidJS and prints the ratio.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "core/liquid.hpp"
#include "core/value.hpp"

namespace {

using hyperline::Object;
using hyperline::Value;
using namespace hyperline::liquid;

const char kPayload[] =
    R"({"customer_id": "{{ row.customer_id }}", "event_type": "api_call", )"
    R"("timestamp": "{{ row.created_at }}", "record": {"id": "{{ row.event_id }}", )"
    R"("durationInMs": {{ row.duration_ms }}, "isVerified": {{ row.is_verified }}}})";

// The six-field row: customer_id text, event_type text, created_at timestamp,
// event_id text, duration_ms int, is_verified bool.
Context RowContext() {
  Object row;
  row.emplace_back("customer_id", Value::String("cus_8f2a1c"));
  row.emplace_back("event_type", Value::String("api_call"));
  row.emplace_back("created_at", Value::Time(1734710651LL * 1000000 + 123000));
  row.emplace_back("event_id", Value::String("evt_0001"));
  row.emplace_back("duration_ms", Value::Int(1234));
  row.emplace_back("is_verified", Value::Bool(true));
  Context ctx;
  ctx.Set("row", Value::MakeObject(std::move(row)));
  ctx.Set("old", Value::Nil());
  ctx.Set("model", Value::String("api_calls"));
  ctx.Set("operation", Value::String("insert"));
  return ctx;
}

// Renders the payload from a compiled template (the per-event cost).
void BM_LiquidRenderPayload(benchmark::State& state) {
  auto t = Template::Parse(kPayload);
  Context ctx = RowContext();
  StringSink sink;
  for (auto _ : state) {
    sink.out.clear();
    t->Render(ctx, sink);
    benchmark::DoNotOptimize(sink.out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LiquidRenderPayload);

// Compiles the payload template (paid once per model, not per event).
void BM_LiquidParsePayload(benchmark::State& state) {
  for (auto _ : state) {
    auto t = Template::Parse(kPayload);
    benchmark::DoNotOptimize(t.get());
  }
}
BENCHMARK(BM_LiquidParsePayload);

// A heavier template: filters, conditions and a loop.
void BM_LiquidRenderFilters(benchmark::State& state) {
  auto t = Template::Parse(
      "{{ row.customer_id | upcase | append: '-' | append: row.event_id }}"
      "{% if row.duration_ms > 1000 and row.is_verified %}slow{% else %}fast{% endif %}"
      "{{ row.duration_ms | divided_by: 1000.0 | round: 2 }}"
      "{{ row.created_at | date: '%Y-%m-%d' }}"
      "{% for i in (1..5) %}{{ i | times: row.duration_ms }},{% endfor %}");
  Context ctx = RowContext();
  StringSink sink;
  for (auto _ : state) {
    sink.out.clear();
    t->Render(ctx, sink);
    benchmark::DoNotOptimize(sink.out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LiquidRenderFilters);

// A long loop: the per-iteration cost of the engine (loop step, condition,
// filter call, output site), where a per-step check would show.
void BM_LiquidRenderLoop(benchmark::State& state) {
  auto t = Template::Parse(
      "{% for i in (1..1000) %}{% if i > 500 %}{{ i | plus: row.duration_ms }}{% endif %}"
      "{% endfor %}");
  Context ctx = RowContext();
  StringSink sink;
  for (auto _ : state) {
    sink.out.clear();
    t->Render(ctx, sink);
    benchmark::DoNotOptimize(sink.out.data());
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_LiquidRenderLoop);

}  // namespace

// Why here: CMake links micro_bench against benchmark::benchmark (no
// benchmark_main), so exactly one bench/micro file must define main().
BENCHMARK_MAIN();
