// tags.cpp: rendering the node tree, one Render per tag (see nodes.hpp).
//
// Every loop iteration counts against Limits::max_loop_iterations and every
// nested block against max_depth, so no template can hang or overflow a backend.
#include <algorithm>
#include <cmath>
#include <string>

#include "core/liquid/nodes.hpp"

namespace hyperline::liquid {

// Renders the nodes of `body` in order, stopping at break/continue. Counts a
// step per node up front (one addition per body, not per node).
void RenderBody(const Body& body, RenderState& st) {
  st.Step(static_cast<int64_t>(body.size()));
  for (const auto& n : body) {
    n->Render(st);
    if (st.interrupt != Interrupt::None) return;
  }
}

// Ruby's BlockBody#blank?: every node is blank.
bool BodyBlank(const Body& body) {
  for (const auto& n : body) {
    if (!n->Blank()) return false;
  }
  return true;
}

void TextNode::Render(RenderState& st) const { st.Text(text); }

// Evaluates the output site and hands its value to the sink.
void OutputNode::Render(RenderState& st) const {
  if (pipe.filters.empty()) {
    Value scratch;
    const Value& v = Eval(pipe.expr, st, scratch);
    st.Output(v, site);
  } else {
    st.Output(EvalPipeline(pipe, st), site);
  }
}

void AssignNode::Render(RenderState& st) const {
  Value v = EvalPipeline(pipe, st);
  if (v.kind() == Value::Kind::String) st.ChargeWork(v.as_string().size());
  st.Assign(id, std::move(v));
}

// Renders the body into a capture buffer and assigns the text.
void CaptureNode::Render(RenderState& st) const {
  DepthGuard g(st);
  st.captures.emplace_back();
  RenderBody(body, st);
  std::string s = std::move(st.captures.back());
  st.captures.pop_back();
  st.ChargeWork(s.size());
  st.Assign(id, Value::String(std::move(s)));
}

// Renders the first branch whose condition holds, else the else body.
void IfNode::Render(RenderState& st) const {
  DepthGuard g(st);
  for (size_t i = 0; i < branches.size(); ++i) {
    bool r = EvalCondition(branches[i].cond, st);
    if (i == 0 && negate_first) r = !r;
    if (r) {
      RenderBody(branches[i].body, st);
      return;
    }
  }
  if (has_else) RenderBody(else_body, st);
}

// Renders the body of every `when` equal to the subject (Ruby runs each), else the else body.
void CaseNode::Render(RenderState& st) const {
  DepthGuard g(st);
  bool run_else = true;
  for (const When& w : whens) {
    if (w.is_else) {
      if (run_else) RenderBody(bodies[w.body], st);
    } else {
      // Like Ruby, the subject is evaluated for each `when`: a body may assign
      // to it, and a reference into the bindings would not survive the body.
      Value s1, s2;
      const Value& subject = Eval(subject_expr, st, s1);
      const Value& value = Eval(w.value, st, s2);
      st.ChargeScan(subject);
      st.ChargeScan(value);
      if (LiquidEquals(subject, value)) {
        run_else = false;
        RenderBody(bodies[w.body], st);
      }
    }
    if (st.interrupt != Interrupt::None) return;
  }
}

namespace {

// The items a loop visits: a window of an array or a range, read in place (a
// huge range is never materialised), or materialised items (hash pairs, a string).
struct LoopSeq {
  enum class Kind : uint8_t { Array, Range, Items };
  Kind kind = Kind::Items;
  Value coll;
  Array items;
  int64_t start = 0;
  int64_t count = 0;
  bool reversed = false;

  // Binds a loop variable to the i-th item: array elements by reference (no copy
  // per iteration, so nested loops over big values stay cheap), others by value.
  void Bind(int64_t i, RenderState::Local& local) const {
    if (kind == Kind::Array) {
      int64_t k = reversed ? count - 1 - i : i;
      local.ref = &coll.as_array()[static_cast<size_t>(start + k)];
    } else {
      local.ref = nullptr;
      local.value = At(i);
    }
  }

  // The i-th item (0 <= i < count), honouring `reversed`.
  Value At(int64_t i) const {
    int64_t k = reversed ? count - 1 - i : i;
    switch (kind) {
      case Kind::Array:
        return coll.as_array()[static_cast<size_t>(start + k)];
      case Kind::Range:
        return Value::Int(coll.range_first() + start + k);
      default:
        return items[static_cast<size_t>(k)];
    }
  }
};

// Evaluates the loop's collection and its offset/limit window (Ruby Liquid's
// slice_collection: negative offsets start at 0, negative limits select nothing).
void LoopItems(const LoopSpec& spec, RenderState& st, LoopSeq& seq, int64_t& from_out) {
  seq.coll = EvalCopy(spec.collection, st);
  int64_t from = 0;
  if (spec.offset_continue) {
    if (spec.slot < st.for_offsets.size()) from = st.for_offsets[spec.slot];
  } else if (spec.has_offset) {
    Value ov = EvalCopy(spec.offset, st);
    if (!ov.is_nil()) from = ToInteger(ov, "offset");
  }
  bool has_to = false;
  int64_t to = 0;
  if (spec.has_limit) {
    Value lv = EvalCopy(spec.limit, st);
    if (!lv.is_nil()) {
      has_to = true;
      int64_t lim = ToInteger(lv, "limit");
      if (__builtin_add_overflow(lim, from, &to)) to = lim < 0 ? INT64_MIN : INT64_MAX;
    }
  }
  from_out = from;
  // Window [begin, end) of a sequence of `size` items.
  auto window = [&](int64_t size) {
    int64_t begin = std::max<int64_t>(from, 0);
    int64_t end = has_to ? std::min<int64_t>(to, size) : size;
    seq.start = begin;
    seq.count = end > begin ? end - begin : 0;
  };
  const Value& coll = seq.coll;
  switch (coll.kind()) {
    case Value::Kind::Array:
      seq.kind = LoopSeq::Kind::Array;
      window(static_cast<int64_t>(coll.as_array().size()));
      break;
    case Value::Kind::Range: {
      seq.kind = LoopSeq::Kind::Range;
      __int128 size = static_cast<__int128>(coll.range_last()) - coll.range_first() + 1;
      window(size <= 0 ? 0 : size > INT64_MAX ? INT64_MAX : static_cast<int64_t>(size));
      break;
    }
    case Value::Kind::Object: {
      const Object& o = coll.as_object();
      window(static_cast<int64_t>(o.size()));
      for (int64_t i = 0; i < seq.count; ++i) {
        const auto& kv = o[static_cast<size_t>(seq.start + i)];
        seq.items.push_back(Value::MakeArray({Value::String(kv.first), kv.second}));
      }
      seq.start = 0;
      break;
    }
    case Value::Kind::String:
      if (!coll.as_string().empty()) {
        window(1);
        if (seq.count == 1) seq.items.push_back(coll);
        seq.start = 0;
      }
      break;
    default:
      break;
  }
}

void AppendIntText(int64_t v, std::string& s) { s += std::to_string(v); }

}  // namespace

// Binds the loop variable and forloop, renders the body per item (else when empty).
void ForNode::Render(RenderState& st) const {
  DepthGuard g(st);
  LoopSeq seq;
  int64_t from;
  LoopItems(spec, st, seq, from);
  seq.reversed = spec.reversed;
  // Remember where offset:continue resumes.
  int64_t next;
  if (__builtin_add_overflow(from, seq.count, &next)) next = INT64_MAX;
  if (spec.slot >= st.for_offsets.size()) st.for_offsets.resize(spec.slot + 1, 0);
  st.for_offsets[spec.slot] = next;
  if (seq.count == 0) {
    if (has_else) RenderBody(else_body, st);
    return;
  }
  int parent = -1;
  for (size_t i = st.loops.size(); i-- > 0;) {
    if (!st.loops[i].tablerow) {
      parent = static_cast<int>(i);
      break;
    }
  }
  st.loops.push_back(RenderState::Loop{seq.count, 0, 0, false, spec.name, parent});
  int loop = static_cast<int>(st.loops.size() - 1);
  size_t base = st.locals.size();
  st.locals.push_back({spec.var_id, Value(), -1});
  st.locals.push_back({spec.drop_id, Value(), loop});
  for (int64_t i = 0; i < seq.count; ++i) {
    st.CountIteration();
    st.loops[static_cast<size_t>(loop)].index0 = i;
    seq.Bind(i, st.locals[base]);
    RenderBody(body, st);
    if (st.interrupt == Interrupt::Break) {
      st.interrupt = Interrupt::None;
      break;
    }
    if (st.interrupt == Interrupt::Continue) st.interrupt = Interrupt::None;
  }
  st.locals.resize(base);
  st.loops.pop_back();
}

// Renders an HTML table row by row, a cell per item.
void TablerowNode::Render(RenderState& st) const {
  DepthGuard g(st);
  Value coll_check = EvalCopy(spec.collection, st);
  if (coll_check.is_nil()) return;
  LoopSeq seq;
  int64_t from;
  LoopItems(spec, st, seq, from);
  int64_t length = seq.count;
  int64_t cols = length;
  if (spec.has_cols) {
    Value cv = EvalCopy(spec.cols, st);
    if (cv.kind() == Value::Kind::Float && std::isfinite(cv.as_float()) &&
        std::fabs(cv.as_float()) < 1e18) {
      cols = static_cast<int64_t>(cv.as_float());
    } else if (!cv.is_nil()) {
      cols = ToInteger(cv, "cols");
    }
  }
  if (cols <= 0) cols = length > 0 ? length : 1;
  st.Text("<tr class=\"row1\">\n");
  st.loops.push_back(RenderState::Loop{length, 0, cols, true, spec.name, -1});
  int loop = static_cast<int>(st.loops.size() - 1);
  size_t base = st.locals.size();
  st.locals.push_back({spec.var_id, Value(), -1});
  st.locals.push_back({spec.drop_id, Value(), loop});
  std::string buf;
  for (int64_t i = 0; i < length; ++i) {
    st.CountIteration();
    st.loops[static_cast<size_t>(loop)].index0 = i;
    seq.Bind(i, st.locals[base]);
    buf = "<td class=\"col";
    AppendIntText(i % cols + 1, buf);
    buf += "\">";
    st.Text(buf);
    RenderBody(body, st);
    st.Text("</td>");
    if (st.interrupt == Interrupt::Break) {
      st.interrupt = Interrupt::None;
      break;
    }
    if (st.interrupt == Interrupt::Continue) st.interrupt = Interrupt::None;
    if (i % cols == cols - 1 && i != length - 1) {
      buf = "</tr>\n<tr class=\"row";
      AppendIntText(i / cols + 2, buf);
      buf += "\">";
      st.Text(buf);
    }
  }
  st.locals.resize(base);
  st.loops.pop_back();
  st.Text("</tr>\n");
}

// Prints the next value of the cycle.
void CycleNode::Render(RenderState& st) const {
  int64_t* pos;
  if (has_group) {
    pos = &st.named_cycles[ToLiquidString(EvalCopy(group, st))];
  } else {
    if (slot >= st.cycle_pos.size()) st.cycle_pos.resize(slot + 1, 0);
    pos = &st.cycle_pos[slot];
  }
  // Ruby reads values[i] (nil past the end) and wraps only when storing.
  int64_t i = *pos;
  int64_t n = static_cast<int64_t>(values.size());
  *pos = i + 1 >= n ? 0 : i + 1;
  if (i < n) st.Text(ToLiquidString(EvalCopy(values[static_cast<size_t>(i)], st)));
}

// Prints the counter and steps it (increment after, decrement before).
void CounterNode::Render(RenderState& st) const {
  size_t k = static_cast<size_t>(id);
  if (k >= st.counters.size()) {
    st.counters.resize(std::max(k + 1, st.names ? st.names->size() : 0));
    st.counter_set.resize(st.counters.size());
  }
  Value* slot = &st.counters[k];
  if (!st.counter_set[k]) {
    // Ruby's `environments.first[name] ||= 0` starts from the data's value.
    const Value* init = st.ctx.Find(name);
    *slot = init && init->kind() == Value::Kind::Int ? *init : Value::Int(0);
    st.counter_set[k] = 1;
  }
  int64_t v = slot->as_int();
  if (decrement) {
    if (v == INT64_MIN) throw RenderError("Liquid error: counter overflow");
    --v;
    *slot = Value::Int(v);
    st.Text(std::to_string(v));
  } else {
    if (v == INT64_MAX) throw RenderError("Liquid error: counter overflow");
    st.Text(std::to_string(v));
    *slot = Value::Int(v + 1);
  }
}

void InterruptNode::Render(RenderState& st) const { st.interrupt = kind; }

// Prints the body only when it differs from the last ifchanged output.
void IfchangedNode::Render(RenderState& st) const {
  DepthGuard g(st);
  st.captures.emplace_back();
  RenderBody(body, st);
  std::string s = std::move(st.captures.back());
  st.captures.pop_back();
  if (!st.has_ifchanged || s != st.last_ifchanged) {
    st.has_ifchanged = true;
    st.last_ifchanged = s;
    st.Text(s);
  }
}

void RawNode::Render(RenderState& st) const { st.Text(text); }

}  // namespace hyperline::liquid
