// EmitProgram.h — `nnc FILE --emit-cpp DIR`: the program as standalone C++.
#pragma once

#include "frontend/Program.h"
#include "support/Diag.h"

#include <string>

namespace nnc {

/// Writes the standalone program into `dir` (created if missing): the
/// compiled functions as C++, model.cpp with main, the runtime's sources, a
/// CMakeLists.txt and a README. `dataDir` is the program's default data
/// directory. Returns the exit status.
int emitCppCommand(const Program &program, const std::string &dir, const std::string &dataDir,
                   Diag &diag);

} // namespace nnc
