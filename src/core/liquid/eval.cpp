// eval.cpp: expression evaluation, comparisons and render-state bookkeeping.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/liquid/internal.hpp"
#include "core/liquid/number.hpp"

namespace hyperline::liquid {

// Sends template text to the sink or the innermost capture.
void RenderState::Text(std::string_view text) {
  if (text.empty()) return;
  output_bytes += text.size();
  if (output_bytes > limits.max_output_bytes)
    throw RenderError("Liquid error: output limit exceeded");
  if (!captures.empty()) {
    captures.back().append(text);
  } else {
    sink.Text(text);
  }
}

// Sends an output site's value to the sink (typed) or the innermost capture (text).
void RenderState::Output(const Value& v, size_t site) {
  if (!captures.empty()) {
    std::string& buf = captures.back();
    size_t before = buf.size();
    AppendLiquidString(v, buf);
    output_bytes += buf.size() - before;
  } else {
    // Why: the sink formats the value (text or JSON); estimate its size for the limit.
    switch (v.kind()) {
      case Value::Kind::String:
      case Value::Kind::Decimal:
        output_bytes += v.as_string().size();
        break;
      case Value::Kind::Array:
        output_bytes += 16 * v.as_array().size();
        break;
      case Value::Kind::Object:
        output_bytes += 32 * v.as_object().size();
        break;
      default:
        output_bytes += 8;
    }
    if (output_bytes <= limits.max_output_bytes) {
      sink.Output(v, site < sites.size() ? sites[site].mode : 0);
    }
  }
  if (output_bytes > limits.max_output_bytes)
    throw RenderError("Liquid error: output limit exceeded");
}

// Throws past the step limit, or Interrupted when the interrupt check says stop.
void RenderState::Poll() {
  int64_t done = steps();
  if (done > limits.max_steps) {
    throw RenderError(
        "Liquid error: step limit exceeded (the template does too much work for one event)");
  }
  SchedulePoll(done);
  InterruptCheck check = ctx.interrupt_check();
  if (check != nullptr && check(ctx.interrupt_arg())) throw Interrupted();
}

// Throws the loop iteration limit's error (CountIteration's slow path).
void RenderState::IterationLimitExceeded() {
  throw RenderError("Liquid error: loop iteration limit exceeded");
}

namespace {

// Render steps for charging `bytes` more work on top of `before`: one per KiB
// boundary crossed, so many small charges add up like one big one.
int64_t KibSteps(size_t before, size_t bytes) {
  return static_cast<int64_t>(((before + bytes) >> 10) - (before >> 10));
}

}  // namespace

// Charges bytes built by a filter; throws past the per-value or total budget.
void RenderState::ChargeWork(size_t bytes) {
  // Why: filters can double a string per loop iteration; bound the total work of
  // one render, not only the final output.
  Step(KibSteps(work_bytes, bytes));
  work_bytes += bytes;
  if (bytes > limits.max_output_bytes || work_bytes / 8 > limits.max_output_bytes) {
    throw RenderError("Liquid error: memory limit exceeded");
  }
}

namespace {

// Knuth-Morris-Pratt over hay[from..]: first match, or the last one if `last`.
size_t Kmp(std::string_view hay, std::string_view needle, size_t from, bool last) {
  const size_t m = needle.size();
  std::vector<size_t> fail(m, 0);
  for (size_t i = 1, k = 0; i < m; ++i) {
    while (k > 0 && needle[i] != needle[k]) k = fail[k - 1];
    if (needle[i] == needle[k]) ++k;
    fail[i] = k;
  }
  size_t found = std::string_view::npos;
  for (size_t i = from, k = 0; i < hay.size(); ++i) {
    while (k > 0 && hay[i] != needle[k]) k = fail[k - 1];
    if (hay[i] == needle[k]) ++k;
    if (k == m) {
      found = i + 1 - m;
      if (!last) return found;
      k = fail[k - 1];
    }
  }
  return found;
}

}  // namespace

// Finds `needle` in `hay` from `from` in linear worst-case time.
size_t SafeFind(std::string_view hay, std::string_view needle, size_t from) {
  if (from > hay.size()) return std::string_view::npos;
  if (needle.size() <= 32 || hay.size() - from <= 4096) return hay.find(needle, from);
  return Kmp(hay, needle, from, false);
}

// Finds the last `needle` in `hay` in linear worst-case time.
size_t SafeRFind(std::string_view hay, std::string_view needle) {
  if (needle.size() <= 32 || hay.size() <= 4096) return hay.rfind(needle);
  return Kmp(hay, needle, 0, true);
}

// Charges the size of a value read by a filter or comparison to the total budget.
void RenderState::ChargeScanSized(const Value& v) {
  size_t cost;
  switch (v.kind()) {
    case Value::Kind::String:
    case Value::Kind::Decimal:
      cost = v.as_string().size();
      break;
    case Value::Kind::Array:
      cost = 16 * v.as_array().size();
      break;
    case Value::Kind::Object:
      cost = 32 * v.as_object().size();
      break;
    default:
      return;
  }
  Step(KibSteps(work_bytes, cost));
  work_bytes += cost;
  if (work_bytes / 8 > limits.max_output_bytes) {
    throw RenderError("Liquid error: work limit exceeded");
  }
}

const Value* RenderState::FindRoot(int id, std::string_view name, int& loop_drop,
                                   const LookupHint* hint) const {
  loop_drop = -1;
  if (id >= 0) {
    for (size_t i = locals.size(); i-- > 0;) {
      if (locals[i].id == id) {
        loop_drop = locals[i].loop;
        return locals[i].ref ? locals[i].ref : &locals[i].value;
      }
    }
    size_t k = static_cast<size_t>(id);
    if (k < assigned_set.size() && assigned_set[k]) return &assigned[k];
    if (k < counter_set.size() && counter_set[k]) return &counters[k];
  }
  const auto& vars = ctx.vars();
  if (hint) {
    size_t h = hint->get();
    if (h < vars.size() && vars[h].first == name) return &vars[h].second;
  }
  for (size_t i = 0; i < vars.size(); ++i) {
    if (vars[i].first == name) {
      if (hint) hint->set(i);
      return &vars[i].second;
    }
  }
  return nullptr;
}

// Binds an assign/capture name (by interned id) for the rest of the render.
void RenderState::Assign(int id, Value v) {
  size_t k = static_cast<size_t>(id);
  if (k >= assigned.size()) {
    assigned.resize(names ? names->size() : k + 1);
    assigned_set.resize(assigned.size());
    if (k >= assigned.size()) {
      assigned.resize(k + 1);
      assigned_set.resize(k + 1);
    }
  }
  assigned[k] = std::move(v);
  assigned_set[k] = 1;
}

// Returns the interned id of `name`, or -1.
int RenderState::NameId(std::string_view name) const {
  if (!names) return -1;
  auto it = names->find(std::string(name));
  return it == names->end() ? -1 : it->second;
}

namespace {

const Value kNil;

// Number of UTF-8 characters in `s` (Ruby's String#size).
int64_t CharCount(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Value of a forloop/tablerowloop property, or false if unknown.
bool LoopProperty(const RenderState& st, int loop, std::string_view key, Value& out, int& next) {
  const RenderState::Loop& l = st.loops[static_cast<size_t>(loop)];
  next = -1;
  int64_t i0 = l.index0;
  if (key == "length")
    out = Value::Int(l.length);
  else if (key == "index")
    out = Value::Int(i0 + 1);
  else if (key == "index0")
    out = Value::Int(i0);
  else if (key == "rindex")
    out = Value::Int(l.length - i0);
  else if (key == "rindex0")
    out = Value::Int(l.length - i0 - 1);
  else if (key == "first")
    out = Value::Bool(i0 == 0);
  else if (key == "last")
    out = Value::Bool(i0 == l.length - 1);
  else if (key == "name" && !l.tablerow)
    out = Value::String(l.name);
  else if (key == "parentloop" && !l.tablerow) {
    next = l.parent;
    out = Value();
  } else if (l.tablerow && l.cols > 0 && key == "col")
    out = Value::Int(i0 % l.cols + 1);
  else if (l.tablerow && l.cols > 0 && key == "col0")
    out = Value::Int(i0 % l.cols);
  else if (l.tablerow && l.cols > 0 && key == "col_first")
    out = Value::Bool(i0 % l.cols == 0);
  else if (l.tablerow && l.cols > 0 && key == "col_last")
    out = Value::Bool(i0 % l.cols == l.cols - 1);
  else if (l.tablerow && l.cols > 0 && key == "row")
    out = Value::Int(i0 / l.cols + 1);
  else
    return false;
  return true;
}

// The whole drop as an object (for `{{ forloop }}`).
Value LoopObject(const RenderState& st, int loop) {
  Object o;
  static const char* kKeys[] = {"first", "index", "index0", "last", "length", "rindex", "rindex0"};
  for (const char* k : kKeys) {
    Value v;
    int next;
    LoopProperty(st, loop, k, v, next);
    o.emplace_back(k, std::move(v));
  }
  return Value::MakeObject(std::move(o));
}

}  // namespace

// Expands a range into an array of integers, within the loop limit.
Value RangeToArray(const Value& r, RenderState* st) {
  Array a;
  int64_t lo = r.range_first(), hi = r.range_last();
  if (hi >= lo) {
    uint64_t n = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;
    size_t cap = st ? st->limits.max_loop_iterations : 1000000;
    if (n == 0 || n > cap) throw RenderError("Liquid error: range too large");
    if (st) st->ChargeWork(n * sizeof(Value));
    a.reserve(n);
    for (int64_t i = lo;; ++i) {
      a.push_back(Value::Int(i));
      if (i == hi) break;
    }
  }
  return Value::MakeArray(std::move(a));
}

// Ruby's Integer(): integers and integer strings; anything else is an error.
int64_t ToInteger(const Value& v, const char* what) {
  switch (v.kind()) {
    case Value::Kind::Int:
      return v.as_int();
    case Value::Kind::String: {
      // Ruby Integer(str): optional sign, digits, surrounding whitespace.
      const std::string& s = v.as_string();
      size_t b = s.find_first_not_of(" \t\n\r\f\v");
      size_t e = s.find_last_not_of(" \t\n\r\f\v");
      if (b != std::string::npos) {
        std::string t = s.substr(b, e - b + 1);
        size_t i = (t[0] == '-' || t[0] == '+') ? 1 : 0;
        bool ok = i < t.size();
        for (size_t k = i; k < t.size(); ++k)
          ok = ok && (AsciiDigit(t[k]) || (t[k] == '_' && k > i && k + 1 < t.size()));
        if (ok) {
          t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
          errno = 0;
          long long r = std::strtoll(t.c_str(), nullptr, 10);
          if (errno == 0) return r;
        }
      }
      break;
    }
    case Value::Kind::Decimal: {
      auto d = ParseDec(v.as_string());
      if (d && d->scale == 0) {
        auto i = DecToInt64(*d);
        if (i) return *i;
      }
      break;
    }
    default:
      break;
  }
  throw RenderError(std::string("Liquid error: invalid integer for ") + what);
}

namespace {

// Float#to_i, refusing values outside int64.
int64_t TruncateFloat(double d, const char* what) {
  if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) {
    throw RenderError(std::string("Liquid error: invalid integer for ") + what);
  }
  return static_cast<int64_t>(d);
}

// Ruby Liquid's RangeLookup#to_integer: strings via to_i, nil as 0.
int64_t RangeBound(const Value& v, const char* what) {
  if (v.is_nil()) return 0;
  if (v.kind() == Value::Kind::String) {
    const std::string& s = v.as_string();
    size_t p = 0;
    while (p < s.size() && AsciiSpace(s[p])) ++p;
    std::string digits;
    if (p < s.size() && (s[p] == '-' || s[p] == '+')) digits.push_back(s[p++]);
    while (p < s.size() && AsciiDigit(s[p]) && digits.size() < 19) {
      digits.push_back(s[p++]);
    }
    return std::strtoll(digits.c_str(), nullptr, 10);
  }
  if (v.kind() == Value::Kind::Float) return TruncateFloat(v.as_float(), what);
  return ToInteger(v, what);
}

}  // namespace

// Evaluates a literal, range or variable path (Ruby VariableLookup semantics).
const Value& Eval(const Expr& e, RenderState& st, Value& scratch) {
  switch (e.kind) {
    case Expr::Kind::Literal:
      return e.literal;
    case Expr::Kind::Range: {
      Value a, b;
      int64_t lo = RangeBound(Eval(*e.lo, st, a), "range start");
      int64_t hi = RangeBound(Eval(*e.hi, st, b), "range end");
      scratch = Value::Range(lo, hi);
      return scratch;
    }
    case Expr::Kind::Variable:
      break;
  }
  int drop = -1;
  const Value* cur;
  if (e.dynamic_root) {
    Value k;
    const Value& key = Eval(*e.dynamic_root, st, k);
    cur = key.kind() == Value::Kind::String
              ? st.FindRoot(st.NameId(key.as_string()), key.as_string(), drop)
              : nullptr;
  } else {
    cur = st.FindRoot(e.root_id, e.root, drop, &e.root_hint);
  }
  // Computed steps (size, hash first, loop properties) live in `scratch`; the
  // new value is built before the old one is overwritten, so `cur` may point
  // into scratch's previous content while it is computed.
  auto set_temp = [&](Value v) {
    scratch = std::move(v);
    cur = &scratch;
  };
  for (const PathSeg& seg : e.path) {
    if (!cur) return kNil;
    // Resolve the key of this step.
    const std::string* key = nullptr;
    int64_t index = 0;
    bool is_index = false;
    Value dk;
    if (seg.kind == PathSeg::Kind::Key) {
      key = &seg.key;
    } else if (seg.kind == PathSeg::Kind::Index) {
      index = seg.index;
      is_index = true;
    } else {
      const Value& k = Eval(*seg.dynamic, st, dk);
      if (k.kind() == Value::Kind::String) {
        key = &k.as_string();
      } else if (k.kind() == Value::Kind::Int) {
        index = k.as_int();
        is_index = true;
      } else {
        return kNil;
      }
    }
    if (drop >= 0) {
      if (!key) return kNil;
      Value out;
      int next;
      if (!LoopProperty(st, drop, *key, out, next)) return kNil;
      drop = next;
      if (next >= 0) {
        cur = &kNil;  // a parentloop drop; resolved by the next step
        continue;
      }
      set_temp(std::move(out));
      continue;
    }
    switch (cur->kind()) {
      case Value::Kind::Object: {
        if (key) {
          const Object& o = cur->as_object();
          size_t h = seg.hint.get();
          if (h < o.size() && o[h].first == *key) {
            cur = &o[h].second;
            continue;
          }
          const Value* found = nullptr;
          for (size_t i = 0; i < o.size(); ++i) {
            if (o[i].first == *key) {
              seg.hint.set(i);
              found = &o[i].second;
              break;
            }
          }
          if (found) {
            cur = found;
            continue;
          }
          if (seg.command) {
            if (*key == "size") {
              set_temp(Value::Int(static_cast<int64_t>(cur->as_object().size())));
              continue;
            }
            if (*key == "first" && !cur->as_object().empty()) {
              const auto& kv = cur->as_object().front();
              set_temp(Value::MakeArray({Value::String(kv.first), kv.second}));
              continue;
            }
          }
        }
        return kNil;
      }
      case Value::Kind::Array: {
        const Array& a = cur->as_array();
        if (is_index) {
          int64_t n = static_cast<int64_t>(a.size());
          int64_t i = index < 0 ? index + n : index;
          if (i < 0 || i >= n) return kNil;
          cur = &a[static_cast<size_t>(i)];
          continue;
        }
        if (seg.command) {
          if (*key == "size") {
            set_temp(Value::Int(static_cast<int64_t>(a.size())));
            continue;
          }
          if (*key == "first") {
            if (a.empty()) return kNil;
            cur = &a.front();
            continue;
          }
          if (*key == "last") {
            if (a.empty()) return kNil;
            cur = &a.back();
            continue;
          }
        }
        return kNil;
      }
      case Value::Kind::String:
        if (key && seg.command && *key == "size") {
          set_temp(Value::Int(CharCount(cur->as_string())));
          continue;
        }
        if (key && seg.command && (*key == "first" || *key == "last")) {
          std::string ch = FirstOrLastChar(cur->as_string(), *key == "last");
          if (ch.empty()) return kNil;
          set_temp(Value::String(std::move(ch)));
          continue;
        }
        return kNil;
      case Value::Kind::Range:
        if (key && seg.command) {
          int64_t lo = cur->range_first(), hi = cur->range_last();
          if (*key == "size") {
            set_temp(Value::Int(RangeSize(lo, hi)));
            continue;
          }
          if (*key == "first") {
            set_temp(Value::Int(lo));
            continue;
          }
          if (*key == "last") {
            set_temp(Value::Int(hi));
            continue;
          }
        }
        return kNil;
      case Value::Kind::Int:
        if (key && seg.command && *key == "size") {
          set_temp(Value::Int(8));
          continue;
        }
        return kNil;
      default:
        return kNil;
    }
  }
  if (!cur) return kNil;
  if (drop >= 0) {
    scratch = LoopObject(st, drop);
    return scratch;
  }
  return *cur;
}

// Evaluates an expression into an owned Value.
Value EvalCopy(const Expr& e, RenderState& st) {
  Value scratch;
  const Value& v = Eval(e, st, scratch);
  if (&v == &scratch) return scratch;
  return v;
}

// Evaluates an expression and applies its filters in order.
Value EvalPipeline(const Pipeline& p, RenderState& st) {
  FilterArgs fa;
  fa.state = &st;
  fa.input = EvalCopy(p.expr, st);
  st.Step(static_cast<int64_t>(p.filters.size()));
  for (const FilterCall& f : p.filters) {
    fa.args.clear();
    fa.kwargs.clear();
    fa.name = f.name;
    for (const Expr& a : f.args) fa.args.push_back(EvalCopy(a, st));
    for (const auto& kw : f.kwargs) fa.kwargs.emplace_back(kw.first, EvalCopy(kw.second, st));
    st.ChargeScan(fa.input);
    for (const Value& a : fa.args) st.ChargeScan(a);
    Value r = f.fn(fa);
    fa.input = std::move(r);
  }
  return std::move(fa.input);
}

// Returns the first or last UTF-8 character of `s`.
std::string FirstOrLastChar(const std::string& s, bool last) {
  if (s.empty()) return std::string();
  size_t b = 0, e = s.size();
  if (last) {
    b = e - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  } else {
    e = 1;
    while (e < s.size() && (static_cast<unsigned char>(s[e]) & 0xC0) == 0x80) ++e;
  }
  return s.substr(b, e - b);
}

// Ruby's empty?: empty strings, arrays, hashes and ranges.
bool IsEmptyValue(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::String:
      return v.as_string().empty();
    case Value::Kind::Array:
      return v.as_array().empty();
    case Value::Kind::Object:
      return v.as_object().empty();
    case Value::Kind::Range:
      return v.range_last() < v.range_first();
    default:
      return false;
  }
}

// ActiveSupport's blank?: nil, false, whitespace-only strings, empty collections.
bool IsBlankValue(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Nil:
      return true;
    case Value::Kind::Bool:
      return !v.as_bool();
    case Value::Kind::String:
      return v.as_string().find_first_not_of(" \t\n\r\f\v") == std::string::npos;
    default:
      return IsEmptyValue(v);
  }
}

namespace {

bool IsNumeric(const Value& v) { return v.is_number(); }

// Compares two numbers exactly where possible; -1, 0, 1 (2 for NaN).
int CompareNumbers(const Value& a, const Value& b) {
  if (a.kind() == Value::Kind::Int && b.kind() == Value::Kind::Int) {
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  }
  auto to_dec = [](const Value& v) -> std::optional<Dec> {
    if (v.kind() == Value::Kind::Int) return Dec{v.as_int(), 0};
    if (v.kind() == Value::Kind::Float) {
      double d = v.as_float();
      if (!std::isfinite(d)) return std::nullopt;
      // Exact comparison for floats that are integers; otherwise via shortest digits.
      return DecFromDouble(d);
    }
    return ParseDec(v.as_string());
  };
  auto x = to_dec(a), y = to_dec(b);
  if (x && y) return DecCompare(*x, *y);
  auto to_d = [](const Value& v) {
    if (v.kind() == Value::Kind::Int) return static_cast<double>(v.as_int());
    if (v.kind() == Value::Kind::Float) return v.as_float();
    return ParseDouble(v.as_string());
  };
  double p = to_d(a), q = to_d(b);
  if (std::isnan(p) || std::isnan(q)) return 2;
  return p < q ? -1 : p > q ? 1 : 0;
}

// Ruby class name of a value, for comparison error messages.
const char* RubyClass(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Nil:
      return "NilClass";
    case Value::Kind::Bool:
      return v.as_bool() ? "TrueClass" : "FalseClass";
    case Value::Kind::Int:
      return "Integer";
    case Value::Kind::Float:
      return "Float";
    case Value::Kind::Decimal:
      return "BigDecimal";
    case Value::Kind::String:
      return "String";
    case Value::Kind::Time:
      return "Time";
    case Value::Kind::Array:
      return "Array";
    case Value::Kind::Object:
      return "Hash";
    case Value::Kind::Range:
      return "Range";
    default:
      return "Object";
  }
}

}  // namespace

namespace {

bool EqualsAt(const Value& a, const Value& b, int depth);

}  // namespace

bool LiquidEquals(const Value& a, const Value& b) { return EqualsAt(a, b, 0); }

namespace {

// Liquid equality; `depth` bounds recursion into nested arrays and objects.
bool EqualsAt(const Value& a, const Value& b, int depth) {
  using K = Value::Kind;
  if (depth > 1000) throw RenderError("Liquid error: values nested too deeply to compare");
  if (a.kind() == K::Empty || a.kind() == K::Blank) {
    if (b.kind() == K::Empty || b.kind() == K::Blank) return false;
    return a.kind() == K::Empty ? IsEmptyValue(b) : IsBlankValue(b);
  }
  if (b.kind() == K::Empty || b.kind() == K::Blank) return EqualsAt(b, a, depth);
  if (IsNumeric(a) && IsNumeric(b)) return CompareNumbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::Nil:
      return true;
    case K::Bool:
      return a.as_bool() == b.as_bool();
    case K::String:
      return a.as_string() == b.as_string();
    case K::Time:
      return a.time_days() == b.time_days() && a.time_day_micros() == b.time_day_micros();
    case K::Range:
      return a.range_first() == b.range_first() && a.range_last() == b.range_last();
    case K::Array: {
      const Array& x = a.as_array();
      const Array& y = b.as_array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!EqualsAt(x[i], y[i], depth + 1)) return false;
      }
      return true;
    }
    case K::Object: {
      const Object& x = a.as_object();
      const Object& y = b.as_object();
      if (x.size() != y.size()) return false;
      for (const auto& kv : x) {
        const Value* o = b.Find(kv.first);
        if (!o || !EqualsAt(kv.second, *o, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

// Orders numbers, strings or times; throws for other pairs (Ruby ArgumentError).
int LiquidCompare(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (IsNumeric(a) && IsNumeric(b)) {
    int c = CompareNumbers(a, b);
    if (c != 2) return c;
  } else if (a.kind() == K::String && b.kind() == K::String) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  } else if (a.kind() == K::Time && b.kind() == K::Time) {
    if (a.time_days() != b.time_days()) return a.time_days() < b.time_days() ? -1 : 1;
    if (a.time_day_micros() != b.time_day_micros()) {
      return a.time_day_micros() < b.time_day_micros() ? -1 : 1;
    }
    return 0;
  }
  throw RenderError(std::string("Liquid error: comparison of ") + RubyClass(a) + " with " +
                    RubyClass(b) + " failed");
}

namespace {

// Ruby responds_to?(:<) for the value kinds Liquid compares.
bool Orderable(const Value& v) {
  using K = Value::Kind;
  return v.kind() == K::Int || v.kind() == K::Float || v.kind() == K::Decimal ||
         v.kind() == K::String || v.kind() == K::Time;
}

// Evaluates one comparison (or a bare value for truthiness).
bool EvalComparison(const Comparison& c, RenderState& st) {
  Value s1;
  const Value& left = Eval(c.left, st, s1);
  if (c.op == CmpOp::None) return Truthy(left);
  Value s2;
  const Value& right = Eval(c.right, st, s2);
  st.ChargeScan(left);
  st.ChargeScan(right);
  switch (c.op) {
    case CmpOp::Eq:
      return LiquidEquals(left, right);
    case CmpOp::Ne:
      return !LiquidEquals(left, right);
    case CmpOp::Contains: {
      if (!Truthy(left) || !Truthy(right)) return false;
      if (left.kind() == Value::Kind::String) {
        std::string needle = ToLiquidString(right);
        return SafeFind(left.as_string(), needle) != std::string::npos;
      }
      if (left.kind() == Value::Kind::Array) {
        for (const Value& e : left.as_array()) {
          if (LiquidEquals(e, right)) return true;
        }
        return false;
      }
      if (left.kind() == Value::Kind::Object) {
        return right.kind() == Value::Kind::String && left.Find(right.as_string()) != nullptr;
      }
      if (left.kind() == Value::Kind::Range) {
        if (right.kind() != Value::Kind::Int) return false;
        return right.as_int() >= left.range_first() && right.as_int() <= left.range_last();
      }
      return false;
    }
    default:
      break;
  }
  if (!Orderable(left) || !Orderable(right)) return false;
  int r;
  if (IsNumeric(left) && IsNumeric(right)) {
    r = CompareNumbers(left, right);
    if (r == 2) return false;
  } else {
    r = LiquidCompare(left, right);
  }
  switch (c.op) {
    case CmpOp::Lt:
      return r < 0;
    case CmpOp::Gt:
      return r > 0;
    case CmpOp::Le:
      return r <= 0;
    case CmpOp::Ge:
      return r >= 0;
    default:
      return false;
  }
}

}  // namespace

// Evaluates and/or chains right to left, short-circuiting.
bool EvalCondition(const Condition& c, RenderState& st) {
  // Ruby Liquid nests to the right: a and b or c == a and (b or c).
  st.Step(static_cast<int64_t>(c.items.size()));
  for (size_t i = 0; i < c.items.size(); ++i) {
    bool r = EvalComparison(c.items[i], st);
    if (i + 1 == c.items.size()) return r;
    if (c.joins_and[i] && !r) return false;
    if (!c.joins_and[i] && r) return true;
  }
  return false;
}

}  // namespace hyperline::liquid
