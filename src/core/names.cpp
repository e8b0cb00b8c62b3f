// names.cpp: see names.hpp.
#include "core/names.hpp"

#include <algorithm>

#include "core/ascii.hpp"

namespace hyperline {
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string ClosestName(std::string_view name, const std::vector<std::string_view>& candidates,
                        bool ignore_case) {
  if (name.size() > 64) return std::string();  // quadratic: only short names
  std::string wanted = ignore_case ? AsciiLowerString(name) : std::string(name);
  std::string best;
  size_t best_distance = 3;  // suggest only close matches
  for (std::string_view c : candidates) {
    size_t d = ignore_case ? EditDistance(wanted, AsciiLowerString(c)) : EditDistance(wanted, c);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(c);
    }
  }
  return best;
}

}  // namespace hyperline
