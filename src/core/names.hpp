// names.hpp: did-you-mean suggestions for names (filters, tags, columns).
#pragma once
#include "core/cpp_only.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace hyperline {

// Levenshtein distance between two byte strings.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `name` (at most 2 edits away), or "" if none.
// With ignore_case, ASCII letters compare case-insensitively.
std::string ClosestName(std::string_view name, const std::vector<std::string_view>& candidates,
                        bool ignore_case = false);

}  // namespace hyperline
