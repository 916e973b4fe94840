// Shape.h — static tensor shapes with a symbolic batch dimension.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nnc {

/// The batch dimension, known only at run time; printed as N.
constexpr int64_t kBatch = -1;

/// A tensor shape. When batched, dims[0] == kBatch and every other
/// dimension is a positive constant.
struct Shape {
  std::vector<int64_t> dims;

  static Shape batched(std::vector<int64_t> perExample);
  bool isBatched() const { return !dims.empty() && dims[0] == kBatch; }
  size_t rank() const { return dims.size(); }
  /// Elements per example (the product of the non-batch dimensions), or
  /// nullopt on overflow.
  std::optional<int64_t> elementsPerExample() const;
  /// `[N, 1, 28, 28]`
  std::string str() const;
  bool operator==(const Shape &other) const { return dims == other.dims; }
};

/// Product of `dims`, or nullopt if it overflows int64.
std::optional<int64_t> product(const std::vector<int64_t> &dims);

} // namespace nnc
