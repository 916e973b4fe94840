// Tensor.h — a dense tensor of doubles for the reference interpreter.
//
// The interpreter is the oracle the JIT and the emitted C++ are tested
// against, and gradients are checked with it in double precision, so it
// favours plainness over speed: row-major doubles and index arithmetic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nnc {

struct Tensor {
  std::vector<int64_t> dims; ///< concrete: the batch dimension is resolved
  std::vector<double> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> d, double fill = 0.0);

  size_t size() const { return data.size(); }
  size_t rank() const { return dims.size(); }
  /// Row-major strides.
  std::vector<int64_t> strides() const;
  double &operator[](size_t i) { return data[i]; }
  double operator[](size_t i) const { return data[i]; }
  std::string shapeStr() const;
};

/// Number of elements of a shape.
int64_t elementCount(const std::vector<int64_t> &dims);

} // namespace nnc
