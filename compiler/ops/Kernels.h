// Kernels.h — what the reference kernels (Reference.cpp, InternalOps.cpp)
// share: input access, the window geometry of convolution and pooling, and
// reading a label.
#pragma once

#include "interp/Tensor.h"
#include "ops/OpTable.h"

#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>

namespace nnc::kernels {

using Kernel = std::function<void(const KernelCall &)>;

inline const Tensor &in(const KernelCall &k, size_t i) { return *k.inputs.at(i); }

/// A 2-D window attribute: k means k×k.
inline std::pair<int64_t, int64_t> window(const Attrs &attrs, const char *name) {
  const std::vector<int64_t> &v = attrs.getIntList(name);
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

/// Kernel, stride (the kernel when absent, as pooling's default) and padding.
struct Geometry {
  int64_t kh, kw, sh, sw, ph, pw;
};

inline Geometry geometry(const Attrs &attrs) {
  Geometry g{};
  std::tie(g.kh, g.kw) = window(attrs, "kernel");
  std::tie(g.sh, g.sw) = attrs.has("stride") ? window(attrs, "stride") : std::make_pair(g.kh, g.kw);
  std::tie(g.ph, g.pw) = window(attrs, "padding");
  return g;
}

/// The class index of example `row`, checked against `classes` (the data
/// loader validates labels first, so a bad one here is a bug).
inline size_t label(const Tensor &labels, int64_t row, int64_t classes) {
  double l = labels[static_cast<size_t>(row)];
  if (!(l >= 0 && l < static_cast<double>(classes)) || l != std::floor(l))
    throw std::logic_error("internal error: label " + std::to_string(l) + " out of range");
  return static_cast<size_t>(l);
}

/// The RNG counter of dropout's element `i` at training step `step`: the
/// step in the high bits, so masks of different steps never share numbers
/// (for tensors under 2^40 elements).
inline uint64_t dropoutIndex(uint64_t step, uint64_t i) { return (step << 40) + i; }

} // namespace nnc::kernels
