// Text.h — small text helpers shared by messages and printers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nnc {

/// 55050 -> "55,050"
std::string withThousands(int64_t n);

/// {"a", "b", "c"} -> "a, b and c" (with `conjunction` in place of "and").
std::string joinNames(const std::vector<std::string> &names, const std::string &conjunction = "and");

} // namespace nnc
