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
#include <optional>
#include <string>

namespace nnc {

/// What the runtime's trainer needs to know about `program`, compiled as
/// `lowered`: buffer names, the state with its initializers, the settings.
nnc_rt::Model describeModel(const Program &program, const LoweredProgram &lowered);

/// A loop-IR function as last compiled, and its machine code.
struct CompiledStage {
  loops::Function function;
  CompiledFunction entry = nullptr;
  std::shared_ptr<void> code; ///< keeps `entry` in the JIT (see CompiledCode)
};

/// What one Session leaves for the next (the REPL's recompiles): the JIT,
/// and each function's last machine code, reused when the next program
/// lowers to the same code (loops::sameCode). Code no session and no cache
/// holds any more is removed from the JIT.
struct CodeCache {
  std::shared_ptr<JIT> jit;
  std::optional<CompiledStage> trainStep, predict;
};

/// Where the time of Session::create went.
struct CompileReport {
  double lowerMs = 0, jitMs = 0, totalMs = 0; ///< wall-clock
  double cpuMs = 0; ///< processor time of all the process's threads meanwhile
  std::vector<std::string> compiled, reused; ///< "train_step", "predict"
};

class Session {
public:
  /// Lowers and compiles `program` for batches up to `capacity` and sets
  /// every parameter to its initial value (from program.train.seed).
  /// With a cache, its JIT and any function that lowers to the same code as
  /// last time are reused, and the cache is updated. With `halves`, also
  /// compiles the step's two halves, grad_step and apply_update
  /// (buildGradStep, buildUpdateStep), for data-parallel training. Returns
  /// null and sets `error` when the program cannot be compiled (a message for
  /// the user; `overCap`, if given, says whether it is the memory cap's
  /// refusal); a JIT failure is thrown as an internal error.
  static std::unique_ptr<Session> create(const Program &program, int64_t capacity,
                                         std::string &error, CodeCache *cache = nullptr,
                                         bool halves = false, bool *overCap = nullptr);

  const LoweredProgram &lowered() const { return lowered_; }
  nnc_rt::Session &state() { return *state_; }
  /// The halves (null unless created with them).
  nnc_rt::Runner *gradStep() { return grad_.get(); }
  nnc_rt::Runner *applyUpdate() { return update_.get(); }
  /// Milliseconds spent lowering and JIT-compiling.
  double compileMs() const { return report_.totalMs; }
  const CompileReport &report() const { return report_; }

private:
  Session() = default;

  LoweredProgram lowered_;
  std::shared_ptr<JIT> jit_;
  std::shared_ptr<void> trainCode_, predictCode_, halvesCode_;
  std::unique_ptr<Runner> train_, predict_, grad_, update_;
  std::unique_ptr<nnc_rt::Session> state_;
  CompileReport report_;
};

} // namespace nnc
