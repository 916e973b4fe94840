// Session.h — a program compiled by the JIT for running: train_step and
// predict with their memory, and the runtime's Session (runtime/Training.h)
// that owns the state living across steps and its checkpoints.
//
// `--train`, `--eval` and `--predict` start from a Session; so will the REPL.
#pragma once

#include "codegen/JIT.h"
#include "codegen/Runner.h"
#include "driver/Pipeline.h"
#include "frontend/Program.h"

#include "Training.h"

#include <memory>
#include <string>

namespace nnc {

/// What the runtime's trainer needs to know about `program`, compiled as
/// `lowered`: buffer names, the state with its initializers, the settings.
nnc_rt::Model describeModel(const Program &program, const LoweredProgram &lowered);

class Session {
public:
  /// Lowers and compiles `program` for batches up to `capacity` and sets
  /// every parameter to its initial value (from program.train.seed).
  /// Returns null and sets `error` when the program cannot be compiled
  /// (a message for the user); a JIT failure is thrown as an internal error.
  /// With `halves`, also compiles the step's two halves, grad_step and
  /// apply_update (buildGradStep, buildUpdateStep), for data-parallel
  /// training.
  static std::unique_ptr<Session> create(const Program &program, int64_t capacity,
                                         std::string &error, bool halves = false);

  const LoweredProgram &lowered() const { return lowered_; }
  nnc_rt::Session &state() { return *state_; }
  /// The halves (null unless created with them).
  nnc_rt::Runner *gradStep() { return grad_.get(); }
  nnc_rt::Runner *applyUpdate() { return update_.get(); }
  /// Milliseconds spent lowering and JIT-compiling.
  double compileMs() const { return compileMs_; }

private:
  Session() = default;

  LoweredProgram lowered_;
  std::unique_ptr<JIT> jit_;
  std::unique_ptr<Runner> train_, predict_, grad_, update_;
  std::unique_ptr<nnc_rt::Session> state_;
  double compileMs_ = 0;
};

} // namespace nnc
