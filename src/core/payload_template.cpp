// payload_template.cpp: JSON-with-Liquid payloads (see payload_template.hpp).
#include "core/payload_template.hpp"

#include "core/ascii.hpp"
#include "core/json_check.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace hyperline {
namespace {

bool StartsWith(std::string_view s, size_t pos, std::string_view prefix) {
  return s.size() >= pos + prefix.size() && s.compare(pos, prefix.size(), prefix) == 0;
}

// Returns the tag name of the `{%` tag starting at `pos` (e.g. "if", "raw").
std::string_view TagName(std::string_view s, size_t pos) {
  size_t i = pos + 2;
  if (i < s.size() && s[i] == '-') ++i;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  size_t start = i;
  while (i < s.size() && (AsciiAlnum(s[i]) || s[i] == '_')) ++i;
  return s.substr(start, i - start);
}

// End (exclusive) of the Liquid span opened at `pos` by `{{` or `{%`; like
// Shopify's tokenizer it ends at the first closing delimiter.
size_t SpanEnd(std::string_view s, size_t pos) {
  std::string_view close = s[pos + 1] == '{' ? "}}" : "%}";
  size_t end = s.find(close, pos + 2);
  return end == std::string_view::npos ? s.size() : end + 2;
}

// End of a block tag whose body is opaque ({% raw %}, {% comment %}).
size_t BlockEnd(std::string_view s, size_t pos, std::string_view end_name) {
  size_t i = SpanEnd(s, pos);
  while (i < s.size()) {
    size_t open = s.find("{%", i);
    if (open == std::string_view::npos) return s.size();
    if (TagName(s, open) == end_name) return SpanEnd(s, open);
    i = open + 2;
  }
  return s.size();
}

// Position of the next non-space, non-comment byte at or after `i`.
size_t SkipSpaceAndComments(std::string_view s, size_t i) {
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
    } else if (StartsWith(s, i, "//")) {
      size_t nl = s.find('\n', i);
      i = nl == std::string_view::npos ? s.size() : nl;
    } else if (StartsWith(s, i, "/*")) {
      size_t end = s.find("*/", i + 2);
      i = end == std::string_view::npos ? s.size() : end + 2;
    } else {
      break;
    }
  }
  return i;
}

// Blanks [from, to) of `s`, keeping newlines so lines and columns stay put.
void Blank(std::string& s, size_t from, size_t to) {
  for (size_t i = from; i < to && i < s.size(); ++i) {
    if (s[i] != '\n' && s[i] != '\r') s[i] = ' ';
  }
}

struct ScanResult {
  std::string cleaned;   // comments and trailing commas blanked; Liquid intact
  std::string skeleton;  // cleaned with Liquid replaced: bare outputs by 0, rest blanked
  std::vector<std::pair<size_t, size_t>> strings;  // JSON string bodies [start, end)
  bool structural_tags = false;
  bool any_tags = false;  // any {% %} at all
};

// One pass over the template as JSON, treating Liquid spans as opaque.
ScanResult Scan(std::string_view src) {
  ScanResult r;
  r.cleaned.assign(src);
  r.skeleton.assign(src);
  bool in_string = false;
  size_t string_start = 0;
  size_t i = 0;
  while (i < src.size()) {
    char c = src[i];
    if (StartsWith(src, i, "{{") || StartsWith(src, i, "{%")) {
      size_t end;
      bool is_output = src[i + 1] == '{';
      std::string_view tag = is_output ? std::string_view() : TagName(src, i);
      if (tag == "raw" || tag == "comment" || tag == "doc") {
        end = BlockEnd(src, i, tag == "raw" ? "endraw" : tag == "doc" ? "enddoc" : "endcomment");
      } else {
        end = SpanEnd(src, i);
      }
      Blank(r.skeleton, i, end);
      if (!is_output) r.any_tags = true;
      if (!in_string) {
        if (is_output) {
          r.skeleton[i] = '0';
        } else if (tag != "comment" && tag != "doc" && tag != "assign" && tag != "capture" &&
                   tag != "endcapture") {
          // A tag in JSON structure may emit or drop commas at render time.
          r.structural_tags = true;
        }
      }
      i = end;
      continue;
    }
    if (in_string) {
      if (c == '\\') {
        i += 2;
        continue;
      }
      if (c == '"') {
        r.strings.emplace_back(string_start, i);
        in_string = false;
      }
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = true;
      string_start = i + 1;
      ++i;
    } else if (StartsWith(src, i, "//")) {
      size_t nl = src.find('\n', i);
      size_t end = nl == std::string_view::npos ? src.size() : nl;
      Blank(r.cleaned, i, end);
      Blank(r.skeleton, i, end);
      i = end;
    } else if (StartsWith(src, i, "/*")) {
      size_t close = src.find("*/", i + 2);
      size_t end = close == std::string_view::npos ? src.size() : close + 2;
      Blank(r.cleaned, i, end);
      Blank(r.skeleton, i, end);
      i = end;
    } else if (c == ',') {
      size_t next = SkipSpaceAndComments(src, i + 1);
      if (next < src.size() && (src[next] == '}' || src[next] == ']')) {
        r.cleaned[i] = ' ';
        r.skeleton[i] = ' ';
      }
      ++i;
    } else {
      ++i;
    }
  }
  if (in_string) r.strings.emplace_back(string_start, src.size());
  return r;
}

// Whether byte `offset` lies inside one of the (sorted) JSON string bodies.
bool InsideString(const std::vector<std::pair<size_t, size_t>>& strings, size_t offset) {
  auto it = std::upper_bound(strings.begin(), strings.end(), std::make_pair(offset, SIZE_MAX));
  if (it == strings.begin()) return false;
  --it;
  return offset >= it->first && offset < it->second;
}

// Postgres text (and so jsonb) cannot hold NUL characters.
void RefuseNul(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    throw std::invalid_argument("a string contains a NUL character, which Postgres cannot store");
  }
}

// Sink that collects the value of every output site, in order (token path).
class CaptureSink : public liquid::Sink {
 public:
  explicit CaptureSink(std::vector<Value>& values) : values_(values) {}
  void Text(std::string_view) override {}
  void Output(const Value& value, uint8_t) override { values_.push_back(value); }

 private:
  std::vector<Value>& values_;
};

// Sink that writes JSON: escaped text inside strings, typed values elsewhere.
class JsonSink : public liquid::Sink {
 public:
  explicit JsonSink(std::string& out) : out_(out) {}
  void Text(std::string_view text) override { out_.append(text); }
  void Output(const Value& value, uint8_t mode) override {
    switch (mode) {
      case kModeInString: {
        const std::string* text = &value.as_string();
        if (value.kind() != Value::Kind::String) {
          scratch_.clear();
          AppendLiquidString(value, scratch_);
          text = &scratch_;
        }
        RefuseNul(*text);
        AppendJsonEscaped(*text, out_);
        break;
      }
      case kModeJsonValue:
        AppendJsonValue(value, out_);
        break;
      default:
        AppendLiquidString(value, out_);
        break;
    }
  }

 private:
  std::string& out_;
  std::string scratch_;
};

}  // namespace

void LineColumn(std::string_view text, size_t offset, int& line, int& column) {
  line = 1;
  column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++column;  // count characters, not UTF-8 continuation bytes
    }
  }
}

std::unique_ptr<PayloadTemplate> PayloadTemplate::Compile(std::string_view source) {
  ScanResult scan = Scan(source);
  auto result = std::unique_ptr<PayloadTemplate>(new PayloadTemplate());
  try {
    result->tmpl_ = liquid::Template::Parse(scan.cleaned);
  } catch (const liquid::ParseError& e) {
    throw PayloadError(e.what(), e.line, e.column);
  }
  result->structural_tags_ = scan.structural_tags;
  std::vector<size_t> site_offsets;
  for (liquid::OutputSite& site : result->tmpl_->output_sites()) {
    site.mode = InsideString(scan.strings, site.offset) ? kModeInString : kModeJsonValue;
    site_offsets.push_back(site.offset);
  }
  // Without tags in the JSON structure the skeleton must itself be JSON, so
  // syntax errors are reported against the template's own lines and columns.
  if (!scan.structural_tags) {
    JsonCheckResult r = CheckJsonSyntax(scan.skeleton);
    if (!r.ok) {
      int line = 0;
      int column = 0;
      LineColumn(scan.skeleton, r.offset, line, column);
      throw PayloadError("payload template is not valid JSON at line " + std::to_string(line) +
                             ", column " + std::to_string(column) + ": " + r.reason,
                         line, column);
    }
  }
  // Without any tag, every site renders exactly once, in order: the structure
  // is fixed and can be emitted as tokens (json_tokens.hpp).
  if (!scan.any_tags) result->program_ = TokenProgram::Compile(scan.cleaned, site_offsets);
  return result;
}

void PayloadTemplate::RenderTokens(const liquid::Context& ctx, JsonTokens& out,
                                   std::vector<Value>& values) const {
  values.clear();
  values.reserve(program_->site_count());
  CaptureSink sink(values);
  tmpl_->Render(ctx, sink);
  try {
    program_->Render(values, out);
    // Drop the values now (capacity kept): one may share the context's row
    // object, which the next row then updates without copying it.
    values.clear();
  } catch (const std::invalid_argument& e) {
    // Same message as the text path, where the engine wraps sink errors.
    throw liquid::RenderError(std::string("Liquid error: ") + e.what());
  } catch (const std::out_of_range&) {
    throw liquid::RenderError("Liquid error: the template rendered fewer values than expected");
  }
}

void PayloadTemplate::Render(const liquid::Context& ctx, std::string& out) const {
  JsonSink sink(out);
  size_t start = out.size();
  tmpl_->Render(ctx, sink);
  if (structural_tags_) {
    std::string rendered = out.substr(start);
    RemoveTrailingCommas(rendered);
    out.resize(start);
    out += rendered;
  }
}

void RemoveTrailingCommas(std::string& json) {
  bool in_string = false;
  size_t pending_comma = std::string::npos;
  std::string out;
  out.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < json.size()) {
        out.push_back(json[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      out.push_back(c);
      continue;
    }
    if ((c == '}' || c == ']') && pending_comma != std::string::npos) {
      out[pending_comma] = ' ';
    }
    pending_comma = std::string::npos;
    if (c == ',') pending_comma = out.size();
    if (c == '"') in_string = true;
    out.push_back(c);
  }
  json.swap(out);
}

std::string JsonSyntaxError(std::string_view json) {
  JsonCheckResult r = CheckJsonSyntax(json);
  if (r.ok) return "";
  int line = 0;
  int column = 0;
  LineColumn(json, r.offset, line, column);
  return "the rendered payload is not valid JSON at line " + std::to_string(line) + ", column " +
         std::to_string(column) + ": " + r.reason;
}

const char* KindName(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Object:
      return "an object";
    case Value::Kind::Array:
      return "an array";
    case Value::Kind::String:
      return "a string";
    case Value::Kind::Bool:
      return "a boolean";
    case Value::Kind::Nil:
      return "null";
    default:
      return "a number";
  }
}

// True for the shape of a timestamp string Hyperline takes: an ISO 8601
// date-time with seconds and a zone (2024-12-20T16:04:11Z; a fraction and an
// offset allowed), or milliseconds since epoch as digits. A date alone
// (2024-12-20) is not one.
bool IsHyperlineTimestamp(std::string_view s) {
  if (!s.empty() && s.size() <= 15 && std::all_of(s.begin(), s.end(), AsciiDigit)) return true;
  size_t p = 0;
  auto digits = [&](int n) {
    for (int i = 0; i < n; ++i, ++p) {
      if (p >= s.size() || !AsciiDigit(s[p])) return false;
    }
    return true;
  };
  auto accept = [&](char c) {
    if (p < s.size() && s[p] == c) {
      ++p;
      return true;
    }
    return false;
  };
  if (!digits(4) || !accept('-') || !digits(2) || !accept('-') || !digits(2)) return false;
  if (!accept('T') && !accept('t')) return false;
  if (!digits(2) || !accept(':') || !digits(2) || !accept(':') || !digits(2)) return false;
  if (accept('.') || accept(',')) {
    size_t start = p;
    while (p < s.size() && AsciiDigit(s[p])) ++p;
    if (p == start) return false;
  }
  if (accept('Z') || accept('z')) return p == s.size();
  if (!accept('+') && !accept('-')) return false;
  if (!digits(2)) return false;
  if (p < s.size()) {
    accept(':');
    if (!digits(2)) return false;
  }
  return p == s.size();
}

EventShapeReport CheckEventShape(std::string_view json) {
  EventShapeReport report;
  std::string syntax = JsonSyntaxError(json);
  if (!syntax.empty()) {
    report.errors.push_back(syntax);
    return report;
  }
  Value j;
  try {
    j = ParseJsonValue(json);
  } catch (const std::invalid_argument& e) {
    report.errors.push_back(std::string("the rendered payload cannot be read: ") + e.what());
    return report;
  }
  if (j.kind() != Value::Kind::Object) {
    report.errors.push_back(std::string("the payload must be a JSON object, not ") + KindName(j));
    return report;
  }
  for (const char* key : {"customer_id", "event_type", "timestamp"}) {
    if (j.Find(key) == nullptr) {
      report.errors.push_back(std::string("the payload has no \"") + key +
                              "\" (Hyperline requires customer_id, event_type, timestamp and "
                              "record.id)");
    }
  }
  const Value* rec = j.Find("record");
  if (rec == nullptr) {
    report.errors.push_back(
        "the payload has no \"record\" object (Hyperline requires record.id, the event's "
        "idempotency key)");
  } else if (rec->kind() != Value::Kind::Object) {
    report.errors.push_back(std::string("\"record\" must be a JSON object, not ") + KindName(*rec));
  } else {
    if (rec->Find("id") == nullptr) {
      report.errors.push_back(
          "the payload has no \"record.id\" (Hyperline requires it: it makes delivery "
          "idempotent)");
    }
    for (const auto& [key, value] : rec->as_object()) {
      if (value.kind() == Value::Kind::Object) {
        report.warnings.push_back("record." + key +
                                  " is an object; Hyperline rejects objects inside record");
      } else if (value.kind() == Value::Kind::Array &&
                 std::any_of(value.as_array().begin(), value.as_array().end(),
                             [](const Value& e) { return e.kind() == Value::Kind::Object; })) {
        report.warnings.push_back("record." + key +
                                  " is an array of objects; Hyperline rejects those");
      }
    }
  }
  if (const Value* ts = j.Find("timestamp"); ts != nullptr) {
    if (ts->kind() == Value::Kind::String && !IsHyperlineTimestamp(ts->as_string())) {
      report.warnings.push_back(
          "\"timestamp\" renders as \"" + ts->as_string() +
          "\", neither an ISO 8601 date-time with a zone (e.g. 2024-12-20T16:04:11Z) nor "
          "milliseconds since epoch; Hyperline rejects such events (a date: "
          "\"{{ row.day }}T00:00:00Z\")");
    } else if (ts->kind() == Value::Kind::Float || ts->kind() == Value::Kind::Decimal) {
      report.warnings.push_back(
          "\"timestamp\" renders as a fractional number; Hyperline expects an integer of "
          "milliseconds since epoch or an ISO 8601 date-time string");
    }
  }
  for (const char* key : {"customer_id", "event_type"}) {
    const Value* f = j.Find(key);
    if (f != nullptr && f->kind() != Value::Kind::String) {
      report.warnings.push_back(std::string("\"") + key + "\" renders as " + KindName(*f) +
                                "; Hyperline expects a string (quote the placeholder)");
    }
  }
  return report;
}

}  // namespace hyperline
