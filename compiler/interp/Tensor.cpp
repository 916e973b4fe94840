// Tensor.cpp — the reference interpreter's tensors.
#include "interp/Tensor.h"

namespace nnc {

int64_t elementCount(const std::vector<int64_t> &dims) {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}

Tensor::Tensor(std::vector<int64_t> d, double fill)
    : dims(std::move(d)), data(static_cast<size_t>(elementCount(dims)), fill) {}

std::vector<int64_t> Tensor::strides() const {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;)
    s[i - 1] = s[i] * dims[i];
  return s;
}

std::string Tensor::shapeStr() const {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

} // namespace nnc
