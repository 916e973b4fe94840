// Files.h — reading source files with size limits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace nnc {

/// Largest .nn file nnc reads.
constexpr uint64_t kMaxSourceBytes = 64ull << 20;

/// Reads the whole of `path`. On failure returns nullopt and sets `error`
/// to a sentence saying what is wrong (missing, a directory, too large…).
std::optional<std::string> readSourceFile(const std::string &path, std::string &error);

} // namespace nnc
