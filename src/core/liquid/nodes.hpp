// nodes.hpp: the node tree of a parsed template, one Node class per tag.
//
// Vocabulary: a Body is the list of nodes of a block (the document, or the
// inside of if/for/capture/...). The parser (parser.cpp) builds the tree once;
// each node's Render (tags.cpp) walks it per render, with a RenderState.
#pragma once
#include "core/cpp_only.hpp"

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/liquid.hpp"
#include "core/liquid/internal.hpp"
#include "core/liquid/lexer.hpp"

namespace hyperline::liquid {

// Parses `source` into `body` (parser.cpp). Fills the output sites, the
// variable paths read from the context (in source order, duplicates kept) and
// the interned names. Throws ParseError.
void ParseTemplate(std::string_view source, Body& body, std::vector<OutputSite>& sites,
                   std::vector<std::vector<std::string>>& paths,
                   std::unordered_map<std::string, int>& names);

// Renders the nodes of `body` in order, stopping at break/continue.
void RenderBody(const Body& body, RenderState& st);

// Ruby's BlockBody#blank?: every node is blank.
bool BodyBlank(const Body& body);

// Guards render recursion depth.
struct DepthGuard {
  explicit DepthGuard(RenderState& st) : st(st) {
    if (++st.depth > st.limits.max_depth) throw RenderError("Liquid error: nesting too deep");
  }
  ~DepthGuard() { --st.depth; }
  RenderState& st;
};

class TextNode : public Node {
 public:
  explicit TextNode(std::string t) : text(std::move(t)) {}
  void Render(RenderState& st) const override;
  bool Blank() const override { return IsWhitespaceOnly(text); }
  std::string text;
};

// `{{ ... }}` and `{% echo %}`: one output site.
class OutputNode : public Node {
 public:
  void Render(RenderState& st) const override;
  Pipeline pipe;
  size_t site = 0;
};

class AssignNode : public Node {
 public:
  void Render(RenderState& st) const override;
  bool Blank() const override { return true; }
  std::string name;
  int id = -1;
  Pipeline pipe;
};

class CaptureNode : public Node {
 public:
  void Render(RenderState& st) const override;
  bool Blank() const override { return true; }
  std::string name;
  int id = -1;
  Body body;
};

// if/elsif/else, and unless (negate_first).
class IfNode : public Node {
 public:
  struct Branch {
    Condition cond;
    Body body;
  };
  void Render(RenderState& st) const override;
  bool Blank() const override {
    for (const auto& b : branches) {
      if (!BodyBlank(b.body)) return false;
    }
    return BodyBlank(else_body);
  }
  std::vector<Branch> branches;
  Body else_body;
  bool has_else = false;
  bool negate_first = false;  // unless
};

class CaseNode : public Node {
 public:
  struct When {
    bool is_else = false;
    Expr value;
    size_t body = 0;
  };
  void Render(RenderState& st) const override;
  bool Blank() const override {
    for (const auto& b : bodies) {
      if (!BodyBlank(b)) return false;
    }
    return true;
  }
  Expr subject_expr;
  std::vector<When> whens;
  std::vector<Body> bodies;
};

// Shared collection handling of for and tablerow.
struct LoopSpec {
  std::string var;
  int var_id = -1;
  int drop_id = -1;  // id of "forloop" / "tablerowloop"
  std::string name;  // "var-collection" for offset:continue
  size_t slot = 0;   // offset:continue slot (one per distinct name)
  Expr collection;
  bool reversed = false;
  bool has_limit = false, has_offset = false, offset_continue = false, has_cols = false;
  Expr limit, offset, cols;
};

class ForNode : public Node {
 public:
  void Render(RenderState& st) const override;
  bool Blank() const override { return BodyBlank(body) && BodyBlank(else_body); }
  LoopSpec spec;
  Body body, else_body;
  bool has_else = false;
};

class TablerowNode : public Node {
 public:
  void Render(RenderState& st) const override;
  LoopSpec spec;
  Body body;
};

class CycleNode : public Node {
 public:
  void Render(RenderState& st) const override;
  bool has_group = false;
  Expr group;
  size_t slot = 0;  // unnamed cycles with the same values share a slot
  std::vector<Expr> values;
};

// increment / decrement.
class CounterNode : public Node {
 public:
  void Render(RenderState& st) const override;
  std::string name;
  int id = -1;
  bool decrement = false;
};

// break / continue.
class InterruptNode : public Node {
 public:
  explicit InterruptNode(Interrupt i) : kind(i) {}
  void Render(RenderState& st) const override;
  Interrupt kind;
};

class IfchangedNode : public Node {
 public:
  void Render(RenderState& st) const override;
  Body body;
};

class RawNode : public Node {
 public:
  explicit RawNode(std::string t) : text(std::move(t)) {}
  void Render(RenderState& st) const override;
  bool Blank() const override { return text.empty(); }
  std::string text;
};

class BlankNode : public Node {  // comment, doc, inline comment
 public:
  void Render(RenderState&) const override {}
  bool Blank() const override { return true; }
};

}  // namespace hyperline::liquid
