// JIT.h — loop IR to machine code: LLVM IR through IRBuilder (llvm.fma where
// the loop IR says FMA, no fast-math flags), optimized for the host CPU by a
// short pipeline of the new pass manager (scalar cleanup, loop-invariant
// code motion, the loop vectorizer), compiled to machine code on several
// threads and linked by ORC LLJIT. Runtime functions (libm, the thread
// pool) resolve from the process.
#pragma once

#include "loops/LoopIR.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nnc {

/// Floats per vector register of the host CPU: 16 with AVX-512, else 8
/// (what loops::LowerOptions::vectorLanes takes).
int64_t hostVectorLanes();

/// A compiled loop-IR function: `void f(float **buffers, int64_t N)`.
using CompiledFunction = void (*)(float **buffers, int64_t batch);

/// Functions compiled together and the machine code they live in. The code
/// is an ORC resource tracker of its own: it is removed from the JIT, and
/// its memory freed, when the last copy of `code` is dropped (the JIT itself
/// may be gone by then). Calling a function after that is undefined.
struct CompiledCode {
  std::vector<CompiledFunction> functions;
  std::vector<std::string> symbols; ///< the functions' names in the JIT
  std::shared_ptr<void> code;
};

class JIT {
public:
  /// Creates a JIT for the host CPU; returns null and sets `error` on
  /// failure (reported to users as an internal error, never a crash).
  static std::unique_ptr<JIT> create(std::string &error);
  ~JIT();

  /// Compiles `f`; returns null and sets `error` on failure.
  CompiledFunction compile(const loops::Function &f, std::string &error);
  /// Compiles several functions at once: their code (each function and the
  /// bodies of its parallel loops) is shared out by estimated size among
  /// as many modules as there are cores (at most 4), each compiled on a
  /// thread of its own, then linked. Returns them in order, or nothing and
  /// sets `error` on any failure.
  std::vector<CompiledFunction> compile(const std::vector<const loops::Function *> &fs,
                                        std::string &error);
  /// As compile(), but the code lives only as long as the result's `code`
  /// (compile() keeps its code until the JIT goes). Empty on failure.
  CompiledCode compileTracked(const std::vector<const loops::Function *> &fs,
                              std::string &error);

  /// Whether the JIT has code for `symbol` (a name from CompiledCode).
  bool defines(const std::string &symbol);

  /// Keep the optimized LLVM IR of what compile() compiles (`--emit=llvm`).
  void keepIR(bool keep) { keepIR_ = keep; }
  /// The optimized LLVM IR of the last compile() call, if kept: its
  /// modules in turn.
  const std::string &lastIR() const { return lastIR_; }

private:
  JIT();
  struct Impl;
  std::shared_ptr<Impl> impl_; ///< shared with the code it made
  std::vector<std::shared_ptr<void>> kept_; ///< what compile() made
  std::string lastIR_;
  bool keepIR_ = false;
  int counter_ = 0;
};

} // namespace nnc
