// Main.h — the command line of an emitted program (nnc FILE --emit-cpp DIR):
// the same --train, --eval and --predict as nnc, on the functions compiled
// into the program, through the same trainer (Training.h).
//
// C++17 and the standard library only: --emit-cpp copies this file.
#pragma once

#include "Compiled.h"
#include "Training.h"

#include <string>
#include <vector>

namespace nnc_rt {

/// What nnc generates into an emitted program's model.cpp.
struct EmittedProgram {
  Model model;
  std::string dataDir; ///< the data block's directory, resolved when nnc emitted the program
  int64_t capacity = 0;
  std::vector<BufferSpec> trainBuffers, predictBuffers;
  int64_t trainArena = 0, predictArena = 0;
  StepFunction trainStep = nullptr, predict = nullptr;
};

/// Parses the command line and runs the command. Returns the exit status:
/// 0 success, 1 a problem with the input, 2 a usage error.
int runMain(int argc, char **argv, const EmittedProgram &program);

} // namespace nnc_rt
