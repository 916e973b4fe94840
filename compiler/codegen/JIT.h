// JIT.h — loop IR to machine code: LLVM IR through IRBuilder (llvm.fma where
// the loop IR says FMA, no fast-math flags), optimized at O3 for the host
// CPU, compiled by ORC LLJIT. Runtime functions (libm) resolve from the
// process.
#pragma once

#include "loops/LoopIR.h"

#include <cstdint>
#include <memory>
#include <string>

namespace nnc {

/// A compiled loop-IR function: `void f(float **buffers, int64_t N)`.
using CompiledFunction = void (*)(float **buffers, int64_t batch);

class JIT {
public:
  /// Creates a JIT for the host CPU; returns null and sets `error` on
  /// failure (reported to users as an internal error, never a crash).
  static std::unique_ptr<JIT> create(std::string &error);
  ~JIT();

  /// Compiles `f`; returns null and sets `error` on failure.
  CompiledFunction compile(const loops::Function &f, std::string &error);

  /// The optimized LLVM IR of the last compiled function (`--emit=llvm`).
  const std::string &lastIR() const { return lastIR_; }

private:
  JIT();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string lastIR_;
  int counter_ = 0;
};

} // namespace nnc
