// payload_template.hpp: a model's payload — JSON with Liquid inside.
//
// Vocabulary: the payload template is what users paste from Hightouch: JSON
// (with // and /* */ comments and trailing commas allowed) whose strings and
// values contain Liquid. Compile() turns it into a Liquid template whose output
// sites are typed by where they stand:
//   - inside a quoted JSON string: the value's text, JSON-escaped (nil -> "");
//   - as a whole JSON value (bare `{{ }}`): the value as JSON of its type
//     (numbers exact, booleans, null, arrays, objects, ISO 8601 times).
// Render() produces JSON text for one row; it is compiled once per model.
#pragma once
#include "core/cpp_only.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_tokens.hpp"
#include "core/liquid.hpp"

namespace hyperline {

// Output modes given to each Liquid output site.
enum PayloadMode : uint8_t {
  kModeText = 0,       // plain Liquid text (outside JSON structure)
  kModeInString = 1,   // inside a JSON string: escaped text
  kModeJsonValue = 2,  // a whole JSON value: typed
};

// A payload template that cannot be compiled; what() names line and column.
class PayloadError : public std::runtime_error {
 public:
  PayloadError(const std::string& message, int line, int column)
      : std::runtime_error(message), line(line), column(column) {}
  int line;
  int column;
};

class PayloadTemplate {
 public:
  // Compiles `source`; throws PayloadError for Liquid or JSON syntax errors.
  static std::unique_ptr<PayloadTemplate> Compile(std::string_view source);

  // Renders one event as JSON text, appended to `out`. Throws
  // liquid::RenderError (e.g. divided_by 0, or NaN as a JSON value), or
  // liquid::Interrupted when the context's interrupt check says stop
  // (liquid::Context::SetInterruptCheck; the JSON passes after the Liquid
  // render are linear in its output, which Limits bound, so they do not poll).
  void Render(const liquid::Context& ctx, std::string& out) const;

  // Whether RenderTokens can be used: the template has no Liquid tags, so its
  // JSON structure is fixed (see json_tokens.hpp).
  bool HasTokenProgram() const { return program_ != nullptr; }

  // Renders one event as JSON tokens (only when HasTokenProgram()); the same
  // event Render would print. Throws liquid::RenderError or liquid::Interrupted. `values` is scratch
  // space for the sites' values, kept by callers that render row after row so
  // it is allocated once.
  void RenderTokens(const liquid::Context& ctx, JsonTokens& out, std::vector<Value>& values) const;
  void RenderTokens(const liquid::Context& ctx, JsonTokens& out) const {
    std::vector<Value> values;
    RenderTokens(ctx, out, values);
  }

  // Variable paths read by the template (see liquid::Template::VariablePaths).
  std::vector<std::vector<std::string>> VariablePaths() const { return tmpl_->VariablePaths(); }

 private:
  std::unique_ptr<liquid::Template> tmpl_;
  std::unique_ptr<TokenProgram> program_;
  bool structural_tags_ = false;  // {% %} outside strings: commas may trail at render
};

// Result of checking a rendered event against what Hyperline accepts.
struct EventShapeReport {
  std::vector<std::string> errors;    // the event would be rejected
  std::vector<std::string> warnings;  // Hyperline rejects objects inside record
};

// Checks that `json` (rendered payload text) is a JSON object with customer_id,
// event_type, timestamp and record.id. A JSON syntax error is reported as an
// error naming line and column of the rendered text.
EventShapeReport CheckEventShape(std::string_view json);

// "" when `json` is valid JSON, else a message naming line and column.
std::string JsonSyntaxError(std::string_view json);

// Removes commas that directly precede } or ] (outside strings), in place.
void RemoveTrailingCommas(std::string& json);

// Line and column (1-based) of byte `offset` in `text`.
void LineColumn(std::string_view text, size_t offset, int& line, int& column);

}  // namespace hyperline
