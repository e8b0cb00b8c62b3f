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

 private:
  std::vector<std::pair<std::string, Value>> vars_;
};

struct OutputSite {
  size_t offset = 0;  // byte offset of `{{` (or of `{%` for echo) in the source
  size_t length = 0;  // bytes up to and including the closing `}}` / `%}`
  uint8_t mode = 0;   // set by the caller after Parse; passed to Sink::Output
};

// Resource limits so no template can hang or exhaust a backend.
struct Limits {
  size_t max_output_bytes = 16 * 1024 * 1024;
  size_t max_loop_iterations = 1000000;
  int max_depth = 100;
};

class Template {
 public:
  // Parses `source` strictly; throws ParseError with line, column and token.
  static std::unique_ptr<Template> Parse(std::string_view source);
  virtual ~Template() = default;

  // Renders with `ctx`; throws RenderError. Thread-compatible (const).
  virtual void Render(const Context& ctx, Sink& sink, const Limits& limits = Limits()) const = 0;

  // Output sites in source order; callers may set each site's mode after Parse.
  virtual std::vector<OutputSite>& output_sites() = 0;

  // Every variable path the template reads from the context, e.g.
  // {"row","customer_id"} for `{{ row.customer_id | upcase }}` and {"row"} for
  // `{{ row }}`; with a dynamic part (`row[x]`) the path stops before it.
  // Variables created by assign/capture/for are not reported.
  virtual std::vector<std::vector<std::string>> VariablePaths() const = 0;
};

// Convenience: parse + render with a JSON-like data object (keys become variables).
std::string RenderString(std::string_view source, const Value& data);

}  // namespace hyperline::liquid
