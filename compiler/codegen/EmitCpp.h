// EmitCpp.h — loop IR to C++17 source: the second backend, for
// `--emit-cpp DIR`. One loop-IR function becomes one translation unit that
// defines
//
//   extern "C" void SYMBOL(float **buffers, int64_t N);
//
// with exactly the buffers, in the same order and with the same meaning, as
// the JIT's compiled function (codegen/JIT.h): f32 buffers as float *,
// labels as int64_t * cast from the array, as the Runner passes them, and
// each output that is a parameter's next value swapped with it by the
// caller after the call.
//
// Same numbers as the JIT, bit for bit (NaNs aside: a NaN's sign and
// payload are not kept by either compiler's optimizer). The loop IR fixes
// every reduction order and marks every fused multiply-add; the emitted code
// spells out each IR operation as the one IEEE operation or libm call the
// LLVM backend makes of it (std::fma where the IR says fma, the JIT's
// compare and select for max, min and select, pow as LLVM rewrites it,
// libm calls on constants folded as LLVM folds them), and starts with
// `#pragma GCC optimize("fp-contract=off")` / `#pragma clang fp
// contract(off)` so that the C++ compiler contracts nothing of its own.
// Parallel loops are kernels the runtime's nnc_parallel_for runs with the
// JIT's range and cost, so the work is split the same way; each kernel takes
// the buffers it touches as __restrict parameters (the JIT's alias scopes);
// `lanes` loops are loops over the lanes with the locals as small arrays,
// unrolled so that GCC keeps them in vector registers. Comments of the loop
// IR (the layers a group comes from) become comments and kernel names;
// variables are the printer's (i3, s7). No LLVM here.
//
// The translation unit includes standard headers and the runtime's
// "Parallel.h" and "Random.h" (copied next to it; link Parallel.cpp and
// RandomC.cpp) — serial units only standard headers —, and compiles without warnings at `g++ -std=c++17 -O3
// -march=native -Wall -Wextra`.
#pragma once

#include "loops/LoopIR.h"

#include <string>

namespace nnc {

struct CppOptions {
  /// The .nn file, named in the unit's first comment (the loops' comments
  /// give its lines).
  std::string source;
  /// For deployment: every parallel loop runs on the calling thread over its
  /// whole range (the split the JIT makes on one thread: the same numbers),
  /// so the unit needs none of the runtime, and the function is `static`,
  /// for code appended to the unit to call. Not for functions that draw
  /// random numbers.
  bool serial = false;
};

/// The C++17 translation unit defining `extern "C" void symbol(float **buffers,
/// int64_t N)` for `f` (`static` when serial). `symbol` must be a C
/// identifier; the unit's other names are internal (an anonymous namespace),
/// so units of several functions link together. Throws std::logic_error if
/// `f` fails loops::verify (the JIT refuses it too).
std::string emitCpp(const loops::Function &f, const std::string &symbol,
                    const CppOptions &options = {});

} // namespace nnc
