// internal.hpp: the compiled form of a Liquid template, shared by the parser,
// the renderer and the filters (not part of the public interface).
//
// Vocabulary: an Expr is a literal, a variable path (`a.b[0]`) or a range; a
// Pipeline is an Expr followed by filters (`x | plus: 1`); a Condition is a chain
// of comparisons joined by and/or; a Node is one element of a block body (text,
// output, or tag). Names are resolved once at parse time: filters to function
// pointers, `size`/`first`/`last` to commands, literal indexes to integers.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/ascii.hpp"
#include "core/cpp_only.hpp"
#include "core/liquid.hpp"
#include "core/value.hpp"

namespace hyperline::liquid {

struct Expr;
class RenderState;

// Where a name was found last time (index into an object or the context). Rows of
// one table always have the same column order, so after the first render a
// lookup is one comparison. Relaxed atomic: Render is const and may run on
// several threads; a stale hint only costs the linear search it replaces.
struct LookupHint {
  LookupHint() = default;
  LookupHint(const LookupHint& o) : v(o.v.load(std::memory_order_relaxed)) {}
  LookupHint& operator=(const LookupHint& o) {
    v.store(o.v.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }
  uint32_t get() const { return v.load(std::memory_order_relaxed); }
  void set(size_t i) const { v.store(static_cast<uint32_t>(i), std::memory_order_relaxed); }
  mutable std::atomic<uint32_t> v{0};
};

// One step of a variable path.
struct PathSeg {
  enum class Kind : uint8_t { Key, Index, Dynamic };
  Kind kind = Kind::Key;
  bool command = false;  // dot-notation `size`/`first`/`last` may apply
  std::string key;
  int64_t index = 0;
  std::unique_ptr<Expr> dynamic;
  LookupHint hint;
};

struct Expr {
  enum class Kind : uint8_t { Literal, Variable, Range };
  Kind kind = Kind::Literal;
  Value literal;
  std::string root;                    // variable root name
  int root_id = -1;                    // root name interned at parse time
  LookupHint root_hint;                // position of the root in the Context
  std::unique_ptr<Expr> dynamic_root;  // `[expr]` as the root
  std::vector<PathSeg> path;
  std::unique_ptr<Expr> lo, hi;  // range bounds
};

// Evaluated filter arguments handed to a filter implementation.
struct FilterArgs {
  Value input;
  std::vector<Value> args;
  std::vector<std::pair<std::string_view, Value>> kwargs;
  RenderState* state = nullptr;
  std::string_view name;
};
using FilterFn = Value (*)(FilterArgs&);

// Finds a filter by name; sets min/max positional argument counts.
FilterFn FindFilter(std::string_view name, int& min_args, int& max_args);
// The known filter closest to `name` (for "did you mean"), or "".
std::string SuggestFilter(std::string_view name);

struct FilterCall {
  FilterFn fn = nullptr;
  std::string name;
  std::vector<Expr> args;
  std::vector<std::pair<std::string, Expr>> kwargs;
};

struct Pipeline {
  Expr expr;
  std::vector<FilterCall> filters;
};

enum class CmpOp : uint8_t { None, Eq, Ne, Lt, Gt, Le, Ge, Contains };

struct Comparison {
  Expr left;
  CmpOp op = CmpOp::None;
  Expr right;
};

// Comparisons joined by and/or; evaluated right-associatively as Ruby Liquid does.
struct Condition {
  std::vector<Comparison> items;
  std::vector<bool> joins_and;  // joins_and[i] links items[i] and items[i+1]
};

class Node {
 public:
  virtual ~Node() = default;
  virtual void Render(RenderState& st) const = 0;
  // Ruby Liquid's blank?: a body made only of blank nodes drops its whitespace.
  virtual bool Blank() const { return false; }
};
using Body = std::vector<std::unique_ptr<Node>>;

// Result of interrupting a loop body.
enum class Interrupt : uint8_t { None, Break, Continue };

// Per-render mutable state: scopes, counters, output routing and limits.
class RenderState {
 public:
  RenderState(const Context& ctx, Sink& sink, const Limits& limits,
              const std::vector<OutputSite>& sites)
      : ctx(ctx), sink(sink), limits(limits), sites(sites) {
    SchedulePoll(0);
  }

  const Context& ctx;
  Sink& sink;
  const Limits& limits;
  const std::vector<OutputSite>& sites;

  // Names interned at parse time (for `[expr]` roots resolved at render time).
  const std::unordered_map<std::string, int>* names = nullptr;

  // Local bindings (for-loop variables) by name id, innermost last. A binding
  // with loop >= 0 is a `forloop`/`tablerowloop` drop for loops[loop].
  struct Local {
    int id;
    Value value;
    int loop = -1;
    const Value* ref = nullptr;  // when set, the binding is *ref (an array element)
  };
  std::vector<Local> locals;
  // assign/capture targets (Ruby's outermost scope), by name id; sized lazily.
  std::vector<Value> assigned;
  std::vector<uint8_t> assigned_set;
  // increment/decrement counters (Ruby's first environment), by name id.
  std::vector<Value> counters;
  std::vector<uint8_t> counter_set;
  // offset:continue positions by loop slot, cycle positions by cycle slot.
  std::vector<int64_t> for_offsets;
  std::vector<int64_t> cycle_pos;
  std::unordered_map<std::string, int64_t> named_cycles;
  // Last ifchanged output.
  std::string last_ifchanged;
  bool has_ifchanged = false;

  struct Loop {
    int64_t length = 0;
    int64_t index0 = 0;
    int64_t cols = 0;  // tablerow only
    bool tablerow = false;
    std::string_view name;
    int parent = -1;
  };
  std::vector<Loop> loops;

  Interrupt interrupt = Interrupt::None;
  int depth = 0;
  int64_t iterations = 0;
  size_t output_bytes = 0;
  size_t work_bytes = 0;
  // Render steps (see kInterruptCheckSteps) are counted down: the steps done so
  // far are poll_at - countdown, and Poll runs when countdown goes below zero.
  int64_t countdown = 0;
  int64_t poll_at = 0;

  // Capture buffers (capture/ifchanged); when non-empty, output goes to back().
  std::vector<std::string> captures;

  // Sends template text to the current destination.
  void Text(std::string_view text);
  // Sends an output site's final value to the current destination.
  void Output(const Value& v, size_t site);
  // Counts `n` render steps. Why inline and a bare countdown: it runs for every
  // body, loop iteration, pipeline and condition; the interrupt check and the
  // step limit are tested only every kInterruptCheckSteps steps (in Poll).
  void Step(int64_t n = 1) {
    if ((countdown -= n) < 0) Poll();
  }
  // Tests the step limit and calls the context's interrupt check (Step's slow path).
  void Poll();
  // Render steps counted so far.
  int64_t steps() const { return poll_at - countdown; }
  // Sets the countdown to the next interrupt check, or to the step limit.
  void SchedulePoll(int64_t done) {
    countdown = std::min(kInterruptCheckSteps, std::max<int64_t>(limits.max_steps - done, 0));
    poll_at = done + countdown;
  }
  // Counts one loop iteration against the limit (and as a step).
  void CountIteration() {
    Step();
    if (++iterations > static_cast<int64_t>(limits.max_loop_iterations)) IterationLimitExceeded();
  }
  [[noreturn]] static void IterationLimitExceeded();
  // Charges bytes of values built by filters against the work budget.
  void ChargeWork(size_t bytes);
  // Charges the size of a value a filter or comparison reads (scans). Why: a
  // cheap-looking step over a big value inside a long loop is still unbounded
  // work; only the render's total is limited, not any single value.
  void ChargeScan(const Value& v) {
    Value::Kind k = v.kind();
    if (k == Value::Kind::String || k == Value::Kind::Decimal || k == Value::Kind::Array ||
        k == Value::Kind::Object) {
      ChargeScanSized(v);
    }
  }
  // ChargeScan's path for values with a size (strings, numerics' text, arrays, objects).
  void ChargeScanSized(const Value& v);
  // Looks up a root variable (locals, assigns, counters, context), or nullptr.
  const Value* FindRoot(int id, std::string_view name, int& loop_drop,
                        const LookupHint* hint = nullptr) const;
  // Sets an assign/capture variable.
  void Assign(int id, Value v);
  // Interned id of a name, or -1 if the template never binds it.
  int NameId(std::string_view name) const;
};

// Evaluates an expression to a value reference (into the context, a literal or
// `scratch`).
const Value& Eval(const Expr& e, RenderState& st, Value& scratch);
// Evaluates an expression into a fresh Value.
Value EvalCopy(const Expr& e, RenderState& st);
// Evaluates a pipeline (expression plus filters).
Value EvalPipeline(const Pipeline& p, RenderState& st);
bool EvalCondition(const Condition& c, RenderState& st);

// Truthiness: only nil and false are falsy.
inline bool Truthy(const Value& v) {
  return !(v.kind() == Value::Kind::Nil || (v.kind() == Value::Kind::Bool && !v.as_bool()));
}
// Liquid equality (==) with empty/blank semantics.
bool LiquidEquals(const Value& a, const Value& b);
// Ordering for <, >, sort; throws RenderError when types cannot be compared.
int LiquidCompare(const Value& a, const Value& b);
// First or last UTF-8 character of `s` ("" when empty).
std::string FirstOrLastChar(const std::string& s, bool last);
// Ruby's blank?/empty? as Liquid uses them.
bool IsEmptyValue(const Value& v);
bool IsBlankValue(const Value& v);
// Ruby Integer(): converts a value to an integer or throws RenderError.
int64_t ToInteger(const Value& v, const char* what);
// Number of integers in lo..hi, saturating at INT64_MAX (0 when empty).
inline int64_t RangeSize(int64_t lo, int64_t hi) {
  if (hi < lo) return 0;
  __int128 n = static_cast<__int128>(hi) - lo + 1;
  return n > INT64_MAX ? INT64_MAX : static_cast<int64_t>(n);
}
// Materialises a Range as an Array (bounded by the loop limit).
Value RangeToArray(const Value& r, RenderState* st);

// Substring search in linear worst-case time (std::string::find is O(n*m), which
// a hostile template could use to stall a backend). npos when absent.
size_t SafeFind(std::string_view hay, std::string_view needle, size_t from = 0);
// Last occurrence of `needle` in `hay`, in linear time.
size_t SafeRFind(std::string_view hay, std::string_view needle);

// An instant for the `date` filter, as Value keeps times: days since 2000-01-01
// and microseconds into that day (0 <= micros < kMicrosPerDay).
struct TimePoint {
  int64_t days = 0;
  int64_t micros = 0;
};
// The instant `secs` seconds (any int64) after 1970-01-01T00:00:00Z.
inline TimePoint TimePointFromUnixSeconds(int64_t secs) {
  return {FloorDiv(secs, 86400) - kUnixToPgEpochDays, FloorMod(secs, 86400) * 1000000};
}
// The instant `micros` microseconds after 1970-01-01T00:00:00Z.
inline TimePoint TimePointFromUnixMicros(int64_t micros) {
  return {FloorDiv(micros, kMicrosPerDay) - kUnixToPgEpochDays, FloorMod(micros, kMicrosPerDay)};
}
// Formats a time (UTC) with a strftime format (Ruby's directives and flags).
std::string Strftime(TimePoint t, std::string_view format);
// Parses a date/time string as Ruby's Time.parse would (UTC); false if not a
// date (or a year beyond +-100,000,000).
bool ParseDateTime(std::string_view input, TimePoint& out);
// Current time in microseconds since 1970-01-01.
int64_t NowMicros();

}  // namespace hyperline::liquid
