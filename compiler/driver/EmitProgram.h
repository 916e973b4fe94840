// EmitProgram.h — `nnc FILE --emit-cpp DIR [--inference --weights PATH]`: the
// program as standalone C++, a trainer or an inference library.
#pragma once

#include "frontend/Program.h"
#include "support/Diag.h"

#include <ostream>
#include <string>

namespace nnc {

/// Writes the standalone program into `dir` (created if missing): the
/// compiled functions as C++, model.cpp with main, the runtime's sources, a
/// CMakeLists.txt and a README. `dataDir` is the program's default data
/// directory. Returns the exit status.
int emitCppCommand(const Program &program, const std::string &dir, const std::string &dataDir,
                   Diag &diag);

/// `--emit=loops` / `--emit=llvm`: the lowered training step, then
/// prediction, as loop IR, or the LLVM modules the JIT compiles them in.
/// Returns the exit status.
int printLowered(const Program &program, const std::string &what, std::ostream &out,
                 Diag &diag);

/// `--emit-cpp DIR --inference --weights PATH`: writes into `dir` only the
/// inference code for one image, with the weights of the checkpoint at
/// `weightsPath` (checked against the model) as constant arrays, and the C
/// API `int nnc_predict(const float *image, float *probabilities)`: no heap,
/// no exceptions, no I/O (nnc_predict.cpp, nnc_predict.h, README.md).
/// Returns the exit status.
int emitInferenceCommand(const Program &program, const std::string &dir,
                         const std::string &weightsPath, Diag &diag);

} // namespace nnc
