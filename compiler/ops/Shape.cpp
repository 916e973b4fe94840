// Shape.cpp — shape printing and element counts.
#include "ops/Shape.h"

namespace nnc {

Shape Shape::batched(std::vector<int64_t> perExample) {
  Shape s;
  s.dims.reserve(perExample.size() + 1);
  s.dims.push_back(kBatch);
  s.dims.insert(s.dims.end(), perExample.begin(), perExample.end());
  return s;
}

std::optional<int64_t> product(const std::vector<int64_t> &dims) {
  int64_t n = 1;
  for (int64_t d : dims)
    if (d != kBatch && __builtin_mul_overflow(n, d, &n))
      return std::nullopt;
  return n;
}

std::optional<int64_t> Shape::elementsPerExample() const { return product(dims); }

std::string Shape::str() const {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0)
      out += ", ";
    out += dims[i] == kBatch ? "N" : std::to_string(dims[i]);
  }
  return out + "]";
}

} // namespace nnc
