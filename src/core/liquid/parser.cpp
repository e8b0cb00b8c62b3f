// parser.cpp: builds the node tree of a template from the Tokenizer's tokens
// and the Lexer's lexemes (see lexer.hpp, nodes.hpp).
//
// Parsing happens once per template: names, literals and filters are resolved
// into the node tree here so Render only walks it. The parser is strict (Ruby
// Liquid's strict mode): anything it does not understand is a ParseError with
// line, column and the offending token.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <unordered_set>

#include "core/liquid/nodes.hpp"
#include "core/liquid/number.hpp"
#include "core/names.hpp"

namespace hyperline::liquid {

namespace {

// Why: every nested block is a C++ stack frame in the parser and renderer; a
// hostile template must not be able to overflow the stack.
constexpr int kMaxParseDepth = 100;

// Drops the whitespace-only text of a blank block (Ruby's remove_blank_strings).
void RemoveBlankStrings(Body& body) {
  body.erase(std::remove_if(body.begin(), body.end(),
                            [](const std::unique_ptr<Node>& n) {
                              return dynamic_cast<TextNode*>(n.get()) != nullptr;
                            }),
             body.end());
}

class Parser {
 public:
  Parser(std::string_view src, std::vector<OutputSite>& sites,
         std::vector<std::vector<std::string>>& paths, std::unordered_map<std::string, int>& names)
      : err_(src), src_(src), sites_(sites), paths_(paths), names_(names) {}

  void ParseDocument(Body& body) {
    Tokenizer tz(src_, 0, false, err_);
    Token end;
    ParseBody(tz, body, {}, end);
  }

 private:
  using Ends = std::initializer_list<std::string_view>;

  std::string_view TokenText(const Token& t) const { return src_.substr(t.offset, t.length); }

  // Interns a variable name so renders look bindings up by index.
  int Intern(const std::string& name) {
    auto it = names_.find(name);
    if (it != names_.end()) return it->second;
    int id = static_cast<int>(names_.size());
    names_.emplace(name, id);
    return id;
  }

  // One slot per distinct key (offset:continue names, unnamed cycles).
  static size_t Slot(std::unordered_map<std::string, size_t>& slots, const std::string& key) {
    auto it = slots.find(key);
    if (it != slots.end()) return it->second;
    size_t id = slots.size();
    slots.emplace(key, id);
    return id;
  }

  // Parses nodes until a tag named in `ends` (returned in `end`) or the end of input.
  void ParseBody(Tokenizer& tz, Body& body, Ends ends, Token& end) {
    while (true) {
      Token t = tz.Next();
      if (t.kind == Token::Kind::End) {
        end = t;
        return;
      }
      if (t.kind == Token::Kind::Text) {
        std::string text(t.text);
        if (trim_next_) LStrip(text);
        trim_next_ = false;
        if (!text.empty()) body.push_back(std::make_unique<TextNode>(std::move(text)));
        continue;
      }
      if (t.trim_left && !body.empty()) {
        if (auto* tn = dynamic_cast<TextNode*>(body.back().get())) {
          RStrip(tn->text);
          if (tn->text.empty()) body.pop_back();
        }
      }
      trim_next_ = t.trim_right;
      if (t.kind == Token::Kind::Output) {
        auto node = std::make_unique<OutputNode>();
        Lexer lx(t.text, t.offset + 2 + (t.trim_left ? 1 : 0), err_, TokenText(t));
        if (lx.Look(Tk::End)) {
          node->pipe.expr.kind = Expr::Kind::Literal;
        } else {
          ParsePipeline(lx, node->pipe);
        }
        lx.ExpectEnd();
        node->site = AddSite(t);
        body.push_back(std::move(node));
        continue;
      }
      for (std::string_view e : ends) {
        if (t.name == e) {
          end = t;
          return;
        }
      }
      ParseTag(tz, t, body);
    }
  }

  size_t AddSite(const Token& t) {
    OutputSite s;
    s.offset = t.offset;
    s.length = t.length;
    sites_.push_back(s);
    return sites_.size() - 1;
  }

  [[noreturn]] void Fail(const std::string& msg, const Token& t) const {
    err_.Fail(msg, t.offset, TokenText(t));
  }

  // Lexer over a tag's markup.
  Lexer MarkupLexer(const Token& t) const {
    size_t base = static_cast<size_t>(t.markup.data() - src_.data());
    return Lexer(t.markup, base, err_, TokenText(t));
  }

  void EnterBlock(const Token& t) {
    if (++depth_ > kMaxParseDepth) Fail("nesting too deep", t);
  }

  // Parses the body of a block tag up to one of `ends`; fails if never closed.
  Token BlockBody(Tokenizer& tz, const Token& open, Body& body, Ends ends) {
    Token end;
    ParseBody(tz, body, ends, end);
    if (end.kind == Token::Kind::End) {
      Fail("'" + std::string(open.name) + "' tag was never closed", open);
    }
    return end;
  }

  void ParseTag(Tokenizer& tz, const Token& t, Body& body) {
    std::string_view n = t.name;
    if (n == "assign") return ParseAssign(t, body);
    if (n == "capture") return ParseCapture(tz, t, body);
    if (n == "if" || n == "unless") return ParseIf(tz, t, body);
    if (n == "case") return ParseCase(tz, t, body);
    if (n == "for") return ParseFor(tz, t, body);
    if (n == "tablerow") return ParseTablerow(tz, t, body);
    if (n == "cycle") return ParseCycle(t, body);
    if (n == "increment" || n == "decrement") return ParseCounter(t, body);
    if (n == "echo") return ParseEcho(t, body);
    if (n == "raw") return ParseRaw(tz, t, body);
    if (n == "comment") return ParseComment(tz, t, body);
    if (n == "doc") return ParseDoc(tz, t, body);
    if (n == "#") {
      // Inline comment: in a liquid tag, every line must start with '#' too.
      if (tz.liquid_lines()) return;
      for (size_t i = 0; i < t.markup.size(); ++i) {
        if (t.markup[i] == '\n') {
          size_t j = i + 1;
          while (j < t.markup.size() && AsciiSpace(t.markup[j]) && t.markup[j] != '\n') ++j;
          if (j < t.markup.size() && t.markup[j] != '#' && t.markup[j] != '\n') {
            Fail("every line of an inline comment must start with '#'", t);
          }
        }
      }
      body.push_back(std::make_unique<BlankNode>());
      return;
    }
    if (n == "liquid") return ParseLiquid(t, body);
    if (n == "ifchanged") return ParseIfchanged(tz, t, body);
    if (n == "break" || n == "continue") {
      if (!t.markup.empty()) Fail("'" + std::string(n) + "' takes no arguments", t);
      body.push_back(
          std::make_unique<InterruptNode>(n == "break" ? Interrupt::Break : Interrupt::Continue));
      return;
    }
    if (n == "include" || n == "render") {
      Fail("the '" + std::string(n) +
               "' tag is not supported (templates have no file system to load partials from)",
           t);
    }
    if (n == "else" || n == "elsif" || n == "when" || n.rfind("end", 0) == 0) {
      Fail("unknown tag '" + std::string(n) + "'", t);
    }
    static const std::vector<std::string_view> kTags = {
        "assign", "capture", "case",     "comment", "cycle",     "decrement",
        "doc",    "echo",    "for",      "if",      "ifchanged", "increment",
        "liquid", "raw",     "tablerow", "unless",  "break",     "continue"};
    std::string hint = hyperline::ClosestName(n, kTags);
    Fail("unknown tag '" + std::string(n) + "'" +
             (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"),
         t);
  }

  void ParseAssign(const Token& t, Body& body) {
    size_t eq = t.markup.find('=');
    if (eq == std::string_view::npos) Fail("assign needs 'name = value'", t);
    std::string_view target = Trim(t.markup.substr(0, eq));
    // Ruby Liquid's VariableSignature: word characters, '-', '.', '[', ']', '(', ')'.
    if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
          return IsWordChar(c) || c == '-' || c == '.' || c == '[' || c == ']' || c == '(' ||
                 c == ')';
        })) {
      Fail("invalid variable name in assign", t);
    }
    auto node = std::make_unique<AssignNode>();
    node->name = std::string(target);
    std::string_view rhs = t.markup.substr(eq + 1);
    size_t base = static_cast<size_t>(rhs.data() - src_.data());
    Lexer lx(rhs, base, err_, TokenText(t));
    ParsePipeline(lx, node->pipe);
    lx.ExpectEnd();
    assigned_.insert(node->name);
    node->id = Intern(node->name);
    body.push_back(std::move(node));
  }

  // True when `name` is bound by the template here (not read from the context).
  bool Bound(const std::string& name) const {
    return name == "forloop" || name == "tablerowloop" || assigned_.count(name) > 0 ||
           std::find(loop_vars_.begin(), loop_vars_.end(), name) != loop_vars_.end();
  }

  void ParseCapture(Tokenizer& tz, const Token& t, Body& body) {
    std::string_view name = Trim(t.markup);
    if (name.size() >= 2 && (name[0] == '\'' || name[0] == '"') && name.back() == name[0]) {
      name = name.substr(1, name.size() - 2);
    } else if (name.empty() || !IsWordChar(name[0]) ||
               !std::all_of(name.begin(), name.end(),
                            [](char c) { return IsWordChar(c) || c == '-'; })) {
      Fail("capture needs a variable name", t);
    }
    auto node = std::make_unique<CaptureNode>();
    node->name = std::string(name);
    node->id = Intern(node->name);
    EnterBlock(t);
    BlockBody(tz, t, node->body, {"endcapture"});
    --depth_;
    assigned_.insert(node->name);
    body.push_back(std::move(node));
  }

  void ParseIf(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<IfNode>();
    node->negate_first = t.name == "unless";
    std::string end_name = t.name == "unless" ? "endunless" : "endif";
    EnterBlock(t);
    Token cur = t;
    while (true) {
      IfNode::Branch br;
      ParseCondition(cur, br.cond);
      node->branches.push_back(std::move(br));
      Token end = BlockBody(tz, t, node->branches.back().body, {"elsif", "else", end_name});
      if (end.name == "elsif") {
        cur = end;
        continue;
      }
      if (end.name == "else") {
        node->has_else = true;
        Token e2 = BlockBody(tz, t, node->else_body, {"elsif", "else", end_name});
        // Ruby Liquid parses but never reaches blocks after the first else.
        while (e2.name != end_name) {
          if (e2.name == "elsif") {
            Condition ignored;
            ParseCondition(e2, ignored);
          }
          Body ignored_body;
          e2 = BlockBody(tz, t, ignored_body, {"elsif", "else", end_name});
        }
      }
      break;
    }
    --depth_;
    if (node->Blank()) {
      for (auto& b : node->branches) RemoveBlankStrings(b.body);
      RemoveBlankStrings(node->else_body);
    }
    body.push_back(std::move(node));
  }

  void ParseCondition(const Token& t, Condition& c) {
    Lexer lx = MarkupLexer(t);
    if (lx.Look(Tk::End)) Fail("'" + std::string(t.name) + "' needs a condition", t);
    while (true) {
      Comparison cmp;
      ParseExpr(lx, cmp.left, 0);
      if (lx.Look(Tk::Comparison)) {
        std::string_view op = lx.Consume().text;
        if (op == "==")
          cmp.op = CmpOp::Eq;
        else if (op == "!=" || op == "<>")
          cmp.op = CmpOp::Ne;
        else if (op == "<")
          cmp.op = CmpOp::Lt;
        else if (op == ">")
          cmp.op = CmpOp::Gt;
        else if (op == "<=")
          cmp.op = CmpOp::Le;
        else if (op == ">=")
          cmp.op = CmpOp::Ge;
        else
          cmp.op = CmpOp::Contains;
        ParseExpr(lx, cmp.right, 0);
      }
      c.items.push_back(std::move(cmp));
      if (lx.AcceptId("and")) {
        c.joins_and.push_back(true);
      } else if (lx.AcceptId("or")) {
        c.joins_and.push_back(false);
      } else {
        break;
      }
    }
    lx.ExpectEnd();
  }

  void ParseCase(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<CaseNode>();
    {
      Lexer lx = MarkupLexer(t);
      ParseExpr(lx, node->subject_expr, 0);
      lx.ExpectEnd();
    }
    EnterBlock(t);
    Body ignored;
    Token end = BlockBody(tz, t, ignored, {"when", "else", "endcase"});
    while (end.name != "endcase") {
      node->bodies.emplace_back();
      size_t idx = node->bodies.size() - 1;
      if (end.name == "when") {
        Lexer lx = MarkupLexer(end);
        if (lx.Look(Tk::End)) Fail("'when' needs a value", end);
        while (true) {
          CaseNode::When w;
          ParseExpr(lx, w.value, 0);
          w.body = idx;
          node->whens.push_back(std::move(w));
          if (lx.Accept(Tk::Comma) || lx.AcceptId("or")) continue;
          break;
        }
        lx.ExpectEnd();
      } else {
        CaseNode::When w;
        w.is_else = true;
        w.body = idx;
        node->whens.push_back(std::move(w));
      }
      end = BlockBody(tz, t, node->bodies[idx], {"when", "else", "endcase"});
    }
    --depth_;
    if (node->Blank()) {
      for (auto& b : node->bodies) RemoveBlankStrings(b);
    }
    body.push_back(std::move(node));
  }

  // `var in collection [reversed] [limit: x] [offset: y|continue] [cols: z]`
  void ParseLoopSpec(const Token& t, LoopSpec& spec, bool tablerow) {
    Lexer lx = MarkupLexer(t);
    Lexeme var = lx.Expect(Tk::Id, "a loop variable name");
    spec.var = std::string(var.text);
    if (!lx.AcceptId("in")) lx.Fail("expected 'in'");
    size_t start = lx.Peek().offset;
    ParseExpr(lx, spec.collection, 0);
    size_t stop = lx.Peek().offset;
    std::string_view coll_text = Trim(src_.substr(start, stop - start));
    spec.name = spec.var + "-" + std::string(coll_text);
    while (!lx.Look(Tk::End)) {
      if (lx.Accept(Tk::Comma) && lx.Look(Tk::End)) break;
      if (lx.AcceptId("reversed")) {
        spec.reversed = true;
        continue;
      }
      Lexeme attr = lx.Expect(Tk::Id, "'limit', 'offset' or 'reversed'");
      lx.Expect(Tk::Colon, "':'");
      if (attr.text == "limit") {
        spec.has_limit = true;
        ParseExpr(lx, spec.limit, 0);
      } else if (attr.text == "offset") {
        if (!tablerow && lx.Look(Tk::Id) && lx.Peek().text == "continue") {
          lx.Consume();
          spec.offset_continue = true;
        } else {
          spec.has_offset = true;
          ParseExpr(lx, spec.offset, 0);
        }
      } else if (attr.text == "cols" && tablerow) {
        spec.has_cols = true;
        ParseExpr(lx, spec.cols, 0);
      } else {
        err_.Fail("unknown loop attribute '" + std::string(attr.text) + "'", attr.offset,
                  TokenText(t));
      }
    }
    spec.var_id = Intern(spec.var);
    spec.drop_id = Intern(tablerow ? "tablerowloop" : "forloop");
    spec.slot = Slot(loop_slots_, spec.name);
  }

  void ParseFor(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<ForNode>();
    ParseLoopSpec(t, node->spec, false);
    EnterBlock(t);
    loop_vars_.push_back(node->spec.var);
    Token end = BlockBody(tz, t, node->body, {"else", "endfor"});
    loop_vars_.pop_back();
    if (end.name == "else") {
      node->has_else = true;
      Token e2 = BlockBody(tz, t, node->else_body, {"else", "endfor"});
      if (e2.name != "endfor") Fail("unexpected 'else'", e2);
    }
    --depth_;
    if (node->Blank()) {
      RemoveBlankStrings(node->body);
      RemoveBlankStrings(node->else_body);
    }
    body.push_back(std::move(node));
  }

  void ParseTablerow(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<TablerowNode>();
    ParseLoopSpec(t, node->spec, true);
    EnterBlock(t);
    loop_vars_.push_back(node->spec.var);
    BlockBody(tz, t, node->body, {"endtablerow"});
    loop_vars_.pop_back();
    --depth_;
    body.push_back(std::move(node));
  }

  void ParseCycle(const Token& t, Body& body) {
    auto node = std::make_unique<CycleNode>();
    Lexer lx = MarkupLexer(t);
    if (lx.Look(Tk::End)) Fail("cycle needs values", t);
    Expr first;
    ParseExpr(lx, first, 0);
    size_t values_start = lx.Peek().offset;
    if (lx.Accept(Tk::Colon)) {
      node->has_group = true;
      node->group = std::move(first);
      values_start = lx.Peek().offset;
      Expr v;
      ParseExpr(lx, v, 0);
      node->values.push_back(std::move(v));
    } else {
      node->values.push_back(std::move(first));
      values_start = static_cast<size_t>(t.markup.data() - src_.data());
    }
    while (lx.Accept(Tk::Comma)) {
      Expr v;
      ParseExpr(lx, v, 0);
      node->values.push_back(std::move(v));
    }
    lx.ExpectEnd();
    size_t values_end = static_cast<size_t>(t.markup.data() - src_.data()) + t.markup.size();
    if (!node->has_group) {
      // Unnamed cycles share state when their values are spelled the same.
      std::string key;
      for (char c : src_.substr(values_start, values_end - values_start)) {
        if (!AsciiSpace(c)) key.push_back(c);
      }
      node->slot = Slot(cycle_slots_, key);
    }
    body.push_back(std::move(node));
  }

  void ParseCounter(const Token& t, Body& body) {
    Lexer lx = MarkupLexer(t);
    Lexeme id = lx.Expect(Tk::Id, "a variable name");
    lx.ExpectEnd();
    auto node = std::make_unique<CounterNode>();
    node->name = std::string(id.text);
    node->decrement = t.name == "decrement";
    node->id = Intern(node->name);
    assigned_.insert(node->name);
    body.push_back(std::move(node));
  }

  void ParseEcho(const Token& t, Body& body) {
    auto node = std::make_unique<OutputNode>();
    Lexer lx = MarkupLexer(t);
    if (lx.Look(Tk::End)) {
      node->pipe.expr.kind = Expr::Kind::Literal;
    } else {
      ParsePipeline(lx, node->pipe);
    }
    lx.ExpectEnd();
    node->site = AddSite(t);
    body.push_back(std::move(node));
  }

  void ParseRaw(Tokenizer& tz, const Token& t, Body& body) {
    if (tz.liquid_lines()) Fail("raw is not allowed in a liquid tag", t);
    if (!t.markup.empty()) Fail("raw takes no arguments", t);
    std::string_view text;
    Token end;
    if (!tz.ReadRaw("endraw", text, end)) Fail("'raw' tag was never closed", t);
    std::string s(text);
    if (trim_next_) LStrip(s);
    if (end.trim_left) RStrip(s);
    trim_next_ = end.trim_right;
    body.push_back(std::make_unique<RawNode>(std::move(s)));
  }

  // Skips a comment body, honouring nested comment and raw blocks.
  void ParseComment(Tokenizer& tz, const Token& t, Body& body) {
    int nesting = 1;
    while (true) {
      Token k = tz.Next();
      if (k.kind == Token::Kind::End) Fail("'comment' tag was never closed", t);
      if (k.kind != Token::Kind::Tag) continue;
      if (k.name == "comment") {
        ++nesting;
        if (nesting > kMaxParseDepth) Fail("nesting too deep", k);
      } else if (k.name == "endcomment") {
        if (--nesting == 0) {
          if (!tz.liquid_lines()) ApplyEndTrim(k, body);
          break;
        }
      } else if (k.name == "raw" && !tz.liquid_lines()) {
        std::string_view text;
        Token end;
        if (!tz.ReadRaw("endraw", text, end)) Fail("'raw' tag was never closed", k);
      }
    }
    body.push_back(std::make_unique<BlankNode>());
  }

  // Whitespace control of a closing tag swallowed by a comment/doc body.
  void ApplyEndTrim(const Token& k, Body&) { trim_next_ = k.trim_right; }

  // A doc body is free text up to `{% enddoc %}`; only a nested doc is refused.
  void ParseDoc(Tokenizer& tz, const Token& t, Body& body) {
    if (!t.markup.empty()) Fail("doc takes no arguments", t);
    if (tz.liquid_lines()) {
      while (true) {
        Token k = tz.Next();
        if (k.kind == Token::Kind::End) Fail("'doc' tag was never closed", t);
        if (k.name == "doc") Fail("nested doc tags are not allowed", k);
        if (k.name == "enddoc") break;
      }
    } else {
      std::string_view text;
      Token end;
      if (!tz.ReadRaw("enddoc", text, end)) Fail("'doc' tag was never closed", t);
      for (size_t p = text.find("{%"); p != std::string_view::npos; p = text.find("{%", p + 2)) {
        size_t q = p + 2;
        if (q < text.size() && text[q] == '-') ++q;
        while (q < text.size() && AsciiSpace(text[q])) ++q;
        if (text.compare(q, 3, "doc") == 0 && (q + 3 >= text.size() || !IsWordChar(text[q + 3]))) {
          err_.Fail("nested doc tags are not allowed",
                    static_cast<size_t>(text.data() - src_.data()) + p, text.substr(p, 20));
        }
      }
      trim_next_ = end.trim_right;
    }
    body.push_back(std::make_unique<BlankNode>());
  }

  void ParseLiquid(const Token& t, Body& body) {
    EnterBlock(t);
    size_t base = static_cast<size_t>(t.markup.data() - src_.data());
    Tokenizer lines(t.markup, base, true, err_);
    Token end;
    ParseBody(lines, body, {}, end);
    --depth_;
  }

  void ParseIfchanged(Tokenizer& tz, const Token& t, Body& body) {
    auto node = std::make_unique<IfchangedNode>();
    EnterBlock(t);
    BlockBody(tz, t, node->body, {"endifchanged"});
    --depth_;
    body.push_back(std::move(node));
  }

  // expression ('|' filter (':' args)?)*
  void ParsePipeline(Lexer& lx, Pipeline& p) {
    ParseExpr(lx, p.expr, 0);
    while (lx.Accept(Tk::Pipe)) {
      Lexeme name = lx.Expect(Tk::Id, "a filter name");
      FilterCall f;
      f.name = std::string(name.text);
      if (lx.Accept(Tk::Colon)) {
        while (true) {
          if (lx.Look(Tk::Id) && lx.Look(Tk::Colon, 1)) {
            std::string key(lx.Consume().text);
            lx.Consume();
            Expr e;
            ParseExpr(lx, e, 0);
            f.kwargs.emplace_back(std::move(key), std::move(e));
          } else {
            Expr e;
            ParseExpr(lx, e, 0);
            f.args.push_back(std::move(e));
          }
          if (!lx.Accept(Tk::Comma)) break;
        }
      }
      int min_args = 0, max_args = 0;
      f.fn = FindFilter(f.name, min_args, max_args);
      if (!f.fn) {
        std::string hint = SuggestFilter(f.name);
        err_.Fail("unknown filter '" + f.name + "'" +
                      (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"),
                  name.offset, name.text);
      }
      // Only `default` takes a keyword argument (allow_false); Ruby passes any
      // other as an extra positional hash, which no standard filter accepts.
      if (!f.kwargs.empty() && f.name != "default") {
        err_.Fail("filter '" + f.name + "' takes no keyword arguments", name.offset, name.text);
      }
      int n = static_cast<int>(f.args.size());
      if (n < min_args || n > max_args) {
        err_.Fail("filter '" + f.name + "' expects " +
                      (min_args == max_args
                           ? std::to_string(min_args)
                           : std::to_string(min_args) + " to " + std::to_string(max_args)) +
                      " argument(s), got " + std::to_string(n),
                  name.offset, name.text);
      }
      p.filters.push_back(std::move(f));
    }
  }

  void ParseExpr(Lexer& lx, Expr& e, int nesting) {
    if (nesting > kMaxParseDepth) lx.Fail("expression nested too deeply");
    const Lexeme& l = lx.Peek();
    switch (l.type) {
      case Tk::Id: {
        Lexeme id = lx.Consume();
        std::string_view w = id.text;
        bool has_lookups = lx.Look(Tk::Dot) || lx.Look(Tk::OpenSquare);
        if (!has_lookups) {
          if (w == "true" || w == "false") {
            e.kind = Expr::Kind::Literal;
            e.literal = Value::Bool(w == "true");
            return;
          }
          if (w == "nil" || w == "null") {
            e.kind = Expr::Kind::Literal;
            return;
          }
          if (w == "empty") {
            e.kind = Expr::Kind::Literal;
            e.literal = Value::Empty();
            return;
          }
          if (w == "blank") {
            e.kind = Expr::Kind::Literal;
            e.literal = Value::Blank();
            return;
          }
        }
        e.kind = Expr::Kind::Variable;
        e.root = std::string(w);
        e.root_id = Intern(e.root);
        ParseLookups(lx, e, nesting);
        return;
      }
      case Tk::OpenSquare: {
        lx.Consume();
        Expr inner;
        ParseExpr(lx, inner, nesting + 1);
        lx.Expect(Tk::CloseSquare, "']'");
        e.kind = Expr::Kind::Variable;
        if (inner.kind == Expr::Kind::Literal && inner.literal.kind() == Value::Kind::String) {
          e.root = inner.literal.as_string();
          e.root_id = Intern(e.root);
        } else {
          e.dynamic_root = std::make_unique<Expr>(std::move(inner));
        }
        ParseLookups(lx, e, nesting);
        return;
      }
      case Tk::String: {
        Lexeme s = lx.Consume();
        e.kind = Expr::Kind::Literal;
        e.literal = Value::String(s.text.substr(1, s.text.size() - 2));
        return;
      }
      case Tk::Number: {
        Lexeme num = lx.Consume();
        e.kind = Expr::Kind::Literal;
        e.literal = NumberLiteral(num.text);
        return;
      }
      case Tk::OpenRound: {
        lx.Consume();
        auto lo = std::make_unique<Expr>();
        ParseExpr(lx, *lo, nesting + 1);
        lx.Expect(Tk::DotDot, "'..'");
        auto hi = std::make_unique<Expr>();
        ParseExpr(lx, *hi, nesting + 1);
        lx.Expect(Tk::CloseRound, "')'");
        e.kind = Expr::Kind::Range;
        e.lo = std::move(lo);
        e.hi = std::move(hi);
        return;
      }
      default:
        lx.Fail("expected a value");
    }
  }

  static Value NumberLiteral(std::string_view text) {
    std::string s(text);
    if (s.find('.') != std::string::npos) return Value::Float(ParseDouble(s));
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE) return Value::Decimal(s);
    return Value::Int(v);
  }

  void ParseLookups(Lexer& lx, Expr& e, int nesting) {
    bool dynamic_seen = e.dynamic_root != nullptr;
    std::vector<std::string> path;
    if (!dynamic_seen) path.push_back(e.root);
    while (true) {
      if (lx.Accept(Tk::Dot)) {
        Lexeme id = lx.Expect(Tk::Id, "a property name after '.'");
        PathSeg seg;
        seg.key = std::string(id.text);
        seg.command = seg.key == "size" || seg.key == "first" || seg.key == "last";
        if (!dynamic_seen) path.push_back(seg.key);
        e.path.push_back(std::move(seg));
      } else if (lx.Accept(Tk::OpenSquare)) {
        Expr inner;
        ParseExpr(lx, inner, nesting + 1);
        lx.Expect(Tk::CloseSquare, "']'");
        PathSeg seg;
        if (inner.kind == Expr::Kind::Literal && inner.literal.kind() == Value::Kind::String) {
          seg.key = inner.literal.as_string();
          if (!dynamic_seen) path.push_back(seg.key);
        } else if (inner.kind == Expr::Kind::Literal && inner.literal.kind() == Value::Kind::Int) {
          seg.kind = PathSeg::Kind::Index;
          seg.index = inner.literal.as_int();
          dynamic_seen = true;
        } else {
          seg.kind = PathSeg::Kind::Dynamic;
          seg.dynamic = std::make_unique<Expr>(std::move(inner));
          dynamic_seen = true;
        }
        e.path.push_back(std::move(seg));
      } else {
        break;
      }
    }
    if (!path.empty() && !Bound(path[0])) paths_.push_back(std::move(path));
    // A root chosen at render time may be any variable.
    if (e.dynamic_root != nullptr) paths_.push_back({"*"});
  }

  ErrorReporter err_;
  std::string_view src_;
  std::vector<OutputSite>& sites_;
  std::vector<std::vector<std::string>>& paths_;
  // Names the template binds itself at the current point of the source: loop
  // variables while inside their loop, assign/capture/counter names after
  // their tag. Reads of these are not context reads (VariablePaths).
  std::vector<std::string> loop_vars_;
  std::unordered_set<std::string> assigned_;
  std::unordered_map<std::string, int>& names_;
  std::unordered_map<std::string, size_t> loop_slots_;
  std::unordered_map<std::string, size_t> cycle_slots_;
  bool trim_next_ = false;
  int depth_ = 0;
};

}  // namespace

// Parses `source` into a node tree (see nodes.hpp).
void ParseTemplate(std::string_view source, Body& body, std::vector<OutputSite>& sites,
                   std::vector<std::vector<std::string>>& paths,
                   std::unordered_map<std::string, int>& names) {
  Parser p(source, sites, paths, names);
  p.ParseDocument(body);
}

}  // namespace hyperline::liquid
