// liquid.hpp: the Liquid template engine (Shopify's Ruby implementation is the
// reference for semantics).
//
// Vocabulary: a Template is parsed once (Parse) and rendered many times (Render)
// without re-parsing. An "output site" is one `{{ ... }}` or `{% echo %}` in the
// source; the payload layer (payload_template.hpp) gives each site a mode so the
// same engine can print plain text or JSON-typed values. A Sink receives what a
// render produces: literal text and the final value of each output site.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/value.hpp"

namespace hyperline::liquid {

// A template that does not parse. what() reads like
// "Liquid syntax error (line 3, column 14): unknown tag 'endfor' near '{% endfor %}'".
class ParseError : public std::runtime_error {
 public:
  ParseError(const std::string& message, int line, int column)
      : std::runtime_error(message), line(line), column(column) {}
  int line;
  int column;
};

// A render that cannot continue (e.g. a limit was exceeded, or a strict error).
class RenderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown out of a render when the Context's interrupt check asks it to stop
// (Context::SetInterruptCheck). Not a RenderError: the template did not fail,
// the render was stopped from outside (a query cancel, a statement timeout, a
// backend termination), so callers let it propagate to where the interrupt is
// served instead of recording a render error.
class Interrupted : public std::exception {
 public:
  const char* what() const noexcept override { return "Liquid render interrupted"; }
};

// A cooperative interrupt check: returns true to stop the render (which then
// throws Interrupted). It runs inside the render, so it must be cheap and must
// neither throw (noexcept) nor longjmp; `arg` is passed through unchanged.
using InterruptCheck = bool (*)(void* arg) noexcept;

// A render step: one node rendered, one loop iteration, one filter call, one
// comparison, one element compared by sort, or 1 KiB of a value built or
// scanned. The interrupt check runs every kInterruptCheckSteps steps (tens of
// microseconds of work), and Limits::max_steps bounds a render's total work.
constexpr int64_t kInterruptCheckSteps = 1024;

// Receives rendered output. Text() gets template text and tag output in order;
// Output() gets the final (post-filter) value of an output site and its mode.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Text(std::string_view text) = 0;
  virtual void Output(const Value& value, uint8_t mode) = 0;
};

// Sink that prints values as plain Liquid does (AppendLiquidString), ignoring mode.
class StringSink : public Sink {
 public:
  void Text(std::string_view text) override { out.append(text); }
  void Output(const Value& value, uint8_t) override { AppendLiquidString(value, out); }
  std::string out;
};

// Top-level variables for a render, looked up by name (assign/capture shadow them).
class Context {
 public:
  void Set(std::string name, Value value);
  const Value* Find(std::string_view name) const;
  // A variable for updating in place between renders (keeps its storage), or
  // nullptr when it was never Set.
  Value* FindMutable(std::string_view name);
  // Values in insertion order, for engines that resolve names at compile time.
  const std::vector<std::pair<std::string, Value>>& vars() const { return vars_; }

  // Sets the check every render with this context polls (nullptr: none). A
  // render shorter than kInterruptCheckSteps steps never calls it, so callers
  // that render many events also check between events.
  void SetInterruptCheck(InterruptCheck check, void* arg = nullptr) {
    interrupt_check_ = check;
    interrupt_arg_ = arg;
  }
  InterruptCheck interrupt_check() const { return interrupt_check_; }
  void* interrupt_arg() const { return interrupt_arg_; }

 private:
  std::vector<std::pair<std::string, Value>> vars_;
  InterruptCheck interrupt_check_ = nullptr;
  void* interrupt_arg_ = nullptr;
};

struct OutputSite {
  size_t offset = 0;  // byte offset of `{{` (or of `{%` for echo) in the source
  size_t length = 0;  // bytes up to and including the closing `}}` / `%}`
  uint8_t mode = 0;   // set by the caller after Parse; passed to Sink::Output
};

// Resource limits so no template can hang or exhaust a backend. Each one
// exceeded is a RenderError naming it.
struct Limits {
  size_t max_output_bytes = size_t{16} * 1024 * 1024;  // also bounds work: 8x this built/scanned
  size_t max_loop_iterations = 1000000;                // all loops of one render together
  int max_depth = 100;                                 // nested blocks
  int64_t max_steps = 50000000;                        // see kInterruptCheckSteps
};

class Template {
 public:
  // Parses `source` strictly; throws ParseError with line, column and token.
  static std::unique_ptr<Template> Parse(std::string_view source);
  virtual ~Template() = default;

  // Renders with `ctx`; throws RenderError, or Interrupted when the context's
  // interrupt check says stop. Thread-compatible (const).
  virtual void Render(const Context& ctx, Sink& sink, const Limits& limits = Limits()) const = 0;

  // Output sites in source order; callers may set each site's mode after Parse.
  virtual std::vector<OutputSite>& output_sites() = 0;

  // Every variable path the template reads from the context, e.g.
  // {"row","customer_id"} for `{{ row.customer_id | upcase }}` and {"row"} for
  // `{{ row }}`; with a dynamic part (`row[x]`) the path stops before it, and
  // a root chosen at render time (`[x].y`) is reported as {"*"}.
  // Variables created by assign/capture/for are not reported.
  virtual std::vector<std::vector<std::string>> VariablePaths() const = 0;
};

// Convenience: parse + render with a JSON-like data object (keys become variables).
std::string RenderString(std::string_view source, const Value& data);

}  // namespace hyperline::liquid
