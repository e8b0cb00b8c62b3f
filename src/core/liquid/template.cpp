// template.cpp: a compiled template (liquid.hpp's Template) and its Context.
//
// The phases live in their own files: lexer.cpp cuts the source into tokens and
// lexemes, parser.cpp builds the node tree (nodes.hpp), tags.cpp renders it,
// eval.cpp evaluates expressions and filters.cpp holds the standard filters.
#include <set>
#include <string>
#include <unordered_map>

#include "core/liquid/nodes.hpp"

namespace hyperline::liquid {

namespace {

class CompiledTemplate : public Template {
 public:
  explicit CompiledTemplate(std::string_view source) : source_(source) {
    std::vector<std::vector<std::string>> raw_paths;
    ParseTemplate(source_, body_, sites_, raw_paths, names_);
    std::set<std::vector<std::string>> seen;
    for (auto& path : raw_paths) {
      if (seen.insert(path).second) paths_.push_back(std::move(path));
    }
  }

  void Render(const Context& ctx, Sink& sink, const Limits& limits) const override {
    RenderState st(ctx, sink, limits, sites_);
    st.names = &names_;
    try {
      RenderBody(body_, st);
    } catch (const RenderError&) {
      throw;
    } catch (const Interrupted&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      throw RenderError(std::string("Liquid error: ") + e.what());
    }
  }

  std::vector<OutputSite>& output_sites() override { return sites_; }

  std::vector<std::vector<std::string>> VariablePaths() const override { return paths_; }

 private:
  std::string source_;
  Body body_;
  std::vector<OutputSite> sites_;
  std::vector<std::vector<std::string>> paths_;
  std::unordered_map<std::string, int> names_;
};

}  // namespace

// Compiles `source` (see liquid.hpp).
std::unique_ptr<Template> Template::Parse(std::string_view source) {
  return std::make_unique<CompiledTemplate>(source);
}

// Sets or replaces a top-level variable.
void Context::Set(std::string name, Value value) {
  for (auto& kv : vars_) {
    if (kv.first == name) {
      kv.second = std::move(value);
      return;
    }
  }
  vars_.emplace_back(std::move(name), std::move(value));
}

// Finds a top-level variable by name.
const Value* Context::Find(std::string_view name) const {
  for (const auto& kv : vars_) {
    if (kv.first == name) return &kv.second;
  }
  return nullptr;
}

// Finds a top-level variable by name, for writing.
Value* Context::FindMutable(std::string_view name) {
  for (auto& kv : vars_) {
    if (kv.first == name) return &kv.second;
  }
  return nullptr;
}

// Parses and renders `source` with the members of `data` as variables.
std::string RenderString(std::string_view source, const Value& data) {
  auto t = Template::Parse(source);
  Context ctx;
  if (data.kind() == Value::Kind::Object) {
    for (const auto& kv : data.as_object()) ctx.Set(kv.first, kv.second);
  }
  StringSink sink;
  t->Render(ctx, sink);
  return std::move(sink.out);
}

}  // namespace hyperline::liquid
