// number.hpp: number printing and exact decimal arithmetic for Liquid.
//
// Why: Ruby Liquid does float math through BigDecimal (so 0.1 + 0.2 prints 0.3)
// and prints floats in Ruby's format (1.0, 1.0e+20). Postgres numeric values
// arrive as Decimal text and must not lose digits on the way.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/cpp_only.hpp"

namespace hyperline::liquid {

// Appends `d` as Ruby's Float#to_s prints it: 1.0, 0.1, 1.0e+20, 1.0e-05, NaN.
void AppendRubyFloat(double d, std::string& out);

// True when `d` printed shortest is numerically the same decimal as `text`.
bool DoubleMatchesText(double d, std::string_view text);

// A decimal number m * 10^-scale held exactly in 128 bits.
struct Dec {
  __int128 m = 0;
  int scale = 0;  // 0..38
};

// Parses decimal text ("-12.50", "1e3"); nullopt if malformed or too wide.
std::optional<Dec> ParseDec(std::string_view text);
// The exact decimal of the shortest representation of `d`; nullopt if too wide.
std::optional<Dec> DecFromDouble(double d);
// Arithmetic; nullopt when the result does not fit.
std::optional<Dec> DecAdd(Dec a, Dec b);
std::optional<Dec> DecSub(Dec a, Dec b);
std::optional<Dec> DecMul(Dec a, Dec b);
// Rounds half away from zero to `digits` fraction digits (may be negative).
std::optional<Dec> DecRound(Dec a, int digits);
// Floor / ceil to an integer value (scale 0).
Dec DecFloor(Dec a);
Dec DecCeil(Dec a);
// -1, 0, 1.
int DecCompare(Dec a, Dec b);
// Canonical text ("-12.5", "3").
std::string DecToText(Dec a);
double DecToDouble(Dec a);
// Integer value if scale-0 value fits int64.
std::optional<int64_t> DecToInt64(Dec a);
// Parses a decimal floating-point prefix of `text` (optional sign) without
// depending on the process locale; out-of-range values become +-inf or +-0.
double ParseDouble(std::string_view text);
// Appends a 128-bit integer in decimal.
void AppendInt128(__int128 v, std::string& out);

}  // namespace hyperline::liquid
