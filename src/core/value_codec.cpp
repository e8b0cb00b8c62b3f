// value_codec.cpp: see value_codec.hpp.
#include "core/value_codec.hpp"

#include <cstring>

namespace hyperline {
namespace {

constexpr unsigned char kVersion = 1;
constexpr int kMaxDepth = 512;

enum Tag : unsigned char {
  kNil = 0,
  kFalse = 1,
  kTrue = 2,
  kInt = 3,
  kFloat = 4,
  kDecimal = 5,
  kString = 6,
  kTime = 7,
  kDate = 8,
  kArray = 9,
  kObject = 10,
  kRange = 11,
  kEmpty = 12,
  kBlank = 13,
};

void PutVarint(uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutSigned(int64_t v, std::string& out) {
  PutVarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63), out);
}

void PutBytes(std::string_view s, std::string& out) {
  PutVarint(s.size(), out);
  out.append(s);
}

void Encode(const Value& v, std::string& out) {
  switch (v.kind()) {
    case Value::Kind::Nil:
      out.push_back(static_cast<char>(kNil));
      break;
    case Value::Kind::Bool:
      out.push_back(static_cast<char>(v.as_bool() ? kTrue : kFalse));
      break;
    case Value::Kind::Int:
      out.push_back(static_cast<char>(kInt));
      PutSigned(v.as_int(), out);
      break;
    case Value::Kind::Float: {
      out.push_back(static_cast<char>(kFloat));
      double d = v.as_float();
      uint64_t bits = 0;
      std::memcpy(&bits, &d, sizeof bits);
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
      break;
    }
    case Value::Kind::Decimal:
      out.push_back(static_cast<char>(kDecimal));
      PutBytes(v.as_string(), out);
      break;
    case Value::Kind::String:
      out.push_back(static_cast<char>(kString));
      PutBytes(v.as_string(), out);
      break;
    case Value::Kind::Time:
      out.push_back(static_cast<char>(v.date_only() ? kDate : kTime));
      PutSigned(v.time_days(), out);
      PutVarint(static_cast<uint64_t>(v.time_day_micros()), out);
      break;
    case Value::Kind::Array:
      out.push_back(static_cast<char>(kArray));
      PutVarint(v.as_array().size(), out);
      for (const Value& e : v.as_array()) Encode(e, out);
      break;
    case Value::Kind::Object:
      out.push_back(static_cast<char>(kObject));
      PutVarint(v.as_object().size(), out);
      for (const auto& [name, member] : v.as_object()) {
        PutBytes(name, out);
        Encode(member, out);
      }
      break;
    case Value::Kind::Range:
      out.push_back(static_cast<char>(kRange));
      PutSigned(v.range_first(), out);
      PutSigned(v.range_last(), out);
      break;
    case Value::Kind::Empty:
      out.push_back(static_cast<char>(kEmpty));
      break;
    case Value::Kind::Blank:
      out.push_back(static_cast<char>(kBlank));
      break;
  }
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  [[noreturn]] static void Fail(const char* what) {
    throw std::invalid_argument(std::string("invalid encoded value: ") + what);
  }

  bool AtEnd() const { return p_ == end_; }

  unsigned char Byte() {
    if (p_ == end_) Fail("truncated");
    return static_cast<unsigned char>(*p_++);
  }

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      unsigned char b = Byte();
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    Fail("varint too long");
  }

  int64_t Signed() {
    uint64_t z = Varint();
    return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }

  std::string_view Bytes() {
    uint64_t n = Varint();
    if (n > static_cast<uint64_t>(end_ - p_)) Fail("truncated");
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }

  // Each element takes at least one byte: a count beyond what is left is bad.
  size_t Count() {
    uint64_t n = Varint();
    if (n > static_cast<uint64_t>(end_ - p_)) Fail("count beyond the data");
    return static_cast<size_t>(n);
  }

  Value Decode(int depth) {
    if (depth > kMaxDepth) Fail("nested too deeply");
    unsigned char tag = Byte();
    switch (tag) {
      case kNil:
        return Value::Nil();
      case kFalse:
        return Value::Bool(false);
      case kTrue:
        return Value::Bool(true);
      case kInt:
        return Value::Int(Signed());
      case kFloat: {
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(Byte()) << (8 * i);
        double d = 0;
        std::memcpy(&d, &bits, sizeof d);
        return Value::Float(d);
      }
      case kDecimal:
        return Value::Decimal(std::string(Bytes()));
      case kString:
        return Value::String(std::string(Bytes()));
      case kTime:
      case kDate: {
        int64_t days = Signed();
        uint64_t day_micros = Varint();
        if (day_micros >= static_cast<uint64_t>(kMicrosPerDay)) Fail("time of day out of range");
        return Value::TimeFromDays(days, static_cast<int64_t>(day_micros), tag == kDate);
      }
      case kArray: {
        size_t n = Count();
        Array a;
        a.reserve(n);
        for (size_t i = 0; i < n; ++i) a.push_back(Decode(depth + 1));
        return Value::MakeArray(std::move(a));
      }
      case kObject: {
        size_t n = Count();
        Object o;
        o.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          std::string name(Bytes());
          Value member = Decode(depth + 1);
          o.emplace_back(std::move(name), std::move(member));
        }
        return Value::MakeObject(std::move(o));
      }
      case kRange: {
        int64_t first = Signed();
        int64_t last = Signed();
        return Value::Range(first, last);
      }
      case kEmpty:
        return Value::Empty();
      case kBlank:
        return Value::Blank();
      default:
        Fail("unknown tag");
    }
  }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace

void EncodeValue(const Value& v, std::string& out) {
  out.push_back(static_cast<char>(kVersion));
  Encode(v, out);
}

Value DecodeValue(std::string_view bytes) {
  Reader r(bytes);
  if (r.Byte() != kVersion) Reader::Fail("unknown version");
  Value v = r.Decode(0);
  if (!r.AtEnd()) Reader::Fail("trailing bytes");
  return v;
}

}  // namespace hyperline
